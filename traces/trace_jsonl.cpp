// trace_jsonl.cpp: JSON Lines export and import of a trace database; the
// format is documented in trace_jsonl.h.
//
// Export streams one run at a time: trace_db_for_each_step already yields the
// steps in (request idx, step) order, which is the order of the requests, so
// each request's positions line is written just before its first step and no
// run's steps are ever held in memory.
//
// Import checks every field itself before calling a writer (mirroring the
// writers' checks), so a bad file is reported against its own line and field
// rather than as a database error. Only a run's request lines are buffered.
#include "traces/trace_jsonl.h"
#include "traces/line_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/trace_import.h"

namespace sp {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;  // keeps insertion order: the fixed key order of the format

constexpr const char* HEADER_TYPE = "specplan-traces";

// ---------------------------------------------------------------- export

ojson shape_json(const ModelShape& m) {
    ojson j;
    j["name"] = m.name;
    j["n_params"] = m.n_params;
    j["n_layers"] = m.n_layers;
    j["hidden"] = m.hidden;
    j["n_heads"] = m.n_heads;
    j["n_kv_heads"] = m.n_kv_heads;
    j["head_dim"] = m.head_dim;
    j["ffn"] = m.ffn;
    j["vocab"] = m.vocab;
    j["bytes_per_weight"] = m.bytes_per_weight;
    j["bytes_per_kv"] = m.bytes_per_kv;
    return j;
}

// The shortest decimal that reads back (as a double, then cast) as exactly `f`.
// nlohmann would print the 17-digit double expansion of every float, which
// doubles the size of a positions line for no information.
void append_float(std::string& s, float f) {
    if (f == 0 && std::signbit(f)) {  // "-0" parses as the integer 0 and would lose the sign
        s += "-0.0";
        return;
    }
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, f);
    double back = 0;
    std::from_chars(buf, r.ptr, back);
    if (static_cast<float>(back) != f)  // decimal -> double -> float rounded twice: use the exact double
        r = std::to_chars(buf, buf + sizeof buf, static_cast<double>(f));
    s.append(buf, r.ptr);
}

struct Exporter {
    TraceDb& db;
    std::ostream& out;
    const std::string& out_name;
    JsonlSummary sum;

    [[noreturn]] void fail(const std::string& what) const { throw Error(out_name + ": " + what); }

    // Dumps with the record named in the error: nlohmann refuses text that is not UTF-8.
    std::string dump(const ojson& j, const std::string& record) const {
        try {
            return j.dump();
        } catch (const nlohmann::json::exception& e) {
            fail(record + ": cannot write as JSON: " + e.what());
        }
    }

    void put(const std::string& line) {
        out << line << '\n';
        if (!out) fail("write failed");
    }

    void write_positions(const Positions& p) {
        std::string record = "request " + std::to_string(p.request_id);
        ojson j;
        j["type"] = "positions";
        j["request"] = p.request_id;
        j["gamma"] = p.gamma;
        j["n"] = p.n;
        std::string line = dump(j, record);
        line.pop_back();  // reopen the object: the float arrays are appended by hand
        auto array = [&](const char* key, const std::vector<float>& v) {
            line += ",\"";
            line += key;
            line += "\":[";
            for (size_t i = 0; i < v.size(); i++) {
                if (!std::isfinite(v[i]))
                    fail(record + ": " + key + "[" + std::to_string(i) + "]: not a finite number");
                if (i) line += ',';
                append_float(line, v[i]);
            }
            line += ']';
        };
        array("beta", p.beta);
        if (!p.conf_logit.empty() || !p.conf_prob.empty()) {
            array("conf_logit", p.conf_logit);
            array("conf_prob", p.conf_prob);
        }
        if (!p.draft_prob.empty()) array("draft_prob", p.draft_prob);
        if (!p.verified.empty()) {
            line += ",\"verified\":[";
            for (size_t i = 0; i < p.verified.size(); i++) {
                if (i) line += ',';
                line += std::to_string(p.verified[i]);
            }
            line += ']';
        }
        line += '}';
        put(line);
        sum.positions++;
    }

    void write_request(const Request& q) {
        std::string record = "request " + std::to_string(q.id);
        ojson j;
        j["type"] = "request";
        j["id"] = q.id;
        j["run"] = q.run_id;
        j["idx"] = q.idx;
        j["domain"] = q.domain;
        j["prompt_len"] = q.prompt_len;
        j["output_len"] = q.output_len;
        put(dump(j, record));
        sum.requests++;
    }

