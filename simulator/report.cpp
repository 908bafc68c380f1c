// report.cpp: see report.h.
#include "simulator/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "simulator/workload.h"

namespace sp {

using ojson = nlohmann::ordered_json;

static const char* load_name(const Scenario& sc) { return sc.workload.mode == WORKLOAD_CLOSED ? "users" : "req/s"; }

static double point_load(const PointResult& p) { return p.concurrency ? p.concurrency : p.rate; }

std::string report_load_text(const Scenario& sc, double load) {
    char buf[48];
    if (sc.workload.mode == WORKLOAD_CLOSED) std::snprintf(buf, sizeof buf, "%g user%s", load, load == 1 ? "" : "s");
    else std::snprintf(buf, sizeof buf, "%g req/s", load);
    return buf;
}

std::string report_percentile_name(double pct) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "p%g", pct);
    return buf;
}

static double quantile_ms(const Sketch& s, double pct) { return 1e3 * sketch_quantile(s, pct / 100); }

// The four latency distributions a report names, in the order it prints them.
struct LatencyOf {
    const char* name;   // in JSON and CSV
    const char* label;  // in tables
    const Sketch& sketch;
};
static std::vector<LatencyOf> latencies_of(const PointResult& p) {
    return {{"ttft", "TTFT", p.dist.ttft}, {"tpot", "TPOT", p.dist.tpot}, {"e2e", "E2E", p.dist.e2e},
            {"itl", "ITL", p.dist.itl}};
}

