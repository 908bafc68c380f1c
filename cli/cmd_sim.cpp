// cmd_sim.cpp: `specplan sim` (one point) and `specplan sweep` (loads x policies).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "git_rev.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/sweep_cli.h"
#include "simulator/report.h"
#include "simulator/report_perfetto.h"
#include "simulator/report_plot.h"
#include "simulator/scenario.h"
#include "simulator/sweep.h"

namespace sp {

struct SimArgs {
    std::string scenario, policy, policies, json, csv, percentiles, trace_out, inferencex, plot_dir;
    std::string format = "table";
    LoadFlags load;  // sim: one value; sweep: a list
    std::optional<uint64_t> seed;
    int threads = 0;
    WindowFlags window;
    FleetFlags fleet;
    CostFlags cost;
    bool quiet = false;
};

static Scenario load_scenario(const SimArgs& a) {
    Scenario sc = scenario_load(a.scenario);
    if (a.seed) sc.seed = *a.seed;
    window_apply(sc, a.window);
    fleet_apply(sc, a.fleet);
    cost_apply(sc, a.cost);
    return sc;
}

static void run_sim(const SimArgs& a) {
    Scenario sc = load_scenario(a);
    Policy policy = sc.policies.front();
    if (!a.policy.empty()) {
        std::vector<Policy> one = parse_policies(a.policy, sc, "--policy");
        if (one.size() != 1) throw Error("--policy '" + a.policy + "': expected one policy (sweep takes a list)");
        policy = one[0];
    }
    const double load = loads_from_flags(sc, a.load, /*one=*/true).at(0);
    const std::vector<double> percentiles = parse_percentiles(a.percentiles);
    check_sim_memory(sc, {load}, a.load.concurrency.empty() ? sc.path + ": workload.concurrency" : "--concurrency");
    AcceptanceData acc = acceptance_load(sc);
    window_warn(sc, {load});  // once the input is known good: an error stays one line
    PointResult p;
    if (a.trace_out.empty()) {
        p = sim_run_point(sc, acc, policy, load);
    } else {
        write_file(a.trace_out, [&](std::ostream& out) {
            PerfettoTrace t;
            perfetto_begin(t, out);
            perfetto_point(t, {sc.path + ": " + policy.name + " at " + report_load_text(sc, load), sc.fleet.replicas,
                               acc.domains, sc.workload.mode == WORKLOAD_CLOSED, sc.engine.disaggregated_prefill});
            PerfettoObserver obs(&t);
            p = sim_run_point(sc, acc, policy, load, &obs);
            perfetto_end(t);
        });
    }
    report_point(stdout, sc, p, percentiles);
}

// --plot DIR: frontier, latency and acceptance, each as .svg and .png (report_plot.h).
static void write_plots(const std::string& dir, const Scenario& sc, const AcceptanceData& acc,
                        const std::vector<Policy>& policies, const SweepResult& res) {
    const std::pair<const char*, Drawing> plots[] = {
        {"frontier", plot_draw({plot_frontier(sc, policies, res)})},
        {"latency", plot_draw(plot_latency(sc, policies, res))},
        {"acceptance", plot_draw({plot_acceptance(plot_alpha_curves(sc, acc))})},
    };
    for (const auto& plot : plots) {  // no structured binding: clang 14 cannot capture one in the lambdas
        const char* name = plot.first;
        const Drawing& d = plot.second;
        write_file(dir + "/" + name + ".svg", [&](std::ostream& o) { plot_write_svg(o, d); });
        if (plot_png_available())
            write_file(dir + "/" + name + ".png", [&](std::ostream& o) { plot_write_png(o, d); });
    }
    if (!plot_png_available())
        std::fprintf(stderr, "--plot: SVGs only: this build has no cairo for the PNGs (CMake SPECPLAN_PNG=OFF)\n");
}

static void run_sweep(const SimArgs& a) {
    Scenario sc = load_scenario(a);
    std::vector<Policy> policies = a.policies.empty() ? sc.policies : parse_policies(a.policies, sc);
    const std::vector<double> loads = loads_from_flags(sc, a.load);
    const std::vector<double> percentiles = parse_percentiles(a.percentiles);
    check_sim_memory(sc, loads, a.load.concurrency.empty() ? sc.path + ": workload.concurrency" : "--concurrency");
    keep_headline_if_run(sc, policies);
    AcceptanceData acc = acceptance_load(sc);
    acceptance_check_policies(sc, acc, policies);  // sweep_run runs on the worker thread below
    if (!a.quiet) window_warn(sc, loads);  // once the input is known good: an error stays one line

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

    // the latency table only when asked for: the main table stays one screen wide
    if (!a.quiet && a.format == "md") {
        report_markdown(std::cout, sc, res, SPECPLAN_GIT_REV);
    } else if (!a.quiet) {
        report_table(stdout, sc, policies, res, SPECPLAN_GIT_REV,
                     a.percentiles.empty() ? std::vector<double>{} : percentiles);
    }
    if (!a.json.empty())
        write_file(a.json, [&](std::ostream& o) { report_json(o, sc, policies, res, SPECPLAN_GIT_REV, percentiles); });
    if (!a.csv.empty()) write_file(a.csv, [&](std::ostream& o) { report_csv(o, sc, res, SPECPLAN_GIT_REV, percentiles); });
    if (!a.inferencex.empty())
        write_file(a.inferencex, [&](std::ostream& o) { report_inferencex(o, sc, policies, res, SPECPLAN_GIT_REV); });
    if (!a.plot_dir.empty()) write_plots(a.plot_dir, sc, acc, policies, res);
    if (!a.quiet && a.format != "md")
        std::fprintf(stdout, "%zu points in %.2f s\n", res.points.size(), res.wall_s);
}

void sim_commands(CLI::App& app) {
    auto a = std::make_shared<SimArgs>();
    CLI::App* sim = app.add_subcommand("sim", "Simulate one policy at one load and print its metrics");
    sim->add_option("SCENARIO", a->scenario, "scenario TOML file")->required();
    sim->add_option("--policy", a->policy, "policy (default: the scenario's first)");
    load_add_flags(sim, &a->load, /*one=*/true);
    sim->add_option("--seed", a->seed, "override the scenario's seed")->transform(seed_number());
    window_add_flags(sim, &a->window);
    fleet_add_flags(sim, &a->fleet);
    cost_add_flags(sim, &a->cost);
    sim->add_option("--percentiles", a->percentiles, PERCENTILES_HELP);
    sim->add_option("--trace-out", a->trace_out,
                    "write the point as a Chrome/Perfetto trace (JSON): steps with draft and verify phases, a track "
                    "per request, counters of batch tokens, running requests and KV use");
    sim->callback([a] { run_sim(*a); });

    CLI::App* sw = app.add_subcommand("sweep", "Simulate every policy at every load: the throughput vs per-user "
                                               "speed table, capacity at SLO, JSON and CSV");
    sw->add_option("SCENARIO", a->scenario, "scenario TOML file")->required();
    sw->add_option("--policies", a->policies, "comma-separated policies (default: the scenario's)");
    load_add_flags(sw, &a->load, /*one=*/false);
    window_add_flags(sw, &a->window);
    fleet_add_flags(sw, &a->fleet);
    cost_add_flags(sw, &a->cost);
    sw->add_option("--json", a->json, "write the results as JSON");
    sw->add_option("--csv", a->csv, "write one CSV row per point");
    sw->add_option("--inferencex", a->inferencex,
                   "write InferenceX-style JSON: one object per point (tput_per_gpu, *_intvty, ...), each policy's "
                   "frontier, its area and tok/s/GPU at every 10 tok/s/user");
    sw->add_option("--plot", a->plot_dir,
                   "write frontier, latency and acceptance plots into this folder, as SVG and PNG (no window needed)");
    sw->add_option("--format", a->format, "what stdout gets: table (default) or md (Markdown tables)")
        ->check(CLI::IsMember({"table", "md"}));
    sw->add_option("--percentiles", a->percentiles, PERCENTILES_HELP);
    sw->add_option("--seed", a->seed, "override the scenario's seed")->transform(seed_number());
    sw->add_option("--threads", a->threads, "worker threads; 0: all cores (default)")
        ->transform(whole_number(0, INT32_MAX, "a whole number of threads >= 0 (0: all cores)"));
    sw->add_flag("--quiet", a->quiet, "print nothing but errors");
    sw->callback([a] { run_sweep(*a); });
}

}  // namespace sp
