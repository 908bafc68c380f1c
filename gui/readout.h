// readout.h: the words and numbers the panels print about a sweep, kept
// apart from ImGui so that CI checks them against hand-worked values
// (tests/test_readout.cpp): the two meanings of tau, the SLO line, where the
// frontier marks each policy's capacity and what it calls it, how a curve
// relates to a matched throughput, and the plan view's pick.
#pragma once

#include <string>
#include <vector>

#include "simulator/plan.h"
#include "simulator/sweep.h"

namespace sp {

// The two token counts of a verify step, named apart in every panel:
//   τ    tokens per request per step: one request's accepted drafts + 1
//        (PointResult::tau, the Acceptance panel's τ(γ), the Explain tables)
//   Στ   tokens per batch step: τ summed over the step's R requests (the
//        Step timeline's header; DSpark's Θ = Στ · SPS(B))
inline constexpr const char* TAU_REQUEST = "τ";
inline constexpr const char* TAU_REQUEST_WORDS = "tokens per request per step";
inline constexpr const char* TAU_BATCH = "Στ";
inline constexpr const char* TAU_BATCH_WORDS = "tokens per batch step";

// The Latency panel's SLO line: the SLOs that are set (plan.h slo_text) and
// what goodput counts (goodput_text): "SLOs: per-user p90 >= 120 tok/s,
// TTFT p90 <= 2000 ms. Goodput: requests with speed >= 120 tok/s and TTFT
// <= 2000 ms"; "SLOs: none. Goodput: every request (...)".
std::string latency_slo_line(const Slo& slo);

// A policy's capacity on the frontier: the marker sits at the capacity
// point itself (its per-user p90, its throughput), and its label is the
// capacity the table shows: "46 users", "2.5 req/s"; ">= 1,024 users" when
// the search stopped at its ceiling (not bounded). shown = false when no
// load meets every SLO.
struct CapacityMark {
    bool shown = false;
    double x = 0, y = 0;   // per-user tok/s p90, tok/s/GPU
    std::string label;     // beside the marker
    std::string tip;       // hover: "capacity: 46 users, 11,728 tok/s/GPU, per-user p90 121.3 tok/s; one more misses TTFT"
};
CapacityMark capacity_mark(const Capacity& c, bool open_loop);

// Where a curve lies against a throughput y (its finite values only):
// CROSSES when min <= y <= max, ABOVE when every point is above it, BELOW
// when every point is below, NONE without a finite point.
enum CurveReach { REACH_CROSSES, REACH_ABOVE, REACH_BELOW, REACH_NONE };
CurveReach curve_reach(const std::vector<double>& ys, double y);

// The headline's sentence when a's per-user speed at matched throughput
// cannot be read off its curve: "dspark's curve stays below 4,439
// tok/s/GPU (its highest point: 3,912)", "dspark's curve lies entirely above
// 4,439 tok/s/GPU (its lowest point: 5,120): no point of it runs that
// slowly", "dspark has no measured point". Empty for CROSSES.
std::string matched_miss_text(const std::string& policy, const std::vector<double>& ys, double matched);

// Why the plan view cannot ask plan_fleets about `users` users of this
// scenario (with its SLOs as the panel set them), as one line, or "" when
// it can: the scenario must be a closed loop, users >= 1, and at least one
// SLO set (capacity is unbounded otherwise).
std::string plan_refusal(const Scenario& sc, int users);

// The plan view's answer: the feasible fleet with the fewest GPUs, ties to
// the lower $ per million tokens (when priced), then to the earlier policy;
// -1 when none is feasible.
int plan_fewest(const std::vector<FleetPlan>& plans);

}  // namespace sp