// The relative half-width in %, or "-" when too few batches said anything.
static std::string ci_percent(double half, double value) {
    if (!(half > 0 && value > 0)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", 100 * half / value);
    return buf;
}

// The facts every output carries (report_context_line, the JSON's "context").
struct Context {
    std::string model, gpu, cost, acceptance, hash;  // cost: "measured", "calibrated roofline" or "uncalibrated roofline"
    bool synthetic = false;  // acceptance not measured by an engine: a parametric source or a synthetic trace
};

static Context context_of(const Scenario& sc) {
    Context c;
    const bool measured = sc.cost.kind == COST_MEASURED;
    c.model = measured ? sc.cost.measured.model : sc.cost.roofline.model.name;
    c.gpu = measured ? sc.cost.measured.gpu : sc.cost.roofline.gpu.name;
    c.cost = measured ? "measured" : sc.cost.calibration.empty() ? "uncalibrated roofline" : "calibrated roofline";
    const AcceptanceConfig& a = sc.acceptance;
    if (a.kind == ACCEPT_TRACE || a.kind == ACCEPT_STEPS) {
        c.acceptance = (a.kind == ACCEPT_STEPS ? "steps " : "trace ") + a.trace_path + " run " + std::to_string(a.run_id) + " (" + a.trace_producer + ")";
        c.synthetic = a.trace_producer == "synthetic";
    } else {
        c.acceptance = a.kind == ACCEPT_IID ? "iid" : "parametric";
        c.synthetic = true;
    }
    char h[20];
    std::snprintf(h, sizeof h, "%016llx", static_cast<unsigned long long>(sc.text_hash));
    c.hash = h;
    return c;
}

std::string report_comm_text(const CostModel& m) {
    if (m.kind == COST_MEASURED) return "";
    char buf[96];
    std::snprintf(buf, sizeof buf, "all-reduce at %g GB/s bus, %g us a call (assumed, not measured)",
                  m.roofline.gpu.allreduce_bus_bytes_per_s * 1e-9, m.roofline.gpu.allreduce_latency_s * 1e6);
    return buf;
}

std::string report_context_line(const Scenario& sc, const std::string& version) {
    const Context c = context_of(sc);
    const std::string comm = sc.engine.tp > 1 ? report_comm_text(sc.cost) : "";
    return "specplan " + (version.empty() ? std::string("(unknown build)") : version) + "; " + sc.path + " (fnv1a " +
           c.hash + "); " + c.model + " on " + c.gpu + ", " + c.cost + " cost" +
           (sc.cost.calibration.empty() ? std::string() : " (" + sc.cost.calibration + ")") +
           (comm.empty() ? std::string() : "; tp " + std::to_string(sc.engine.tp) + " " + comm) + "; gamma " +
           std::to_string(sc.engine.gamma) + ", tp " + std::to_string(sc.engine.tp) +
           (sc.engine.draft_max_running > 0
                ? ", no drafts above " + std::to_string(sc.engine.draft_max_running) + " running"
                : std::string()) +
           (sc.fleet.replicas > 1
                ? "; fleet of " + std::to_string(sc.fleet.replicas) + " replicas, " + router_name(sc.fleet.router)
                : std::string()) +
           "; acceptance: " + c.acceptance + (c.synthetic ? "; SYNTHETIC acceptance" : "");
}

void report_table(std::FILE* out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                  const std::string& version, const std::vector<double>& latency) {
    std::fprintf(out, "%s: %s\n", sc.path.c_str(), sc.name.c_str());
    std::fprintf(out, "%s\n", report_context_line(sc, version).c_str());
    // saturation in plain sight: requests running per step, KV reserved, the wait for admission
    // +-95% columns: the confidence half-widths (batch means) of the column before, relative
    std::fprintf(out, "%-14s %7s %10s %6s %9s %10s %6s %9s %9s %7s %7s %7s %8s %6s %9s\n", "policy", load_name(sc),
                 "tok/s/GPU", "+-95%", "input", "user mean", "+-95%", "user p90", "TTFT p90", "tau", "verify", "waste",
                 "running", "KV", "wait p90");
    bool any_short = false;
    for (size_t i = 0; i < r.points.size(); i++) {
        const PointResult& p = r.points[i];
        if (i && i % r.loads.size() == 0) std::fprintf(out, "\n");
        any_short = any_short || p.short_window;
        std::fprintf(out,
                     "%-14s %7g %10.0f %6s %9.0f %10.1f %6s %9.1f %8.3fs %7.2f %7.2f %6.1f%% %8.1f %5.0f%% %8.3fs%s%s\n",
                     p.policy.c_str(), point_load(p), p.throughput, ci_percent(p.throughput_ci95, p.throughput).c_str(),
                     p.input_throughput, p.per_user.mean, ci_percent(p.per_user_mean_ci95, p.per_user.mean).c_str(),
                     p.per_user.p90, p.ttft.p90, p.tau, p.mean_verified, 100 * p.waste, p.mean_running, 100 * p.kv_use,
                     p.queue_wait.p90, p.unstable ? "  UNSTABLE" : "", p.short_window ? "  SHORT" : "");
    }
    std::fprintf(out, "(input: prompt tok/s/GPU of the requests measured; total = input + output)\n");
    if (any_short)
        std::fprintf(out, "SHORT: the window measured fewer than %d completions a user after %d a user of warm-up; "
                          "it may hold the start-up transient (leave --requests and --warmup out to size it)\n",
                     WINDOW_PER_USER, WARMUP_PER_USER);
    if (!latency.empty()) {
        std::fprintf(out, "\nlatency, ms\n%-14s %7s", "policy", load_name(sc));
        for (const LatencyOf& l : latencies_of(PointResult{}))
            for (double pct : latency)
                std::fprintf(out, " %10s", (std::string(l.label) + " " + report_percentile_name(pct)).c_str());
        std::fprintf(out, "\n");
        for (size_t i = 0; i < r.points.size(); i++) {
            const PointResult& p = r.points[i];
            if (i && i % r.loads.size() == 0) std::fprintf(out, "\n");
            std::fprintf(out, "%-14s %7g", p.policy.c_str(), point_load(p));
            for (const LatencyOf& l : latencies_of(p))
                for (double pct : latency) std::fprintf(out, " %10.1f", quantile_ms(l.sketch, pct));
            std::fprintf(out, "\n");
        }
    }
    std::fprintf(out, "\ncapacity at SLO (%s): the most %s meeting every SLO\n", slo_text(sc.slo).c_str(),
                 load_name(sc));
    for (const Capacity& c : r.capacity) {
        if (!c.met)
            std::fprintf(out, "  %-14s misses the SLO at every load\n", c.policy.c_str());
        else if (c.bounded)
            std::fprintf(out, "  %-14s %9.0f tok/s/GPU at %g %s (one more misses %s)\n", c.policy.c_str(), c.throughput,
                         c.load, load_name(sc), slo_miss_name(c.binding));
        else
            std::fprintf(out, "  %-14s %9.0f tok/s/GPU at %g %s (and more: no load tried missed)\n", c.policy.c_str(),
                         c.throughput, c.load, load_name(sc));
    }
    const Headline& h = r.headline;
    if (!h.a.empty()) {
        std::fprintf(out, "%s vs %s:", h.a.c_str(), h.b.c_str());
        if (h.throughput_gain > 0) std::fprintf(out, " throughput at SLA x%.2f", h.throughput_gain);
        else std::fprintf(out, " throughput at SLA n/a");
        if (h.per_user_gain > 0)
            std::fprintf(out, ", per-user speed at %.0f tok/s/GPU x%.2f\n", h.matched_throughput, h.per_user_gain);
        else
            std::fprintf(out, ", per-user speed at matched throughput n/a\n");
    }
    (void)policies;
}

void report_point(std::FILE* out, const Scenario& sc, const PointResult& p, const std::vector<double>& percentiles) {
    std::fprintf(out, "%s: %s, policy %s, %g %s", sc.path.c_str(), sc.name.c_str(), p.policy.c_str(), point_load(p),
                 load_name(sc));
    if (sc.fleet.replicas > 1)  // rates and busy are then a replica's, the mean over the fleet
        std::fprintf(out, " over %d replicas (%s)", sc.fleet.replicas, router_name(sc.fleet.router));
    std::fprintf(out, "\n  throughput     %.0f +- %.0f tok/s/GPU (95%%), %.2f req/s%s, busy %.1f%%\n", p.throughput,
                 p.throughput_ci95, p.request_rate, sc.fleet.replicas > 1 ? " a replica" : "", 100 * p.busy_fraction);
    std::fprintf(out, "  tokens         input %.0f, total %.0f tok/s/GPU\n", p.input_throughput,
                 p.input_throughput + p.throughput);
    std::fprintf(out, "  per-user tok/s mean %.1f +- %.1f  p50 %.1f  p90 %.1f  p99 %.1f\n", p.per_user.mean,
                 p.per_user_mean_ci95, p.per_user.p50, p.per_user.p90, p.per_user.p99);
    for (const LatencyOf& l : latencies_of(p)) {
        std::fprintf(out, "  %-4s ms        mean %.2f", l.label, 1e3 * sketch_mean(l.sketch));
        for (double pct : percentiles)
            std::fprintf(out, "  %s %.2f", report_percentile_name(pct).c_str(), quantile_ms(l.sketch, pct));
        std::fprintf(out, "\n");
    }
    std::fprintf(out, "  speculation    tau %.2f, verified %.2f/request/step, waste %.1f%%\n", p.tau, p.mean_verified,
                 100 * p.waste);
    std::fprintf(out, "  batch          %.1f tokens/step, %.1f decoding requests/step\n", p.mean_batch_tokens,
                 p.mean_running);
    std::fprintf(out, "  goodput        %.1f%% of requests (%.2f req/s): %s\n", 100 * p.goodput_fraction,
                 p.goodput_rate, goodput_text(sc.slo).c_str());
    std::fprintf(out, "  window         %lld requests after %d warm-up, %lld steps, %lld tokens, %.2f s simulated\n",
                 (long long)p.n_requests, p.warmup, (long long)p.n_steps, (long long)p.n_tokens, p.window_s);
    if (p.short_window)
        std::fprintf(out, "  SHORT          fewer than %d measured completions a user after %d a user of warm-up: "
                          "the start-up transient may be in it\n",
                     WINDOW_PER_USER, WARMUP_PER_USER);
    if (p.unstable) std::fprintf(out, "  UNSTABLE       arrivals outpace service: the queue grows without bound\n");
}

static ojson summary_json(const Summary& s) {
    ojson j;
    j["mean"] = s.mean;
    j["p50"] = s.p50;
    j["p90"] = s.p90;
    j["p99"] = s.p99;
    return j;
}

// A half-width that could not be estimated (fewer than 2 batches) is null, never 0.
static ojson ci_json(double half) { return half > 0 ? ojson(half) : ojson(nullptr); }

void report_json(std::ostream& out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                 const std::string& version, const std::vector<double>& percentiles) {
    ojson j;
    j["scenario"] = sc.name;
    j["seed"] = sc.seed;
    const Context ctx = context_of(sc);
    j["context"] = {{"specplan", version.empty() ? ojson(nullptr) : ojson(version)},
                    {"scenario_file", sc.path},
                    {"scenario_fnv1a", ctx.hash},
                    {"model", ctx.model},
                    {"gpu", ctx.gpu},
                    {"gamma", sc.engine.gamma},
                    {"tp", sc.engine.tp},
                    {"replicas", sc.fleet.replicas},
                    {"router", router_name(sc.fleet.router)},
                    {"cost_model", sc.cost.kind == COST_MEASURED ? "measured" : "roofline"},
                    {"cost_calibration", sc.cost.kind == COST_MEASURED      ? ojson("measured")
                                         : sc.cost.calibration.empty() ? ojson(nullptr)
                                                                       : ojson(sc.cost.calibration)},
                    {"acceptance", ctx.acceptance},
                    {"synthetic_acceptance", ctx.synthetic}};
    j["load_kind"] = sc.workload.mode == WORKLOAD_CLOSED ? "concurrency" : "rate";
    j["percentiles"] = percentiles;
    j["slo"] = {{"per_user_tok_s", sc.slo.per_user_tok_s},
                {"ttft_s", sc.slo.ttft_s},
                {"tpot_s", sc.slo.tpot_s},
                {"percentile", sc.slo.percentile}};
    ojson pols = ojson::array();
    for (const Policy& p : policies) pols.push_back(p.name);
    j["policies"] = pols;
    j["loads"] = r.loads;
    ojson pts = ojson::array();
    for (const PointResult& p : r.points) {
        ojson q;
        q["policy"] = p.policy;
        q["concurrency"] = p.concurrency;
        q["rate"] = p.rate;
        q["throughput_tok_s_gpu"] = p.throughput;
        q["throughput_ci95"] = ci_json(p.throughput_ci95);
        q["input_throughput_tok_s_gpu"] = p.input_throughput;
        q["total_throughput_tok_s_gpu"] = p.input_throughput + p.throughput;
        q["request_rate"] = p.request_rate;
        q["per_user_tok_s"] = summary_json(p.per_user);
        q["per_user_tok_s"]["mean_ci95"] = ci_json(p.per_user_mean_ci95);
        q["ttft_s"] = summary_json(p.ttft);
        q["tpot_s"] = summary_json(p.tpot);
        q["e2e_s"] = summary_json(p.e2e);
        q["goodput_fraction"] = p.goodput_fraction;
        q["goodput_rate"] = p.goodput_rate;
        q["tau"] = p.tau;
        q["mean_verified"] = p.mean_verified;
        q["waste"] = p.waste;
        q["mean_batch_tokens"] = p.mean_batch_tokens;
        q["busy_fraction"] = p.busy_fraction;
        q["mean_running"] = p.mean_running;
        q["kv_use_fraction"] = p.kv_use;
        q["queue_wait_s"] = summary_json(p.queue_wait);
        q["itl_s"] = summary_json(p.itl);
        ojson lat;
        for (const LatencyOf& l : latencies_of(p)) {
            ojson m;
            m["mean"] = 1e3 * sketch_mean(l.sketch);
            for (double pct : percentiles) m[report_percentile_name(pct)] = quantile_ms(l.sketch, pct);
            lat[l.name] = m;
        }
        q["latency_ms"] = lat;
        ojson itl_ms = ojson::array();
        for (double pct : REPORT_ITL_DISTRIBUTION) itl_ms.push_back(quantile_ms(p.dist.itl, pct));
        q["itl_distribution"] = {{"percentiles", REPORT_ITL_DISTRIBUTION}, {"ms", itl_ms}, {"n", p.dist.itl.n}};
        q["mean_output_len"] = p.mean_output_len;
        q["n_requests"] = p.n_requests;
        q["n_steps"] = p.n_steps;
        q["n_tokens"] = p.n_tokens;
        q["window_s"] = p.window_s;
        q["warmup"] = p.warmup;
        q["short_window"] = p.short_window;
        q["unstable"] = p.unstable;
        pts.push_back(q);
    }
    j["points"] = pts;
    j["pareto"] = r.pareto;
    ojson caps = ojson::array();
    for (const Capacity& c : r.capacity)
        caps.push_back({{"policy", c.policy},
                        {"met", c.met},
                        {"throughput_tok_s_gpu", c.throughput},
                        {"load", c.load},
                        {"bounded", c.bounded},
                        {"binding", c.bounded ? slo_miss_name(c.binding) : ""},
                        {"best_point_throughput", c.best_point_throughput}});
    j["capacity_at_slo"] = caps;
    // a ratio that does not apply is null, never 0
    auto ratio = [](double v) { return v > 0 ? ojson(v) : ojson(nullptr); };
    if (!r.headline.a.empty())
        j["headline"] = {{"a", r.headline.a}, {"b", r.headline.b}, {"throughput_gain", ratio(r.headline.throughput_gain)},
                         {"matched_throughput", ratio(r.headline.matched_throughput)},
                         {"per_user_gain", ratio(r.headline.per_user_gain)}};
    out << j.dump(1) << "\n";
}

std::string csv_number(double v, int digits) {
    if (!std::isfinite(v)) return "";
    if (v == 0) return "0";
    const double mag = std::fabs(v);
    char buf[64];
    if (mag >= 1e15 || mag < 1e-9) {  // outside plain decimal's comfortable range
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        return buf;
    }
    const int decimals = std::max(0, digits - 1 - static_cast<int>(std::floor(std::log10(mag))));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string out = buf;
    if (out.find('.') != std::string::npos) {  // 12.50 -> 12.5, 100.00 -> 100
        out.erase(out.find_last_not_of('0') + 1);
        if (out.back() == '.') out.pop_back();
    }
    if (out == "-0") out = "0";
    return out;
}

// The CSV's columns: units in the names (_ms, _s, _tok_s, ...), latencies in
// ms but for whole requests (e2e, in s); JSON keeps its own names, in seconds.
static const char* const CSV_HEADER =
    "specplan,scenario,scenario_fnv1a,model,gpu,cost_model,cost_calibration,acceptance,synthetic_acceptance,"
    "policy,concurrency,rate_req_s,tok_s_per_gpu,request_rate_req_s,per_user_mean_tok_s,per_user_p50_tok_s,"
    "per_user_p90_tok_s,per_user_p99_tok_s,ttft_mean_ms,ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,tpot_mean_ms,"
    "tpot_p90_ms,e2e_mean_s,e2e_p90_s,goodput_fraction,tau_tok_per_req_step,mean_verified_tok,waste_fraction,"
    "mean_batch_tok,busy_fraction,mean_running_req,kv_use_fraction,queue_wait_p50_ms,queue_wait_p90_ms,"
    "itl_mean_ms,itl_p50_ms,itl_p90_ms,itl_p99_ms,tok_s_per_gpu_ci95,per_user_mean_tok_s_ci95,input_tok_s_per_gpu,"
    "total_tok_s_per_gpu";  // then <metric>_ms_<percentile> per --percentiles, warmup, short_window, n_requests,
                            // unstable (the last column)

// A text cell, quoted when it holds a comma, a quote or a line break (RFC 4180).
static std::string csv_text(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
}

void report_csv(std::ostream& out, const Scenario& sc, const SweepResult& r, const std::string& version,
                const std::vector<double>& percentiles) {
    // every row carries the context, so a row pasted alone still says where it came from
    const Context ctx = context_of(sc);
    const std::string context = csv_text(version) + ',' + csv_text(sc.path) + ',' + ctx.hash + ',' +
                                csv_text(ctx.model) + ',' + csv_text(ctx.gpu) + ',' + csv_text(ctx.cost) + ',' +
                                csv_text(sc.cost.calibration) + ',' + csv_text(ctx.acceptance) + ',' +
                                (ctx.synthetic ? "true" : "false");
    out << CSV_HEADER;
    for (const LatencyOf& l : latencies_of(PointResult{}))
        for (double pct : percentiles) out << ',' << l.name << "_ms_" << report_percentile_name(pct);
    out << ",warmup,short_window,n_requests,unstable\n";
    for (const PointResult& p : r.points) {
        const double ms = 1e3;
        const double row[] = {p.rate, p.throughput, p.request_rate, p.per_user.mean, p.per_user.p50, p.per_user.p90,
                              p.per_user.p99, p.ttft.mean * ms, p.ttft.p50 * ms, p.ttft.p90 * ms, p.ttft.p99 * ms,
                              p.tpot.mean * ms, p.tpot.p90 * ms, p.e2e.mean, p.e2e.p90, p.goodput_fraction, p.tau,
                              p.mean_verified, p.waste, p.mean_batch_tokens, p.busy_fraction, p.mean_running,
                              p.kv_use, p.queue_wait.p50 * ms, p.queue_wait.p90 * ms, p.itl.mean * ms,
                              p.itl.p50 * ms, p.itl.p90 * ms, p.itl.p99 * ms,
                              // a half-width that could not be estimated is an empty cell
                              p.throughput_ci95 > 0 ? p.throughput_ci95 : NAN,
                              p.per_user_mean_ci95 > 0 ? p.per_user_mean_ci95 : NAN, p.input_throughput,
                              p.input_throughput + p.throughput};
        // the policy name is written bare (names hold no commas or quotes)
        out << context << ',' << p.policy << ',' << p.concurrency;
        for (double v : row) out << ',' << csv_number(v);
        for (const LatencyOf& l : latencies_of(p))
            for (double pct : percentiles) out << ',' << csv_number(quantile_ms(l.sketch, pct));
        out << ',' << p.warmup << ',' << (p.short_window ? "true" : "false") << ',' << p.n_requests << ','
            << (p.unstable ? "true" : "false") << '\n';
    }
}

}  // namespace sp
