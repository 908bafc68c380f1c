// args.h: small parsers shared by the subcommands, for values CLI11 hands
// over as text. They throw sp::Error naming the flag.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "traces/trace_db.h"

namespace sp {

// "a,b,c" -> {"a", "b", "c"}; an empty item stays (callers reject it).
inline std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    size_t pos = 0;
    for (;;) {
        size_t comma = text.find(',', pos);
        out.push_back(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        if (comma == std::string::npos) return out;
        pos = comma + 1;
    }
}

// One whole number-looking item, or sp::Error "<flag> '<whole>': expected a number, got '<item>'".
inline double parse_number(const std::string& item, const std::string& flag, const std::string& whole) {
    char* end = nullptr;
    double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0') throw Error(flag + " '" + whole + "': expected a number, got '" + item + "'");
    return v;
}

// CLI11 validators that say what was expected in words: CLI11's own
// NonNegativeNumber prints its range with a 300-digit upper bound, and its
// unsigned conversion takes "-7" as 2^64 - 7 and "010" as octal 8. A bad
// value is one line, "--flag: expected <what>, got '<value>'" (exit 2).
// Attach whole_number and seed_number with ->transform, not ->check: only a
// transform may hand CLI11 the decimal text it then converts.

// A decimal whole number in [lo, hi]: digits only, no sign, no base prefix.
inline CLI::Validator whole_number(uint64_t lo, uint64_t hi, const std::string& what) {
    return CLI::Validator(
        [lo, hi, what](std::string& text) -> std::string {
            uint64_t v = 0;
            bool ok = !text.empty() && text.size() <= 20;
            for (char ch : text) {
                if (ch < '0' || ch > '9' || v > (UINT64_MAX - uint64_t(ch - '0')) / 10) {
                    ok = false;
                    break;
                }
                v = v * 10 + uint64_t(ch - '0');
            }
            if (ok && v >= lo && v <= hi) {
                text = std::to_string(v);  // CLI11 reads "010" as octal: hand it the decimal
                return "";
            }
            return "expected " + what + ", got '" + text + "'";
        },
        what);
}

// A seed: any whole number 0 .. 2^64 - 1 (seeds are unsigned).
inline CLI::Validator seed_number() { return whole_number(0, UINT64_MAX, "a whole number 0..18446744073709551615"); }

// A finite number >= 0.
inline CLI::Validator non_negative_number(const std::string& what) {
    return CLI::Validator(
        [what](std::string& text) -> std::string {
            char* end = nullptr;
            double v = std::strtod(text.c_str(), &end);
            if (!text.empty() && *end == '\0' && std::isfinite(v) && v >= 0) return "";
            return "expected " + what + ", got '" + text + "'";
        },
        what);
}

}  // namespace sp
