// plan.h: the planner's answers. Whether a point meets every SLO of the
// scenario; the capacity of one replica, the largest load meeting every
// SLO, found by bisection on simulated points rather than read off a grid;
// and the fleet of replicas that serves N users with the fewest GPUs.
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

// One policy's fleet for `users` users (closed loop): the fewest replicas
// whose users each stay within capacity, replicas x tp GPUs, and the point
// simulated at users / replicas (rounded up) users a replica.
struct FleetPlan {
    std::string policy;
    CapacitySearch capacity;
    bool feasible = false;   // capacity met (at least one user a replica)
    int replicas = 0, gpus = 0, users_per_replica = 0;
    PointResult point;       // at users_per_replica
    double usd_per_hour = 0;             // gpus x price; 0 without a price
    double usd_per_million_tokens = 0;   // usd_per_hour / output tokens per hour x 1e6; 0 without a price
};
FleetPlan plan_fleet(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, int users,
                     double gpu_hour_usd);

// The same for every policy, on `threads` threads (0 = all cores), in the
// policies' order; deterministic for any thread count.
std::vector<FleetPlan> plan_fleets(const Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& policies,
                                   int users, double gpu_hour_usd, int threads);

}  // namespace sp
