// trace_stats.h: acceptance statistics of a stored run, the numbers
// `specplan traces info` prints and the dashboard plots.
//
// Definitions (full-block verification, every slot 1..gamma verified):
//   anchors      rows t of the positions table with a full block, t + gamma < output_len
//   survival[k]  mean over anchors of prod_{i<=k} beta(t,i): P(drafts 1..k all accepted)
//   alpha[k]     survival[k] / survival[k-1] (survival[0] = 1): the conditional
//                acceptance of slot k, pooled as the paper's Fig 2 pools it
//   tau          1 + sum_k survival[k]: expected tokens per verify step,
//                bonus or corrected token included
// By construction tau = 1 + sum_k prod_{i<=k} alpha[i] holds exactly.
#pragma once

#include <string>
#include <vector>

#include "traces/trace_db.h"

namespace sp {

struct AcceptanceStats {
    std::string domain;            // "all" for the whole run
    int gamma = 0;
    int64_t n_requests = 0;        // requests with positions
    int64_t n_anchors = 0;         // full-block anchors pooled
    std::vector<double> survival;  // (gamma)
    std::vector<double> alpha;     // (gamma); NaN where survival[k-1] is 0
    double tau = 0;                // NaN when there are no anchors
    int64_t n_draft_prob = 0;      // requests whose positions record draft_prob (what draft-prob replays)
};

struct StepStats {
    int64_t n_steps = 0;
    double tau = 0;                // mean of n_accepted + 1 over steps
    double mean_verify_len = 0;    // mean l
    double mean_batch = 0;         // mean batch size
};

// The run's statistics: "all" first, then one entry per domain in order of
// first appearance.
std::vector<AcceptanceStats> trace_acceptance_stats(TraceDb& db, int64_t run_id);

// Pools one request's positions into running sums; finish with acceptance_finish.
struct AcceptanceSums {
    int gamma = 0;
    int64_t n_requests = 0, n_anchors = 0;
    std::vector<double> survival_sum;  // (gamma)
    int64_t n_draft_prob = 0;
};
void acceptance_add(AcceptanceSums& s, const Positions& p);
AcceptanceStats acceptance_finish(const AcceptanceSums& s, const std::string& domain);

StepStats trace_step_stats(TraceDb& db, int64_t run_id);

}  // namespace sp
