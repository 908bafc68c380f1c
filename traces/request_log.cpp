// request_log.cpp: the line-oriented request logs (Mooncake JSON Lines, the
// Azure and BurstGPT CSVs); request_log.h documents the formats.
#include "traces/request_log.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/json_errors.h"
#include "traces/line_reader.h"

namespace sp {
namespace {

using json = nlohmann::json;

// Where a reader is, for its messages.
struct Where {
    const std::string& name;
    int64_t line = 0;
    [[noreturn]] void fail(std::string_view field, const std::string& expected, const std::string& got) const {
        throw Error(name + ":" + std::to_string(line) + ": " + std::string(field) + ": expected " + expected +
                    ", got " + got);
    }
};

const std::string TOKENS = "an integer in 0.." + std::to_string(REQUEST_LOG_MAX_TOKENS);

std::string quote_text(std::string_view s) {
    std::string q(1, '"');  // appended, not "\"" + ...: g++ 12 warns a false -Wrestrict on that
    q += printable(std::string(s));
    q += '"';
    return q;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The whole field as an integer, or nothing.
std::optional<int64_t> to_int(std::string_view s) {
    int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<double> to_num(std::string_view s) {
    double v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

int tokens_field(const Where& w, std::string_view field, std::string_view text) {
    std::optional<int64_t> v = to_int(trim(text));
    if (!v || *v < 0 || *v > REQUEST_LOG_MAX_TOKENS) w.fail(field, TOKENS, text.empty() ? "nothing" : quote_text(text));
    return int(*v);
}

// Seconds (or ms, with scale 1e6) to ns; at most 1e18 ns, about 31 years.
constexpr double MAX_NS = 1e18;
int64_t time_field(const Where& w, std::string_view field, double v, double ns_per_unit, const std::string& unit,
                   const std::string& got) {
    double ns = v * ns_per_unit;
    if (!(ns >= 0 && ns <= MAX_NS))
        w.fail(field, "a time in " + unit + " from 0 to " + std::to_string(int64_t(MAX_NS / ns_per_unit)), got);
    return int64_t(std::llround(ns));
}

// ---------------------------------------------------------------- Mooncake

std::string describe(const json& v) {
    switch (v.type()) {
    case json::value_t::string: return "a string (" + json_brief(v) + ")";
    case json::value_t::boolean: return json_brief(v);
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    default: return json_brief(v);
    }
}

void mooncake_row(const Where& w, const std::string& text, const LogOptions& opt, LogRecord& r, std::string& domain) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        w.fail("line", "a JSON object", "invalid JSON (" + json_error_text(e) + ")");
    }
    if (!j.is_object()) w.fail("line", "a JSON object", describe(j));
    auto count = [&](const char* key) {
        auto it = j.find(key);
        if (it == j.end()) w.fail(key, TOKENS, "nothing");
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > REQUEST_LOG_MAX_TOKENS)
            w.fail(key, TOKENS, describe(*it));
        return int(it->get<int64_t>());
    };
    r.prompt_len = count("input_length");
    r.output_len = count("output_length");
    auto t = j.find("timestamp");
    r.has_time = t != j.end();
    if (r.has_time) {
        if (!t->is_number()) w.fail("timestamp", "a time in ms", describe(*t));
        r.t_ns = time_field(w, "timestamp", t->get<double>(), 1e6, "ms", json_brief(*t));
    }
    if (!opt.domain_field.empty()) {
        auto d = j.find(opt.domain_field);
        if (d == j.end()) w.fail(opt.domain_field, "a string or an integer (the domain field)", "nothing");
        if (d->is_string()) domain = d->get<std::string>();
        else if (d->is_number_integer()) domain = d->dump();
        else w.fail(opt.domain_field, "a string or an integer (the domain field)", describe(*d));
        r.domain = domain;
    }
}

// ---------------------------------------------------------------- CSV

// Splits one CSV line; quoted fields may hold commas and "" for a quote. No
// field spans lines (none of these logs has one).
bool csv_split(std::string_view line, std::vector<std::string>& out) {
    out.clear();
    std::string field;
    bool quoted_field = false;
    size_t i = 0;
    for (;;) {
        field.clear();
        quoted_field = i < line.size() && line[i] == '"';
        if (quoted_field) {
            for (i++;; i++) {
                if (i >= line.size()) return false;  // unterminated quote
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') field += line[++i];
                    else break;
                } else {
                    field += line[i];
                }
            }
            i++;
            if (i < line.size() && line[i] != ',') return false;  // text after the closing quote
        } else {
            size_t end = line.find(',', i);
            if (end == std::string_view::npos) end = line.size();
            field.assign(line.substr(i, end - i));
            i = end;
        }
        out.push_back(field);
        if (i >= line.size()) return true;
        i++;  // the comma
    }
}

struct CsvColumns {
    int time = -1, prompt = -1, output = -1, domain = -1;
};

int column_find(const Where& w, const std::vector<std::string>& header, const std::string& name,
                const std::string& line) {
    for (size_t i = 0; i < header.size(); i++)
        if (trim(header[i]) == name) return int(i);
    w.fail("header", "a column " + quote_text(name), quote_text(line));
}

void csv_row(const Where& w, LogFormat format, const std::vector<std::string>& header, const CsvColumns& col,
             const std::vector<std::string>& f, LogRecord& r) {
    auto field = [&](int c) -> std::string_view {
        if (size_t(c) >= f.size()) return {};
        return trim(f[size_t(c)]);
    };
    auto name = [&](int c) { return std::string(trim(header[size_t(c)])); };
    std::string_view t = field(col.time);
    if (format == LOG_AZURE) {
        if (!log_datetime_ns(t, &r.t_ns))
            w.fail(name(col.time), "a date-time such as 2023-11-16 18:15:46.6805900 (UTC, 1970 or later)",
                   t.empty() ? "nothing" : quote_text(t));
    } else {
        std::optional<double> s = to_num(t);
        if (!s) w.fail(name(col.time), "a time in s", t.empty() ? "nothing" : quote_text(t));
        r.t_ns = time_field(w, name(col.time), *s, 1e9, "s", quote_text(t));
    }
    r.has_time = true;
    r.prompt_len = tokens_field(w, name(col.prompt), field(col.prompt));
    r.output_len = tokens_field(w, name(col.output), field(col.output));
    if (col.domain >= 0) {
        if (size_t(col.domain) >= f.size()) w.fail(name(col.domain), "a value (the domain field)", "nothing");
        r.domain = field(col.domain);
    }
}

}  // namespace

