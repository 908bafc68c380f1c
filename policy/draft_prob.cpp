// draft_prob.cpp: the binned estimator of draft_prob.h.
#include "policy/draft_prob.h"

#include <cassert>
#include <cmath>

namespace sp {

int draft_prob_bin(float q) {
    if (!(q > 0)) return 0;  // also NaN
    if (!(q < 1)) return DRAFT_PROB_BINS - 1;
    const double x = std::log(double(q)) - std::log1p(-double(q));
    const double b = std::floor((x - DRAFT_PROB_LOGIT_LO) / DRAFT_PROB_LOGIT_WIDTH);
    // compared as doubles: a q within float rounding of 0 or 1 has |logit| ~ 17, far outside
    if (b < 0) return 0;
    if (b > DRAFT_PROB_BINS - 1) return DRAFT_PROB_BINS - 1;
    return int(b);
}

double draft_prob_prior(int bin) {
    assert(bin >= 0 && bin < DRAFT_PROB_BINS && "draft_prob_prior: bin out of range");
    const double x = DRAFT_PROB_LOGIT_LO + DRAFT_PROB_LOGIT_WIDTH * (bin + 0.5);
    return 1.0 / (1.0 + std::exp(-x));
}

double draft_prob_estimate(const DraftProbEstimator& est, float q) {
    const int b = draft_prob_bin(q);
    return (double(est.accepted[b]) + DRAFT_PROB_PRIOR * draft_prob_prior(b)) /
           (double(est.observed[b]) + DRAFT_PROB_PRIOR);
}

void draft_prob_observe(DraftProbEstimator& est, const float* q_row, int ell, int n_accepted) {
    assert(ell >= 0 && n_accepted >= 0 && n_accepted <= ell && "draft_prob_observe: need 0 <= n_accepted <= ell");
    for (int j = 0; j < ell && j <= n_accepted; j++) {
        const int b = draft_prob_bin(q_row[j]);
        est.observed[b]++;
        if (j < n_accepted) est.accepted[b]++;
    }
}

}  // namespace sp
