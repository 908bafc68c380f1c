// trace_import.cpp: see trace_import.h.
#include "traces/trace_import.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sp {

using json = nlohmann::json;

void import_fail(const std::string& file, int64_t line, const std::string& field, const std::string& expected,
                 const std::string& got) {
    std::string where = line > 0 ? file + ":" + std::to_string(line) : file;
    throw Error(where + ": " + field + ": expected " + expected + ", got " + got);
}

std::string json_describe(const json& v) {
    if (v.is_array()) return "an array of " + std::to_string(v.size()) + (v.size() == 1 ? " element" : " elements");
    if (v.is_object()) return "an object";
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 48) {
        size_t cut = 45;
        while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) cut--;  // not inside a UTF-8 sequence
        s = s.substr(0, cut) + "...";
    }
    return s;
}

bool LineReader::next(std::string& text) {
    text.clear();
    std::streambuf* buf = in.rdbuf();
    bool any = false;
    for (int ch; (ch = buf->sbumpc()) != std::char_traits<char>::eof();) {
        any = true;
        if (ch == '\n') break;
        if (text.size() == max_line)
            throw Error(name + ":" + std::to_string(line + 1) + ": line longer than " + std::to_string(max_line) +
                        " bytes");
        text.push_back(static_cast<char>(ch));
    }
    if (!any) {
        if (in.bad()) throw Error(name + ": read failed after line " + std::to_string(line));
        return false;
    }
    line++;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    return true;
}

json import_parse_object(const std::string& file, int64_t line, const std::string& text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        std::string msg = e.what();  // "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
        if (auto p = msg.find("column "); p != std::string::npos) msg.erase(0, p);
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        import_fail(file, line, "json", "a JSON object", "invalid JSON (" + msg + ")");
    }
    if (!j.is_object()) import_fail(file, line, "line", "a JSON object", json_describe(j));
    return j;
}

void import_json_records(std::istream& in, const std::string& name, size_t max_line,
                         const std::function<void(int64_t, const json&)>& fn) {
    LineReader lines{in, name, max_line};
    std::string text;
    bool first = true;
    while (lines.next(text)) {
        const size_t start = text.find_first_not_of(" \t");
        if (start == std::string::npos) continue;
        const int64_t line = lines.line;
        json j = json::parse(text, nullptr, false);
        if (first && !j.is_object() && (text[start] == '{' || text[start] == '[')) {
            std::string doc = text, more;
            while (lines.next(more)) {
                if (doc.size() + more.size() + 1 > max_line)
                    throw Error(name + ": a JSON document longer than " + std::to_string(max_line) + " bytes");
                doc += '\n';
                doc += more;
            }
            json whole = json::parse(doc, nullptr, false);
            if (whole.is_object()) {
                fn(line, whole);
                return;
            }
            if (whole.is_array() && !whole.empty()) {
                for (size_t i = 0; i < whole.size(); i++) {
                    if (!whole[i].is_object())
                        import_fail(name, line, "[" + std::to_string(i) + "]", "a JSON object", json_describe(whole[i]));
                    fn(line, whole[i]);
                }
                return;
            }
        }
        first = false;
        if (!j.is_object()) j = import_parse_object(name, line, text);  // throws, naming the line's fault
        fn(line, j);
    }
}

int64_t import_int(const std::string& file, int64_t line, const std::string& path, const json& v, int64_t lo,
                   int64_t hi) {
    const std::string want = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    // a float with an integer value (3.0) is accepted: Python writers produce them
    int64_t x = 0;
    if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi))) {
        x = v.get<int64_t>();
    } else if (const double d = v.is_number_float() ? v.get<double>() : 0.5;
               d >= static_cast<double>(lo) && d <= static_cast<double>(hi) && d == std::floor(d)) {
        x = static_cast<int64_t>(d);  // in range before the cast: no float-cast overflow
    } else {
        import_fail(file, line, path, want, json_describe(v));
    }
    if (x < lo || x > hi) import_fail(file, line, path, want, json_describe(v));
    return x;
}

