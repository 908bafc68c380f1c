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
//
// Not verified is not rejected. Positions that record which slots were
// verified (Positions::verified, imported live proposals) pool every row at
// the slots it observed, not only full blocks: with R_k the rows observing
// slot k,
//   alpha[k]     sum_{R_k} prod_{i<=k} beta / sum_{R_k} prod_{i<k} beta
//   survival[k]  prod_{i<=k} alpha[i]   (the product-limit estimate; equal to
//                the mean above when every row observes every slot)
// and an unverified slot counts neither as accepted nor as rejected.
//
// Steps (live or imported verify steps, drafted d >= verified v >= accepted a):
// slot k is observed at a step when k <= v, and reached when a >= k - 1, so
//   alpha[k] = #{steps with a >= k} / #{steps with v >= k and a >= k - 1}
// the steps whose k-th draft was verified with drafts 1..k-1 accepted. A
// step that drafted 5, verified 2 and accepted both says nothing about slot 3.
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
    int64_t drafted = 0, verified = 0, accepted = 0;  // drafts over all steps (drafted: verify_len where not recorded)
    std::vector<double> alpha;     // (gamma) conditional acceptance from verified slots; NaN where none reached k
    std::vector<int64_t> at_risk;  // (gamma) steps that verified slot k with drafts 1..k-1 accepted
};

// The run's statistics: "all" first, then one entry per domain in order of
// first appearance.
std::vector<AcceptanceStats> trace_acceptance_stats(TraceDb& db, int64_t run_id);

// Pools one request's positions into running sums; finish with acceptance_finish.
struct AcceptanceSums {
    int gamma = 0;
    int64_t n_requests = 0, n_anchors = 0;
    std::vector<double> survival_sum;  // (gamma) sum over rows observing slot k of prod_{i<=k} beta
    int64_t n_draft_prob = 0;
    std::vector<double> at_risk;       // (gamma) sum over rows observing slot k of prod_{i<k} beta
    int64_t n_partial = 0;             // rows that observe fewer than gamma slots (recorded verified)
};
AcceptanceSums acceptance_sums(int gamma);
void acceptance_add(AcceptanceSums& s, const Positions& p);
AcceptanceStats acceptance_finish(const AcceptanceSums& s, const std::string& domain);

StepStats trace_step_stats(TraceDb& db, int64_t run_id);
// The same from steps in hand; gamma bounds verify_len.
void step_stats_add(StepStats& s, const Step& st);
StepStats step_stats_start(int gamma);
void step_stats_finish(StepStats& s);

}  // namespace sp
