// tokenizer.h: byte-level BPE from a Hugging Face tokenizer.json, exactly the
// subset Qwen3, Llama 3 and DeepSeek-V3 use, so that our token ids equal those
// of the HF `tokenizers` library (tests/test_tokenizer.cpp checks the Qwen3
// file against ids that library produced, tests/fixtures/qwen3/expected_ids.json).
//
// It lives in traces/, the bottom layer, because two layers that may not see
// each other need it: engine/ encodes prompts, and the ShareGPT request-log
// import (traces/request_log_sharegpt.cpp, read by the simulator's scenarios)
// counts prompt and reply tokens.
//
// Encoding, as HF does it with add_special_tokens=False:
//   1. added tokens (special or not) are cut out of the raw text, leftmost
//      first, longest at a position; tokens with "normalized": true are
//      matched again after step 2, against their NFC form
//   2. the normalizer (null, NFC, or a Sequence of NFCs, possibly empty as
//      DeepSeek-V3's) runs on the text between them
//   3. the pre-tokenizer's Split regexes, one after the other, split it: the
//      first splits the text, each next one splits every piece the one before
//      made; matches and the gaps between them are separate pieces ("Isolated").
//      Qwen3 and Llama 3 have one Split, DeepSeek-V3 three (digits, CJK, words).
//   4. each word's bytes map to the byte-level alphabet (GPT-2's
//      bytes_to_unicode) and BPE-merge by rank, lowest rank first, leftmost
//      on ties; with ignore_merges a word found whole in the vocab is one token
// The post-processor is ignored: it only adds BOS/EOS-style tokens, which
// callers add themselves (HF's add_special_tokens=True).
//
// Anything outside that subset (WordPiece, Unigram, other normalizers or
// pre-tokenizers, dropout, unk_token, byte_fallback, lstrip/rstrip added
// tokens, truncation, padding) is refused at load with
// "<file>: unsupported <field>: <value>".
//
// Invalid UTF-8 in the text to encode is kept byte for byte: NFC passes the
// bad bytes through, the regex never matches them (PCRE2_MATCH_INVALID_UTF)
// so they form words of their own, and byte-level BPE encodes any byte. HF
// cannot take such text at all (Python str, Rust String).
//
// Errors: every function throws sp::Error, one line naming the file.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "traces/trace_db.h"  // sp::Error

struct pcre2_real_code_8;  // pcre2.h's compiled pattern, kept out of this header

namespace sp {

struct AddedToken {
    std::string content;  // what is matched: the file's text, or its NFC when normalized under an NFC normalizer
    int id = 0;
    bool special = false;     // informational: special and plain added tokens encode alike
    bool normalized = false;  // matched after normalization instead of on the raw text
};

struct BpeMerge {
    int rank = 0;    // position in model.merges; lower merges first
    int merged = 0;  // vocab id of the concatenation
};

struct RegexFree {
    void operator()(pcre2_real_code_8* code) const;
};

// Move-only (it owns the compiled regex). Encoding and decoding only read it,
// so one Tokenizer can serve several threads.
struct Tokenizer {
    std::string name;                           // the file, for error messages
    std::unordered_map<std::string, int> vocab; // byte-level symbol string -> id
    std::unordered_map<uint64_t, BpeMerge> merges;  // (left id << 32 | right id) -> merge
    bool ignore_merges = false;                 // Llama 3: whole-word vocab hit skips BPE
    bool nfc = false;                           // normalizer {"type": "NFC"}
    std::vector<AddedToken> added;              // longest content first
    std::array<bool, 256> added_starts{};       // first bytes of added tokens: a quick reject while scanning
    // The pre-tokenizer's Splits in order, each PCRE2 UTF|UCP, JIT-compiled
    // when available; patterns as in the file (\s is rewritten before compiling).
    std::vector<std::unique_ptr<pcre2_real_code_8, RegexFree>> split_regex;
    std::vector<std::string> split_pattern;
    std::array<std::string, 256> byte_symbol;   // byte -> its byte-level character, UTF-8
    std::array<int, 256> byte_id{};             // byte -> vocab id of that single character
    std::unordered_map<int, std::string> id_bytes;  // id -> decoded bytes (vocab entries and added tokens)
};

// Reads and parses `path`. Throws sp::Error "<path>: <what>".
Tokenizer tokenizer_load(const std::string& path);

// Parses tokenizer.json text; `name` stands for the file in error messages.
Tokenizer tokenizer_parse(const std::string& json_text, const std::string& name);

// Token ids of `utf8_text` as HF's encode(text, add_special_tokens=False) gives
// them. Any bytes are accepted (see the header comment on invalid UTF-8).
std::vector<int> tokenizer_encode(const Tokenizer& tok, const std::string& utf8_text);

// The bytes the ids stand for, concatenated: the byte-level alphabet mapped
// back, added tokens as their content. No U+FFFD substitution, so a cut
// through a multi-byte character gives the partial bytes. Throws sp::Error on
// an id the tokenizer does not have.
std::string tokenizer_decode(const Tokenizer& tok, const std::vector<int>& ids);

// Unicode NFC (canonical decomposition, reordering, composition) of UTF-8
// text; invalid bytes pass through unchanged and block composition across
// them. The tables are Unicode 14 (traces/tokenizer_nfc_table.h).
std::string utf8_normalize_nfc(const std::string& text);

}  // namespace sp
