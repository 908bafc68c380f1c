// request_log_sharegpt.cpp: ShareGPT's one JSON array, read as a stream of
// SAX events (nlohmann::json::sax_parse) so that a dump of any size is read
// holding one turn's text at a time, never the whole document or record.
// request_log.h documents what is read.
#include <iterator>

#include <nlohmann/json.hpp>

#include "traces/json_errors.h"
#include "traces/request_log.h"

namespace sp {
namespace {

using json = nlohmann::json;

// An input iterator over the stream's bytes that counts newlines, so that
// messages name a line: the parser has read up to the end of the token that
// triggered an event, which is where the line count stands.
struct LineCountingIter {
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = char;
    std::istreambuf_iterator<char> it;
    int64_t* line;
    char operator*() const { return *it; }
    LineCountingIter& operator++() {
        if (*it == '\n') ++*line;
        ++it;
        return *this;
    }
    bool operator==(const LineCountingIter& o) const { return it == o.it; }
    bool operator!=(const LineCountingIter& o) const { return it != o.it; }
};

// The events a ShareGPT document may produce, by depth: 1 the top array,
// 2 a record object, 3 its "conversations" array (or another value), 4 a
// turn object. Anything else is refused where it appears.
struct Reader : nlohmann::json_sax<json> {
    const std::string& name;
    const LogOptions& opt;
    const std::function<void(const LogRecord&)>& visit;
    int64_t line = 1;
    LogSummary sum;

    int depth = 0;
    int64_t record = -1, turn = -1;      // indices, for field names
    std::string at_key;                  // the last key read (the member whose value comes next)
    bool in_conversations = false;       // depth 3 is "conversations"
    std::string from, value, domain;     // the turn being read; the record's domain
    bool has_from = false, has_value = false, has_domain = false;
    int prompt = -1, output = -1;        // tokens of the record's first human turn and the gpt turn after it

    Reader(const std::string& n, const LogOptions& o, const std::function<void(const LogRecord&)>& v)
        : name(n), opt(o), visit(v) {}

    [[noreturn]] void fail(const std::string& field, const std::string& expected, const std::string& got) const {
        throw Error(name + ":" + std::to_string(line) + ": " + field + ": expected " + expected + ", got " + got);
    }
    std::string record_field() const {
        std::string f(1, '[');  // appended: g++ 12 warns a false -Wrestrict on "[" + ...
        f += std::to_string(record);
        f += ']';
        return f;
    }
    std::string turn_field() const {
        return record_field() + ".conversations[" + std::to_string(turn) + "]";
    }

    // A scalar at the current place; `text` is its value for a string (else null) and `what` says what it is.
    bool scalar(const std::string* text, const std::string& what, const std::string& as_domain) {
        if (depth == 0) fail("document", "a JSON array of conversations", what);
        if (depth == 1) fail(record_field(), "an object with \"conversations\"", what);
        if (depth == 2) {
            if (at_key == "conversations") fail(record_field() + ".conversations", "an array of turns", what);
            if (!opt.domain_field.empty() && at_key == opt.domain_field) {
                if (as_domain.empty() && !text)
                    fail(record_field() + "." + at_key, "a string or an integer (the domain field)", what);
                domain = text ? *text : as_domain;
                has_domain = true;
            }
            return true;
        }
        if (depth == 3 && in_conversations) fail(turn_field(), "an object {\"from\", \"value\"}", what);
        if (depth == 4 && in_conversations) {
            if (at_key == "from" || at_key == "value") {
                if (!text) fail(turn_field() + "." + at_key, "a string", what);
                (at_key == "from" ? from : value) = *text;
                (at_key == "from" ? has_from : has_value) = true;
            }
        }
        return true;
    }

    bool null() override { return scalar(nullptr, "null", ""); }
    bool boolean(bool v) override { return scalar(nullptr, v ? "true" : "false", ""); }
    bool number_integer(number_integer_t v) override {
        return scalar(nullptr, std::to_string(v), std::to_string(v));
    }
    bool number_unsigned(number_unsigned_t v) override {
        return scalar(nullptr, std::to_string(v), std::to_string(v));
    }
    bool number_float(number_float_t, const string_t& s) override { return scalar(nullptr, printable(s), ""); }
    bool string(string_t& v) override { return scalar(&v, "a string (\"" + printable(v, 40) + "\")", ""); }
    bool binary(binary_t&) override { return scalar(nullptr, "binary", ""); }

