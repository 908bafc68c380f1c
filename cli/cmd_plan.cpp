// cmd_plan.cpp: `specplan plan`, the planner's question answered directly:
// how many GPUs serve N users at the scenario's SLO, with which policy, at
// what price (simulator/plan.h).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/sweep_cli.h"
#include "simulator/plan.h"

namespace sp {

namespace {

struct PlanArgs {
    std::string scenario, policies, json;
    int users = 0;
    double gpu_hour_usd = -1;  // < 0: the scenario's plan.gpu_hour_usd
    int threads = 0;
    WindowFlags window;
    double per_user = -1, ttft_ms = -1, tpot_ms = -1;  // >= 0: replace the scenario's SLO (0 = none)
    int percentile = 0;                                 // 50, 90 or 99: replace the scenario's
};

void print_plan(const Scenario& sc, const PlanArgs& a, double price, const std::vector<FleetPlan>& plans) {
    char priced[64];
    std::snprintf(priced, sizeof priced, ", $%.2f a GPU-hour", price);
    std::printf("%s: %s: %d users, SLO %s; tp %d%s\n", sc.path.c_str(), sc.name.c_str(), a.users,
                slo_text(sc.slo).c_str(), sc.engine.tp,
                price > 0 ? priced : ", no GPU price (plan.gpu_hour_usd or --gpu-hour-usd)");
    std::printf("%-14s %9s %-14s %8s %6s %9s %9s %9s %9s %9s %9s %9s\n", "policy", "capacity", "bound by", "replicas",
                "GPUs", "users/rep", "tok/s/GPU", "user p50", "user p90", "TTFT p90", "$/hour", "$/M tok");
    const FleetPlan* best = nullptr;
    for (const FleetPlan& f : plans) {
        if (!f.feasible) {
            std::printf("%-14s misses the SLO even at 1 user a replica\n", f.policy.c_str());
            continue;
        }
        char cap[32];
        std::snprintf(cap, sizeof cap, "%s%g", f.capacity.bounded ? "" : ">=", f.capacity.load);
        std::printf("%-14s %9s %-14s %8d %6d %9d %9.0f %9.1f %9.1f %8.3fs", f.policy.c_str(), cap,
                    f.capacity.bounded                   ? slo_miss_name(f.capacity.binding)
                    : f.capacity.load >= a.users ? "(all N fit)"
                                                 : "(ceiling)",
                    f.replicas, f.gpus,
                    f.users_per_replica, f.point.throughput, f.point.per_user.p50, f.point.per_user.p90,
                    f.point.ttft.p90);
        if (price > 0) std::printf(" %9.2f %9.3f\n", f.usd_per_hour, f.usd_per_million_tokens);
        else std::printf(" %9s %9s\n", "-", "-");
        // fewest GPUs; on a tie the faster p90 per user
        if (!best || f.gpus < best->gpus || (f.gpus == best->gpus && f.point.per_user.p90 > best->point.per_user.p90))
            best = &f;
    }
    if (!best) {
        std::printf("no policy meets the SLO\n");
        return;
    }
    std::printf("fewest GPUs: %s, %d GPUs", best->policy.c_str(), best->gpus);
    for (const FleetPlan& f : plans)
        if (f.feasible && f.policy == "ar" && &f != best) std::printf(" (ar: %d)", f.gpus);
    std::printf("\n");
    for (const FleetPlan& f : plans)
        if (f.feasible && !f.capacity.bounded && f.capacity.load < a.users)
            std::printf("note: %s met every SLO up to %g users a replica, the search's ceiling; with no TTFT SLO a "
                        "queueing replica keeps its per-user speed\n",
                        f.policy.c_str(), f.capacity.load);
}

void write_plan_json(const std::string& path, const Scenario& sc, const PlanArgs& a, double price,
                     const std::vector<FleetPlan>& plans) {
    nlohmann::ordered_json j;
    j["scenario"] = sc.path;
    j["users"] = a.users;
    j["slo"] = {{"per_user_tok_s", sc.slo.per_user_tok_s},
                {"ttft_ms", sc.slo.ttft_s * 1e3},
                {"tpot_ms", sc.slo.tpot_s * 1e3},
                {"percentile", sc.slo.percentile}};
    j["tp"] = sc.engine.tp;
    j["gpu_hour_usd"] = price > 0 ? nlohmann::ordered_json(price) : nlohmann::ordered_json(nullptr);
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const FleetPlan& f : plans) {
        nlohmann::ordered_json r;
        r["policy"] = f.policy;
        r["feasible"] = f.feasible;
        r["capacity_users"] = f.capacity.met ? nlohmann::ordered_json(f.capacity.load) : nullptr;
        r["capacity_bounded"] = f.capacity.bounded;
        r["binding_slo"] = f.capacity.bounded ? nlohmann::ordered_json(slo_miss_name(f.capacity.binding)) : nullptr;
        r["search_points"] = f.capacity.n_points;
        if (f.feasible) {
            r["replicas"] = f.replicas;
            r["gpus"] = f.gpus;
            r["users_per_replica"] = f.users_per_replica;
            r["throughput_tok_s_gpu"] = f.point.throughput;
            r["per_user_p50"] = f.point.per_user.p50;
            r["per_user_p90"] = f.point.per_user.p90;
            r["ttft_p90_s"] = f.point.ttft.p90;
            r["tpot_p90_s"] = f.point.tpot.p90;
            r["usd_per_hour"] = price > 0 ? nlohmann::ordered_json(f.usd_per_hour) : nullptr;
            r["usd_per_million_tokens"] = price > 0 ? nlohmann::ordered_json(f.usd_per_million_tokens) : nullptr;
        }
        rows.push_back(r);
    }
    j["policies"] = rows;
    write_file(path, [&](std::ostream& out) { out << j.dump(1) << "\n"; });
}

void run_plan(const PlanArgs& a) {
    Scenario sc = scenario_load(a.scenario);
    window_apply(sc, a.window);
    if (a.per_user >= 0) sc.slo.per_user_tok_s = a.per_user;
    if (a.ttft_ms >= 0) sc.slo.ttft_s = a.ttft_ms * 1e-3;
    if (a.tpot_ms >= 0) sc.slo.tpot_s = a.tpot_ms * 1e-3;
    if (a.percentile) sc.slo.percentile = a.percentile;
    if (sc.workload.mode != WORKLOAD_CLOSED)
        throw Error(a.scenario + ": workload.mode: plan --users needs a closed loop (\"closed\"); " +
                    "an open loop's plan by rate is not there yet");
    if (sc.slo.per_user_tok_s <= 0 && sc.slo.ttft_s <= 0 && sc.slo.tpot_s <= 0)
        throw Error(a.scenario + ": slo: plan needs at least one SLO (per_user_tok_s, ttft_ms or tpot_ms)");
    const std::vector<Policy> policies = a.policies.empty() ? sc.policies : parse_policies(a.policies, sc);
    const double price = a.gpu_hour_usd >= 0 ? a.gpu_hour_usd : sc.gpu_hour_usd;
    const AcceptanceData acc = acceptance_load(sc);
    const std::vector<FleetPlan> plans = plan_fleets(sc, acc, policies, a.users, price, a.threads);
    print_plan(sc, a, price, plans);
    if (!a.json.empty()) write_plan_json(a.json, sc, a, price, plans);
}

}  // namespace

