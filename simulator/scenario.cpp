// scenario.cpp: TOML scenario file -> Scenario, with every check that
// scenarios/README.md promises. After scenario_parse returns, the simulator
// may trust every field (scenario.h says what that covers).
//
// Messages are one line, "<file>: <key>: expected <what>, got <what>", where
// <key> is the dotted TOML path ("workload.concurrency[3]"). Every read goes
// through the typed getters below, which build that path, so a new key gets
// its message for free. A key that does not apply to the chosen mode (rate in
// a closed loop, gpu with a measured model) is still checked, then ignored.
//
// [SECTION] messages and typed getters
// [SECTION] top level, engine, acceptance
// [SECTION] workload
// [SECTION] cost model
// [SECTION] policies and SLO
// [SECTION] cross-checks: trace store, KV capacity, cost model
// [SECTION] entry points
#include "simulator/scenario.h"
#include "simulator/workload.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>

#include "traces/hf_config.h"
#include "traces/models.h"
#include "traces/request_log.h"

namespace sp {
namespace fs = std::filesystem;

// [SECTION] messages and typed getters ----------------------------------------

// Sanity bounds, far beyond any real deployment; they keep every later sum
// and product of these fields inside int range.
static constexpr int64_t MAX_TOKENS = int64_t(1) << 24;     // one prompt or output, tokens
static constexpr int64_t MAX_SEQS = int64_t(1) << 20;       // engine.max_seqs, users per point
static constexpr int64_t MAX_BATCH = int64_t(1) << 30;      // tokens per forward or prefill chunk
static constexpr int64_t MAX_REQUESTS = 100'000'000;         // requests, warmup
static constexpr int64_t MAX_KV = int64_t(1) << 50;         // KV capacity, tokens
static constexpr int64_t MAX_TP = 1024;
static constexpr int64_t MAX_INT = std::numeric_limits<int>::max();
static constexpr int64_t MAX_I64 = std::numeric_limits<int64_t>::max();
static constexpr double INF = std::numeric_limits<double>::infinity();

// What every message needs: the file to name, and the folder that relative
// paths inside it resolve against.
struct Ctx {
    std::string file;
    fs::path dir;
};

// One line even when a value quoted from the file holds a newline.
[[noreturn]] static void throw_line(std::string line) {
    for (char& ch : line)
        if (ch == '\n' || ch == '\r') ch = ' ';
    throw Error(line);
}

[[noreturn]] static void fail(const Ctx& c, const std::string& key, const std::string& expected,
                              const std::string& got) {
    throw_line(c.file + ": " + key + ": expected " + expected + ", got " + got);
}

static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

static std::string quote(std::string_view s) {
    std::string q(1, '"');  // appended, not "\"" + ...: g++ 12 warns a false -Wrestrict on that where it inlines
    q += s;
    q += '"';
    return q;
}

// Floats print with a point ("4.0"), so "got a float (4.0)" explains itself.
static std::string fmt_num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    std::string s = buf;
    if (std::isfinite(v) && s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
}

static const char* type_name(toml::node_type t) {
    switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
    }
}

// "a float (7.5)", "a string ("7")": the type found, and the value when short.
static std::string got_type(const toml::node& n) {
    std::string s = type_name(n.type());
    if (auto v = n.as_string()) return s + " (" + quote(v->get()) + ")";
    if (auto v = n.as_integer()) return s + " (" + std::to_string(v->get()) + ")";
    if (auto v = n.as_floating_point()) return s + " (" + fmt_num(v->get()) + ")";
    if (auto v = n.as_boolean()) return s + (v->get() ? " (true)" : " (false)");
    return s;
}

static std::string int_range(int64_t lo, int64_t hi) {
    if (hi >= MAX_I64) return "an integer >= " + std::to_string(lo);
    return "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
}

// A closed or half-open interval of doubles; NaN is never inside.
struct Range {
    double lo = -INF, hi = INF;
    bool lo_open = false, hi_open = false;
    bool contains(double v) const {
        return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    }
    std::string describe() const {
        auto g = [](double v) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", v);
            return std::string(buf);
        };
        if (hi == INF) return std::string("a number ") + (lo_open ? "> " : ">= ") + g(lo);
        return std::string("a number in ") + (lo_open ? "(" : "[") + g(lo) + ", " + g(hi) + (hi_open ? ")" : "]");
    }
};
static const Range NONNEG{0, INF, false, false};    // >= 0
static const Range POSITIVE{0, INF, true, false};   // > 0
static const Range UNIT{0, 1, false, false};        // [0, 1]
static const Range FRACTION{0, 1, true, false};     // (0, 1]
static const Range OPEN_UNIT{0, 1, true, true};     // (0, 1)
// The simulated clock is int64 nanoseconds (9.2e9 s, sim.cpp). Each duration
// a key sets stays far inside it, and so does a run's arrival horizon: the
// time its arrivals alone take to reach warmup + requests completions (one
// user's think times in a row at the smallest concurrency, or the gaps at
// the smallest rate) is at most MAX_HORIZON_S, 1/92 of the clock. The
// simulator still checks every sum (a slow cost model can stretch a run).
static constexpr double MAX_HORIZON_S = 1e8;                 // about 3.2 years
static const Range THINK_MS{0, 86'400'000};                  // one day, the mean of one think time
static const Range RATE{1e-3, 1e8};                          // requests/s: mean gaps of 1000 s to 10 ns
static const Range BURSTINESS{1e-2, 1e4};                    // gamma shape: gap CV 10 to 0.01
static const Range OVERHEAD_US{0, 1e6};                      // one second per iteration
static const Range OVERLAP_N{1, 64};                          // 1 adds memory and math time; 64 is the max
static const Range HBM_TB_S{1e-3, 1e3};                      // 1 GB/s .. 1 PB/s
static const Range ALLREDUCE_GB_S{1e-3, 1e6};                // 1 MB/s .. 1 PB/s
static const Range BF16_TFLOPS{1e-3, 1e6};

// Converters of one node; `key` is its full path.
static int64_t as_int(const Ctx& c, const toml::node& n, const std::string& key, int64_t lo, int64_t hi) {
    auto v = n.as_integer();
    if (!v) fail(c, key, int_range(lo, hi), got_type(n));
    int64_t x = v->get();
    if (x < lo || x > hi) fail(c, key, int_range(lo, hi), std::to_string(x));
    return x;
}

// Integers are fine where a number is expected (think_time_ms = 0).
static double as_num(const Ctx& c, const toml::node& n, const std::string& key, const Range& r) {
    double x;
    if (auto f = n.as_floating_point()) x = f->get();
    else if (auto i = n.as_integer()) x = double(i->get());
    else fail(c, key, r.describe(), got_type(n));
    if (!std::isfinite(x) || !r.contains(x)) fail(c, key, r.describe(), fmt_num(x));
    return x;
}

static std::string as_str(const Ctx& c, const toml::node& n, const std::string& key) {
    auto v = n.as_string();
    if (!v) fail(c, key, "a string", got_type(n));
    return v->get();
}

// Index of the string among `choices`.
static int as_choice(const Ctx& c, const toml::node& n, const std::string& key,
                     std::initializer_list<const char*> choices) {
    std::string expected;
    int i = 0, found = -1;
    for (const char* ch : choices) {
        expected += (i == 0 ? "" : i + 1 == int(choices.size()) ? " or " : ", ") + quote(ch);
        if (n.is_string() && n.as_string()->get() == ch) found = i;
        i++;
    }
    if (!n.is_string()) fail(c, key, expected, got_type(n));
    if (found < 0) fail(c, key, expected, quote(n.as_string()->get()));
    return found;
}

// Returns a pointer, never null: a reference returned from a call with a
// temporary std::string argument trips g++ 13's -Wdangling-reference.
static const toml::array* as_array(const Ctx& c, const toml::node& n, const std::string& key, const char* of) {
    auto a = n.as_array();
    if (!a) fail(c, key, std::string("an array of ") + of, got_type(n));
    if (a->empty()) fail(c, key, std::string("a non-empty array of ") + of, "an empty array");
    return a;
}

