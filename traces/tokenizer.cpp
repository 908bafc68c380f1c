// tokenizer.cpp: HF tokenizer.json byte-level BPE (Qwen3, Llama 3, DeepSeek-V3); the
// pipeline and the supported subset are described in tokenizer.h.
//
// Sections: UTF-8 | NFC | byte-level alphabet | loading | BPE | encode, decode.
//
// Faithfulness to HF `tokenizers`, point by point:
// - HF compiles the split pattern with Oniguruma (Ruby syntax); we use PCRE2
//   with UTF|UCP and \s spelled as \p{White_Space} (see regex_for_pcre2).
//   They agree on the Qwen3/Llama 3 patterns except where the two libraries'
//   Unicode versions differ (PCRE2 10.42 has Unicode 14).
// - BPE merges exactly like HF's Word::merge_all: a min-heap on (rank, left
//   position), entries made stale by an earlier merge skipped when popped.
// - A merge whose parts or result are not in the vocab is refused at load,
//   as HF refuses it (MergeTokenOutOfVocabulary); a pair listed twice keeps
//   its later rank, as HF's HashMap collect does.
// - Vocab ids must be unique: HF would keep one of the names at random for
//   decoding. An added token may reuse the id of a vocab entry with the same
//   text (GPT-2 files do), not another one's: HF would decode that id as the
//   added token where BPE meant the vocab entry.
// - All 256 byte symbols must be in the vocab: then every byte string
//   encodes, where HF would silently drop a byte that has no symbol.
#include "traces/tokenizer.h"
#include "traces/json_errors.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <queue>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "traces/tokenizer_nfc_table.h"

namespace sp {

void RegexFree::operator()(pcre2_real_code_8* code) const { pcre2_code_free(code); }

namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------- UTF-8

// Length of the well-formed UTF-8 sequence at s[i] (its code point in *cp),
// or 0 where the bytes there are not one: overlong forms, surrogates,
// > U+10FFFF and truncated sequences all count as invalid, as for PCRE2.
size_t utf8_decode(std::string_view s, size_t i, uint32_t* cp) {
    auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
    uint8_t c = b(0);
    if (c < 0x80) { *cp = c; return 1; }
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (c < 0xC2 || c > 0xF4 || i + n > s.size()) return 0;
    // The second byte's range is narrower after E0, ED, F0 and F4.
    uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (b(1) < lo || b(1) > hi) return 0;
    uint32_t v = c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xC0) != 0x80) return 0;
        v = v << 6 | (b(k) & 0x3Fu);
    }
    *cp = v;
    return n;
}

void utf8_append(std::string& s, uint32_t cp) {
    auto put = [&](uint32_t v) { s.push_back(static_cast<char>(v)); };
    if (cp < 0x80) {
        put(cp);
    } else if (cp < 0x800) {
        put(0xC0 | cp >> 6), put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        put(0xE0 | cp >> 12), put(0x80 | (cp >> 6 & 0x3F)), put(0x80 | (cp & 0x3F));
    } else {
        put(0xF0 | cp >> 18), put(0x80 | (cp >> 12 & 0x3F)), put(0x80 | (cp >> 6 & 0x3F)), put(0x80 | (cp & 0x3F));
    }
}

// ---------------------------------------------------------------- NFC
// UAX #15: decompose fully, put combining marks in canonical order, compose.
// Invalid bytes travel as RAW_BYTE|byte: class 0, composing with nothing.

constexpr uint32_t RAW_BYTE = 0x80000000u;
constexpr uint32_t S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7;
constexpr uint32_t L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, S_COUNT = 11172;