void plan_commands(CLI::App& app) {
    auto a = std::make_shared<PlanArgs>();
    CLI::App* cmd = app.add_subcommand("plan", "The fewest GPUs that serve N users at the scenario's SLO, per policy: "
                                                "replicas, throughput per GPU, per-user speed, TTFT and price");
    cmd->add_option("SCENARIO", a->scenario, "scenario TOML file (a closed loop)")->required();
    cmd->add_option("--users", a->users, "users to serve, in all")->required()->check(CLI::Range(1, 100000000));
    cmd->add_option("--gpu-hour-usd", a->gpu_hour_usd, "price of one GPU-hour (default: the scenario's plan.gpu_hour_usd)")
        ->check(CLI::Range(0.0, 1e6));
    cmd->add_option("--policies", a->policies, "comma-separated policies (default: the scenario's)");
    cmd->add_option("--per-user-tok-s", a->per_user, "SLO: per-user speed at the percentile, tok/s (0: none)")
        ->check(CLI::Range(0.0, 1e9));
    cmd->add_option("--ttft-ms", a->ttft_ms, "SLO: TTFT at the percentile, ms (0: none)")->check(CLI::Range(0.0, 1e9));
    cmd->add_option("--tpot-ms", a->tpot_ms, "SLO: TPOT at the percentile, ms (0: none)")->check(CLI::Range(0.0, 1e9));
    cmd->add_option("--percentile", a->percentile, "the SLOs' percentile: 50, 90 or 99 (default: the scenario's)")
        ->check(CLI::IsMember({50, 90, 99}));
    cmd->add_option("--json", a->json, "write the plan as JSON");
    cmd->add_option("--threads", a->threads, "worker threads (default: all cores)")->check(CLI::Range(0, 1024));
    window_add_flags(cmd, &a->window);
    cmd->callback([a] { run_plan(*a); });
}

}  // namespace sp