// Getters of key `key` of table `t` at path `path`: get_* returns `def` when
// the key is absent, need_* fails; both check the type and the range.
static const toml::node* find(const toml::table* t, std::string_view key) {
    return t ? t->get(key) : nullptr;
}

static int64_t get_int(const Ctx& c, const toml::table* t, const std::string& path, std::string_view key,
                       int64_t def, int64_t lo, int64_t hi) {
    const toml::node* n = find(t, key);
    return n ? as_int(c, *n, join(path, key), lo, hi) : def;
}
static int64_t need_int(const Ctx& c, const toml::table* t, const std::string& path, std::string_view key,
                        int64_t lo, int64_t hi) {
    const toml::node* n = find(t, key);
    if (!n) fail(c, join(path, key), int_range(lo, hi), "nothing");
    return as_int(c, *n, join(path, key), lo, hi);
}
static double get_num(const Ctx& c, const toml::table* t, const std::string& path, std::string_view key,
                      double def, const Range& r) {
    const toml::node* n = find(t, key);
    return n ? as_num(c, *n, join(path, key), r) : def;
}
static double need_num(const Ctx& c, const toml::table* t, const std::string& path, std::string_view key,
                       const Range& r) {
    const toml::node* n = find(t, key);
    if (!n) fail(c, join(path, key), r.describe(), "nothing");
    return as_num(c, *n, join(path, key), r);
}
static std::string get_str(const Ctx& c, const toml::table* t, const std::string& path, std::string_view key,
                           const std::string& def) {
    const toml::node* n = find(t, key);
    return n ? as_str(c, *n, join(path, key)) : def;
}
static std::string need_str(const Ctx& c, const toml::table* t, const std::string& path, std::string_view key) {
    const toml::node* n = find(t, key);
    if (!n) fail(c, join(path, key), "a string", "nothing");
    return as_str(c, *n, join(path, key));
}
static int get_choice(const Ctx& c, const toml::table* t, const std::string& path, std::string_view key,
                      int def, std::initializer_list<const char*> choices) {
    const toml::node* n = find(t, key);
    return n ? as_choice(c, *n, join(path, key), choices) : def;
}

// The sub-table `key`, or nullptr when absent.
static const toml::table* get_table(const Ctx& c, const toml::table* t, const std::string& path,
                                    std::string_view key) {
    const toml::node* n = find(t, key);
    if (!n) return nullptr;
    if (!n->is_table()) fail(c, join(path, key), "a table", got_type(*n));
    return n->as_table();
}

// Every key of `t` must be one of `allowed`; the message lists them.
static void check_keys(const Ctx& c, const toml::table* t, const std::string& path,
                       std::initializer_list<const char*> allowed) {
    if (!t) return;
    for (auto&& [k, v] : *t) {
        bool ok = false;
        for (const char* a : allowed) ok = ok || k.str() == a;
        if (ok) continue;
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(c, join(path, k.str()), "a key of " + (path.empty() ? std::string("the top level") : "[" + path + "]") +
                                         " (" + list + ")",
             "an unknown key");
    }
}

// Store (and tokenizer) errors already name their file; the prefix names the scenario and key.
[[noreturn]] static void fail_store(const Ctx& c, const std::string& key, const Error& e) {
    throw_line(c.file + ": " + key + ": " + e.what());
}

static std::string resolve_path(const Ctx& c, const std::string& p) {
    fs::path q(p);
    if (q.is_relative()) q = c.dir / q;
    return q.lexically_normal().string();
}

// [SECTION] top level, engine, acceptance ---------------------------------------

static EngineConfig parse_engine(const Ctx& c, const toml::table* t, double* kv_memory_fraction) {
    const std::string p = "engine";
    check_keys(c, t, p,
               {"gamma", "max_seqs", "max_batch_tokens", "kv_capacity_tokens", "kv_memory_fraction",
                "prefill_chunk_tokens", "draft_max_running", "tp", "prefill"});
    EngineConfig e;
    e.gamma = int(need_int(c, t, p, "gamma", 1, TRACE_MAX_GAMMA));
    e.max_seqs = int(get_int(c, t, p, "max_seqs", e.max_seqs, 1, MAX_SEQS));
    e.max_batch_tokens = int(get_int(c, t, p, "max_batch_tokens", e.max_batch_tokens, 2, MAX_BATCH));
    if (e.max_batch_tokens <= e.max_seqs)
        fail(c, "engine.max_batch_tokens",
             "more than engine.max_seqs (" + std::to_string(e.max_seqs) + "), so prefill always gets a token",
             std::to_string(e.max_batch_tokens));
    e.kv_capacity_tokens = get_int(c, t, p, "kv_capacity_tokens", 0, 0, MAX_KV);
    *kv_memory_fraction = get_num(c, t, p, "kv_memory_fraction", 0.9, FRACTION);
    e.prefill_chunk_tokens = int(get_int(c, t, p, "prefill_chunk_tokens", e.prefill_chunk_tokens, 1, MAX_BATCH));
    e.draft_max_running = int(get_int(c, t, p, "draft_max_running", 0, 0, MAX_SEQS));
    e.tp = int(get_int(c, t, p, "tp", e.tp, 1, MAX_TP));
    e.disaggregated_prefill = get_choice(c, t, p, "prefill", 0, {"colocated", "disaggregated"}) == 1;
    return e;
}

static AcceptanceConfig parse_acceptance(const Ctx& c, const toml::table* t) {
    const std::string p = "acceptance";
    check_keys(c, t, p, {"source", "trace", "run", "alpha", "kappa", "raw_temperature"});
    AcceptanceConfig a;
    a.kind = AcceptanceKind(get_choice(c, t, p, "source", ACCEPT_TRACE, {"trace", "parametric", "iid", "steps"}));
    if (find(t, "trace")) {
        std::string trace = as_str(c, *find(t, "trace"), "acceptance.trace");
        if (trace.empty()) fail(c, "acceptance.trace", "a trace store path", "an empty string");
        a.trace_path = resolve_path(c, trace);
    }
    if ((a.kind == ACCEPT_TRACE || a.kind == ACCEPT_STEPS) && a.trace_path.empty())
        fail(c, "acceptance.trace",
             std::string("a trace store path (acceptance.source = \"") + (a.kind == ACCEPT_STEPS ? "steps" : "trace") + "\")",
             "nothing");
    a.run_id = get_int(c, t, p, "run", 0, 0, MAX_I64);
    if (a.kind == ACCEPT_IID) a.alpha = need_num(c, t, p, "alpha", UNIT);
    else a.alpha = get_num(c, t, p, "alpha", 0, UNIT);
    a.kappa = get_num(c, t, p, "kappa", a.kappa, POSITIVE);
    a.raw_temperature = get_num(c, t, p, "raw_temperature", a.raw_temperature, POSITIVE);
    return a;
}

// [SECTION] workload -------------------------------------------------------------

// { dist = "fixed", value = N } | { dist = "uniform", min, max } |
// { dist = "lognormal", median, sigma, min, max }; lengths in tokens.
static LengthDist parse_dist(const Ctx& c, const toml::node& n, const std::string& p) {
    if (!n.is_table()) fail(c, p, "a table such as { dist = \"uniform\", min = 128, max = 1024 }", got_type(n));
    const toml::table* t = n.as_table();
    LengthDist d;
    const toml::node* kind = find(t, "dist");
    if (!kind) fail(c, join(p, "dist"), "\"fixed\", \"uniform\" or \"lognormal\"", "nothing");
    d.kind = DistKind(as_choice(c, *kind, join(p, "dist"), {"fixed", "uniform", "lognormal"}));
    if (d.kind == DIST_FIXED) {
        check_keys(c, t, p, {"dist", "value"});
        d.value = int(need_int(c, t, p, "value", 1, MAX_TOKENS));
        d.min = d.max = d.value;
        return d;
    }
    if (d.kind == DIST_UNIFORM) check_keys(c, t, p, {"dist", "min", "max"});
    else check_keys(c, t, p, {"dist", "median", "sigma", "min", "max"});
    d.min = int(need_int(c, t, p, "min", 1, MAX_TOKENS));
    d.max = int(need_int(c, t, p, "max", d.min, MAX_TOKENS));
    if (d.kind == DIST_LOGNORMAL) {
        d.median = need_num(c, t, p, "median", POSITIVE);
        d.sigma = need_num(c, t, p, "sigma", NONNEG);
    }
    return d;
}

