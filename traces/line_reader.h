// line_reader.h: std::getline with a bound, for text formats read from
// untrusted files (trace_jsonl.cpp, request_log.cpp): input without newlines
// (a device, a binary file) is refused as soon as a line passes max_line
// bytes instead of exhausting memory.
#pragma once

#include <istream>
#include <string>

#include "traces/trace_db.h"  // sp::Error

namespace sp {

// Reads the next line into `text` without its '\n' (a trailing '\r' is
// kept); false at the end of input. `name` and `line_no` (the line being
// read, 1-based) name it in the error "<name>:<line_no>: line longer than N bytes".
inline bool line_read(std::istream& in, std::string& text, size_t max_line, const std::string& name, int64_t line_no) {
    text.clear();
    std::streambuf* buf = in.rdbuf();
    for (int ch; (ch = buf->sbumpc()) != std::char_traits<char>::eof();) {
        if (ch == '\n') return true;
        if (text.size() == max_line)
            throw Error(name + ":" + std::to_string(line_no) + ": line longer than " + std::to_string(max_line) + " bytes");
        text.push_back(static_cast<char>(ch));
    }
    in.setstate(std::ios::eofbit);
    return !text.empty();
}

}  // namespace sp
