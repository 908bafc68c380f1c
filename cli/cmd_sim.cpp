// cmd_sim.cpp: `specplan sim` (one point) and `specplan sweep` (loads x policies).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/sweep_cli.h"
#include "simulator/report.h"
#include "simulator/scenario.h"
#include "simulator/sweep.h"

namespace sp {

struct SimArgs {
    std::string scenario, policy, policies, loads, json, csv;
    double load = 0;
    int64_t seed = -1;
    int threads = 0;
    WindowFlags window;
    bool quiet = false;
};

static Scenario load_scenario(const SimArgs& a) {
    Scenario sc = scenario_load(a.scenario);
    if (a.seed >= 0) sc.seed = static_cast<uint64_t>(a.seed);
    window_apply(sc, a.window);
    return sc;
}

static void run_sim(const SimArgs& a) {
    Scenario sc = load_scenario(a);
    Policy policy = sc.policies.front();
    if (!a.policy.empty()) policy = parse_policies(a.policy, sc).at(0);
    double load = a.load > 0 ? a.load : scenario_loads(sc).back();
    if (sc.workload.mode == WORKLOAD_CLOSED && load != static_cast<int>(load))
        throw Error("--concurrency: expected a whole number of users");
    AcceptanceData acc = acceptance_load(sc);
    PointResult p = sim_run_point(sc, acc, policy, load);
    report_point(stdout, sc, p);
}

static void run_sweep(const SimArgs& a) {
    Scenario sc = load_scenario(a);
    std::vector<Policy> policies = a.policies.empty() ? sc.policies : parse_policies(a.policies, sc);
    const std::vector<double> loads = loads_from_flag(sc, a.loads);
    keep_headline_if_run(sc, policies);
    AcceptanceData acc = acceptance_load(sc);
    acceptance_check_policies(sc, acc, policies);  // sweep_run runs on the worker thread below

    // The sweep runs on worker threads; this thread draws a progress bar on
    // a terminal once the sweep has taken more than a second.
    std::atomic<int> done{0};
    SweepResult res;
    std::thread worker([&] { res = sweep_run(sc, acc, policies, loads, a.threads, &done); });
    int total = static_cast<int>(policies.size() * loads.size());
    bool tty = !a.quiet && isatty(STDERR_FILENO);
    auto t0 = std::chrono::steady_clock::now();
    bool drawn = false;
    while (done.load() < total) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (tty && std::chrono::steady_clock::now() - t0 > std::chrono::seconds(1)) {
            int d = done.load(), width = 40, fill = d * width / total;
            std::fprintf(stderr, "\r[%s%s] %d/%d points", std::string(static_cast<size_t>(fill), '#').c_str(),
                         std::string(static_cast<size_t>(width - fill), ' ').c_str(), d, total);
            drawn = true;
        }
    }
    worker.join();
    if (drawn) std::fprintf(stderr, "\r%*s\r", 60, "");

    if (!a.quiet) report_table(stdout, sc, policies, res);
    if (!a.json.empty()) write_file(a.json, [&](std::ostream& o) { report_json(o, sc, policies, res); });
    if (!a.csv.empty()) write_file(a.csv, [&](std::ostream& o) { report_csv(o, res); });
    if (!a.quiet)
        std::fprintf(stdout, "%zu points in %.2f s\n", res.points.size(), res.wall_s);
}

void sim_commands(CLI::App& app) {
    auto a = std::make_shared<SimArgs>();
    CLI::App* sim = app.add_subcommand("sim", "Simulate one policy at one load and print its metrics");
    sim->add_option("SCENARIO", a->scenario, "scenario TOML file")->required();
    sim->add_option("--policy", a->policy, "policy (default: the scenario's first)");
    sim->add_option("--concurrency,--rate", a->load, "users (closed loop) or requests/s (open loop); "
                                                     "default: the scenario's largest");
    sim->add_option("--seed", a->seed, "override the scenario's seed");
    window_add_flags(sim, &a->window);
    sim->callback([a] { run_sim(*a); });

    CLI::App* sw = app.add_subcommand("sweep", "Simulate every policy at every load: the throughput vs per-user "
                                               "speed table, capacity at SLO, JSON and CSV");
    sw->add_option("SCENARIO", a->scenario, "scenario TOML file")->required();
    sw->add_option("--policies", a->policies, "comma-separated policies (default: the scenario's)");
    sw->add_option("--concurrency,--rates", a->loads, "comma-separated loads (default: the scenario's)");
    window_add_flags(sw, &a->window);
    sw->add_option("--json", a->json, "write the results as JSON");
    sw->add_option("--csv", a->csv, "write one CSV row per point");
    sw->add_option("--seed", a->seed, "override the scenario's seed");
    sw->add_option("--threads", a->threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
    sw->add_flag("--quiet", a->quiet, "print nothing but errors");
    sw->callback([a] { run_sweep(*a); });
}

}  // namespace sp