uint8_t combining_class(uint32_t cp) {
    using nfc_table::COMBINING_CLASSES;
    if (cp < 0x300 || cp >= RAW_BYTE) return 0;
    auto it = std::upper_bound(std::begin(COMBINING_CLASSES), std::end(COMBINING_CLASSES), cp,
                               [](uint32_t v, const nfc_table::CombiningClass& r) { return v < r.lo; });
    return it != std::begin(COMBINING_CLASSES) && cp <= (it - 1)->hi ? (it - 1)->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
    using nfc_table::DECOMPOSITIONS;
    if (cp - S_BASE < S_COUNT) {  // Hangul syllable: L V [T], computed
        uint32_t s = cp - S_BASE;
        out.push_back(L_BASE + s / (V_COUNT * T_COUNT));
        out.push_back(V_BASE + s % (V_COUNT * T_COUNT) / T_COUNT);
        if (s % T_COUNT) out.push_back(T_BASE + s % T_COUNT);
        return;
    }
    auto it = std::lower_bound(std::begin(DECOMPOSITIONS), std::end(DECOMPOSITIONS), cp,
                               [](const nfc_table::Decomposition& d, uint32_t v) { return d.cp < v; });
    if (it == std::end(DECOMPOSITIONS) || it->cp != cp) { out.push_back(cp); return; }
    decompose(it->first, out);  // depth is bounded by the table (at most 4)
    if (it->second) decompose(it->second, out);
}

// The primary composite of a + b, or 0.
uint32_t compose(uint32_t a, uint32_t b) {
    using nfc_table::COMPOSITIONS;
    if (a - L_BASE < L_COUNT && b - V_BASE < V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a - S_BASE < S_COUNT && (a - S_BASE) % T_COUNT == 0 && b - T_BASE - 1 < T_COUNT - 1)
        return a + (b - T_BASE);
    auto it = std::lower_bound(std::begin(COMPOSITIONS), std::end(COMPOSITIONS), std::pair{a, b},
                               [](const nfc_table::Composition& c, std::pair<uint32_t, uint32_t> v) {
                                   return std::pair{c.first, c.second} < v;
                               });
    return it != std::end(COMPOSITIONS) && it->first == a && it->second == b ? it->cp : 0;
}

}  // namespace

std::string utf8_normalize_nfc(const std::string& text) {
    // Below U+0300 nothing decomposes or combines, except letters that a
    // following mark composes with: that mark is >= U+0300 and takes the slow path.
    if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<uint8_t>(c) < 0xCC; }))
        return text;
    std::vector<uint32_t> cps;
    cps.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        uint32_t cp = 0;
        size_t n = utf8_decode(text, i, &cp);
        if (n == 0) cps.push_back(RAW_BYTE | static_cast<uint8_t>(text[i]));
        else decompose(cp, cps);
        i += std::max<size_t>(n, 1);
    }
    // Canonical order: a stable insertion sort of each run of non-zero classes.
    for (size_t i = 1; i < cps.size(); ++i) {
        uint32_t c = cps[i];
        uint8_t k = combining_class(c);
        size_t j = i;
        for (; k != 0 && j > 0 && combining_class(cps[j - 1]) > k; --j) cps[j] = cps[j - 1];
        cps[j] = c;
    }
    // Composition: a mark joins the last starter unless a character between
    // them has class 0 or a class >= its own ("blocked").
    size_t n_out = 0, starter = 0;
    bool have_starter = false;
    int last_class = -1;
    for (uint32_t c : cps) {
        int k = combining_class(c);
        uint32_t composite = have_starter ? compose(cps[starter], c) : 0;
        if (composite && (last_class < k || last_class == 0)) { cps[starter] = composite; continue; }
        if (k == 0) starter = n_out, have_starter = true;
        last_class = k;
        cps[n_out++] = c;
    }
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < n_out; ++i) {
        if (cps[i] & RAW_BYTE) out.push_back(static_cast<char>(cps[i] & 0xFF));
        else utf8_append(out, cps[i]);
    }
    return out;
}

