// sweep_cli.h: what `specplan sweep` and `specplan live` share: loads and
// policies from flags or the scenario, the headline pair; output files
// (write_file) are output_file.h's.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/output_file.h"  // write_file
#include "policy/policy.h"
#include "simulator/scenario.h"
#include "traces/trace_db.h"  // Error

namespace sp {

// "1,2,4" -> {1, 2, 4}; each value must be > 0 and finite, the list increasing.
std::vector<double> parse_loads(const std::string& text, const char* flag);
// "ar,fixed:3" -> policies; batch-table takes the scenario's table. `flag`
// names the option in errors. fixed:K with K > engine.gamma is refused (it
// would run as fixed:gamma under the name fixed:K).
std::vector<Policy> parse_policies(const std::string& text, const Scenario& sc, const char* flag = "--policies");
// The scenario's users (closed loop) or rates (open loop).
std::vector<double> scenario_loads(const Scenario& sc);

// The load flags: users for a closed loop, requests/s for an open one, two
// options so that neither is ever read as the other. `sim` takes one value
// (--concurrency, --rate), `sweep` and `live` a list (--concurrency, --rates).
struct LoadFlags {
    std::string concurrency, rate;  // the flags' text; empty: not given
};
void load_add_flags(CLI::App* cmd, LoadFlags* f, bool one);
// The loads the flags give (one value when `one`), else the scenario's. The
// flag of the other loop is one line naming the scenario's workload.mode;
// users are whole numbers >= 1.
std::vector<double> loads_from_flags(const Scenario& sc, const LoadFlags& f, bool one = false);

// The simulator's memory for a closed loop of `load` users, bytes (an
// estimate from its per-user state; sweep_cli.cpp), and the refusal, one
// line starting with `what` (the flag or the scenario key), of a load whose
// estimate passes 16 GiB, before anything is allocated.
int64_t sim_memory_estimate(const Scenario& sc, double load);
void check_sim_memory(const Scenario& sc, const std::vector<double>& loads, const std::string& what);

// The compared pair must be among the policies run: else no headline.
void keep_headline_if_run(Scenario& sc, const std::vector<Policy>& policies);

// --requests and --warmup: the measurement window of every point, in place
// of the scenario's workload.requests and workload.warmup (a load grid
// split over runs can size each part's window to its loads).
// "auto" sizes the window by the load (workload.h workload_window) even
// where the scenario sets it.
struct WindowFlags {
    int requests = -1;  // > 0: override; 0: "auto"; -1: not given
    int warmup = -2;    // >= 0: override; -1: "auto"; -2: not given
};
void window_add_flags(CLI::App* cmd, WindowFlags* w);
void window_apply(Scenario& sc, const WindowFlags& w);
// One stderr line per command when a set window is shorter than a load
// needs for steady state (workload.h workload_window): the loads it is
// short at and what would do.
void window_warn(const Scenario& sc, const std::vector<double>& loads);

// --percentiles "50,90,99": the latency percentiles reported, each in
// (0, 100], increasing, at most 16; empty text gives REPORT_PERCENTILES.
std::vector<double> parse_percentiles(const std::string& text);
inline constexpr const char* PERCENTILES_HELP =
    "comma-separated latency percentiles in (0, 100]: TTFT, TPOT, E2E and ITL in ms (default 50,90,99; "
    "sweep prints them as a second table)";

// --replicas and --router: the fleet (sim.h), in place of the scenario's
// [fleet]. Applied after the window flags: a router or a fleet size the
// scenario cannot take is one line naming the flag.
struct FleetFlags {
    int replicas = 0;    // > 0: override
    std::string router;  // non-empty: override
};
void fleet_add_flags(CLI::App* cmd, FleetFlags* f);
void fleet_apply(Scenario& sc, const FleetFlags& f);

// --profiles, --profile-gpu, --profile-model and --host-us: the step cost of
// another measurement in place of the scenario's [cost], so that a live run
// is simulated with what it measured (its store's cells, its host loop
// time). The drafter kind stays the scenario's; the store's cells must
// answer every phase the policies need (cost_validate), else one line
// naming the flag.
struct CostFlags {
    std::string profiles, profile_gpu, profile_model;  // profiles empty: the scenario's cost model
    double host_us = -1;                               // >= 0: override cost.host_us
    double host_us_per_seq = -1;                       // >= 0: override cost.host_us_per_seq
    int token_tile = -1;                               // >= 0: override cost.token_tile (measured only)
};
void cost_add_flags(CLI::App* cmd, CostFlags* f);
void cost_apply(Scenario& sc, const CostFlags& f);

}  // namespace sp
