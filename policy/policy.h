// policy.h: verification policies, which pick each running request's verify
// length l_r (drafts to verify, 0..gamma) every iteration.
//
//   ar           no speculation: l = 0
//   mtp1         one draft, always verified: l = 1
//   fixed:k      always verify k drafts
//   threshold:t  verify the leading drafts whose calibrated confidence is >= t;
//                truncate at the first slot below t (per-slot c, not the product)
//   dspark       DSpark Algorithm 1: rank every slot (r, j) by prefix survival
//                a(r,j) = prod_{i<=j} c(r,i); admit in that order while
//                Theta = tau * SPS(B) strictly improves, stop at the first
//                non-improvement (the stop keeps the output lossless). Ties keep
//                (r, j) before (r, j+1), then lower r first.
//   dspark-async the production variant: the budget K is the argmax of Theta
//                over the ranking of confidences two steps old (no early stop);
//                the top-K slots by current prefix survival are verified.
//   goodput      SmartSpec-style: per-request acceptance alpha_r observed so
//                far; admits slots by expected gain alpha_r^j and keeps the
//                prefix that maximises expected accepted tokens per second.
//   batch-table  k from a table of (running requests >= R -> k), as vLLM and
//                TensorRT-LLM schedule drafts by batch size.
//   draft-prob   dspark without a confidence head: c(r, j) is estimated
//                online from the draft's own probability of its token
//                (PolicyInput::draft_prob) by a binned count of how often
//                drafts of that probability were accepted (estimator,
//                draft_prob.h); then dspark's scheduler, early stop included.
//                For DFlash, EAGLE-3, draft models and n-gram (vLLM PR #52228).
//
// With Theta = tau * SPS(B): tau = sum_r (1 + sum_{j<=l_r} a(r,j)) expected
// tokens, B = sum_r (1 + l_r) verified tokens, SPS(B) = 1 / step_time(B).
// Every policy respects per-request caps (max_len) and the token budget.
#pragma once

#include <cstdint>

#include <string>
#include <utility>
#include <vector>

namespace sp {

enum PolicyKind {
    POLICY_AR,
    POLICY_MTP1,
    POLICY_FIXED,
    POLICY_THRESHOLD,
    POLICY_DSPARK,
    POLICY_DSPARK_ASYNC,
    POLICY_GOODPUT,
    POLICY_BATCH_TABLE,
    POLICY_DRAFT_PROB,
    POLICY_COUNT
};

struct Policy {
    PolicyKind kind = POLICY_AR;
    int k = 0;                   // fixed:k
    double threshold = 0;        // threshold:t, in [0, 1]
    std::vector<std::pair<int, int>> batch_table;  // batch-table: (min running requests, k), ascending
    std::string name;            // canonical text: "ar", "fixed:3", "threshold:0.6", "dspark", ...
};

// Parses "ar", "mtp1", "fixed:K", "threshold:T", "dspark", "dspark-async",
// "goodput", "batch-table" (the table comes from the scenario), "draft-prob".
// On failure returns false and sets *err to what was expected.
bool policy_parse(const std::string& text, Policy* out, std::string* err);

// Drafts the drafter must produce per request per step under this policy
// (the draft phase cost): 0 for ar, min(1, gamma) for mtp1, min(k, gamma) for
// fixed:k, the table's largest k capped by gamma for batch-table (an upper
// bound: the k in force depends on R, which this call does not see), gamma for
// the others. Whether a policy ever drafts, and with how many slots at most.
int policy_draft_len(const Policy& p, int gamma);
// The same for an iteration of n_running decoding requests: 0 while more
// than draft_max_running (> 0; engine.draft_max_running) decode, the
// engine's switch that turns speculation off above a batch size; for
// batch-table the k in force at that R, capped by gamma (0 above the table's
// last speculating row: no draft call, as vLLM and TensorRT-LLM switch
// speculation off by batch size); policy_draft_len otherwise. What the
// engine's step and the simulator's iteration draft.
int policy_draft_len_at(const Policy& p, int gamma, int n_running, int draft_max_running = 0);

// Whether the policy prices verify tokens, so needs PolicyInput::step_time:
// dspark, dspark-async, goodput and draft-prob.
bool policy_needs_step_time(const Policy& p);

// Seconds one iteration takes when the verify batch holds B tokens of the
// R = n_seqs running requests, draft phase included. A plain function
// pointer and context, so the hot loop pays no std::function.
struct StepTime {
    double (*fn)(const void* ctx, int n_seqs, int n_tokens) = nullptr;
    const void* ctx = nullptr;
    double operator()(int n_seqs, int n_tokens) const { return fn(ctx, n_seqs, n_tokens); }
};

// A StepTime plus a fixed number of seconds (a phase the step pays whatever
// B is, such as the draft call); `p` must outlive the result.
struct StepTimePlus {
    StepTime inner;
    double seconds = 0;
};
inline StepTime step_time_plus(const StepTimePlus* p) {
    return StepTime{[](const void* ctx, int n_seqs, int n_tokens) {
                        const auto* q = static_cast<const StepTimePlus*>(ctx);
                        return q->inner(n_seqs, n_tokens) + q->seconds;
                    },
                    p};
}

// The per-request acceptance estimate goodput reads (PolicyInput::alpha_hat):
// Laplace's rule over the drafts verified so far, 1/2 before any. The
// simulator and the engine both call it, so they feed the policy alike.
inline double alpha_estimate(int64_t accepted, int64_t verified) {
    return static_cast<double>(accepted + 1) / static_cast<double>(verified + 2);
}

struct DraftProbEstimator;  // draft_prob.h

struct PolicyInput {
    int n = 0;                         // R: running requests this step
    int gamma = 0;                     // block size: l_r <= gamma
    const float* conf = nullptr;       // (n, gamma) calibrated confidence c(r, j) of this step's drafts
    const float* conf_stale = nullptr; // (n, gamma) confidences of two steps ago, row r = same request
                                       // (dspark-async); rows of new requests hold their current values;
                                       // null: use conf
    const int* max_len = nullptr;      // (n) cap on l_r: remaining output tokens - 1, at most gamma;
                                       // null: gamma for every request
    const double* alpha_hat = nullptr; // (n) acceptance rate observed so far per request (goodput, which
                                       // requires it); clamped into [0, 0.999], NaN counts as 0
    const float* draft_prob = nullptr; // (n, gamma) the draft's probability of each drafted token, in [0, 1]
                                       // (draft-prob, which requires it with estimator)
    const DraftProbEstimator* estimator = nullptr;  // draft-prob's acceptance by draft probability so far
    int token_budget = 0;              // cap on B = sum (1 + l_r); >= n
    StepTime step_time;                // seconds per iteration at B verified tokens
};

// Writes l_r for r = 0..n-1 into ell. Deterministic: equal inputs give equal outputs.
void policy_choose(const Policy& p, const PolicyInput& in, int* ell);

// The DSpark scheduler itself, exposed for tests: with early_stop false it
// takes the global argmax of Theta over the ranking instead (the variant the
// paper shows to be biased). Returns Theta of the chosen allocation.
double dspark_schedule(const PolicyInput& in, bool early_stop, int* ell);

}  // namespace sp
