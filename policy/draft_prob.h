// draft_prob.h: the online acceptance estimate of the draft-prob policy
// (policy.h), for drafters without a confidence head (DFlash, EAGLE-3, a
// draft model, n-gram). Every drafter still says how sure it was of each
// draft: q, its own probability of the drafted token (engine/drafter.h
// DraftOutput::q_token: max q at greedy, q(token) when sampling, 1 for
// n-gram). How often drafts of a given q were accepted is learnt while
// serving, as vLLM PR #52228 does with the feature logit(max q).
//
// Binning: DRAFT_PROB_BINS = 16 bins of logit(q) = ln(q / (1 - q)), each
// DRAFT_PROB_LOGIT_WIDTH = 0.75 wide over [-6, 6]: bin b holds logit(q) in
// [-6 + 0.75 b, -6 + 0.75 (b + 1)), the end bins open-ended (bin 0: q <
// 0.0052, bin 15: q >= 0.9948; q = 0 and q = 1 fall there). Logit bins and
// not equal bins of q because a useful drafter puts most drafts above q =
// 0.9, where 1/16-wide bins would lump 0.94..1 into one bin; these separate
// 0.95, 0.98, 0.99 and 0.995. The n-gram drafter's q = 1 lands in bin 15
// alone, so for it the estimate is one pooled conditional acceptance.
//
// Estimate: c(q) = (accepted_b + DRAFT_PROB_PRIOR * q_b) / (observed_b +
// DRAFT_PROB_PRIOR), b = draft_prob_bin(q), q_b = sigma(bin b's centre
// logit) (draft_prob_prior). Before any data c = q_b: a calibrated drafter's
// probability of its token is its chance of matching the target, the greedy
// acceptance. The prior weighs as two slots, so a few observations move it.
// c lies strictly inside (0, 1) (q_b is in [0.0036, 0.9964]).
//
// Observations: after a verify with l drafts of which n were accepted (the
// leading run), slot j (0-based) is observed when it was verified and every
// earlier slot was accepted (j < l and j <= n), and accepted when j < n.
// That is acceptance conditional on the prefix, the quantity DSpark's
// prefix survival multiplies. Slots not verified, and slots after the first
// rejection, say nothing about their own acceptance and are not counted.
//
// Counts are integers, so the estimate does not depend on the order of the
// observations between two policy calls; the engine and the simulator still
// observe in request-row order, after each step.
//
// Limits, by design for now: counts never decay, so a drafter whose
// acceptance drifts is followed ever more slowly; and nothing explores, so
// a bin whose estimate falls below what the step cost pays for is not
// verified again and so not re-learnt (a drafter that is only briefly
// unlucky in a bin keeps a low estimate there).
#pragma once

#include <cstdint>

namespace sp {

inline constexpr int DRAFT_PROB_BINS = 16;
inline constexpr double DRAFT_PROB_LOGIT_LO = -6.0;     // logit where bin 0's nominal range starts (it is open below)
inline constexpr double DRAFT_PROB_LOGIT_WIDTH = 0.75;  // logit units per bin
inline constexpr double DRAFT_PROB_PRIOR = 2.0;         // pseudo-slots at the bin's centre probability

struct DraftProbEstimator {
    int64_t observed[DRAFT_PROB_BINS] = {};  // slots verified with every earlier slot accepted, by bin of q
    int64_t accepted[DRAFT_PROB_BINS] = {};  // of those, accepted
};

// The bin of q: floor((logit(q) + 6) / 0.75) clamped into 0..15; q <= 0 and
// NaN give 0, q >= 1 gives 15.
int draft_prob_bin(float q);

// sigma(-6 + 0.75 (bin + 0.5)): the bin's centre probability, its prior.
double draft_prob_prior(int bin);

// Estimated conditional acceptance of a draft of probability q, in (0, 1).
double draft_prob_estimate(const DraftProbEstimator& est, float q);

// One request's step: q_row (>= ell values) the probabilities of its drafts
// 0..ell-1, ell the drafts verified, n_accepted the leading drafts accepted
// (0..ell).
void draft_prob_observe(DraftProbEstimator& est, const float* q_row, int ell, int n_accepted);

}  // namespace sp