namespace {

// ---------------------------------------------------------------- byte-level alphabet

// GPT-2's bytes_to_unicode: the 188 printable Latin-1 bytes stand for
// themselves, the other 68 map to U+0100.. in byte order, so that every
// token is printable text and a space is 'Ġ' (U+0120).
uint32_t byte_char(int b) {
    auto printable = [](int v) { return (v >= '!' && v <= '~') || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE; };
    if (printable(b)) return static_cast<uint32_t>(b);
    uint32_t n = 0;
    for (int v = 0; v < b; ++v) n += !printable(v);
    return 256 + n;
}

constexpr uint32_t BYTE_CHAR_END = 256 + 68;

// ---------------------------------------------------------------- loading

// Field checks for one file; every failure is one line, "<file>: <field>: <what>".
struct Parser {
    const std::string& name;

    [[noreturn]] void fail(const std::string& field, const std::string& what) const {
        throw Error(name + ": " + field + ": " + what);
    }
    [[noreturn]] void unsupported(const std::string& field, const json& value) const {
        throw Error(name + ": unsupported " + field + ": " + json_brief(value));
    }
    // obj[key], or nullptr when absent or null.
    static const json* member(const json& obj, const char* key) {
        auto it = obj.find(key);
        return it == obj.end() || it->is_null() ? nullptr : &*it;
    }
    // A token id (HF's u32, narrowed to int), or -1.
    static int id(const json* v) {
        constexpr int64_t max = std::numeric_limits<int>::max();
        if (!v || !v->is_number_integer()) return -1;
        if (v->is_number_unsigned()) return v->get<uint64_t>() <= static_cast<uint64_t>(max) ? v->get<int>() : -1;
        return v->get<int64_t>() >= 0 && v->get<int64_t>() <= max ? v->get<int>() : -1;
    }
    const json& object(const json& obj, const char* key, const std::string& field) const {
        const json* v = member(obj, key);
        if (!v || !v->is_object()) fail(field, "expected an object");
        return *v;
    }
    const std::string& string(const json& obj, const char* key, const std::string& field) const {
        const json* v = member(obj, key);
        if (!v || !v->is_string()) fail(field, "expected a string");
        return v->get_ref<const std::string&>();
    }
    bool flag(const json& obj, const char* key, const std::string& field, bool absent) const {
        const json* v = member(obj, key);
        if (v && !v->is_boolean()) fail(field, "expected true or false");
        return v ? v->get<bool>() : absent;
    }
    // An optional flag we implement one way only.
    void flag_must_be(const json& obj, const char* key, const std::string& field, bool wanted) const {
        if (flag(obj, key, field, wanted) != wanted) unsupported(field, obj.at(key));
    }
    // An optional field we implement as null only (or, with `empty_ok`, "").
    void must_be_null(const json& obj, const char* key, const std::string& field, bool empty_ok = false) const {
        const json* v = member(obj, key);
        if (v && !(empty_ok && *v == "")) unsupported(field, *v);
    }
    void type_must_be(const json& obj, const std::string& field, const char* wanted) const {
        const json* t = member(obj, "type");
        if (!t) unsupported(field + ".type", nullptr);
        if (*t != wanted) unsupported(field + ".type", *t);  // by reference: copying recurses too
    }
};

// What a vocab entry decodes to: each character mapped back to its byte, or,
// if any character is outside the alphabet, the entry's own UTF-8 (as HF's ByteLevel decoder does).
std::string symbol_bytes(const std::string& symbol, const std::array<int, BYTE_CHAR_END>& char_byte) {
    std::string out;
    for (size_t i = 0; i < symbol.size();) {
        uint32_t cp = 0;
        size_t n = utf8_decode(symbol, i, &cp);
        if (n == 0 || cp >= BYTE_CHAR_END || char_byte[cp] < 0) return symbol;
        out.push_back(static_cast<char>(char_byte[cp]));
        i += n;
    }
    return out;
}

// Field names below are built only on failure: the vocab and merges have 150k entries each.
void model_parse(Tokenizer& tok, const Parser& p, const json& model) {
    p.type_must_be(model, "model", "BPE");
    p.must_be_null(model, "dropout", "model.dropout");
    p.must_be_null(model, "unk_token", "model.unk_token");
    p.must_be_null(model, "continuing_subword_prefix", "model.continuing_subword_prefix", true);
    p.must_be_null(model, "end_of_word_suffix", "model.end_of_word_suffix", true);
    p.flag_must_be(model, "byte_fallback", "model.byte_fallback", false);
    tok.ignore_merges = p.flag(model, "ignore_merges", "model.ignore_merges", false);

    std::array<int, BYTE_CHAR_END> char_byte;
    char_byte.fill(-1);
    for (int b = 0; b < 256; ++b) {
        char_byte[byte_char(b)] = b;
        utf8_append(tok.byte_symbol[b], byte_char(b));
    }
    for (const auto& [symbol, v] : p.object(model, "vocab", "model.vocab").items()) {
        int id = Parser::id(&v);
        if (id < 0 || !tok.id_bytes.emplace(id, symbol_bytes(symbol, char_byte)).second)
            p.fail("model.vocab[" + json_brief(symbol) + "]",
                   id < 0 ? "expected a token id in [0, 2^31)" : "token id " + std::to_string(id) + " is used twice");
        tok.vocab.emplace(symbol, id);
    }
    for (int b = 0; b < 256; ++b) {
        auto it = tok.vocab.find(tok.byte_symbol[b]);
        if (it == tok.vocab.end())
            p.fail("model.vocab", "no token for byte " + std::to_string(b) + " (" + json_brief(tok.byte_symbol[b]) +
                                      "), which byte-level BPE needs");
        tok.byte_id[b] = it->second;
    }

    const json* merges = Parser::member(model, "merges");
    if (!merges || !merges->is_array()) p.fail("model.merges", "expected an array");
    for (size_t rank = 0; rank < merges->size(); ++rank) {
        const json& m = (*merges)[rank];
        auto field = [&] { return "model.merges[" + std::to_string(rank) + "]"; };
        std::string parts[3];  // left, right, left + right
        if (m.is_string()) {  // "left right": exactly one space, as HF requires
            const auto& s = m.get_ref<const std::string&>();
            size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                p.fail(field(), "expected \"left right\", got " + json_brief(s));
            parts[0] = s.substr(0, sp), parts[1] = s.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            parts[0] = m[0].get<std::string>(), parts[1] = m[1].get<std::string>();
        } else {
            p.fail(field(), "expected \"left right\" or [left, right]");
        }
        parts[2] = parts[0] + parts[1];
        int ids[3];
        for (int k = 0; k < 3; ++k) {
            auto it = tok.vocab.find(parts[k]);
            if (it == tok.vocab.end()) p.fail(field(), "token " + json_brief(parts[k]) + " is not in the vocab");
            ids[k] = it->second;
        }
        uint64_t key = static_cast<uint64_t>(ids[0]) << 32 | static_cast<uint32_t>(ids[1]);
        tok.merges[key] = BpeMerge{static_cast<int>(rank), ids[2]};
    }
}

std::string pcre2_message(int code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    return reinterpret_cast<const char*>(msg);
}

// Oniguruma's \s is exactly Unicode White_Space; PCRE2's (with UCP) also
// takes U+180E, which left White_Space in Unicode 6.3, and "\u180e're" then
// splits differently (found comparing 3,000 random strings with HF).
std::string regex_for_pcre2(const std::string& pattern) {
    std::string out;
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != '\\' || i + 1 == pattern.size()) {
            out += pattern[i];
        } else if (pattern[i + 1] == 's' || pattern[i + 1] == 'S') {
            out += pattern[++i] == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
        } else if (pattern[i + 1] == 'Q') {  // \Q...\E is literal text
            size_t end = std::min(pattern.find("\\E", i + 2), pattern.size() - 2);
            out.append(pattern, i, end + 2 - i);
            i = end + 1;
        } else {
            out.append(pattern, i++, 2);
        }
    }
    return out;
}