// The longest length the distribution can draw, tokens.
static int dist_max(const LengthDist& d) { return d.kind == DIST_FIXED ? d.value : d.max; }

static std::vector<DomainMix> parse_domains(const Ctx& c, const toml::node* n, const AcceptanceConfig& acc,
                                            int gamma) {
    const std::string p = "workload.domain";
    std::vector<DomainMix> mix;
    if (!n) {
        mix.push_back({"all", 1, {}});
    } else {
        if (!n->is_array_of_tables())
            fail(c, p, "an array of tables ([[workload.domain]] sections)", got_type(*n));
        const toml::array& a = *n->as_array();
        if (a.empty()) fail(c, p, "at least one [[workload.domain]]", "an empty array");
        for (size_t i = 0; i < a.size(); i++) {
            const std::string q = p + "[" + std::to_string(i) + "]";
            const toml::table* t = a[i].as_table();
            check_keys(c, t, q, {"name", "weight", "alpha"});
            DomainMix d;
            d.domain = need_str(c, t, q, "name");
            if (d.domain.empty()) fail(c, q + ".name", "a domain name", "an empty string");
            for (const DomainMix& e : mix)
                if (e.domain == d.domain) fail(c, q + ".name", "a name not used by an earlier domain", quote(d.domain));
            d.weight = get_num(c, t, q, "weight", 1, POSITIVE);
            if (const toml::node* an = find(t, "alpha")) {
                const std::string k = q + ".alpha";
                const toml::array& al = *as_array(c, *an, k, "numbers in [0, 1]");
                for (size_t j = 0; j < al.size(); j++)
                    d.alpha.push_back(as_num(c, al[j], k + "[" + std::to_string(j) + "]", UNIT));
            }
            mix.push_back(d);
        }
    }
    // The parametric source draws every slot from its domain's vector.
    for (size_t i = 0; i < mix.size(); i++) {
        DomainMix& d = mix[i];
        const std::string k = p + "[" + std::to_string(i) + "].alpha";
        if (acc.kind != ACCEPT_PARAMETRIC) {
            d.alpha.clear();
        } else if (!n) {
            fail(c, p, "[[workload.domain]] sections with alpha (acceptance.source = \"parametric\")", "nothing");
        } else if (int(d.alpha.size()) != gamma) {
            fail(c, k,
                 std::to_string(gamma) + " numbers (engine.gamma) for acceptance.source = \"parametric\"",
                 d.alpha.empty() ? std::string("nothing") : std::to_string(d.alpha.size()) + " numbers");
        }
    }
    double sum = 0;
    for (const DomainMix& d : mix) sum += d.weight;
    if (!std::isfinite(sum)) fail(c, p, "weights with a finite sum", fmt_num(sum));
    for (DomainMix& d : mix) d.weight /= sum;
    return mix;
}

// workload.requests and workload.warmup: a whole number from `lo`, or
// "auto" (the default `def`): sized by the load (workload.h workload_window).
static int64_t get_window_int(const Ctx& c, const toml::table* t, std::string_view key, int64_t def, int64_t lo) {
    const toml::node* n = find(t, key);
    if (!n) return def;
    if (const auto* str = n->as_string()) {
        if (str->get() == "auto") return def;
        fail(c, join("workload", key), int_range(lo, MAX_REQUESTS) + " or \"auto\"", "\"" + str->get() + "\"");
    }
    return as_int(c, *n, join("workload", key), lo, MAX_REQUESTS);
}

// The arrival horizon (MAX_HORIZON_S above) of the point that takes longest:
// the window at the smallest load.
static void check_horizon(const Ctx& c, const Workload& w) {
    const double front = w.mode == WORKLOAD_OPEN ? (w.rates.empty() ? 0 : w.rates.front())
                                                 : (w.concurrency.empty() ? 0 : w.concurrency.front());
    const WindowSize ws = workload_window(w, front);
    const double n = double(ws.warmup) + ws.requests;   // completions a point waits for
    const std::string why = " so that " + fmt_num(n) + " completions (workload.warmup + workload.requests) fit " +
                            "the simulated clock's horizon of " + fmt_num(MAX_HORIZON_S) + " s";
    if (w.mode == WORKLOAD_OPEN && !w.rates.empty() && n / w.rates.front() > MAX_HORIZON_S)
        fail(c, "workload.rate[0]", "a rate of at least " + fmt_num(n / MAX_HORIZON_S) + " requests/s" + why,
             fmt_num(w.rates.front()));
    if (w.mode == WORKLOAD_CLOSED && !w.concurrency.empty()) {
        const double per_user = std::ceil(n / w.concurrency.front());  // requests in a row of one user
        if (per_user * w.think_time_s > MAX_HORIZON_S)
            fail(c, "workload.think_time_ms",
                 "at most " + fmt_num(MAX_HORIZON_S / per_user * 1e3) + " ms at " +
                     std::to_string(w.concurrency.front()) + " users" + why,
                 fmt_num(w.think_time_s * 1e3));
    }
}

// "replay" or "scaled", quoted: the log arrival a message names.
static std::string log_arrival(const Workload& w) { return quote(w.arrival == ARRIVAL_REPLAY ? "replay" : "scaled"); }