// Howard Hinnant's days_from_civil: days from 1970-01-01 to y-m-d (proleptic Gregorian).
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool log_datetime_ns(std::string_view s, int64_t* ns) {
    auto digits = [&](size_t at, size_t n, int64_t* v) {
        if (at + n > s.size()) return false;
        int64_t x = 0;
        for (size_t i = at; i < at + n; i++) {
            if (s[i] < '0' || s[i] > '9') return false;
            x = x * 10 + (s[i] - '0');
        }
        *v = x;
        return true;
    };
    int64_t y, mo, d, h, mi, sec;
    if (!digits(0, 4, &y) || s.size() < 19 || s[4] != '-' || !digits(5, 2, &mo) || s[7] != '-' ||
        !digits(8, 2, &d) || (s[10] != ' ' && s[10] != 'T') || !digits(11, 2, &h) || s[13] != ':' ||
        !digits(14, 2, &mi) || s[16] != ':' || !digits(17, 2, &sec))
        return false;
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 ||
        mi > 59 || sec > 60)
        return false;
    size_t i = 19;
    int64_t frac_ns = 0;
    if (i < s.size() && s[i] == '.') {
        int64_t scale = 100'000'000;
        size_t start = ++i;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; i++) {
            frac_ns += (s[i] - '0') * scale;
            scale /= 10;
        }
        if (i == start || i - start > 9) return false;
    }
    int64_t offset_min = 0;
    if (i < s.size() && s[i] == 'Z') {
        i++;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        int64_t oh, om;
        if (!digits(i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(i + 4, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset_min = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
        i += 6;
    }
    if (i != s.size()) return false;
    const int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    if (secs < 0 || secs > 9'000'000'000) return false;  // 1970 .. about 2255: inside int64 ns
    *ns = secs * 1'000'000'000 + frac_ns;
    return true;
}

LogSummary request_log_read(std::istream& in, const std::string& name, LogFormat format, const LogOptions& opt,
                            const std::function<void(const LogRecord&)>& visit) {
    if (format == LOG_SHAREGPT) return request_log_read_sharegpt(in, name, opt, visit);
    LogSummary sum;
    Where w{name};
    std::string text, domain;
    std::vector<std::string> header, fields;
    CsvColumns col;
    while (line_read(in, text, opt.max_line, name, w.line + 1)) {
        w.line++;
        if (!text.empty() && text.back() == '\r') text.pop_back();
        if (trim(text).empty()) continue;
        LogRecord r;
        r.line = w.line;
        if (format == LOG_MOONCAKE) {
            mooncake_row(w, text, opt, r, domain);
        } else if (header.empty()) {
            if (!csv_split(text, header)) w.fail("header", "CSV column names", quote_text(text));
            const bool azure = format == LOG_AZURE;
            col.time = column_find(w, header, azure ? "TIMESTAMP" : "Timestamp", text);
            col.prompt = column_find(w, header, azure ? "ContextTokens" : "Request tokens", text);
            col.output = column_find(w, header, azure ? "GeneratedTokens" : "Response tokens", text);
            if (!opt.domain_field.empty()) col.domain = column_find(w, header, opt.domain_field, text);
            continue;
        } else {
            if (!csv_split(text, fields)) w.fail("line", "CSV fields (a quote closed before the next comma)", quote_text(text));
            csv_row(w, format, header, col, fields, r);
        }
        visit(r);
        sum.requests++;
    }
    if (in.bad()) throw Error(name + ": read failed after line " + std::to_string(w.line));
    if (format != LOG_MOONCAKE && header.empty()) {
        w.line++;
        w.fail("header", "CSV column names", "end of file");
    }
    return sum;
}

LogSummary request_log_read(const std::string& path, LogFormat format, const LogOptions& opt,
                            const std::function<void(const LogRecord&)>& visit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot read");
    return request_log_read(in, path, format, opt, visit);
}

}  // namespace sp
