// sweep_cli.cpp: the flags `sweep` and `live` share (sweep_cli.h).
#include "cli/sweep_cli.h"

#include "cli/args.h"
#include "simulator/report.h"
#include "simulator/workload.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace sp {

std::vector<double> parse_loads(const std::string& text, const char* flag) {
    std::vector<double> out;
    for (const std::string& item : split_list(text)) {
        double v = parse_number(item, flag, text);
        if (!(v > 0) || !std::isfinite(v))
            throw Error(std::string(flag) + " '" + text + "': expected positive numbers, got '" + item + "'");
        if (!out.empty() && v <= out.back()) throw Error(std::string(flag) + " '" + text + "': expected increasing values");
        out.push_back(v);
    }
    return out;
}

std::vector<Policy> parse_policies(const std::string& text, const Scenario& sc, const char* flag) {
    std::vector<Policy> out;
    for (const std::string& item : split_list(text)) {
        Policy p;
        std::string err;
        if (!policy_parse(item, &p, &err)) throw Error(std::string(flag) + ": " + err);
        if (p.kind == POLICY_BATCH_TABLE) {
            for (const Policy& q : sc.policies)
                if (q.kind == POLICY_BATCH_TABLE) p.batch_table = q.batch_table;
            if (p.batch_table.empty())
                throw Error(std::string(flag) + ": batch-table needs policies.batch_table in the scenario");
        }
        if (p.kind == POLICY_FIXED && p.k > sc.engine.gamma)
            throw Error(std::string(flag) + " '" + item + "': expected fixed:K with K <= engine.gamma = " +
                        std::to_string(sc.engine.gamma) + " (" + sc.path + " drafts at most " +
                        std::to_string(sc.engine.gamma) + " tokens per step)");
        out.push_back(p);
    }
    return out;
}

std::vector<double> scenario_loads(const Scenario& sc) {
    if (sc.workload.mode == WORKLOAD_OPEN) return sc.workload.rates;
    return std::vector<double>(sc.workload.concurrency.begin(), sc.workload.concurrency.end());
}

void load_add_flags(CLI::App* cmd, LoadFlags* f, bool one) {
    cmd->add_option("--concurrency", f->concurrency,
                    one ? "users, a closed-loop scenario only (default: the scenario's largest load)"
                        : "comma-separated users, a closed-loop scenario only (default: the scenario's)");
    cmd->add_option(one ? "--rate" : "--rates", f->rate,
                    one ? "requests/s, an open-loop scenario only (default: the scenario's largest load)"
                        : "comma-separated requests/s, an open-loop scenario only (default: the scenario's)");
}

std::vector<double> loads_from_flags(const Scenario& sc, const LoadFlags& f, bool one) {
    const bool closed = sc.workload.mode == WORKLOAD_CLOSED;
    const char* rate_flag = one ? "--rate" : "--rates";
    const char* flag = closed ? "--concurrency" : rate_flag;
    // The other loop's flag would be read as this loop's load: refused.
    if (closed && !f.rate.empty())
        throw Error(std::string(rate_flag) + ": " + sc.path +
                    " is a closed loop (workload.mode = \"closed\"), its load is users: give --concurrency");
    if (!closed && !f.concurrency.empty())
        throw Error("--concurrency: " + sc.path + " is an open loop (workload.mode = \"open\"), its load is "
                    "requests/s: give " + rate_flag);
    const std::string& text = closed ? f.concurrency : f.rate;
    if (text.empty()) {
        std::vector<double> loads = scenario_loads(sc);
        if (one) loads.erase(loads.begin(), loads.end() - 1);  // the largest
        return loads;
    }
    if (one && text.find(',') != std::string::npos)
        throw Error(std::string(flag) + " '" + text + "': expected one value (sweep takes a list)");
    if (closed)  // users: whole numbers >= 1 (0, -5 or nan would otherwise fall back to the scenario's load)
        for (const std::string& item : split_list(text)) {
            const double v = parse_number(item, flag, text);
            if (!(v >= 1 && v <= INT32_MAX && v == std::floor(v)))
                throw Error(std::string(flag) + " '" + text + "': expected " +
                            (one ? "a whole number of users >= 1" : "whole numbers of users >= 1") + ", got '" +
                            item + "'");
        }
    return parse_loads(text, flag);
}

