// step_cost.h: SPS(R, B), the seconds one verify forward of B tokens over R
// running requests takes on this backend, measured at start as vLLM and
// SGLang do: a few timed forwards at the shapes the loop runs (R sequences
// of q tokens each, every sequence holding the same cached context, through
// Backend::forward and so through the same CUDA graphs), the median kept,
// the table then forced non-decreasing in R and in q (a larger batch never
// costs less; timer noise would otherwise make the DSpark scheduler chase
// it). R counts: at 256 requests of 8 tokens qwen3-8b's attention reads 256
// contexts, where one sequence of 2,048 tokens reads one. The policies that
// price verify tokens (policy_needs_step_time: dspark, dspark-async,
// goodput, draft-prob) read it through StepTime.
#pragma once

#include <vector>

#include "engine/backend.h"
#include "engine/drafter.h"
#include "policy/policy.h"

namespace sp {

struct StepCostTable {
    int context = 0;               // tokens cached in every timed sequence
    std::vector<int> seqs;         // R grid: 1, 2, 4, ... and max_seqs, ascending
    std::vector<int> per_seq;      // q grid, tokens per sequence: 1, 2, 4, ... and max_per_seq, ascending
    std::vector<double> seconds;   // [i_R * per_seq.size() + i_q], non-decreasing along both
};

// The grid 1, 2, 4, ... below n, and n (n >= 1).
std::vector<int> step_cost_grid(int n);

// Times forwards of R sequences x q tokens over the grids up to max_seqs and
// max_per_seq, `reps` times each after a warm-up, in slots 0..max_seqs-1,
// which must be free: they are filled with `context` tokens (prefilled one
// sequence at a time), then emptied again. Throws sp::Error when the slots
// or the sizes are out of range.
StepCostTable step_cost_measure(Backend& b, int max_seqs, int max_per_seq, int context, int reps);
// The same over explicit grids (ascending, >= 1): the prefill table is
// R prompts of q tokens each at context 0.
StepCostTable step_cost_measure_grid(Backend& b, const std::vector<int>& seqs, const std::vector<int>& per_seq,
                                     int context, int reps);

// The draft phase as a serving loop pays it, per R of `seqs` (ascending):
// R requests of `context` prompt tokens decode under fixed:gamma through a
// Speculator on these target and drafter, and the median of `reps` draft
// calls (IterationInfo::draft_ns, after one untimed) is kept, forced
// non-decreasing in R. Each call brings the drafter what the previous
// step committed, as in serving. Needs seqs.back() free slots in both;
// leaves them free. Throws sp::Error when the slots or sizes do not fit.
std::vector<double> draft_cost_measure(Backend& target, Drafter& d, const std::vector<int>& seqs, int gamma,
                                       int context, int reps);

// Seconds at R sequences verifying B tokens in all: linear in q = B / R
// between the q grid's points (past its end, the line through its last
// two), and linear in R between the rows around it (R clamped to the grid).
double step_cost_seconds(const StepCostTable& t, int n_seqs, int n_tokens);
// The table as the policies' StepTime; `t` must outlive it.
StepTime step_cost_fn(const StepCostTable& t);

}  // namespace sp