    bool key(string_t& k) override {
        at_key = k;
        return true;
    }

    bool start_object(std::size_t) override {
        if (depth == 0) fail("document", "a JSON array of conversations", "an object");
        if (depth == 1) {
            record++;
            prompt = output = -1;
            has_domain = false;
        } else if (depth == 2 && at_key == "conversations") {
            fail(record_field() + ".conversations", "an array of turns", "an object");
        } else if (depth == 3 && in_conversations) {
            turn++;
            has_from = has_value = false;
        } else if (depth == 4 && in_conversations && (at_key == "from" || at_key == "value")) {
            fail(turn_field() + "." + at_key, "a string", "an object");
        }
        depth++;
        return true;
    }

    bool end_object() override {
        depth--;
        if (depth == 3 && in_conversations) end_turn();
        if (depth == 1) end_record();
        return true;
    }

    bool start_array(std::size_t) override {
        if (depth == 1) fail(record_field(), "an object with \"conversations\"", "an array");
        if (depth == 2 && at_key == "conversations") {
            in_conversations = true;
            turn = -1;
        } else if (depth == 3 && in_conversations) {
            fail(turn_field(), "an object {\"from\", \"value\"}", "an array");
        } else if (depth == 4 && in_conversations && (at_key == "from" || at_key == "value")) {
            fail(turn_field() + "." + at_key, "a string", "an array");
        }
        depth++;
        return true;
    }

    bool end_array() override {
        depth--;
        if (depth == 2) in_conversations = false;
        return true;
    }

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
        throw Error(name + ":" + std::to_string(line) + ": not valid JSON: " + json_error_text(e));
    }

    int tokens(const std::string& text) const { return int(tokenizer_encode(*opt.tokenizer, text).size()); }

    void end_turn() {
        if (!has_from) fail(turn_field() + ".from", "\"human\", \"gpt\" or another speaker", "nothing");
        if (!has_value) fail(turn_field() + ".value", "a string", "nothing");
        if (prompt < 0 && from == "human") prompt = tokens(value);
        else if (prompt >= 0 && output < 0 && from == "gpt") output = tokens(value);
        value.clear();
        value.shrink_to_fit();  // a long turn's buffer is not kept for the rest of the file
    }

    void end_record() {
        if (prompt < 0 || output < 0) {
            sum.skipped++;
            return;
        }
        if (!opt.domain_field.empty() && !has_domain)
            fail(record_field() + "." + opt.domain_field, "a string or an integer (the domain field)", "nothing");
        const std::string over = "at most " + std::to_string(REQUEST_LOG_MAX_TOKENS) + " tokens";
        if (prompt > REQUEST_LOG_MAX_TOKENS) fail(record_field(), "a prompt of " + over, std::to_string(prompt));
        if (output > REQUEST_LOG_MAX_TOKENS) fail(record_field(), "a reply of " + over, std::to_string(output));
        LogRecord r;
        r.line = line;
        r.prompt_len = prompt;
        r.output_len = output;
        if (!opt.domain_field.empty()) r.domain = domain;
        visit(r);
        sum.requests++;
    }
};

}  // namespace

LogSummary request_log_read_sharegpt(std::istream& in, const std::string& name, const LogOptions& opt,
                                     const std::function<void(const LogRecord&)>& visit) {
    if (!opt.tokenizer) throw Error(name + ": a ShareGPT log needs a tokenizer.json to count its tokens");
    Reader r(name, opt, visit);
    LineCountingIter first{std::istreambuf_iterator<char>(in), &r.line};
    LineCountingIter last{std::istreambuf_iterator<char>(), &r.line};
    json::sax_parse(first, last, &r);
    if (in.bad()) throw Error(name + ": read failed after line " + std::to_string(r.line));
    return r.sum;
}

}  // namespace sp
