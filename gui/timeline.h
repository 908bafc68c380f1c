// timeline.h: the Step timeline's data: a few consecutive iterations of one
// (policy, load) point copied out of the simulator, and the arithmetic the
// panel prints beside them. Free of ImGui so that CI tests it without a
// window (tests/test_timeline.cpp); app.h includes it.
//
// Per iteration, with c(r, i) the calibrated confidence of request r's draft i
// and l_r its verified drafts (DSpark's notation, policy.h):
//   tau       = sum_r (1 + sum_{j<=l_r} prod_{i<=j} c(r, i))  expected tokens
//               per batch step (the panels' "Στ", readout.h: not tau per request)
//   Theta     = tau / step time                              expected tokens/s
//   emitted   = sum_r (accepted_r + 1)                        realised tokens
//   wasted    = sum_r (l_r - accepted_r)                      verified, rejected
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "simulator/acceptance.h"

namespace sp {

// Iterations one capture copies: enough to step through for a while, few
// enough that a capture costs one point's simulation and a few KB.
inline constexpr int TIMELINE_STEPS = 48;

// One iteration captured for the Step timeline (a copy of sim.h's StepView).
struct TimelineStep {
    int64_t start_ns = 0, end_ns = 0;
    int gamma = 0, draft_len = 0;
    int batch_tokens = 0, prefill_tokens = 0;  // B including prefill, and the prefill part
    double draft_s = 0, forward_s = 0;
    std::vector<uint64_t> keys;              // (R) request keys
    std::vector<int> ell, accepted;          // (R) verified and accepted drafts
    std::vector<float> conf;                 // (R, gamma) calibrated draft confidences
};

// A few consecutive iterations of one (policy, load) point, from the middle
// of its measurement window, plus the point's accepted-length histogram.
struct TimelineOutput {
    uint64_t generation = 0;                 // the sweep it belongs to
    std::string policy;
    double load = 0;
    std::vector<TimelineStep> steps;
    std::vector<int64_t> accepted_hist;      // (gamma + 1) request-steps with j accepted drafts, whole point
    int token_budget = 0;                    // the engine's max_batch_tokens
    // The simulator draws confidences only for the policies that rank by them
    // (threshold, dspark, dspark-async); for the others conf is all 0 and tau
    // is not the policy's own estimate.
    bool conf_read = false;
};

// Runs one point with an observer that copies `n_steps` consecutive
// iterations with decoding requests, starting once warmup + requests/2
// requests have completed (the middle of the measurement window), and counts
// every request-step of the point into accepted_hist. When fewer than
// n_steps such iterations follow before the point ends, the ones just before
// the middle fill the view, so the steps stay consecutive. generation is left 0.
TimelineOutput timeline_capture_point(const Scenario& sc, const AcceptanceData& acc, const Policy& policy,
                                      double load, int n_steps = TIMELINE_STEPS);

int timeline_requests(const TimelineStep& s);       // R
double timeline_step_s(const TimelineStep& s);      // draft + forward seconds
double timeline_tau(const TimelineStep& s);         // expected tokens from the confidences
int64_t timeline_emitted(const TimelineStep& s);    // sum (accepted + 1)
int64_t timeline_verified(const TimelineStep& s);   // sum (1 + ell): the decode part of B
int64_t timeline_wasted(const TimelineStep& s);     // sum (ell - accepted)

}  // namespace sp