// One Split step: {"type": "Split", "pattern": {"Regex": ...}, "behavior": "Isolated", "invert": false}.
void split_parse(Tokenizer& tok, const Parser& p, const json& split, const std::string& f) {
    p.type_must_be(split, f, "Split");
    const json& pattern = p.object(split, "pattern", f + ".pattern");
    if (!Parser::member(pattern, "Regex")) p.unsupported(f + ".pattern", pattern);
    const std::string& text = p.string(pattern, "Regex", f + ".pattern.Regex");
    if (p.string(split, "behavior", f + ".behavior") != "Isolated") p.unsupported(f + ".behavior", split.at("behavior"));
    p.flag_must_be(split, "invert", f + ".invert", false);

    // MULTILINE: Oniguruma's Ruby syntax, which HF uses, has line anchors.
    // MATCH_INVALID_UTF: invalid bytes in the text never match instead of failing the match.
    int err = 0;
    PCRE2_SIZE offset = 0;
    std::string source = regex_for_pcre2(text);
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_MATCH_INVALID_UTF, &err, &offset,
                                     nullptr);
    if (!code)
        p.fail(f + ".pattern.Regex", "does not compile: " + pcre2_message(err) + " (offset " + std::to_string(offset) +
                                         " in " + json_brief(source) + ")");
    tok.split_regex.emplace_back(code);
    tok.split_pattern.push_back(text);
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // failure is fine: the interpreter gives the same matches
}