    void write_step(const Step& s) {
        ojson j;
        j["type"] = "step";
        j["request"] = s.request_id;
        j["step"] = s.step;
        j["batch_size"] = s.batch_size;
        j["verify_len"] = s.verify_len;
        j["n_accepted"] = s.n_accepted;
        j["bonus"] = s.bonus;
        j["draft_ns"] = s.draft_ns;
        j["verify_ns"] = s.verify_ns;
        j["t_ns"] = s.t_ns;
        j["batch_tokens"] = s.batch_tokens;
        j["host_ns"] = s.host_ns;
        if (s.drafted != 0) j["drafted"] = s.drafted;  // schema 4; absent: not recorded
        put(j.dump());  // numbers and a bool only: cannot fail
        sum.steps++;
    }

    void write_run(const Run& r) {
        std::string record = "run " + std::to_string(r.id);
        if (!std::isfinite(r.temperature)) fail(record + ": temperature: not a finite number");
        ojson j;
        j["type"] = "run";
        j["id"] = r.id;
        j["producer"] = producer_name(r.producer);
        j["target"] = shape_json(r.target);
        j["drafter_kind"] = r.drafter_kind;
        j["drafter_name"] = r.drafter_name;
        j["gpu"] = r.gpu;
        j["temperature"] = r.temperature;
        j["gamma"] = r.gamma;
        j["created_at"] = r.created_at;
        j["git_rev"] = r.git_rev;
        j["notes"] = r.notes;
        j["complete"] = r.complete;
        if (r.verify_method != VERIFY_UNRECORDED) j["verify_method"] = verify_method_name(r.verify_method);  // schema 4
        put(dump(j, record));
        sum.runs++;

        // All request lines first: the importer then knows every request of
        // the run before the first positions line and can recreate them in
        // the source's id order (see Importer::flush_requests).
        std::vector<Request> reqs = trace_db_requests(db, r.id);
        for (const Request& q : reqs) write_request(q);

        // Then per request its positions and steps: merge the requests (idx
        // order) with the step stream (same order).
        size_t next = 0;       // first request whose positions are not written
        int64_t current = -1;  // request of the steps being written
        auto open = [&] {
            Positions p;
            if (trace_db_positions(db, reqs[next].id, &p)) write_positions(p);
            current = reqs[next++].id;
        };
        trace_db_for_each_step(db, r.id, [&](const Step& s) {
            while (s.request_id != current) {
                if (next == reqs.size())
                    fail(record + ": step " + std::to_string(s.step) + " of request " +
                         std::to_string(s.request_id) + " is out of (request idx, step) order");
                open();
            }
            write_step(s);
        });
        while (next < reqs.size()) open();
    }

    void write_profile(const Profile& p) {
        std::string record = "profile " + std::to_string(p.id);
        for (double v : {p.latency_us_p50, p.latency_us_p10, p.latency_us_p90, p.model.bytes_per_weight,
                         p.model.bytes_per_kv})
            if (!std::isfinite(v)) fail(record + ": not a finite number");
        ojson j;
        j["type"] = "profile";
        j["id"] = p.id;
        j["run"] = p.run_id;
        j["gpu"] = p.gpu;
        j["model"] = shape_json(p.model);
        j["phase"] = phase_name(p.phase);
        j["n_seqs"] = p.n_seqs;
        j["n_tokens"] = p.n_tokens;
        j["context"] = p.context;
        j["latency_us_p50"] = p.latency_us_p50;
        j["latency_us_p10"] = p.latency_us_p10;
        j["latency_us_p90"] = p.latency_us_p90;
        j["n_samples"] = p.n_samples;
        put(dump(j, record));
        sum.profiles++;
    }
};

// ---------------------------------------------------------------- import