// [workload] log: reads the request log into 24 bytes a request
// (LogRequest) in one streaming pass, checking every row as it goes.
static void parse_log(const Ctx& c, const toml::table* t, Workload& w) {
    const std::string p = "workload";
    auto data = std::make_shared<RequestLogData>();
    const std::string file = need_str(c, t, p, "log");
    if (file.empty()) fail(c, "workload.log", "a request log path", "an empty string");
    data->path = resolve_path(c, file);
    const toml::node* fn = find(t, "log_format");
    if (!fn) fail(c, "workload.log_format", "\"mooncake\", \"azure\", \"burstgpt\" or \"sharegpt\"", "nothing");
    const auto format = LogFormat(as_choice(c, *fn, "workload.log_format", {"mooncake", "azure", "burstgpt", "sharegpt"}));
    LogOptions opt;
    opt.domain_field = get_str(c, t, p, "log_domain", "");
    if (find(t, "log_domain") && opt.domain_field.empty())
        fail(c, "workload.log_domain", "a field or column name", "an empty string");
    Tokenizer tok;
    if (const toml::node* n = find(t, "log_tokenizer")) {
        if (format != LOG_SHAREGPT) fail(c, "workload.log_tokenizer", "none unless workload.log_format = \"sharegpt\"", "one");
        try {
            tok = tokenizer_load(resolve_path(c, as_str(c, *n, "workload.log_tokenizer")));
        } catch (const Error& e) {
            fail_store(c, "workload.log_tokenizer", e);
        }
        opt.tokenizer = &tok;
    } else if (format == LOG_SHAREGPT) {
        fail(c, "workload.log_tokenizer", "a tokenizer.json (ShareGPT logs are text)", "nothing");
    }
    const bool log_arrivals = w.arrival == ARRIVAL_REPLAY || w.arrival == ARRIVAL_SCALED;
    std::string names;
    for (const DomainMix& d : w.mix) names += (names.empty() ? "" : ", ") + quote(d.domain);
    std::vector<LogRequest>& rows = data->requests;
    {  // the reader's messages name the log, its line and field
        const LogSummary sum = request_log_read(data->path, format, opt, [&](const LogRecord& r) {
            auto at = [&] { return data->path + ":" + std::to_string(r.line) + ": "; };
            if (log_arrivals && !r.has_time)
                throw_line(at() + "timestamp: expected a time in ms (workload.arrival = " +
                           log_arrival(w) + "), got nothing");
            if (int64_t(rows.size()) >= MAX_REQUESTS)
                throw_line(at() + "line: expected at most " + std::to_string(MAX_REQUESTS) + " requests, got more");
            LogRequest q;
            q.t_ns = r.t_ns;
            q.prompt_len = r.prompt_len;
            q.output_len = r.output_len;
            if (!opt.domain_field.empty()) {
                for (size_t i = 0; i < w.mix.size() && q.domain < 0; i++)
                    if (w.mix[i].domain == r.domain) q.domain = int32_t(i);
                if (q.domain < 0)
                    throw_line(at() + opt.domain_field + ": expected a domain of [[workload.domain]] (" + names + "), got " +
                               quote(r.domain));
            }
            rows.push_back(q);
        });
        data->skipped = sum.skipped;
    }
    if (rows.empty()) fail(c, "workload.log", "a log with at least one request", quote(data->path) + " with none");
    // Arrival order; logs are sorted already, a stable sort keeps ties in file order.
    std::stable_sort(rows.begin(), rows.end(), [](const LogRequest& a, const LogRequest& b) { return a.t_ns < b.t_ns; });
    const int64_t t0 = rows.front().t_ns;
    for (LogRequest& q : rows) q.t_ns -= t0;
    data->span_ns = rows.back().t_ns;
    if (rows.size() > 1 && data->span_ns > 0) data->rate = double(rows.size() - 1) / (double(data->span_ns) * 1e-9);
    if (log_arrivals) {
        if (data->rate == 0)
            fail(c, "workload.log", "arrivals spread over time (workload.arrival = " +
                                        log_arrival(w) + ")",
                 std::to_string(rows.size()) + " at one instant");
        if (!RATE.contains(data->rate))
            fail(c, "workload.log", "a mean arrival rate in " + RATE.describe() + " requests/s", fmt_num(data->rate));
        if (w.arrival == ARRIVAL_REPLAY) w.rates = {data->rate};
        // Unless set, the window is the whole log once (a fleet divides it, scenario_parse).
        const int64_t n = int64_t(rows.size());
        if (w.warmup < 0) w.warmup = int(std::min<int64_t>(WARMUP_MIN, n / 10));
        if (w.requests <= 0) {
            w.requests = int(std::max<int64_t>(1, n - w.warmup));
            w.window_from_log = true;
        }
    }
    w.log = std::move(data);
}

static Workload parse_workload(const Ctx& c, const toml::table* t, const AcceptanceConfig& acc, int gamma) {
    const std::string p = "workload";
    check_keys(c, t, p,
               {"mode", "concurrency", "think_time_ms", "think", "rate", "arrival", "burstiness", "requests",
                "warmup", "lengths", "prompt_len", "output_len", "domain", "log", "log_format", "log_domain",
                "log_tokenizer"});
    Workload w;
    w.mode = WorkloadMode(get_choice(c, t, p, "mode", WORKLOAD_CLOSED, {"closed", "open"}));
    w.arrival = ArrivalKind(get_choice(c, t, p, "arrival", ARRIVAL_POISSON, {"poisson", "gamma", "replay", "scaled"}));

    // Sweep points: strictly increasing, so each point is a distinct load.
    if (const toml::node* n = find(t, "concurrency")) {
        const toml::array& a = *as_array(c, *n, "workload.concurrency", "integers >= 1");
        for (size_t i = 0; i < a.size(); i++) {
            const std::string k = "workload.concurrency[" + std::to_string(i) + "]";
            int x = int(as_int(c, a[i], k, 1, MAX_SEQS));
            if (!w.concurrency.empty() && x <= w.concurrency.back())
                fail(c, k, "more than the previous point (" + std::to_string(w.concurrency.back()) + ")",
                     std::to_string(x));
            w.concurrency.push_back(x);
        }
    } else if (w.mode == WORKLOAD_CLOSED) {
        fail(c, "workload.concurrency", "an array of integers >= 1 (workload.mode = \"closed\")", "nothing");
    }
    if (const toml::node* n = find(t, "rate")) {
        const toml::array& a = *as_array(c, *n, "workload.rate", "requests/s > 0");
        for (size_t i = 0; i < a.size(); i++) {
            const std::string k = "workload.rate[" + std::to_string(i) + "]";
            double x = as_num(c, a[i], k, RATE);
            if (!w.rates.empty() && x <= w.rates.back())
                fail(c, k, "more than the previous point (" + fmt_num(w.rates.back()) + ")", fmt_num(x));
            w.rates.push_back(x);
        }
    } else if (w.mode == WORKLOAD_OPEN && w.arrival != ARRIVAL_REPLAY) {  // replay's one point is the log's rate
        fail(c, "workload.rate", "an array of requests/s > 0 (workload.mode = \"open\")", "nothing");
    }

    w.think_time_s = get_num(c, t, p, "think_time_ms", 0, THINK_MS) * 1e-3;
    w.think_exponential = get_choice(c, t, p, "think", 0, {"fixed", "exponential"}) == 1;
    const bool log_arrivals = w.arrival == ARRIVAL_REPLAY || w.arrival == ARRIVAL_SCALED;
    if (log_arrivals && w.mode != WORKLOAD_OPEN)
        fail(c, "workload.arrival", "\"poisson\" or \"gamma\" in a closed loop (a log's arrivals need mode = \"open\")",
             log_arrival(w));
    if (w.arrival == ARRIVAL_REPLAY && find(t, "rate"))
        fail(c, "workload.rate", "no rate with workload.arrival = \"replay\" (the log's own rate is the one point)",
             got_type(*find(t, "rate")));
    w.burstiness = get_num(c, t, p, "burstiness", 1, BURSTINESS);
    w.requests = int(get_window_int(c, t, "requests", w.requests, 1));
    w.warmup = int(get_window_int(c, t, "warmup", w.warmup, 0));

    const bool has_log = find(t, "log");
    int lengths_default = has_log ? LENGTHS_LOG : acc.trace_path.empty() ? LENGTHS_DIST : LENGTHS_TRACE;
    w.lengths = LengthSource(get_choice(c, t, p, "lengths", lengths_default, {"trace", "distribution", "log"}));
    if (w.lengths == LENGTHS_TRACE && acc.trace_path.empty())
        fail(c, "acceptance.trace", "a trace store path (workload.lengths = \"trace\")", "nothing");
    if ((w.lengths == LENGTHS_LOG) != has_log)
        fail(c, has_log ? "workload.lengths" : "workload.log",
             has_log ? "\"log\" with a workload.log" : "a request log (workload.lengths = \"log\")",
             has_log ? quote(get_str(c, t, p, "lengths", "")) : "nothing");
    if (log_arrivals && !has_log)
        fail(c, "workload.log", "a request log (workload.arrival = " + log_arrival(w) + ")",
             "nothing");
    for (const char* k : {"log_format", "log_domain", "log_tokenizer"})
        if (!has_log && find(t, k)) fail(c, join(p, k), "no " + std::string(k) + " without a workload.log", "one");
    w.prompt_len.kind = DIST_UNIFORM;
    w.prompt_len.min = 128;
    w.prompt_len.max = 1024;
    if (const toml::node* n = find(t, "prompt_len")) w.prompt_len = parse_dist(c, *n, "workload.prompt_len");
    if (const toml::node* n = find(t, "output_len")) w.output_len = parse_dist(c, *n, "workload.output_len");
    else if (w.lengths == LENGTHS_DIST)
        fail(c, "workload.output_len", "a length distribution (workload.lengths = \"distribution\")", "nothing");

    w.mix = parse_domains(c, find(t, "domain"), acc, gamma);
    if (has_log) parse_log(c, t, w);
    check_horizon(c, w);
    return w;
}

