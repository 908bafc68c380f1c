// cmd_plan.cpp: `specplan plan`, the planner's question answered directly:
// how many GPUs serve N users (or R requests/s) at the scenario's SLO, with
// which policy, gamma and tp, at what price; and does that fleet, simulated
// whole behind a least-loaded router, still meet the SLO (simulator/plan.h).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "git_rev.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/sweep_cli.h"
#include "simulator/plan.h"
#include "simulator/report.h"

namespace sp {

namespace {

struct PlanArgs {
    std::string scenario, policies, json, format = "table";
    int users = 0;
    std::string rate, gammas, tps;   // the flags' text; empty: not given
    double gpu_hour_usd = -1;  // < 0: the scenario's plan.gpu_hour_usd
    int threads = 0;
    bool no_fleet_check = false;
    WindowFlags window;
    double per_user = -1, ttft_ms = -1, tpot_ms = -1;  // >= 0: replace the scenario's SLO (0 = none)
    int percentile = 0;                                 // 50, 90 or 99: replace the scenario's
};

// "3,5,7" -> {3, 5, 7}: whole numbers in [lo, hi], increasing; one line naming the flag otherwise.
std::vector<int> parse_int_list(const std::string& text, const char* flag, int lo, int hi, const char* what) {
    std::vector<int> out;
    for (const std::string& item : split_list(text)) {
        const double v = parse_number(item, flag, text);
        if (!(v >= lo && v <= hi && v == std::floor(v)))
            throw Error(std::string(flag) + " '" + text + "': expected " + what + ", got '" + item + "'");
        if (!out.empty() && int(v) <= out.back())
            throw Error(std::string(flag) + " '" + text + "': expected increasing values");
        out.push_back(int(v));
    }
    if (out.empty()) throw Error(std::string(flag) + " '" + text + "': expected " + what);
    return out;
}

bool by_rate(const PlanQuery& q) { return q.rate > 0; }

void print_plan(const Scenario& sc, const PlanQuery& q, double price, const std::vector<FleetPlan>& plans) {
    char priced[64], load[64];
    std::snprintf(priced, sizeof priced, ", $%.2f a GPU-hour", price);
    if (by_rate(q)) std::snprintf(load, sizeof load, "%g requests/s (open loop)", q.rate);
    else std::snprintf(load, sizeof load, "%d users", q.users);
    std::printf("%s: %s: %s, SLO %s%s\n", sc.path.c_str(), sc.name.c_str(), load, slo_text(sc.slo).c_str(),
                price > 0 ? priced : ", no GPU price (plan.gpu_hour_usd or --gpu-hour-usd)");
    std::printf("%s\n", report_context_line(sc, SPECPLAN_GIT_REV).c_str());
    // A scenario at tp 1 searched at larger tps: what their collectives are priced from (the line above
    // says it when the scenario's own tp is larger).
    std::string tps;
    for (int tp : q.tps)
        if (tp > 1) tps += (tps.empty() ? "tp " : ", ") + std::to_string(tp);
    const std::string comm = report_comm_text(sc.cost);
    if (sc.engine.tp == 1 && !tps.empty() && !comm.empty()) std::printf("%s %s\n", tps.c_str(), comm.c_str());
    const char* per = by_rate(q) ? "req/s/rep" : "users/rep";
    std::printf("%-14s %5s %3s %9s %-14s %5s %9s %9s %9s %8s %8s %8s %8s %8s  %s\n", "policy", "gamma", "tp",
                by_rate(q) ? "cap req/s" : "capacity", "bound by", "GPUs", "rep x tp", per, "tok/s/GPU", "user p50",
                "user p90", "TTFT p90", "$/hour", "$/M tok", "fleet check");
    for (const FleetPlan& f : plans) {
        if (!f.feasible) {
            std::printf("%-14s misses the SLO at every configuration tried, even at the lightest load a replica\n",
                        f.policy.c_str());
            continue;
        }
        char gamma[16], reps[32], each[32], usd_h[16] = "-", usd_m[16] = "-";
        if (f.draft_len == 0) std::snprintf(gamma, sizeof gamma, "-");
        else std::snprintf(gamma, sizeof gamma, "%d", f.gamma);
        std::snprintf(reps, sizeof reps, "%dx%d", f.replicas, f.tp);
        if (by_rate(q)) std::snprintf(each, sizeof each, "%.4g", f.rate_per_replica);
        else std::snprintf(each, sizeof each, "%d", f.users_per_replica);
        if (price > 0) {
            std::snprintf(usd_h, sizeof usd_h, "%.2f", f.usd_per_hour);
            std::snprintf(usd_m, sizeof usd_m, "%.3f", f.usd_per_million_tokens);
        }
        std::printf("%-14s %5s %3d %9s %-14s %5d %9s %9s %9.0f %8.1f %8.1f %7.3fs %8s %8s  %s\n", f.policy.c_str(),
                    gamma, f.tp, plan_capacity_text(f).c_str(), plan_bound_text(f, q).c_str(), f.gpus, reps, each,
                    f.point.throughput, f.point.per_user.p50, f.point.per_user.p90, f.point.ttft.p90, usd_h, usd_m,
                    plan_fleet_check_text(f).c_str());
    }
    const int b = plan_best(plans);
    if (b < 0) {
        std::printf("no policy meets the SLO\n");
        return;
    }
    const FleetPlan& best = plans[size_t(b)];
    std::printf("fewest GPUs: %s, %d GPU%s (%d replica%s x tp %d", best.policy.c_str(), best.gpus,
                best.gpus == 1 ? "" : "s", best.replicas, best.replicas == 1 ? "" : "s", best.tp);
    if (best.draft_len > 0) std::printf(", gamma %d", best.gamma);
    std::printf(")");
    for (const FleetPlan& f : plans)
        if (f.feasible && f.policy == "ar" && &f != &best) std::printf("; ar: %d GPU%s", f.gpus, f.gpus == 1 ? "" : "s");
    std::printf("\n");
    if (best.checked) {
        const std::string verdict = best.check == SLO_MET ? std::string("meets every SLO")
                                                           : std::string("misses ") + slo_miss_name(best.check) +
                                                                 " (a router spreads the load unevenly: add a replica)";
        std::printf("fleet check: %s over %d replica%s behind a least-loaded router, in one simulation: per-user "
                    "p90 %.1f tok/s, TTFT p90 %.3f s, %.0f tok/s/GPU: %s\n",
                    load, best.replicas, best.replicas == 1 ? "" : "s", best.check_point.per_user.p90,
                    best.check_point.ttft.p90,
                    best.check_point.throughput, verdict.c_str());
    }
    for (const FleetPlan& f : plans)
        if (f.feasible && q.fleet_check && !f.checked)
            std::printf("note: %s's fleet of %d replicas was not checked: it would measure more than 1e8 completions\n",
                        f.policy.c_str(), f.replicas);
    for (const FleetPlan& f : plans)
        if (f.feasible && !f.capacity.bounded && f.capacity.load < (by_rate(q) ? q.rate : q.users))
            std::printf("note: %s met every SLO up to %g %s a replica, the search's ceiling; with no TTFT SLO a "
                        "queueing replica keeps its per-user speed\n",
                        f.policy.c_str(), f.capacity.load, by_rate(q) ? "requests/s" : "users");
}

nlohmann::ordered_json summary_of(const PointResult& p) {
    return {{"throughput_tok_s_gpu", p.throughput},
            {"per_user_p50", p.per_user.p50},
            {"per_user_p90", p.per_user.p90},
            {"ttft_p90_s", p.ttft.p90},
            {"tpot_p90_s", p.tpot.p90},
            {"unstable", p.unstable}};
}

void write_plan_json(const std::string& path, const Scenario& sc, const PlanQuery& q, double price,
                     const std::vector<FleetPlan>& plans) {
    using ojson = nlohmann::ordered_json;
    ojson j;
    j["scenario"] = sc.path;
    j["users"] = by_rate(q) ? ojson(nullptr) : ojson(q.users);
    j["rate"] = by_rate(q) ? ojson(q.rate) : ojson(nullptr);
    j["slo"] = {{"per_user_tok_s", sc.slo.per_user_tok_s},
                {"ttft_ms", sc.slo.ttft_s * 1e3},
                {"tpot_ms", sc.slo.tpot_s * 1e3},
                {"percentile", sc.slo.percentile}};
    j["tp"] = sc.engine.tp;
    j["gamma"] = sc.engine.gamma;
    j["gammas"] = q.gammas.empty() ? std::vector<int>{sc.engine.gamma} : q.gammas;
    j["tps"] = q.tps.empty() ? std::vector<int>{sc.engine.tp} : q.tps;
    j["gpu_hour_usd"] = price > 0 ? ojson(price) : ojson(nullptr);
    ojson rows = ojson::array();
    for (const FleetPlan& f : plans) {
        ojson r;
        r["policy"] = f.policy;
        r["feasible"] = f.feasible;
        r["gamma"] = f.gamma;
        r["tp"] = f.tp;
        if (by_rate(q)) r["capacity_rate_per_replica"] = f.capacity.met ? ojson(f.capacity.load) : nullptr;
        else r["capacity_users"] = f.capacity.met ? ojson(f.capacity.load) : nullptr;
        r["capacity_bounded"] = f.capacity.bounded;
        r["binding_slo"] = f.capacity.bounded ? ojson(slo_miss_name(f.capacity.binding)) : nullptr;
        r["search_points"] = f.capacity.n_points;
        if (f.feasible) {
            r["replicas"] = f.replicas;
            r["gpus"] = f.gpus;
            if (by_rate(q)) r["rate_per_replica"] = f.rate_per_replica;
            else r["users_per_replica"] = f.users_per_replica;
            r["throughput_tok_s_gpu"] = f.point.throughput;
            r["per_user_p50"] = f.point.per_user.p50;
            r["per_user_p90"] = f.point.per_user.p90;
            r["ttft_p90_s"] = f.point.ttft.p90;
            r["tpot_p90_s"] = f.point.tpot.p90;
            r["usd_per_hour"] = price > 0 ? ojson(f.usd_per_hour) : nullptr;
            r["usd_per_million_tokens"] = price > 0 ? ojson(f.usd_per_million_tokens) : nullptr;
            if (f.checked) {
                ojson c = {{"router", "least-loaded"}, {"replicas", f.replicas}, {"met", f.check == SLO_MET}};
                c["missed_slo"] = f.check == SLO_MET ? ojson(nullptr) : ojson(slo_miss_name(f.check));
                const ojson at = summary_of(f.check_point);
                for (auto it = at.begin(); it != at.end(); ++it) c[it.key()] = it.value();
                r["fleet_check"] = c;
            } else {
                r["fleet_check"] = nullptr;
            }
        }
        rows.push_back(r);
    }
    j["policies"] = rows;
    const int b = plan_best(plans);
    j["best"] = b < 0 ? ojson(nullptr) : ojson(plans[size_t(b)].policy);
    write_file(path, [&](std::ostream& out) { out << j.dump(1) << "\n"; });
}

void run_plan(const PlanArgs& a) {
    Scenario sc = scenario_load(a.scenario);
    window_apply(sc, a.window);
    if (a.per_user >= 0) sc.slo.per_user_tok_s = a.per_user;
    if (a.ttft_ms >= 0) sc.slo.ttft_s = a.ttft_ms * 1e-3;
    if (a.tpot_ms >= 0) sc.slo.tpot_s = a.tpot_ms * 1e-3;
    if (a.percentile) sc.slo.percentile = a.percentile;
    PlanQuery q;
    q.users = a.users;
    if (!a.rate.empty()) {
        const double r = parse_number(a.rate, "--rate", a.rate);
        if (!(r >= 1e-3 && r <= 1e8))
            throw Error("--rate '" + a.rate + "': expected requests/s in [0.001, 1e+08]");
        q.rate = r;
    }
    if ((q.users > 0) == (q.rate > 0))
        throw Error(q.users > 0 ? "--users and --rate: expected one of them, not both"
                                : "plan: expected --users N (a closed loop) or --rate R (requests/s, an open loop)");
    if (q.users > 0 && sc.workload.mode != WORKLOAD_CLOSED)
        throw Error("--users: " + a.scenario + " is an open loop (workload.mode = \"open\"), its load is requests/s: "
                    "give --rate");
    if (q.rate > 0 && sc.workload.mode != WORKLOAD_OPEN)
        throw Error("--rate: " + a.scenario + " is a closed loop (workload.mode = \"closed\"), its load is users: "
                    "give --users");
    if (sc.slo.per_user_tok_s <= 0 && sc.slo.ttft_s <= 0 && sc.slo.tpot_s <= 0)
        throw Error(a.scenario + ": slo: plan needs at least one SLO (per_user_tok_s, ttft_ms or tpot_ms)");
    if (!a.gammas.empty()) q.gammas = parse_int_list(a.gammas, "--gammas", 1, TRACE_MAX_GAMMA, "whole numbers 1..16");
    if (!a.tps.empty()) q.tps = parse_int_list(a.tps, "--tp", 1, 1024, "whole numbers of GPUs 1..1024");
    if (q.users > 0) check_sim_memory(sc, {double(q.users)}, "--users");
    const std::vector<Policy> policies = a.policies.empty() ? sc.policies : parse_policies(a.policies, sc);
    const double price = a.gpu_hour_usd >= 0 ? a.gpu_hour_usd : sc.gpu_hour_usd;
    q.gpu_hour_usd = price;
    q.threads = a.threads;
    q.fleet_check = !a.no_fleet_check;
    plan_check_query(sc, acceptance_load(sc), q);  // every gamma and tp, before anything runs
    const std::vector<FleetPlan> plans = plan_search(sc, policies, q);
    if (a.format == "md") report_plan_markdown(std::cout, sc, q, price, plans, SPECPLAN_GIT_REV);
    else print_plan(sc, q, price, plans);
    if (!a.json.empty()) write_plan_json(a.json, sc, q, price, plans);
}

}  // namespace

void plan_commands(CLI::App& app) {
    auto a = std::make_shared<PlanArgs>();
    CLI::App* cmd = app.add_subcommand("plan", "The fewest GPUs that serve N users or R requests/s at the scenario's "
                                                "SLO, per policy (optionally over gamma and tp): replicas x tp, "
                                                "throughput per GPU, per-user speed, TTFT, price, and a fleet check");
    cmd->add_option("SCENARIO", a->scenario, "scenario TOML file (a closed loop for --users, an open one for --rate)")
        ->required();
    cmd->add_option("--users", a->users, "users to serve, in all (closed loop)")
        ->transform(whole_number(1, 100000000, "a whole number of users 1..100000000"));
    cmd->add_option("--rate", a->rate, "requests/s to serve, in all (open loop)");
    cmd->add_option("--gammas", a->gammas, "comma-separated gammas to search (default: the scenario's engine.gamma)");
    cmd->add_option("--tp", a->tps, "comma-separated tensor-parallel sizes to search, roofline cost only "
                                    "(default: the scenario's engine.tp)");
    cmd->add_option("--gpu-hour-usd", a->gpu_hour_usd, "price of one GPU-hour (default: the scenario's plan.gpu_hour_usd)")
        ->check(CLI::Range(0.0, 1e6));
    cmd->add_option("--policies", a->policies, "comma-separated policies (default: the scenario's)");
    cmd->add_option("--per-user-tok-s", a->per_user, "SLO: per-user speed at the percentile, tok/s (0: none)")
        ->check(CLI::Range(0.0, 1e9));
    cmd->add_option("--ttft-ms", a->ttft_ms, "SLO: TTFT at the percentile, ms (0: none)")->check(CLI::Range(0.0, 1e9));
    cmd->add_option("--tpot-ms", a->tpot_ms, "SLO: TPOT at the percentile, ms (0: none)")->check(CLI::Range(0.0, 1e9));
    cmd->add_option("--percentile", a->percentile, "the SLOs' percentile: 50, 90 or 99 (default: the scenario's)")
        ->check(CLI::IsMember({50, 90, 99}));
    cmd->add_flag("--no-fleet-check", a->no_fleet_check, "skip simulating each answer as one fleet");
    cmd->add_option("--json", a->json, "write the plan as JSON");
    cmd->add_option("--format", a->format, "what stdout gets: table (default) or md (a Markdown table)")
        ->check(CLI::IsMember({"table", "md"}));
    cmd->add_option("--threads", a->threads, "worker threads (default: all cores)")->check(CLI::Range(0, 1024));
    window_add_flags(cmd, &a->window);
    cmd->callback([a] { run_plan(*a); });
}

}  // namespace sp