void pre_tokenizer_parse(Tokenizer& tok, const Parser& p, const json& pre) {
    // Qwen3 and Llama 3 write Sequence[Split(Regex, Isolated), ByteLevel(use_regex false)];
    // DeepSeek-V3 has three Splits before the ByteLevel.
    p.type_must_be(pre, "pre_tokenizer", "Sequence");
    const json* steps = Parser::member(pre, "pretokenizers");
    if (!steps || !steps->is_array()) p.fail("pre_tokenizer.pretokenizers", "expected an array");
    if (steps->size() < 2) p.unsupported("pre_tokenizer.pretokenizers", *steps);
    for (const json& step : *steps)
        if (!step.is_object()) p.unsupported("pre_tokenizer.pretokenizers", *steps);
    const size_t last = steps->size() - 1;
    for (size_t i = 0; i < last; ++i)
        split_parse(tok, p, (*steps)[i], "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]");

    const json& byte_level = (*steps)[last];
    const std::string g = "pre_tokenizer.pretokenizers[" + std::to_string(last) + "]";
    p.type_must_be(byte_level, g, "ByteLevel");
    p.flag_must_be(byte_level, "add_prefix_space", g + ".add_prefix_space", false);
    p.flag_must_be(byte_level, "use_regex", g + ".use_regex", false);
}

// null, NFC, or a Sequence of those (DeepSeek-V3's is empty). NFC is
// idempotent, so any number of them is one NFC.
void normalizer_parse(Tokenizer& tok, const Parser& p, const json& norm, const std::string& field, int depth) {
    if (!norm.is_object()) p.fail(field, "expected an object or null");
    const json* type = Parser::member(norm, "type");
    if (type && *type == "Sequence" && depth < 8) {
        const json* list = Parser::member(norm, "normalizers");
        if (!list || !list->is_array()) p.fail(field + ".normalizers", "expected an array");
        for (size_t i = 0; i < list->size(); ++i)
            normalizer_parse(tok, p, (*list)[i], field + ".normalizers[" + std::to_string(i) + "]", depth + 1);
        return;
    }
    p.type_must_be(norm, field, "NFC");
    tok.nfc = true;
}

