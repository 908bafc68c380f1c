// args.h: small parsers shared by the subcommands, for values CLI11 hands
// over as text. They throw sp::Error naming the flag.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

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

}  // namespace sp