// The simulator's state per user of a closed loop, bytes: its request slot
// (SimRequest with its confidence ring, 3 x gamma floats), its sequence
// number, its pending event and its places in the waiting and running index
// vectors. Measured as the peak RSS slope between 1e5 and 1e6 users:
// 222 bytes a user on teaching.toml (gamma 4), 256 on default.toml (gamma
// 7), so about 175 + 12 gamma. The estimate doubles that, 384 + 24 gamma,
// since every container may hold twice its size while it grows. An open
// loop's memory follows its queue, not its rate: not estimated here.
static constexpr int64_t SIM_BYTES_PER_USER = 384, SIM_BYTES_PER_USER_GAMMA = 24;
// Generous: 16 GiB of estimate is about 30 million users at gamma 7 (about
// 8 GiB measured), far past any replica; a larger closed loop would die of
// std::bad_alloc on most machines, so it is refused before it starts.
static constexpr int64_t SIM_MEMORY_LIMIT_BYTES = int64_t(16) << 30;

int64_t sim_memory_estimate(const Scenario& sc, double load) {
    if (sc.workload.mode != WORKLOAD_CLOSED) return 0;
    return static_cast<int64_t>(load) * (SIM_BYTES_PER_USER + SIM_BYTES_PER_USER_GAMMA * sc.engine.gamma);
}

void check_sim_memory(const Scenario& sc, const std::vector<double>& loads, const std::string& what) {
    for (double load : loads) {
        const int64_t need = sim_memory_estimate(sc, load);
        if (need <= SIM_MEMORY_LIMIT_BYTES) continue;
        char text[160];
        std::snprintf(text, sizeof text,
                      "%.0f users would need up to %.1f GiB of simulator state; expected at most %.0f GiB "
                      "(about %lld users at gamma %d)",
                      load, double(need) / double(1 << 30), double(SIM_MEMORY_LIMIT_BYTES) / double(1 << 30),
                      static_cast<long long>(SIM_MEMORY_LIMIT_BYTES /
                                             (SIM_BYTES_PER_USER + SIM_BYTES_PER_USER_GAMMA * sc.engine.gamma)),
                      sc.engine.gamma);
        throw Error(what + ": " + std::string(text));
    }
}

void keep_headline_if_run(Scenario& sc, const std::vector<Policy>& policies) {
    auto has = [&](const std::string& n) {
        for (const Policy& p : policies)
            if (p.name == n) return true;
        return false;
    };
    if (!has(sc.compare_a) || !has(sc.compare_b)) sc.compare_a = sc.compare_b = "";
}

// whole_number, or "auto" handed over as `auto_value`.
static CLI::Validator whole_or_auto(uint64_t lo, const std::string& what, const char* auto_value) {
    const CLI::Validator whole = whole_number(lo, INT32_MAX, what + " or auto");
    return CLI::Validator(
        [whole, auto_value](std::string& text) -> std::string {
            if (text != "auto") return whole(text);
            text = auto_value;
            return "";
        },
        what + " or auto");
}

void window_add_flags(CLI::App* cmd, WindowFlags* w) {
    cmd->add_option("--requests", w->requests,
                    "requests measured per point, or auto: 10 a user, at least 500 (default: the scenario's)")
        ->transform(whole_or_auto(1, "a whole number of requests >= 1", "0"));
    cmd->add_option("--warmup", w->warmup,
                    "completions discarded before measuring, or auto: 2 a user, at least 100 (default: the "
                    "scenario's)")
        ->transform(whole_or_auto(0, "a whole number of completions >= 0", "-1"));
}

void window_apply(Scenario& sc, const WindowFlags& w) {
    if (w.requests >= 0) sc.workload.requests = w.requests;
    if (w.warmup >= -1) sc.workload.warmup = w.warmup;
}

void window_warn(const Scenario& sc, const std::vector<double>& loads) {
    double worst = 0;
    for (double load : loads)
        if (workload_window(sc.workload, load).short_window) worst = load;
    if (worst <= 0) return;
    const WindowSize ws = workload_window(sc.workload, worst);
    std::fprintf(stderr,
                 "warning: at %.0f users the window measures %d requests after %d of warm-up (%.1f and %.1f a "
                 "user); steady state needs %d and %d a user (%lld and %lld): the results may hold the start-up "
                 "transient. Leave out --requests/--warmup (workload.requests/warmup) to size the window by the load\n",
                 worst, ws.requests, ws.warmup, ws.requests / worst, ws.warmup / worst, WINDOW_PER_USER,
                 WARMUP_PER_USER, static_cast<long long>(WINDOW_PER_USER * worst),
                 static_cast<long long>(WARMUP_PER_USER * worst));
}