void added_tokens_parse(Tokenizer& tok, const Parser& p, const json& root) {
    const json* list = Parser::member(root, "added_tokens");
    if (!list) return;
    if (!list->is_array()) p.fail("added_tokens", "expected an array");
    std::unordered_set<int> added_ids;
    for (size_t i = 0; i < list->size(); ++i) {
        const json& t = (*list)[i];
        std::string f = "added_tokens[" + std::to_string(i) + "]";
        if (!t.is_object()) p.fail(f, "expected an object");
        AddedToken a;
        a.content = p.string(t, "content", f + ".content");
        if (a.content.empty()) p.fail(f + ".content", "is empty");
        a.id = Parser::id(Parser::member(t, "id"));
        if (a.id < 0) p.fail(f + ".id", "expected a token id in [0, 2^31)");
        a.special = p.flag(t, "special", f + ".special", false);
        a.normalized = p.flag(t, "normalized", f + ".normalized", !a.special);  // HF's default
        for (const char* key : {"single_word", "lstrip", "rstrip"}) p.flag_must_be(t, key, f + "." + key, false);
        if (!added_ids.insert(a.id).second) p.fail(f + ".id", "token id " + std::to_string(a.id) + " is used twice");
        if (auto [it, fresh] = tok.id_bytes.emplace(a.id, a.content); !fresh && it->second != a.content)
            p.fail(f + ".id", "token id " + std::to_string(a.id) + " is the vocab's " + json_brief(it->second));
        // HF matches normalized tokens in normalized text, by their normalized form.
        if (a.normalized && tok.nfc) a.content = utf8_normalize_nfc(a.content);
        tok.added_starts[static_cast<uint8_t>(a.content[0])] = true;
        tok.added.push_back(std::move(a));
    }
    std::stable_sort(tok.added.begin(), tok.added.end(),
                     [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
}

}  // namespace

Tokenizer tokenizer_parse(const std::string& json_text, const std::string& name) {
    json root;
    try {
        root = json::parse(json_text);
    } catch (const json::exception& e) {
        std::string what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
        throw Error(name + ": not valid JSON: " + what.substr(what.find(']') + 2));
    }
    Parser p{name};
    if (!root.is_object()) throw Error(name + ": expected a JSON object at the top level");
    Tokenizer tok;
    tok.name = name;
    p.must_be_null(root, "truncation", "truncation");
    p.must_be_null(root, "padding", "padding");
    if (const json* norm = Parser::member(root, "normalizer")) normalizer_parse(tok, p, *norm, "normalizer", 0);
    model_parse(tok, p, p.object(root, "model", "model"));
    pre_tokenizer_parse(tok, p, p.object(root, "pre_tokenizer", "pre_tokenizer"));
    p.type_must_be(p.object(root, "decoder", "decoder"), "decoder", "ByteLevel");
    // post_processor is not read: it only matters for add_special_tokens=True.
    added_tokens_parse(tok, p, root);
    return tok;
}

Tokenizer tokenizer_load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw Error(path + ": read failed");
    return tokenizer_parse(text.str(), path);
}