// [SECTION] cost model -------------------------------------------------------------

static GpuSpec parse_gpu_spec(const Ctx& c, const toml::table* t) {
    const std::string p = "cost.gpu_spec";
    check_keys(c, t, p,
               {"name", "hbm_tb_s", "bf16_tflops", "hbm_gb", "overhead_us", "overhead_us_per_layer",
                "allreduce_bus_gb_s", "allreduce_latency_us"});
    GpuSpec g;
    g.name = need_str(c, t, p, "name");
    g.label = g.name + " (from the scenario's [cost.gpu_spec])";
    g.hbm_bytes_per_s = need_num(c, t, p, "hbm_tb_s", HBM_TB_S) * 1e12;
    g.bf16_flops = need_num(c, t, p, "bf16_tflops", BF16_TFLOPS) * 1e12;
    g.hbm_bytes = need_num(c, t, p, "hbm_gb", POSITIVE) * 1e9;
    g.overhead_s = need_num(c, t, p, "overhead_us", OVERHEAD_US) * 1e-6;
    g.overhead_s_per_layer = get_num(c, t, p, "overhead_us_per_layer", 0, OVERHEAD_US) * 1e-6;
    // Both or neither: without them the GPU has no interconnect figures, and
    // cost_validate refuses it at tp > 1; one alone would leave the other 0.
    const bool bus = find(t, "allreduce_bus_gb_s") != nullptr, latency = find(t, "allreduce_latency_us") != nullptr;
    if (bus && !latency)
        fail(c, join(p, "allreduce_latency_us"), OVERHEAD_US.describe() + " beside allreduce_bus_gb_s", "nothing");
    if (latency && !bus)
        fail(c, join(p, "allreduce_bus_gb_s"), ALLREDUCE_GB_S.describe() + " beside allreduce_latency_us", "nothing");
    g.allreduce_bus_bytes_per_s = get_num(c, t, p, "allreduce_bus_gb_s", 0, ALLREDUCE_GB_S) * 1e9;
    g.allreduce_latency_s = get_num(c, t, p, "allreduce_latency_us", 0, OVERHEAD_US) * 1e-6;
    return g;
}

