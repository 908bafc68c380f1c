// sweep.h: loads x policies, run in parallel, and what capacity planners
// read off the result: the Pareto frontier, capacity at the SLO per policy,
// and the two headline ratios between a chosen pair of policies.
//
// The curve's axes: x = per-user speed p90 (tokens/s met by 90 % of
// requests, MLCommons' 1/TPOT_p90), y = output tokens/s per GPU.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "simulator/plan.h"
#include "simulator/sim.h"

namespace sp {

// Capacity at the SLO: the largest load meeting every SLO of the scenario
// (plan.h slo_check), and the throughput there. A simulated sweep finds it
// by bisection from its grid (capacity_search); a live one reads it off
// the loads it ran.
struct Capacity {
    std::string policy;
    bool met = false;            // some load meets every SLO
    bool bounded = false;        // a failing load was run above `load`; false: the search's ceiling, or
                                 // (read off a grid) the grid's top load
    double load = 0;             // users (whole) or requests/s: the largest found meeting every SLO
    double throughput = 0;       // tokens/s/GPU at that load
    double per_user_p90 = 0;     // per-user speed p90 at that load: with throughput, where the frontier marks it
    SloMiss binding = SLO_MET;   // the SLO the next load up missed (bounded only)
    double best_point_throughput = 0;  // the best grid point meeting every SLO
};

struct Headline {
    std::string a, b;            // policy a compared with policy b
    double throughput_gain = 0;  // capacity(a) / capacity(b) at the per-user SLA; 0 if either misses it
    double matched_throughput = 0;  // tokens/s/GPU where per-user speeds are compared: capacity(b)
    double per_user_gain = 0;    // per-user p90 of a / of b at matched_throughput; 0 if a's curve misses it
};

struct SweepResult {
    std::vector<double> loads;   // users or rates, ascending
    std::vector<PointResult> points;  // policy-major: points[p * loads.size() + i]
    std::vector<int> pareto;     // indices into points on the frontier, by ascending per-user speed
    std::vector<Capacity> capacity;   // one per policy
    Headline headline;           // empty a/b when the scenario names no pair
    double wall_s = 0;           // host time the sweep took (not part of the deterministic output)
    bool cancelled = false;      // stopped early by sweep_run's cancel flag: points are incomplete
};

// Runs every (policy, load) point on `threads` threads (0 = hardware
// concurrency). The result is identical for any thread count. `done`, when
// given, counts finished points as they finish, for a progress display.
// `cancel`, when given and set, stops the sweep between points (a point runs
// to its end): the result then has cancelled = true and incomplete points.
// A policy the acceptance source cannot feed (acceptance_check_policies)
// throws sp::Error on the calling thread before any point runs.
SweepResult sweep_run(const Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& policies,
                      const std::vector<double>& loads, int threads, std::atomic<int>* done = nullptr,
                      const std::atomic<bool>* cancel = nullptr);

// The read-outs of a sweep whose loads and points (policy-major) are filled
// in, simulated or measured live: the Pareto frontier, capacity at the SLO
// per policy read off the grid (sweep_capacity), and the scenario's headline
// pair. sweep_run then refines each capacity by bisection.
void sweep_finish(const Scenario& sc, const std::vector<Policy>& policies, SweepResult* res);

// The headline ratios of policy a over policy b (names in `policies`) from a
// finished sweep; empty a/b when either is not among the policies.
Headline sweep_headline(const SweepResult& r, const std::vector<Policy>& policies, const std::string& a,
                        const std::string& b);

// Capacity along one policy's points (ascending load) as the grid shows it:
// the last load before the first that misses an SLO.
Capacity sweep_capacity(const std::vector<PointResult>& curve, const std::vector<double>& loads, const Slo& slo);

// Per-user p90 of a curve at a throughput, by linear interpolation between
// the two points whose throughputs bracket it; false when none do.
bool sweep_per_user_at(const std::vector<PointResult>& curve, double throughput, double* per_user);

// Indices of the points no other point beats in both throughput and per-user p90.
std::vector<int> sweep_pareto(const std::vector<PointResult>& points);

}  // namespace sp
