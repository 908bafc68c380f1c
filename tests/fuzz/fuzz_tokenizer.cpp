// fuzz_tokenizer.cpp: libFuzzer target for the tokenizer loader and encoder.
// Each input is used twice:
//   1. as a whole tokenizer.json: tokenizer_parse either refuses it with
//      sp::Error or returns a tokenizer, which then encodes a fixed text that
//      has every kind of piece (added tokens, marks NFC composes, invalid bytes);
//   2. as text (any bytes) for two small valid tokenizers, one shaped like
//      Qwen3 (NFC, added tokens, one normalized) and one like Llama 3
//      (ignore_merges, digits by three).
// Every encoding must decode back to its text: exactly without a normalizer,
// up to NFC with one (added tokens are cut out before NFC, and NFC of the
// parts is NFC of the whole). Anything else than sp::Error thrown, a failed
// check, a crash or a sanitizer report is a bug. Build and run: README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>

#include "traces/tokenizer.h"

namespace {

const char* QWEN3_REGEX =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* LLAMA3_REGEX =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// JSON string literal of s (UTF-8 passes through; only quote, backslash and controls escaped).
std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
        else if (c < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
        else out += static_cast<char>(c);
    }
    return out + "\"";
}

// The byte-level symbol of byte b (GPT-2's bytes_to_unicode), as UTF-8.
std::string byte_symbol(int b) {
    auto printable = [](int v) { return (v >= '!' && v <= '~') || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE; };
    int cp = b;
    if (!printable(b)) {
        cp = 256;
        for (int v = 0; v < b; ++v) cp += !printable(v);
    }
    if (cp < 0x80) return std::string(1, static_cast<char>(cp));
    return {static_cast<char>(0xC0 | cp >> 6), static_cast<char>(0x80 | (cp & 0x3F))};
}

std::string small_json(bool llama) {
    std::string vocab, merges;
    for (int b = 0; b < 256; ++b) vocab += (b ? "," : "") + quote(byte_symbol(b)) + ":" + std::to_string(b);
    const char* pairs[][2] = {{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"i", "n"}, {"Ġ", "Ġ"}, {"ĠĠ", "ĠĠ"},
                              {"1", "2"}, {"12", "3"}, {"Ã", "©"}, {"c", "af"}, {"a", "f"}, {"Ċ", "Ċ"}};
    int id = 256;
    for (auto& p : pairs) {
        vocab += "," + quote(std::string(p[0]) + p[1]) + ":" + std::to_string(id++);
        merges += std::string(merges.empty() ? "" : ",") + "[" + quote(p[0]) + "," + quote(p[1]) + "]";
    }
    auto added = [](int tid, const std::string& content, bool special, bool normalized) {
        return "{\"id\":" + std::to_string(tid) + ",\"content\":" + quote(content) +
               ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":" +
               (normalized ? "true" : "false") + ",\"special\":" + (special ? "true" : "false") + "}";
    };
    std::string tokens = added(1000, "<|im_start|>", true, false) + "," + added(1001, "<|im_end|>", true, false) + "," +
                         added(1002, "<think>", false, false) + "," + added(1003, "cafe\u0301!", false, true);
    return std::string("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[") + tokens +
           "],\"normalizer\":" + (llama ? "null" : "{\"type\":\"NFC\"}") +
           ",\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":" +
           quote(llama ? LLAMA3_REGEX : QWEN3_REGEX) +
           "},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
           "\"trim_offsets\":false,\"use_regex\":false}]},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
           "\"model\":{\"type\":\"BPE\",\"ignore_merges\":" + (llama ? "true" : "false") + ",\"vocab\":{" + vocab +
           "},\"merges\":[" + merges + "]}}";
}

void check_round_trip(const sp::Tokenizer& tok, const std::string& text) {
    std::string back = sp::tokenizer_decode(tok, sp::tokenizer_encode(tok, text));
    bool ok = tok.nfc ? sp::utf8_normalize_nfc(back) == sp::utf8_normalize_nfc(text) : back == text;
    if (!ok) {
        std::fprintf(stderr, "round trip failed with %s\n", tok.name.c_str());
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const sp::Tokenizer* qwen = new sp::Tokenizer(sp::tokenizer_parse(small_json(false), "small-qwen3.json"));
    static const sp::Tokenizer* llama = new sp::Tokenizer(sp::tokenizer_parse(small_json(true), "small-llama3.json"));
    std::string input(reinterpret_cast<const char*>(data), size);
    try {
        sp::Tokenizer tok = sp::tokenizer_parse(input, "fuzz.json");
        check_round_trip(tok, "<|im_start|>user\nThe cafe\u0301! 12345  \t\xFF\xC3 \u4f60\u597d<think>x<|im_end|>");
    } catch (const sp::Error&) {
    }
    check_round_trip(*qwen, input);
    check_round_trip(*llama, input);
    return 0;
}
