// step_cost.h: SPS(B), the seconds one verify forward of B tokens takes on
// this backend, measured at start as vLLM and SGLang do: a few timed
// forwards per B at a fixed context, the median kept, the table then forced
// non-decreasing (a larger batch never costs less; timer noise would
// otherwise make the DSpark scheduler chase it). The policies that price
// verify tokens (policy_needs_step_time: dspark, dspark-async, goodput,
// draft-prob) read it through StepTime.
#pragma once

#include <vector>

#include "engine/backend.h"
#include "policy/policy.h"

namespace sp {

struct StepCostTable {
    int context = 0;                 // tokens cached in the timed sequence
    std::vector<double> seconds;     // [B - 1], B = 1..max_tokens, non-decreasing
};

// Times forwards of 1..max_tokens tokens in sequence slot `slot` (which must
// be free: it is filled with `context` tokens, then emptied again), `reps`
// times each. Throws sp::Error when the slot or the sizes are out of range.
StepCostTable step_cost_measure(Backend& b, int slot, int max_tokens, int context, int reps);

// Seconds at B tokens: the table, or past its end the line through its last
// two entries (B >= 1).
double step_cost_seconds(const StepCostTable& t, int n_tokens);
// The table as the policies' StepTime; `t` must outlive it.
StepTime step_cost_fn(const StepCostTable& t);

}  // namespace sp