std::vector<int> import_int_array(const std::string& file, int64_t line, const std::string& path, const json& v,
                                  int lo, int hi) {
    if (!v.is_array()) import_fail(file, line, path, "an array of integers", json_describe(v));
    std::vector<int> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); i++)
        out.push_back(static_cast<int>(import_int(file, line, path + "[" + std::to_string(i) + "]", v[i], lo, hi)));
    return out;
}

const json* import_find(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string import_domain(const std::string& file, int64_t line, const json& obj, const ImportOptions& opt) {
    if (!opt.domain.empty()) return opt.domain;
    if (const json* d = import_find(obj, "domain")) {
        if (!d->is_string() || d->get<std::string>().empty()) import_fail(file, line, "domain", "a non-empty string", json_describe(*d));
        return d->get<std::string>();
    }
    return "default";
}

Run import_run(const ImportOptions& opt, const std::string& format, const std::string& in_name, int gamma) {
    Run r;
    r.producer = PRODUCER_IMPORTER;
    r.target.name = opt.model;  // the shape is not in the file: sizes 0, "not known"
    r.drafter_kind = opt.drafter_kind;
    r.drafter_name = opt.drafter_name.empty() ? format : opt.drafter_name;
    r.gpu = opt.gpu;
    r.temperature = opt.temperature;
    r.verify_method = opt.verify_method;
    r.gamma = gamma;
    r.notes = opt.notes.empty() ? "imported from " + in_name + " (" + format + ")" : opt.notes;
    return r;
}

ImportSummary trace_import_steps(TraceDb& db, const ImportOptions& opt, const std::string& format,
                                 const std::string& in_name, const std::vector<ImportedRequest>& reqs) {
    if (reqs.empty()) import_fail(in_name, 0, "requests", "at least one request with verify steps", "none");
    int shown = 0;
    for (const ImportedRequest& q : reqs)
        for (const ImportedRequest::Triple& s : q.steps) shown = std::max<int>(shown, s.drafted);
    ImportSummary sum;
    sum.gamma = opt.gamma > 0 ? opt.gamma : std::max(shown, 1);
    if (shown > sum.gamma)
        import_fail(in_name, 0, "--gamma", "at least the most drafts of any step (" + std::to_string(shown) + ")",
                    std::to_string(sum.gamma));
    TraceTxn txn(db);
    Run run = import_run(opt, format, in_name, sum.gamma);
    sum.run_id = trace_db_begin_run(db, run);
    std::vector<Step> rows;
    for (size_t i = 0; i < reqs.size(); i++) {
        const ImportedRequest& in = reqs[i];
        int64_t emitted = 1;
        for (const ImportedRequest::Triple& s : in.steps) emitted += s.accepted + 1;
        if (emitted > std::numeric_limits<int>::max())
            import_fail(in_name, in.line, "steps", "fewer tokens than 2^31", std::to_string(emitted));
        Request q;
        q.run_id = sum.run_id;
        q.idx = static_cast<int>(i);
        q.domain = in.domain;
        q.prompt_len = in.prompt_len;
        q.output_len = in.output_len > 0 ? in.output_len : static_cast<int>(emitted);
        trace_db_append_request(db, q);
        rows.clear();
        for (size_t k = 0; k < in.steps.size(); k++) {
            const ImportedRequest::Triple& s = in.steps[k];
            Step st;
            st.request_id = q.id;
            st.step = static_cast<int>(k);
            st.batch_size = 1;  // not recorded
            st.verify_len = s.verified;
            st.n_accepted = s.accepted;
            st.drafted = s.drafted;
            st.bonus = s.accepted == s.verified;
            rows.push_back(st);
        }
        trace_db_append_steps(db, rows);
        sum.requests++;
        sum.steps += static_cast<int64_t>(rows.size());
    }
    trace_db_finish_run(db, sum.run_id);
    txn.commit();
    return sum;
}

}  // namespace sp
