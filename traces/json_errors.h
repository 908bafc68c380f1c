// json_errors.h: one-line error text about untrusted input (config.json,
// safetensors headers, shard indexes, tokenizer.json, request logs). Shared by
// the loaders of traces/ and engine/.
//
// Two hazards shape it: the input may hold any bytes (control characters
// would break the one-line promise, invalid UTF-8 would garble a terminal),
// and nlohmann's dump() recurses, so dumping a value nested a million arrays
// deep, which its non-recursive parser happily builds, overflows the stack.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sp {

// Bytes outside printable ASCII become \xNN; anything past max_len becomes "...".
inline std::string printable(const std::string& s, size_t max_len = 120) {
    std::string out;
    for (unsigned char c : s) {
        if (out.size() >= max_len) return out + "...";
        if (c < 0x20 || c >= 0x7f) {
            const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += char(c);
        }
    }
    return out;
}

// A value as an error quotes it: scalars and short flat arrays or objects in
// full, anything nested or long by its type only (never a recursive dump()).
inline std::string json_brief(const nlohmann::json& v) {
    if (v.is_structured()) {
        if (v.size() > 16) return std::string("an ") + v.type_name() + " of " + std::to_string(v.size()) + " entries";
        for (const nlohmann::json& e : v)
            if (e.is_structured()) return std::string("a nested ") + v.type_name();
    }
    // ensure_ascii keeps it one line; replace: a string holding invalid UTF-8
    // (one we built, not one nlohmann parsed) must not throw while reporting.
    return printable(v.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace));
}

// nlohmann's parse error without its "[json.exception.parse_error.101] " tag.
inline std::string json_error_text(const nlohmann::json::exception& e) {
    std::string msg = e.what();
    size_t cut = msg.find("] ");
    return printable(cut == std::string::npos ? msg : msg.substr(cut + 2), 240);
}

}  // namespace sp
