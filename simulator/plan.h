// plan.h: the planner's answers. Whether a point meets every SLO of the
// scenario; the capacity of one replica, the largest load meeting every
// SLO, found by bisection on simulated points rather than read off a grid;
// the fleet of replicas that serves N users (or R requests/s) with the
// fewest GPUs, over the policies and optionally gamma and tp; and a check
// of that answer by simulating the whole fleet behind a router.
//
// Capacity assumes that every SLO metric worsens as load grows (per-user
// speed falls, TTFT and TPOT rise). Above max_seqs a closed loop queues:
// per-user decode speed stops falling and only TTFT keeps rising, so with
// no TTFT SLO a replica's capacity can be unbounded; the search then stops
// at its ceiling and says so (bounded = false).
#pragma once

#include <string>
#include <vector>

#include "simulator/sim.h"

namespace sp {

// The SLO's percentile of a summary (50, 90 or 99).
double slo_pick(const Summary& s, int percentile);

// Which SLO a point misses (the first in this order), or SLO_MET: an
// unstable point (an open loop whose queue grows) misses every SLO, since
// its latencies are the window's, not a steady state's; then per-user speed
// (the speed met by `percentile` % of requests >= per_user_tok_s), TTFT and
// TPOT at the percentile <= their bounds. An SLO of 0 always holds.
enum SloMiss { SLO_MET, SLO_UNSTABLE, SLO_SPEED, SLO_TTFT, SLO_TPOT };
SloMiss slo_check(const Slo& slo, const PointResult& p);
const char* slo_miss_name(SloMiss m);  // "met", "stability", "per-user speed", "TTFT", "TPOT"
// One line for the table header: "per-user p90 >= 120 tok/s, TTFT p90 <= 2000 ms".
std::string slo_text(const Slo& slo);
// What goodput counts, naming only the SLOs that are set: "requests with
// speed >= 120 tok/s and TTFT <= 2000 ms" (each request's own speed and
// TTFT, not a percentile; TPOT does not enter), or "every request (no
// per-user speed or TTFT SLO set)".
std::string goodput_text(const Slo& slo);

struct CapacitySearch {
    bool met = false;       // some load meets every SLO
    bool bounded = false;   // a failing load was simulated above `load`
    double load = 0;        // the largest load found meeting every SLO: whole users, or requests/s
    PointResult point;      // simulated there
    SloMiss binding = SLO_MET;  // the SLO the next load up missed (bounded only)
    int n_points = 0;       // points simulated by the search
};

// The largest load meeting every SLO for one policy. Closed loop: whole
// users, doubling from the largest known meeting load (or 1 user) up to the
// first failing load or `ceiling`, then bisection until hi = lo + 1. Open
// loop: requests/s likewise, from ceiling / 1024, bisected geometrically to
// a relative width of 1 %. `known_loads` (ascending) with their `known`
// points (may be empty) seed the bracket: the first failing load and the
// largest meeting one below it, so a sweep's grid is not run again.
// Deterministic: the same scenario gives the same answer.
CapacitySearch capacity_search(const Scenario& sc, const AcceptanceData& acc, const Policy& policy,
                               const std::vector<double>& known_loads, const std::vector<PointResult>& known,
                               double ceiling);

// The default ceiling of a search: 8 x max_seqs users, or for an open loop 8
// x the largest rate the scenario lists.
double capacity_ceiling(const Scenario& sc);

// One policy's fleet for `users` users (closed loop) or `rate` requests/s
// (open loop): the fewest replicas whose load each stays within capacity,
// replicas x tp GPUs, and the point simulated at the load a replica then
// carries: users / replicas rounded up, or rate / replicas.
struct FleetPlan {
    std::string policy;
    int gamma = 0, tp = 1;   // the configuration: engine.gamma and tp it ran at
    int draft_len = 0;       // drafts a step at that gamma (0: the policy does not speculate)
    CapacitySearch capacity; // per replica: users, or requests/s (a rate's capacity is the max stable rate
                             // meeting every SLO, to 1 %)
    bool feasible = false;   // capacity met (at least one user a replica, or some rate)
    int replicas = 0, gpus = 0, users_per_replica = 0;
    double rate_per_replica = 0;         // by rate: rate / replicas (<= capacity)
    PointResult point;       // at users_per_replica or rate_per_replica
    double usd_per_hour = 0;             // gpus x price; 0 without a price
    double usd_per_million_tokens = 0;   // usd_per_hour / output tokens per hour x 1e6; 0 without a price
    // The fleet check: the whole load over `replicas` replicas in one fleet
    // simulation (sim.h) behind the least-loaded router, against every SLO;
    // not checked when (warmup + requests) x replicas passes 1e8 completions.
    bool checked = false;
    SloMiss check = SLO_MET;             // SLO_MET: the fleet still meets every SLO
    PointResult check_point;
};
FleetPlan plan_fleet(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, int users,
                     double gpu_hour_usd);
FleetPlan plan_fleet_rate(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, double rate,
                          double gpu_hour_usd);

// The same for every policy, on `threads` threads (0 = all cores), in the
// policies' order; deterministic for any thread count.
std::vector<FleetPlan> plan_fleets(const Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& policies,
                                   int users, double gpu_hour_usd, int threads);

// The planner's whole question: `users` users (closed loop) or `rate`
// requests/s (open loop), every policy, each at every gamma of `gammas` and
// tp of `tps` (empty: the scenario's), and a fleet check of each policy's
// best configuration.
struct PlanQuery {
    int users = 0;                 // > 0: by users (closed loop)
    double rate = 0;               // > 0: by rate (open loop)
    std::vector<int> gammas, tps;  // ascending; empty: the scenario's engine.gamma, engine.tp
    double gpu_hour_usd = 0;
    bool fleet_check = true;
    int threads = 0;
};

// The scenario at another gamma and tp, or an sp::Error of one line naming
// `flag` and why the scenario cannot (tp with a measured cost model, which
// was profiled at the scenario's tp only; gamma above what the acceptance
// source records, or than a parametric mix's alpha lists; a request that no
// longer fits the KV cache). tp scales the roofline's bandwidth and rate by
// tp and, where the scenario derived its KV capacity, derives it again from
// tp GPUs' HBM; a parametric mix keeps its first gamma alpha_k. The
// variant is one replica whatever the scenario's [fleet] says: capacity is
// a replica's.
Scenario plan_variant(const Scenario& sc, const AcceptanceData& acc, int gamma, int tp);

// Checks every (gamma, tp) of the query against the scenario (plan_variant's
// errors, naming --gammas or --tp), before anything runs.
void plan_check_query(const Scenario& sc, const AcceptanceData& acc, const PlanQuery& q);

// Per policy, in the policies' order: its best configuration, the fewest
// GPUs, ties to the lower cost per million tokens (the higher throughput
// per GPU: the same order with or without a price). A policy whose drafts
// per step do not change with gamma (ar, mtp1, fixed:K) runs at one gamma
// only, the scenario's when listed, else the first; fixed:K skips gammas
// below K. A policy no configuration serves comes back infeasible, at the
// scenario's gamma and tp.
std::vector<FleetPlan> plan_search(const Scenario& sc, const std::vector<Policy>& policies, const PlanQuery& q);

// The index in `plans` of the answer: the fewest GPUs, ties to the lower
// cost per million tokens (higher throughput per GPU), and costs within 1 %
// (fleets of one size at one rate serve the same tokens) to the faster
// per-user p90; -1 when none is feasible. plan_search picks each policy's
// configuration by the same rule.
int plan_best(const std::vector<FleetPlan>& plans);

}  // namespace sp