std::string range_text(int64_t lo, int64_t hi) {
    if (hi == std::numeric_limits<int64_t>::max()) return "integer >= " + std::to_string(lo);
    return "integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

constexpr int64_t INT_MAX64 = std::numeric_limits<int>::max();
constexpr int64_t I64_MAX = std::numeric_limits<int64_t>::max();

struct Importer {
    Importer(TraceDb& d, const std::string& name, size_t max) : db(d), in_name(name), max_line(max) {}

    TraceDb& db;
    const std::string& in_name;
    size_t max_line;
    int64_t line = 0;
    JsonlSummary sum;

    // What later lines are checked against; the checks mirror the writers'
    // own, so that a bad value is reported at its line and field.
    struct RunInfo { int64_t id; int gamma; };
    struct RequestInfo {
        int64_t id;
        int output_len, gamma;
        bool has_positions = false;
        int64_t next_step = 0;  // steps of a request come in increasing order: no duplicates
    };
    std::unordered_map<int64_t, RunInfo> runs;          // source id -> target
    std::unordered_map<int64_t, RequestInfo> requests;  // source id -> target
    std::unordered_set<int64_t> profiles;               // source ids, for duplicates only
    std::vector<std::pair<int64_t, int64_t>> finish;    // (target id, line) of runs to mark complete

    // The request lines of a run, held until the next other line so that they
    // are created in source id order (see flush_requests).
    struct PendingRequest { int64_t src, line; Request q; int gamma; };
    std::vector<PendingRequest> pending;
    std::unordered_set<int64_t> pending_ids;

    // Consecutive steps of one request go to the database in one call.
    std::vector<Step> steps;
    int64_t steps_source = 0, steps_line = 0;

    [[noreturn]] void fail(const std::string& field, const std::string& expected, const std::string& got) const {
        throw Error(in_name + ":" + std::to_string(line) + ": " + field + ": expected " + expected + ", got " + got);
    }

    // A writer's own refusal, placed at the line that caused it.
    template <class F>
    auto guarded(int64_t at, F&& f) {
        try {
            return f();
        } catch (const Error& e) {
            throw Error(in_name + ":" + std::to_string(at) + ": " + e.what());
        }
    }

    // ---- field readers: `path` is the field's name in messages ("target.vocab")

    static std::string path_of(const std::string& prefix, const char* key) {
        return prefix.empty() ? std::string(key) : prefix + "." + key;
    }

    const json& field(const json& obj, const std::string& prefix, const char* key, const char* what) const {
        auto it = obj.find(key);
        if (it == obj.end()) fail(path_of(prefix, key), what, "nothing");
        return *it;
    }

    int64_t get_int(const json& obj, const std::string& prefix, const char* key, int64_t lo, int64_t hi) const {
        std::string want = range_text(lo, hi);
        const json& v = field(obj, prefix, key, want.c_str());
        if (!v.is_number_integer()) fail(path_of(prefix, key), want, json_describe(v));
        // nlohmann holds non-negative integers as uint64: compare before converting
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(I64_MAX))
            fail(path_of(prefix, key), want, json_describe(v));
        int64_t x = v.get<int64_t>();
        if (x < lo || x > hi) fail(path_of(prefix, key), want, json_describe(v));
        return x;
    }

    int get_int32(const json& obj, const std::string& prefix, const char* key, int64_t lo, int64_t hi) const {
        return static_cast<int>(get_int(obj, prefix, key, lo, std::min(hi, INT_MAX64)));
    }

    // A finite number >= 0, or > 0 when `positive`.
    double get_double(const json& obj, const std::string& prefix, const char* key, bool positive = false) const {
        const char* want = positive ? "a finite number > 0" : "a finite number >= 0";
        const json& v = field(obj, prefix, key, want);
        if (!v.is_number()) fail(path_of(prefix, key), want, json_describe(v));
        double x = v.get<double>();
        if (!std::isfinite(x) || !(positive ? x > 0 : x >= 0)) fail(path_of(prefix, key), want, json_describe(v));
        return x;
    }

    std::string get_string(const json& obj, const std::string& prefix, const char* key) const {
        const json& v = field(obj, prefix, key, "a string");
        if (!v.is_string()) fail(path_of(prefix, key), "a string", json_describe(v));
        return v.get<std::string>();
    }

    bool get_bool(const json& obj, const std::string& prefix, const char* key) const {
        const json& v = field(obj, prefix, key, "true or false");
        if (!v.is_boolean()) fail(path_of(prefix, key), "true or false", json_describe(v));
        return v.get<bool>();
    }

    // Unknown keys are refused: they are typos or a newer format, never ignorable.
    void only_keys(const json& obj, const std::string& prefix, std::initializer_list<const char*> keys) const {
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            bool known = std::any_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; });
            if (!known) fail(path_of(prefix, it.key().c_str()), "no such key", json_describe(it.value()));
        }
    }

    const json& get_object(const json& obj, const char* key) const {
        const json& v = field(obj, "", key, "an object");
        if (!v.is_object()) fail(key, "an object", json_describe(v));
        return v;
    }

    // A source id of a record defined earlier in the file.
    template <class Map>
    auto& get_ref(const json& obj, const char* key, Map& map, const char* kind) const {
        int64_t src = get_int(obj, "", key, 1, I64_MAX);
        auto it = map.find(src);
        if (it == map.end()) fail(key, std::string("the id of a ") + kind + " defined earlier in the file", std::to_string(src));
        return it->second;
    }

    // The source id of a new record, which must not repeat one of the same kind.
    template <class Seen>
    int64_t get_new_id(const json& obj, const Seen& seen) const {
        int64_t id = get_int(obj, "", "id", 1, I64_MAX);
        if (seen.count(id)) fail("id", "an id not used earlier in the file", std::to_string(id));
        return id;
    }

    ModelShape get_shape(const json& obj, const char* key) const {
        const json& m = get_object(obj, key);
        std::string p = key;
        only_keys(m, p, {"name", "n_params", "n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "ffn",
                         "vocab", "bytes_per_weight", "bytes_per_kv"});
        ModelShape s;
        s.name = get_string(m, p, "name");
        s.n_params = get_int(m, p, "n_params", 0, I64_MAX);
        s.n_layers = get_int32(m, p, "n_layers", 0, INT_MAX64);
        s.hidden = get_int32(m, p, "hidden", 0, INT_MAX64);
        s.n_heads = get_int32(m, p, "n_heads", 0, INT_MAX64);
        s.n_kv_heads = get_int32(m, p, "n_kv_heads", 0, INT_MAX64);
        s.head_dim = get_int32(m, p, "head_dim", 0, INT_MAX64);
        s.ffn = get_int32(m, p, "ffn", 0, INT_MAX64);
        s.vocab = get_int32(m, p, "vocab", 0, INT_MAX64);
        s.bytes_per_weight = get_double(m, p, "bytes_per_weight", true);
        s.bytes_per_kv = get_double(m, p, "bytes_per_kv", true);
        return s;
    }

    // n*gamma float32 values; `unit` limits them to [0, 1] (probabilities).
    std::vector<float> get_floats(const json& obj, const char* key, int64_t size, bool unit) const {
        std::string want = "an array of " + std::to_string(size) + " numbers";
        const json& v = field(obj, "", key, want.c_str());
        if (!v.is_array() || static_cast<int64_t>(v.size()) != size) fail(key, want, json_describe(v));
        std::vector<float> out;
        out.reserve(v.size());
        const double max = unit ? 1.0 : static_cast<double>(std::numeric_limits<float>::max());
        const double min = unit ? 0.0 : -max;
        const char* range = unit ? "a number in [0, 1]" : "a finite float32 number";
        for (size_t i = 0; i < v.size(); i++) {
            const json& x = v[i];
            double d = x.is_number() ? x.get<double>() : 0;
            if (!x.is_number() || !std::isfinite(d) || d < min || d > max)
                fail(std::string(key) + "[" + std::to_string(i) + "]", range, json_describe(x));
            out.push_back(static_cast<float>(d));
        }
        return out;
    }

    // ---- records

    void read_run(const json& j) {
        only_keys(j, "", {"type", "id", "producer", "target", "drafter_kind", "drafter_name", "gpu", "temperature",
                          "gamma", "created_at", "git_rev", "notes", "complete", "verify_method"});
        int64_t src = get_new_id(j, runs);
        Run r;
        std::string producer = get_string(j, "", "producer");
        if (!producer_parse(producer, &r.producer))
            fail("producer", "\"engine\", \"importer\" or \"synthetic\"", json_describe(j.at("producer")));
        r.target = get_shape(j, "target");
        r.drafter_kind = get_string(j, "", "drafter_kind");
        r.drafter_name = get_string(j, "", "drafter_name");
        r.gpu = get_string(j, "", "gpu");
        r.temperature = get_double(j, "", "temperature");
        r.gamma = get_int32(j, "", "gamma", 1, TRACE_MAX_GAMMA);
        r.created_at = get_string(j, "", "created_at");
        r.git_rev = get_string(j, "", "git_rev");
        r.notes = get_string(j, "", "notes");
        bool complete = get_bool(j, "", "complete");
        // schema 4; absent when not recorded
        if (j.contains("verify_method") &&
            (!j["verify_method"].is_string() || !verify_method_parse(j["verify_method"].get<std::string>(), &r.verify_method) ||
             r.verify_method == VERIFY_UNRECORDED))
            fail("verify_method", "\"greedy\", \"sampling\" or \"block\"", json_describe(j["verify_method"]));
        int64_t id = guarded(line, [&] { return trace_db_begin_run(db, r); });
        runs[src] = {id, r.gamma};
        // Finished last: a writer may refuse appends to a complete run.
        if (complete) finish.emplace_back(id, line);
        sum.runs++;
    }

    void read_request(const json& j) {
        only_keys(j, "", {"type", "id", "run", "idx", "domain", "prompt_len", "output_len"});
        int64_t src = get_new_id(j, requests);
        get_new_id(j, pending_ids);
        Request q;
        const RunInfo& run = get_ref(j, "run", runs, "run");
        q.run_id = run.id;
        q.idx = get_int32(j, "", "idx", 0, INT_MAX64);
        q.domain = get_string(j, "", "domain");
        q.prompt_len = get_int32(j, "", "prompt_len", 0, INT_MAX64);
        q.output_len = get_int32(j, "", "output_len", 0, INT_MAX64);
        pending.push_back({src, line, q, run.gamma});
        pending_ids.insert(src);
        sum.requests++;
    }

    // Ids are assigned in append order, and the file lists requests by idx,
    // which is not id order when a writer appended them out of idx order.
    // Appending a run's requests sorted by source id gives a fresh database
    // the source's very ids, so that export -> import -> export is exact.
    void flush_requests() {
        std::sort(pending.begin(), pending.end(),
                  [](const PendingRequest& a, const PendingRequest& b) { return a.src < b.src; });
        for (PendingRequest& p : pending) {
            int64_t id = guarded(p.line, [&] { return trace_db_append_request(db, p.q); });
            requests[p.src] = {id, p.q.output_len, p.gamma};
        }
        pending.clear();
        pending_ids.clear();
    }

    void read_positions(const json& j) {
        only_keys(j, "", {"type", "request", "gamma", "n", "beta", "conf_logit", "conf_prob", "draft_prob", "verified"});
        RequestInfo& q = get_ref(j, "request", requests, "request");
        if (q.has_positions)
            fail("request", "a request whose positions are not given yet", json_describe(j.at("request")));
        Positions p;
        p.request_id = q.id;
        p.gamma = get_int32(j, "", "gamma", 1, TRACE_MAX_GAMMA);
        if (p.gamma != q.gamma)  // one slot per draft of the run's blocks
            fail("gamma", "the run's gamma " + std::to_string(q.gamma), std::to_string(p.gamma));
        p.n = get_int32(j, "", "n", 0, INT_MAX64);
        if (p.n != q.output_len)  // one anchor per output token
            fail("n", "the request's output_len " + std::to_string(q.output_len), std::to_string(p.n));
        int64_t size = static_cast<int64_t>(p.n) * p.gamma;
        p.beta = get_floats(j, "beta", size, true);
        // The confidence arrays come as a pair, both absent (or empty) or both full.
        auto given = [&](const char* key) { return j.contains(key) && !(j[key].is_array() && j[key].empty()); };
        if (given("conf_logit") || given("conf_prob")) {
            p.conf_logit = get_floats(j, "conf_logit", size, false);
            p.conf_prob = get_floats(j, "conf_prob", size, true);
        }
        // schema 3; absent (or empty) when not recorded, as in an export of an older store
        if (given("draft_prob")) p.draft_prob = get_floats(j, "draft_prob", size, true);
        // schema 4; absent (or empty) when every real slot was observed
        if (given("verified")) {
            std::string want = "an array of " + std::to_string(p.n) + " integers";
            const json& v = j["verified"];
            if (!v.is_array() || static_cast<int64_t>(v.size()) != p.n) fail("verified", want, json_describe(v));
            for (size_t i = 0; i < v.size(); i++) {
                if (!v[i].is_number_integer() || v[i].get<int64_t>() < 0 || v[i].get<int64_t>() > p.gamma)
                    fail("verified[" + std::to_string(i) + "]", range_text(0, p.gamma), json_describe(v[i]));
                p.verified.push_back(static_cast<uint8_t>(v[i].get<int64_t>()));
            }
        }
        guarded(line, [&] { trace_db_append_positions(db, p); });
        q.has_positions = true;
        sum.positions++;
    }

    void read_step(const json& j) {
        only_keys(j, "", {"type", "request", "step", "batch_size", "verify_len", "n_accepted", "bonus", "draft_ns",
                          "verify_ns", "t_ns", "batch_tokens", "host_ns", "drafted"});
        int64_t src = get_int(j, "", "request", 1, I64_MAX);
        RequestInfo& q = get_ref(j, "request", requests, "request");
        Step s;
        s.request_id = q.id;
        s.step = get_int32(j, "", "step", 0, INT_MAX64);
        if (s.step < q.next_step)
            fail("step", "a step index >= " + std::to_string(q.next_step) + " (a request's steps in increasing order)",
                 std::to_string(s.step));
        s.batch_size = get_int32(j, "", "batch_size", 1, INT_MAX64);
        s.verify_len = get_int32(j, "", "verify_len", 0, q.gamma);
        s.n_accepted = get_int32(j, "", "n_accepted", 0, s.verify_len);
        s.bonus = get_bool(j, "", "bonus");
        // The bonus token exists only when every draft was accepted (the
        // converse need not hold: an accepted end-of-sequence ends the request).
        if (s.bonus && s.n_accepted != s.verify_len)
            fail("bonus", "false when n_accepted < verify_len", "true");
        s.draft_ns = get_int(j, "", "draft_ns", 0, I64_MAX);
        s.verify_ns = get_int(j, "", "verify_ns", 0, I64_MAX);
        s.t_ns = get_int(j, "", "t_ns", 0, I64_MAX);
        // schema 2; an export of a version-1 store has neither: 0, not recorded
        if (j.contains("batch_tokens")) s.batch_tokens = get_int32(j, "", "batch_tokens", 0, INT_MAX64);
        if (j.contains("host_ns")) s.host_ns = get_int(j, "", "host_ns", 0, I64_MAX);
        // schema 4; absent: not recorded (0)
        if (j.contains("drafted")) {
            s.drafted = get_int32(j, "", "drafted", s.verify_len, q.gamma);
            if (s.drafted == 0) fail("drafted", "an integer >= 1 (omit the key when not recorded)", "0");
        }
        if (!steps.empty() && (src != steps_source || steps.size() >= 4096)) flush_steps();
        if (steps.empty()) {
            steps_source = src;
            steps_line = line;
        }
        steps.push_back(s);
        q.next_step = s.step + 1;
        sum.steps++;
    }

    void flush_steps() {
        if (steps.empty()) return;
        guarded(steps_line, [&] { trace_db_append_steps(db, std::span<const Step>(steps)); });
        steps.clear();
    }

    void read_profile(const json& j) {
        only_keys(j, "", {"type", "id", "run", "gpu", "model", "phase", "n_seqs", "n_tokens", "context",
                          "latency_us_p50", "latency_us_p10", "latency_us_p90", "n_samples"});
        int64_t src = get_new_id(j, profiles);
        Profile p;
        int64_t run = get_int(j, "", "run", 0, I64_MAX);
        p.run_id = run == 0 ? 0 : get_ref(j, "run", runs, "run").id;  // 0: measured by no run
        p.gpu = get_string(j, "", "gpu");
        p.model = get_shape(j, "model");
        std::string phase = get_string(j, "", "phase");
        if (!phase_parse(phase, &p.phase)) fail("phase", "\"draft\", \"verify\" or \"prefill\"", json_describe(j.at("phase")));
        p.n_seqs = get_int32(j, "", "n_seqs", 0, INT_MAX64);
        p.n_tokens = get_int32(j, "", "n_tokens", 0, INT_MAX64);
        p.context = get_int32(j, "", "context", 0, INT_MAX64);
        p.latency_us_p50 = get_double(j, "", "latency_us_p50");
        p.latency_us_p10 = get_double(j, "", "latency_us_p10");
        p.latency_us_p90 = get_double(j, "", "latency_us_p90");
        if (!(p.latency_us_p10 <= p.latency_us_p50 && p.latency_us_p50 <= p.latency_us_p90))
            fail("latency_us_p50", "p10 <= p50 <= p90",
                 json(p.latency_us_p10).dump() + ", " + json(p.latency_us_p50).dump() + ", " +
                     json(p.latency_us_p90).dump());
        p.n_samples = get_int32(j, "", "n_samples", 0, INT_MAX64);
        guarded(line, [&] { trace_db_append_profile(db, p); });
        profiles.insert(src);
        sum.profiles++;
    }

    void read_header(const json& j) {
        const json& t = field(j, "", "type", "\"specplan-traces\" (the header line)");
        if (t != HEADER_TYPE) fail("type", "\"specplan-traces\" (the header line)", json_describe(t));
        only_keys(j, "", {"type", "version"});
        const json& v = field(j, "", "version", "1");
        if (!v.is_number_integer() || v.get<int64_t>() != TRACE_JSONL_VERSION)
            fail("version", std::to_string(TRACE_JSONL_VERSION) + " (a newer file needs a newer specplan)",
                 json_describe(v));
    }

    json parse(const std::string& text) const {
        try {
            return json::parse(text);
        } catch (const json::exception& e) {
            // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> "column 5: ..."
            std::string msg = e.what();
            if (auto p = msg.find("] "); p != std::string::npos) msg.erase(0, p + 2);
            if (auto p = msg.find("column "); p != std::string::npos) msg.erase(0, p);
            std::replace(msg.begin(), msg.end(), '\n', ' ');
            fail("json", "a JSON object", "invalid JSON (" + msg + ")");
        }
    }

    void read_record(const json& j) {
        const json& t = field(j, "", "type", "a record type");
        if (!t.is_string()) fail("type", "a string", json_describe(t));
        const std::string& type = t.get_ref<const std::string&>();
        if (type != "request") flush_requests();
        if (type != "step") flush_steps();
        if (type == "run") read_run(j);
        else if (type == "request") read_request(j);
        else if (type == "positions") read_positions(j);
        else if (type == "step") read_step(j);
        else if (type == "profile") read_profile(j);
        else fail("type", "\"run\", \"request\", \"positions\", \"step\" or \"profile\"", json_describe(t));
    }

    bool read_line(std::istream& in, std::string& text) { return line_read(in, text, max_line, in_name, line + 1); }

    void run(std::istream& in) {
        TraceTxn txn(db);
        std::string text;
        bool header = false;
        int64_t blank = 0;  // first line of a run of blank lines, 0 if none
        while (read_line(in, text)) {
            line++;
            if (!text.empty() && text.back() == '\r') text.pop_back();  // CRLF from a Windows editor
            if (text.find_first_not_of(" \t") == std::string::npos) {
                if (!blank) blank = line;
                continue;
            }
            if (blank) {
                line = blank;
                fail("line", "a JSON object (blank lines only at the end)", "an empty line");
            }
            json j = parse(text);
            if (!j.is_object()) fail("line", "a JSON object", json_describe(j));
            if (!header) {
                read_header(j);
                header = true;
            } else {
                read_record(j);
            }
        }
        if (in.bad()) throw Error(in_name + ": read failed after line " + std::to_string(line));
        if (!header) {
            line++;
            fail("type", "\"specplan-traces\" (the header line)", "end of file");
        }
        flush_requests();
        flush_steps();
        // Not a structured binding: clang before 16 cannot capture one in a lambda (tests/fuzz builds with clang 14).
        for (const auto& f : finish) {
            const int64_t id = f.first;
            guarded(f.second, [&] { trace_db_finish_run(db, id); });
        }
        txn.commit();
    }
};

}  // namespace

JsonlSummary trace_export_jsonl(TraceDb& db, std::ostream& out, const std::string& out_name) {
    Exporter e{db, out, out_name, {}};
    ojson header;
    header["type"] = HEADER_TYPE;
    header["version"] = TRACE_JSONL_VERSION;
    e.put(header.dump());
    std::vector<Run> runs = trace_db_runs(db);
    std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.id < b.id; });
    for (const Run& r : runs) e.write_run(r);
    for (const Profile& p : trace_db_profiles(db)) e.write_profile(p);
    out.flush();
    if (!out) e.fail("write failed");
    return e.sum;
}

JsonlSummary trace_import_jsonl(TraceDb& db, std::istream& in, const std::string& in_name, size_t max_line) {
    Importer imp{db, in_name, max_line};
    imp.run(in);
    return imp.sum;
}

}  // namespace sp