std::vector<double> parse_percentiles(const std::string& text) {
    if (text.empty()) return REPORT_PERCENTILES;
    std::vector<double> out;
    for (const std::string& item : split_list(text)) {
        const double v = parse_number(item, "--percentiles", text);
        if (!(v > 0 && v <= 100))
            throw Error("--percentiles '" + text + "': expected percentiles in (0, 100], got '" + item + "'");
        if (!out.empty() && v <= out.back())
            throw Error("--percentiles '" + text + "': expected increasing percentiles, got '" + item + "' after " +
                        report_percentile_name(out.back()).substr(1));
        out.push_back(v);
    }
    if (out.size() > 16)
        throw Error("--percentiles '" + text + "': expected at most 16 percentiles, got " + std::to_string(out.size()));
    return out;
}

void fleet_add_flags(CLI::App* cmd, FleetFlags* f) {
    cmd->add_option("--replicas", f->replicas, "replicas behind the router, the load shared (default: the scenario's)")
        ->transform(whole_number(1, 100000, "a whole number of replicas 1..100000"));
    cmd->add_option("--router", f->router,
                    "round-robin, least-loaded or affinity (closed loop) (default: the scenario's)");
}

void fleet_apply(Scenario& sc, const FleetFlags& f) {
    if (f.replicas > 0) sc.fleet.replicas = f.replicas;
    if (!f.router.empty() && !router_parse(f.router, &sc.fleet.router))
        throw Error("--router '" + f.router + "': expected round-robin, least-loaded or affinity");
    if (sc.fleet.router == ROUTER_AFFINITY && sc.workload.mode == WORKLOAD_OPEN)
        throw Error((f.router.empty() ? sc.path + ": fleet.router" : std::string("--router")) +
                    ": affinity pins a closed loop's users; " + sc.path +
                    " is an open loop: expected round-robin or least-loaded");
    const int64_t per = int64_t(sc.workload.requests) + sc.workload.warmup;
    if (per * sc.fleet.replicas > FLEET_MAX_COMPLETIONS)
        throw Error("--replicas " + std::to_string(sc.fleet.replicas) + ": expected at most " +
                    std::to_string(FLEET_MAX_COMPLETIONS / per) +
                    " (a fleet measures (warmup + requests) x replicas completions, at most 1e8)");
}

void cost_add_flags(CLI::App* cmd, CostFlags* f) {
    cmd->add_option("--profiles", f->profiles,
                    "trace store whose profile cells price the steps (cost.model = \"measured\"), e.g. a "
                    "`specplan live --db` store, in place of the scenario's [cost]");
    cmd->add_option("--profile-gpu", f->profile_gpu, "with --profiles: the cells' gpu (default: the only one)");
    cmd->add_option("--profile-model", f->profile_model, "with --profiles: the cells' model (default: the only one)");
    cmd->add_option("--host-us", f->host_us, "the serving loop's host time per iteration, us (cost.host_us), e.g. "
                                             "a live run's host_loop_us")
        ->check(CLI::Range(0.0, 1e6));
    cmd->add_option("--host-us-per-seq", f->host_us_per_seq,
                    "the host time per iteration that grows with each running request, us (cost.host_us_per_seq)")
        ->check(CLI::Range(0.0, 1e6));
    cmd->add_option("--token-tile", f->token_tile,
                    "measured cost: a forward takes what its tokens rounded up take, to the next power of two up "
                    "to N and a multiple of N above: the engine's token tiles (cost.token_tile; 0 off)")
        ->check(CLI::Range(0, 4096));
}

void cost_apply(Scenario& sc, const CostFlags& f) {
    if (f.host_us >= 0) sc.cost.host_s = f.host_us * 1e-6;
    if (f.host_us_per_seq >= 0) sc.cost.host_s_per_seq = f.host_us_per_seq * 1e-6;
    if (f.token_tile >= 0) sc.cost.token_tile = f.token_tile;
    if (f.profiles.empty()) {
        if (!f.profile_gpu.empty() || !f.profile_model.empty())
            throw Error("--profile-gpu/--profile-model: expected --profiles as well");
        if (sc.cost.token_tile > 0 && sc.cost.kind != COST_MEASURED)
            throw Error("--token-tile: expected a measured cost (--profiles, or cost.model = \"measured\"); the "
                        "roofline is smooth");
        return;
    }
    bool needs_draft = false;
    for (const Policy& p : sc.policies) needs_draft = needs_draft || policy_draft_len(p, sc.engine.gamma) > 0;
    try {
        TraceDb db = trace_db_open(f.profiles, TRACE_READ);
        sc.cost.measured = measured_cost_load(db, f.profile_gpu, f.profile_model);
        sc.cost.kind = COST_MEASURED;
        sc.cost.calibration.clear();
        cost_validate(sc.cost, needs_draft, "--profiles " + f.profiles);
    } catch (const Error& e) {
        const std::string m = e.what();
        throw Error(m.rfind("--profiles", 0) == 0 ? m : "--profiles: " + m);
    }
}

}  // namespace sp