namespace {

// ---------------------------------------------------------------- BPE

struct Symbol {
    int id;
    int prev, next;  // neighbours in the word, -1 at the ends
    bool alive;      // false once merged into its left neighbour
};

struct Candidate {
    int rank, pos, merged;  // merge symbols[pos] with its right neighbour into `merged`
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

const BpeMerge* merge_find(const Tokenizer& tok, int left, int right) {
    auto it = tok.merges.find(static_cast<uint64_t>(left) << 32 | static_cast<uint32_t>(right));
    return it == tok.merges.end() ? nullptr : &it->second;
}

void bpe_word(const Tokenizer& tok, std::string_view word, std::vector<int>& out) {
    if (tok.ignore_merges) {
        std::string symbol;
        for (char c : word) symbol += tok.byte_symbol[static_cast<uint8_t>(c)];
        if (auto it = tok.vocab.find(symbol); it != tok.vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }
    if (word.empty()) return;
    const int n = static_cast<int>(word.size());
    std::vector<Symbol> sym(word.size());
    for (int i = 0; i < n; ++i) sym[i] = {tok.byte_id[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto offer = [&](int pos) {
        if (pos < 0 || sym[pos].next < 0) return;
        if (const BpeMerge* m = merge_find(tok, sym[pos].id, sym[sym[pos].next].id)) heap.push({m->rank, pos, m->merged});
    };
    for (int i = 0; i + 1 < n; ++i) offer(i);
    while (!heap.empty()) {
        Candidate c = heap.top();
        heap.pop();
        Symbol& left = sym[c.pos];
        if (!left.alive || left.next < 0) continue;
        const BpeMerge* m = merge_find(tok, left.id, sym[left.next].id);
        if (!m || m->merged != c.merged) continue;  // stale: a neighbour changed since it was offered
        Symbol& right = sym[left.next];
        right.alive = false;
        left.id = c.merged;
        left.next = right.next;
        if (right.next >= 0) sym[right.next].prev = c.pos;
        offer(left.prev);
        offer(c.pos);
    }
    for (int i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

// ---------------------------------------------------------------- encode, decode

// Calls on_token(id) for each added token (of the given normalized kind) in
// `text`, leftmost first and longest at a position, and on_text(piece) for
// the text between them.
template <class OnToken, class OnText>
void added_split(const Tokenizer& tok, std::string_view text, bool normalized, OnToken on_token, OnText on_text) {
    auto token_at = [&](size_t i) -> const AddedToken* {
        if (tok.added_starts[static_cast<uint8_t>(text[i])])
            for (const AddedToken& a : tok.added)  // longest first
                if (a.normalized == normalized && text.substr(i, a.content.size()) == a.content) return &a;
        return nullptr;
    };
    size_t gap = 0;
    for (size_t i = 0; i < text.size();) {
        const AddedToken* hit = token_at(i);
        if (!hit) { ++i; continue; }
        if (gap < i) on_text(text.substr(gap, i - gap));
        on_token(hit->id);
        i += hit->content.size();
        gap = i;
    }
    if (gap < text.size()) on_text(text.substr(gap));
}

// Splits `text` with Split number `level` and passes every match and every
// gap between matches (HF's "Isolated") to the next Split, or, after the
// last, BPE-encodes it.
void words_encode(const Tokenizer& tok, std::string_view text, size_t level, pcre2_match_data* md,
                  std::vector<int>& out) {
    if (level == tok.split_regex.size()) {
        bpe_word(tok, text, out);
        return;
    }
    auto piece = [&](std::string_view w) { words_encode(tok, w, level + 1, md, out); };
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0, gap = 0;
    while (pos < text.size()) {
        // rc 0 (the one-pair ovector is too small for the groups) still sets the whole match
        int rc = pcre2_match(tok.split_regex[level].get(), subject, text.size(), pos, 0, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) throw Error(tok.name + ": pre_tokenizer regex: " + pcre2_message(rc));
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        if (gap < start) piece(text.substr(gap, start - gap));
        if (start < end) {
            piece(text.substr(start, end - start));
            gap = pos = end;
        } else {  // an empty match: step over one character; it joins the next gap
            uint32_t cp = 0;
            pos = start + std::max<size_t>(1, utf8_decode(text, start, &cp));
            gap = start;
        }
    }
    if (gap < text.size()) piece(text.substr(gap));
}

}  // namespace

std::vector<int> tokenizer_encode(const Tokenizer& tok, const std::string& utf8_text) {
    if (tok.split_regex.empty()) throw Error(tok.name + ": tokenizer not loaded");
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(pcre2_match_data_create(1, nullptr),
                                                                           pcre2_match_data_free);
    if (!md) throw Error(tok.name + ": out of memory for regex match data");
    std::vector<int> ids;
    auto on_token = [&](int id) { ids.push_back(id); };
    added_split(tok, utf8_text, false, on_token, [&](std::string_view raw) {
        std::string text = tok.nfc ? utf8_normalize_nfc(std::string(raw)) : std::string(raw);
        added_split(tok, text, true, on_token, [&](std::string_view piece) { words_encode(tok, piece, 0, md.get(), ids); });
    });
    return ids;
}

std::string tokenizer_decode(const Tokenizer& tok, const std::vector<int>& ids) {
    std::string out;
    for (int id : ids) {
        auto it = tok.id_bytes.find(id);
        if (it == tok.id_bytes.end())
            throw Error(tok.name + ": cannot decode token id " + std::to_string(id) + ": not in the vocab or added tokens");
        out += it->second;
    }
    return out;
}

}  // namespace sp