static ModelShape parse_target(const Ctx& c, const toml::table* t) {
    const std::string p = "cost.target";
    check_keys(c, t, p,
               {"name", "n_params", "n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "ffn", "vocab",
                "bytes_per_weight", "bytes_per_kv"});
    ModelShape m;
    m.name = need_str(c, t, p, "name");
    m.n_params = need_int(c, t, p, "n_params", 1, int64_t(1) << 50);
    m.n_layers = int(need_int(c, t, p, "n_layers", 1, 100'000));
    m.hidden = int(need_int(c, t, p, "hidden", 1, MAX_INT));
    m.n_heads = int(need_int(c, t, p, "n_heads", 1, 100'000));
    m.n_kv_heads = int(need_int(c, t, p, "n_kv_heads", 1, m.n_heads));
    m.head_dim = int(need_int(c, t, p, "head_dim", 1, 100'000));
    m.ffn = int(need_int(c, t, p, "ffn", 1, MAX_INT));
    m.vocab = int(need_int(c, t, p, "vocab", 1, MAX_INT));
    m.bytes_per_weight = get_num(c, t, p, "bytes_per_weight", 2, POSITIVE);
    m.bytes_per_kv = get_num(c, t, p, "bytes_per_kv", 2, POSITIVE);
    return m;
}

static MoeShape parse_moe(const Ctx& c, const toml::table* t) {
    const std::string p = "cost.moe";
    check_keys(c, t, p, {"experts", "active", "expert_fraction"});
    MoeShape m;
    m.n_experts = int(need_int(c, t, p, "experts", 2, 1'000'000));
    m.experts_per_token = int(need_int(c, t, p, "active", 1, m.n_experts));
    m.expert_param_fraction = need_num(c, t, p, "expert_fraction", OPEN_UNIT);
    return m;
}

static DrafterSpec parse_drafter(const Ctx& c, const toml::table* t) {
    const std::string p = "cost.drafter";
    check_keys(c, t, p, {"kind", "layers", "markov_rank"});
    DrafterSpec d;
    static_assert(DRAFTER_NONE == 0 && DRAFTER_MTP == 1 && DRAFTER_DSPARK == 2, "choice order below");
    d.kind = DrafterKind(get_choice(c, t, p, "kind", DRAFTER_DSPARK, {"none", "mtp", "dspark"}));
    d.n_layers = int(get_int(c, t, p, "layers", drafter_default_layers(d.kind), 1, 100'000));
    d.markov_rank = int(get_int(c, t, p, "markov_rank", 256, 1, 1'000'000));
    return d;
}

static std::string names_list(const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

// The cost model without the measured profiles (loaded in the cross-checks,
// which need the policies). Roofline pieces are read even for a measured
// model, so a typo there is caught too.
static CostModel parse_cost(const Ctx& c, const toml::table* t, const EngineConfig& e, std::string* profiles,
                            std::string* profile_gpu, std::string* profile_model) {
    const std::string p = "cost";
    check_keys(c, t, p,
               {"model", "gpu", "preset", "bw_efficiency", "flops_efficiency", "overhead_us",
                "overhead_us_per_layer", "allreduce_bus_gb_s", "allreduce_latency_us", "calibrated",
                "profiles", "profile_gpu", "profile_model", "target", "target_config", "moe", "gpu_spec", "drafter",
                "host_us", "host_us_per_seq", "overlap", "token_tile"});
    CostModel m;
    m.kind = CostKind(get_choice(c, t, p, "model", COST_ROOFLINE, {"roofline", "measured"}));
    Roofline& r = m.roofline;

    if (const toml::table* spec = get_table(c, t, p, "gpu_spec")) {
        if (find(t, "gpu")) fail(c, "cost.gpu", "either cost.gpu or [cost.gpu_spec], not both", "both");
        r.gpu = parse_gpu_spec(c, spec);
    } else {
        std::string name = get_str(c, t, p, "gpu", "h100-sxm");
        if (!gpu_preset(name, &r.gpu))
            fail(c, "cost.gpu", "a GPU preset (" + names_list(gpu_preset_names()) + ") or [cost.gpu_spec]",
                 quote(name));
    }
    if (const toml::node* n = find(t, "target_config")) {
        // A HF config.json (or its folder): the shape, and the experts of a MoE.
        for (const char* other : {"preset", "target", "moe"})
            if (find(t, other))
                fail(c, join(p, other), std::string("no cost.") + other + " beside cost.target_config", "one");
        const std::string file = as_str(c, *n, "cost.target_config");
        if (file.empty()) fail(c, "cost.target_config", "a config.json path", "an empty string");
        try {
            const HfShape h = hf_config_load(resolve_path(c, file));
            r.model = h.model;
            r.moe = {h.n_experts, h.experts_per_token, h.expert_param_fraction};
        } catch (const Error& err) {
            fail_store(c, "cost.target_config", err);
        }
    } else if (const toml::table* target = get_table(c, t, p, "target")) {
        if (find(t, "preset")) fail(c, "cost.preset", "either cost.preset or [cost.target], not both", "both");
        r.model = parse_target(c, target);
    } else {
        std::string name = get_str(c, t, p, "preset", "qwen3-8b");
        HfShape moe_preset;
        if (hf_preset(name, &moe_preset)) {
            if (find(t, "moe")) fail(c, "cost.moe", "no [cost.moe] beside the MoE preset " + quote(name), "one");
            r.model = moe_preset.model;
            r.moe = {moe_preset.n_experts, moe_preset.experts_per_token, moe_preset.expert_param_fraction};
        } else if (!model_preset(name, &r.model)) {
            std::vector<std::string> names = model_preset_names();
            for (const std::string& moe_name : hf_preset_names()) names.push_back(moe_name);
            fail(c, "cost.preset", "a model preset (" + names_list(names) + ") or [cost.target]", quote(name));
        }
    }
    if (const toml::table* moe = get_table(c, t, p, "moe")) r.moe = parse_moe(c, moe);
    r.tp = e.tp;
    r.bw_efficiency = get_num(c, t, p, "bw_efficiency", r.bw_efficiency, FRACTION);
    r.flops_efficiency = get_num(c, t, p, "flops_efficiency", r.flops_efficiency, FRACTION);
    if (find(t, "overhead_us")) r.gpu.overhead_s = get_num(c, t, p, "overhead_us", 0, OVERHEAD_US) * 1e-6;
    if (find(t, "overhead_us_per_layer"))
        r.gpu.overhead_s_per_layer = get_num(c, t, p, "overhead_us_per_layer", 0, OVERHEAD_US) * 1e-6;
    if (find(t, "allreduce_bus_gb_s"))
        r.gpu.allreduce_bus_bytes_per_s = get_num(c, t, p, "allreduce_bus_gb_s", 0, ALLREDUCE_GB_S) * 1e9;
    if (find(t, "allreduce_latency_us"))
        r.gpu.allreduce_latency_s = get_num(c, t, p, "allreduce_latency_us", 0, OVERHEAD_US) * 1e-6;
    m.host_s = get_num(c, t, p, "host_us", 0, OVERHEAD_US) * 1e-6;
    m.host_s_per_seq = get_num(c, t, p, "host_us_per_seq", 0, OVERHEAD_US) * 1e-6;
    if (find(t, "token_tile")) {
        if (m.kind != COST_MEASURED)
            fail(c, "cost.token_tile", "model = \"measured\" (the roofline is smooth)", "a roofline");
        m.token_tile = int(get_int(c, t, p, "token_tile", 0, 0, 4096));
    }
    if (find(t, "overlap")) r.overlap_n = get_num(c, t, p, "overlap", 0, OVERLAP_N);
    if (const toml::node* n = find(t, "calibrated")) {
        m.calibration = as_str(c, *n, "cost.calibrated");
        if (m.calibration.empty() || m.calibration.size() > 200)
            fail(c, "cost.calibrated", "what the roofline was fitted to, 1 to 200 characters",
                 m.calibration.empty() ? "an empty string" : std::to_string(m.calibration.size()) + " characters");
        if (m.kind == COST_MEASURED) fail(c, "cost.calibrated", "no calibration for a measured model", "one");
    }

    if (const toml::node* n = find(t, "profiles")) {
        std::string s = as_str(c, *n, "cost.profiles");
        if (s.empty()) fail(c, "cost.profiles", "a trace store path", "an empty string");
        *profiles = resolve_path(c, s);
    } else if (m.kind == COST_MEASURED) {
        fail(c, "cost.profiles", "a trace store path with profiles (cost.model = \"measured\")", "nothing");
    }
    *profile_gpu = get_str(c, t, p, "profile_gpu", "");
    *profile_model = get_str(c, t, p, "profile_model", "");
    m.drafter = parse_drafter(c, get_table(c, t, p, "drafter"));
    return m;
}

// [SECTION] policies and SLO ----------------------------------------------------------

static void parse_policies(const Ctx& c, const toml::table* t, int gamma, Scenario& s) {
    const std::string p = "policies";
    check_keys(c, t, p, {"list", "compare", "batch_table"});
    const toml::node* ln = find(t, "list");
    if (!ln) fail(c, "policies.list", "an array of policy names", "nothing");
    const toml::array& list = *as_array(c, *ln, "policies.list", "policy names");
    for (size_t i = 0; i < list.size(); i++) {
        const std::string k = "policies.list[" + std::to_string(i) + "]";
        std::string text = as_str(c, list[i], k), err;
        Policy pol;
        if (!policy_parse(text, &pol, &err)) {
            // policy_parse says "<expected>, got '<text>'"; we say the got part ourselves.
            size_t cut = err.rfind(", got ");
            fail(c, k, cut == std::string::npos ? err : err.substr(0, cut), quote(text));
        }
        if (pol.kind == POLICY_FIXED && pol.k > gamma)  // else it runs as fixed:gamma under the name fixed:K
            fail(c, k, "fixed:K with K <= engine.gamma = " + std::to_string(gamma), quote(text));
        for (const Policy& q : s.policies)
            if (q.name == pol.name) fail(c, k, "a policy not already in the list", quote(text));
        s.policies.push_back(pol);
    }

    // batch-table: (min running requests, k) rows, min strictly increasing.
    bool has_table_policy = false;
    for (const Policy& q : s.policies) has_table_policy = has_table_policy || q.kind == POLICY_BATCH_TABLE;
    std::vector<std::pair<int, int>> rows;
    if (const toml::node* n = find(t, "batch_table")) {
        if (!has_table_policy)
            fail(c, "policies.batch_table", "no batch_table unless \"batch-table\" is in policies.list", "one");
        const toml::array& a = *as_array(c, *n, "policies.batch_table", "[min running requests, k] pairs");
        for (size_t i = 0; i < a.size(); i++) {
            const std::string k = "policies.batch_table[" + std::to_string(i) + "]";
            const toml::array* row = a[i].as_array();
            if (!row || row->size() != 2) fail(c, k, "a pair [min running requests, k]", got_type(a[i]));
            int min_r = int(as_int(c, (*row)[0], k + "[0]", 1, MAX_SEQS));
            int kk = int(as_int(c, (*row)[1], k + "[1]", 0, gamma));
            if (!rows.empty() && min_r <= rows.back().first)
                fail(c, k + "[0]", "more than the previous row's " + std::to_string(rows.back().first),
                     std::to_string(min_r));
            rows.push_back({min_r, kk});
        }
    } else if (has_table_policy) {
        fail(c, "policies.batch_table", "[[min running requests, k], ...] rows (\"batch-table\" is in policies.list)",
             "nothing");
    }
    for (Policy& q : s.policies)
        if (q.kind == POLICY_BATCH_TABLE) q.batch_table = rows;

    if (const toml::node* n = find(t, "compare")) {
        const toml::array* a = n->as_array();
        if (!a || a->size() != 2)
            fail(c, "policies.compare", "two policy names from policies.list",
                 a ? "an array of " + std::to_string(a->size()) : got_type(*n));
        std::string names[2];
        for (size_t i = 0; i < 2; i++) {
            const std::string k = "policies.compare[" + std::to_string(i) + "]";
            std::string text = as_str(c, (*a)[i], k), err;
            Policy pol;
            bool found = false;
            if (policy_parse(text, &pol, &err))
                for (const Policy& q : s.policies) found = found || q.name == pol.name;
            std::string listed;
            for (const Policy& q : s.policies) listed += (listed.empty() ? "" : ", ") + q.name;
            if (!found) fail(c, k, "a policy of policies.list (" + listed + ")", quote(text));
            names[i] = pol.name;
        }
        if (names[0] == names[1]) fail(c, "policies.compare[1]", "a policy other than compare[0]", quote(names[1]));
        s.compare_a = names[0];
        s.compare_b = names[1];
    }
}

static Slo parse_slo(const Ctx& c, const toml::table* t) {
    check_keys(c, t, "slo", {"per_user_tok_s", "ttft_ms", "tpot_ms", "percentile"});
    Slo s;
    s.per_user_tok_s = get_num(c, t, "slo", "per_user_tok_s", 0, NONNEG);
    s.ttft_s = get_num(c, t, "slo", "ttft_ms", 0, NONNEG) * 1e-3;
    s.tpot_s = get_num(c, t, "slo", "tpot_ms", 0, NONNEG) * 1e-3;
    const double pct = get_num(c, t, "slo", "percentile", 90, NONNEG);
    if (pct != 50 && pct != 90 && pct != 99) {
        char got[32];
        std::snprintf(got, sizeof got, "%g", pct);
        fail(c, "slo.percentile", "50, 90 or 99", got);
    }
    s.percentile = int(pct);
    return s;
}

const char* router_name(RouterKind r) {
    switch (r) {
        case ROUTER_ROUND_ROBIN: return "round-robin";
        case ROUTER_LEAST_LOADED: return "least-loaded";
        case ROUTER_AFFINITY: return "affinity";
    }
    return "?";
}

bool router_parse(const std::string& s, RouterKind* out) {
    for (RouterKind r : {ROUTER_ROUND_ROBIN, ROUTER_LEAST_LOADED, ROUTER_AFFINITY})
        if (s == router_name(r)) {
            *out = r;
            return true;
        }
    return false;
}

static constexpr int64_t MAX_REPLICAS = 100'000;

static Fleet parse_fleet(const Ctx& c, const toml::table* t, const Workload& w) {
    const std::string p = "fleet";
    check_keys(c, t, p, {"replicas", "router"});
    Fleet f;
    f.replicas = int(get_int(c, t, p, "replicas", f.replicas, 1, MAX_REPLICAS));
    f.router = RouterKind(get_choice(c, t, p, "router", ROUTER_ROUND_ROBIN, {"round-robin", "least-loaded", "affinity"}));
    if (f.router == ROUTER_AFFINITY && w.mode == WORKLOAD_OPEN)
        fail(c, "fleet.router", "\"round-robin\" or \"least-loaded\" for an open loop (affinity pins a closed loop's users)",
             "\"affinity\"");
    if ((int64_t(w.requests) + w.warmup) * f.replicas > FLEET_MAX_COMPLETIONS)
        fail(c, "fleet.replicas",
             "at most " + std::to_string(FLEET_MAX_COMPLETIONS / (int64_t(w.requests) + w.warmup)) +
                 " (a fleet measures (workload.warmup + workload.requests) x replicas completions, at most 1e8)",
             std::to_string(f.replicas));
    return f;
}

static double parse_plan(const Ctx& c, const toml::table* t) {
    check_keys(c, t, "plan", {"gpu_hour_usd"});
    return get_num(c, t, "plan", "gpu_hour_usd", 0, NONNEG);
}

// [SECTION] cross-checks: trace store, KV capacity, cost model ------------------------------

// The run, its requests, and which requests hold what the simulator
// replays: positions, or verify steps for acceptance.source = "steps".
struct TraceFacts {
    Run run;
    std::vector<Request> requests;
    std::vector<char> has_positions;   // (requests) positions, or steps when steps
    bool steps = false;
};

static TraceFacts read_trace(const Ctx& c, AcceptanceConfig& acc, bool need_positions) {
    TraceFacts f;
    TraceDb db;
    std::vector<Run> runs;
    try {
        db = trace_db_open(acc.trace_path, TRACE_READ);
        runs = trace_db_runs(db);
    } catch (const Error& e) {
        fail_store(c, "acceptance.trace", e);
    }
    const std::string where = " of " + acc.trace_path;
    if (runs.empty()) fail(c, "acceptance.trace", "a trace store with at least one run", "a store with none");
    if (acc.run_id == 0) {
        // The only run, or the first complete one; the id is stored resolved,
        // so the simulator reads the run the checks were made on.
        auto it = runs.size() == 1 ? runs.begin()
                                   : std::find_if(runs.begin(), runs.end(), [](const Run& r) { return r.complete; });
        if (it == runs.end())
            fail(c, "acceptance.run", "a complete run" + where + " (or a run id)",
                 std::to_string(runs.size()) + " incomplete runs");
        f.run = *it;
    } else {
        auto it = std::find_if(runs.begin(), runs.end(), [&](const Run& r) { return r.id == acc.run_id; });
        if (it == runs.end()) {
            std::string ids;
            for (const Run& r : runs) ids += (ids.empty() ? "" : ", ") + std::to_string(r.id);
            fail(c, "acceptance.run", "a run id" + where + " (" + ids + ")", std::to_string(acc.run_id));
        }
        f.run = *it;
    }
    acc.run_id = f.run.id;
    acc.trace_producer = producer_name(f.run.producer);
    try {
        f.requests = trace_db_requests(db, f.run.id);
        // Reads each blob once and drops it: the store has no cheaper
        // "has positions" query, and the bundled trace takes about 2 ms.
        f.has_positions.assign(f.requests.size(), 0);
        Positions pos;
        f.steps = acc.kind == ACCEPT_STEPS;
        if (need_positions && f.steps) {
            std::set<int64_t> with_steps;
            trace_db_for_each_step(db, f.run.id, [&](const Step& st) { with_steps.insert(st.request_id); });
            for (size_t i = 0; i < f.requests.size(); i++) f.has_positions[i] = with_steps.count(f.requests[i].id) > 0;
        } else if (need_positions) {
            for (size_t i = 0; i < f.requests.size(); i++)
                f.has_positions[i] = trace_db_positions(db, f.requests[i].id, &pos);
        }
    } catch (const Error& e) {
        fail_store(c, "acceptance.trace", e);
    }
    return f;
}

// A single domain "all" is every request; otherwise each domain must occur.
static bool mix_is_all(const std::vector<DomainMix>& mix) { return mix.size() == 1 && mix[0].domain == "all"; }

// kv_got: the capacity as the message shows it ("(derived)" when it was not given).
static void check_trace(const Ctx& c, Scenario& s, const TraceFacts& f, bool use_acceptance, bool use_lengths,
                        const std::string& kv_got) {
    const int gamma = s.engine.gamma;
    const std::string run_desc = "run " + std::to_string(f.run.id) + " of " + s.acceptance.trace_path;
    if (use_acceptance && f.run.gamma < gamma)
        fail(c, "engine.gamma",
             "at most the trace run's gamma " + std::to_string(f.run.gamma) + " (acceptance.trace, " + run_desc + ")",
             std::to_string(gamma));

    // The requests the simulator replays are those with positions, even when
    // only their lengths are used (simulator/acceptance.cpp reads them so).
    std::vector<const Request*> usable;
    std::set<std::string> domains;
    for (size_t i = 0; i < f.requests.size(); i++) {
        if (!f.has_positions[i]) continue;
        usable.push_back(&f.requests[i]);
        domains.insert(f.requests[i].domain);
    }
    if (usable.empty())
        fail(c, "acceptance.trace", run_desc + " to hold requests with " + (f.steps ? "verify steps" : "positions"), "none");
    if (!mix_is_all(s.workload.mix)) {
        std::string listed;
        for (const std::string& d : domains) listed += (listed.empty() ? "" : ", ") + d;
        for (size_t i = 0; i < s.workload.mix.size(); i++)
            if (!domains.count(s.workload.mix[i].domain))
                fail(c, "workload.domain[" + std::to_string(i) + "].name",
                     "a domain of " + run_desc + " (" + listed + ")", quote(s.workload.mix[i].domain));
    }

    if (!use_lengths) return;
    // Every mix domain occurs among the usable requests (checked above), so one is found.
    const Request* largest = nullptr;
    auto tokens = [](const Request* r) { return int64_t(r->prompt_len) + r->output_len; };
    for (const Request* r : usable) {
        bool in_mix = mix_is_all(s.workload.mix);
        for (const DomainMix& d : s.workload.mix) in_mix = in_mix || d.domain == r->domain;
        if (in_mix && (!largest || tokens(r) > tokens(largest))) largest = r;
    }
    int64_t need = tokens(largest) + gamma;
    if (need > s.engine.kv_capacity_tokens)
        fail(c, "engine.kv_capacity_tokens",
             "at least " + std::to_string(need) + " tokens for the largest trace request (idx " +
                 std::to_string(largest->idx) + ": prompt " + std::to_string(largest->prompt_len) + " + output " +
                 std::to_string(largest->output_len) + " + gamma " + std::to_string(gamma) + ")",
             kv_got);
}

// KV tokens that fit beside the weights: fraction * (tp * HBM - weights) / KV
// bytes per token. Weights are the target's n_params; the drafter's few
// layers are not subtracted (the fraction leaves that headroom).
int64_t scenario_kv_derive(const Roofline& r, int tp, double fraction) {
    double weights = double(r.model.n_params) * r.model.bytes_per_weight;
    double memory = double(tp) * r.gpu.hbm_bytes;
    double per_token = roofline_kv_bytes_per_token(r.model);
    double tokens = per_token > 0 ? std::floor(fraction * (memory - weights) / per_token) : 0;
    if (!(tokens >= 1)) return 0;
    return int64_t(std::min(tokens, double(MAX_KV)));
}

static void derive_kv_capacity(const Ctx& c, Scenario& s, double fraction) {
    const Roofline& r = s.cost.roofline;
    s.engine.kv_capacity_tokens = scenario_kv_derive(r, r.tp, fraction);
    s.engine.kv_memory_fraction = fraction;
    if (s.engine.kv_capacity_tokens == 0)
        fail(c, "engine.kv_capacity_tokens",
             "a value > 0 (none can be derived: " + fmt_num(double(r.model.n_params) * r.model.bytes_per_weight / 1e9) +
                 " GB of weights leave no room in " + std::to_string(r.tp) + " x " + fmt_num(r.gpu.hbm_bytes / 1e9) +
                 " GB of HBM)",
             "nothing");
}

static void check_cost(const Ctx& c, Scenario& s, double kv_fraction, const std::string& profiles,
                       const std::string& profile_gpu, const std::string& profile_model) {
    bool needs_draft = false;
    for (const Policy& p : s.policies) needs_draft = needs_draft || policy_draft_len(p, s.engine.gamma) > 0;
    if (!needs_draft) s.cost.drafter.kind = DRAFTER_NONE;

    if (s.cost.kind == COST_MEASURED) {
        if (s.engine.kv_capacity_tokens == 0)
            fail(c, "engine.kv_capacity_tokens", "a value > 0 (cost.model = \"measured\" cannot derive it)",
                 "nothing");
        try {
            TraceDb db = trace_db_open(profiles, TRACE_READ);
            s.cost.measured = measured_cost_load(db, profile_gpu, profile_model);
        } catch (const Error& e) {
            fail_store(c, "cost.profiles", e);
        }
        cost_validate(s.cost, needs_draft, c.file + ": cost.profiles");
        return;
    }
    cost_validate(s.cost, needs_draft, c.file + ": cost");
    if (s.engine.kv_capacity_tokens == 0) derive_kv_capacity(c, s, kv_fraction);
}

// Distribution lengths: the longest request the distributions can draw must fit.
static void check_dist_fit(const Ctx& c, const Scenario& s, const std::string& kv_got) {
    const Workload& w = s.workload;
    int64_t need = int64_t(dist_max(w.prompt_len)) + dist_max(w.output_len) + s.engine.gamma;
    if (need > s.engine.kv_capacity_tokens)
        fail(c, "engine.kv_capacity_tokens",
             "at least " + std::to_string(need) + " tokens for the longest request the distributions allow (prompt " +
                 std::to_string(dist_max(w.prompt_len)) + " + output " + std::to_string(dist_max(w.output_len)) +
                 " + gamma " + std::to_string(s.engine.gamma) + ")",
             kv_got);
}

// Log lengths: the log's largest request must fit.
static void check_log_fit(const Ctx& c, const Scenario& s, const std::string& kv_got) {
    const LogRequest* largest = nullptr;
    auto tokens = [](const LogRequest& q) { return int64_t(std::max(q.prompt_len, 1)) + std::max(q.output_len, 1); };
    for (const LogRequest& q : s.workload.log->requests)
        if (!largest || tokens(q) > tokens(*largest)) largest = &q;
    const int64_t need = tokens(*largest) + s.engine.gamma;
    if (need > s.engine.kv_capacity_tokens)
        fail(c, "engine.kv_capacity_tokens",
             "at least " + std::to_string(need) + " tokens for the largest request of " + s.workload.log->path +
                 " (prompt " + std::to_string(largest->prompt_len) + " + output " +
                 std::to_string(largest->output_len) + " + gamma " + std::to_string(s.engine.gamma) + ")",
             kv_got);
}

// [SECTION] entry points ----------------------------------------------------------------------

Scenario scenario_parse(const std::string& toml_text, const std::string& path) {
    Ctx c{path, fs::path(path).parent_path()};
    toml::table root;
#if TOML_EXCEPTIONS
    try {
        root = toml::parse(toml_text, path);
    } catch (const toml::parse_error& e) {
        throw_line(path + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column) +
                   ": " + std::string(e.description()));
    }
#else
    toml::parse_result res = toml::parse(toml_text, path);
    if (!res) {
        const toml::parse_error& e = res.error();
        throw_line(path + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column) +
                   ": " + std::string(e.description()));
    }
    root = std::move(res).table();
#endif
    const toml::table* top = &root;
    check_keys(c, top, "",
               {"name", "description", "seed", "workload", "engine", "acceptance", "cost", "policies", "slo", "plan",
                "fleet"});

    Scenario s;
    s.path = path;
    s.text_hash = 14695981039346656037ull;  // FNV-1a 64
    for (unsigned char ch : toml_text) s.text_hash = (s.text_hash ^ ch) * 1099511628211ull;
    s.name = get_str(c, top, "", "name", fs::path(path).stem().string());
    s.description = get_str(c, top, "", "description", "");
    s.seed = uint64_t(get_int(c, top, "", "seed", 1, 0, MAX_I64));

    double kv_fraction = 0.9;
    s.engine = parse_engine(c, get_table(c, top, "", "engine"), &kv_fraction);
    s.acceptance = parse_acceptance(c, get_table(c, top, "", "acceptance"));
    s.workload = parse_workload(c, get_table(c, top, "", "workload"), s.acceptance, s.engine.gamma);
    std::string profiles, profile_gpu, profile_model;
    s.cost = parse_cost(c, get_table(c, top, "", "cost"), s.engine, &profiles, &profile_gpu, &profile_model);
    parse_policies(c, get_table(c, top, "", "policies"), s.engine.gamma, s);
    s.slo = parse_slo(c, get_table(c, top, "", "slo"));
    s.gpu_hour_usd = parse_plan(c, get_table(c, top, "", "plan"));
    s.fleet = parse_fleet(c, get_table(c, top, "", "fleet"), s.workload);
    if (s.workload.window_from_log && s.fleet.replicas > 1) {  // a fleet measures replicas x the window
        s.workload.warmup /= s.fleet.replicas;
        s.workload.requests = std::max(1, s.workload.requests / s.fleet.replicas);
    }

    // Cross-checks, cheapest first; the trace store is read once.
    bool kv_derived = s.engine.kv_capacity_tokens == 0;
    check_cost(c, s, kv_fraction, profiles, profile_gpu, profile_model);
    const std::string kv_got = std::to_string(s.engine.kv_capacity_tokens) + (kv_derived ? " (derived)" : "");
    bool use_acceptance = s.acceptance.kind == ACCEPT_TRACE || s.acceptance.kind == ACCEPT_STEPS;
    bool use_lengths = s.workload.lengths == LENGTHS_TRACE;
    if (s.workload.lengths == LENGTHS_DIST) check_dist_fit(c, s, kv_got);
    if (s.workload.lengths == LENGTHS_LOG) check_log_fit(c, s, kv_got);
    if (!s.acceptance.trace_path.empty()) {
        // A trace nothing uses is still opened, so a wrong path is caught.
        TraceFacts f = read_trace(c, s.acceptance, use_acceptance || use_lengths);
        if (use_acceptance || use_lengths) check_trace(c, s, f, use_acceptance, use_lengths, kv_got);
    }
    return s;
}

Scenario scenario_load(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw_line(path + ": cannot read");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in || in.bad()) throw_line(path + ": cannot read");
    return scenario_parse(text.str(), path);
}

}  // namespace sp
