// test_dspark_lossless.cpp: the statistical losslessness test of the DSpark
// scheduler (dspark.md 4.2 "Why the break matters", the paper's App. A).
//
// A toy world, two tokens {0, 1}, two requests in one verify step, gamma 2.
// Each request drafts x1 ~ q1, x2 ~ q2(. | x1); the target is
//   p1 = (0.4, 0.6),  p2(. | 0) = (0.7, 0.3),  p2(. | 1) = (0.2, 0.8)
//   q1 = (0.8, 0.2),  q2(. | 0) = (0.5, 0.5),  q2(. | 1) = (0.6, 0.4)
// The confidence of slot 2 depends on the sampled draft x1, as DSpark's head
// does through W1[x1]: c2 = 0.9 if x1 = 0, else 0.2. c1 is fixed: 0.5 for
// request 0 (the one whose bias we look for), 0.9 for request 1. Step time:
// 1 for B = 2..4, 1.21 for B = 5, 6 (a cliff). Write H for x1 = 0.
//
// Ranking and Theta per case (request 1's x1 first, request 0's second):
//   H H  (1,1) .9  (1,2) .81  (0,1) .5  (0,2) .45   Theta 2.9 3.71 | 3.479 3.851
//   H L  (1,1) .9  (1,2) .81  (0,1) .5  (0,2) .1    Theta 2.9 3.71 | 3.479 3.562
//   L H  (1,1) .9  (0,1) .5   (0,2) .45 (1,2) .18   Theta 2.9 3.4  | 3.182 3.331
//   L L  (1,1) .9  (0,1) .5   (1,2) .18 (0,2) .1    Theta 2.9 3.4  | 2.959 3.041
// (| marks the cliff; Theta at B = 2 is 2.)
// Early stop (Algorithm 1): l = (0, 2) when request 1 is H, (1, 1) when L.
// Request 0's slot 1 is admitted or not on request 1's draft alone, and
// request 1's slot 2 on its own x1: both causal, so the output is exact.
// Global argmax (no break): in case H H it jumps the cliff to all four slots,
// l = (2, 2); elsewhere it agrees. Request 0's slot 1 is now verified only
// when its own x1 = 0: its admission depends on the token it admits.
//
// The size of the bias. With request 1 H (probability q1(0) = 0.8), request 0
// verifies x1 when x1 = 0 and decodes plainly when x1 = 1:
//   P(y1 = 0) = q1(0) min(1, p1(0)/q1(0)) + q1(1) p1(0) = 0.4 + 0.08 = 0.48
// (the residual p1 - q1 has no mass on 0), against p1(0) = 0.4: the accept
// test assumes x1 ~ q1, but the proposals it sees are x1 = 0 only, and the
// rejections of x1 = 1 that would correct toward token 1 never happen. With
// request 1 L the step is exact. Overall P(y1 = 0) = 0.8 * 0.48 + 0.2 * 0.4 =
// 0.464. y2 given y1 stays p2(. | y1) (slot 2's verification, or the next
// step, is exact given y1), so the chi-square over the four (y1, y2) cells
// has noncentrality N * 0.064^2 (1/0.4 + 1/0.6) = 0.01707 N: about 3400 at
// N = 200,000 trials, against 30.66, the 1e-6 critical value for 3 dof.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "policy/policy.h"
#include "traces/rng.h"

using namespace sp;

namespace {

const double P1[2] = {0.4, 0.6};
const double P2[2][2] = {{0.7, 0.3}, {0.2, 0.8}};
const double Q1[2] = {0.8, 0.2};
const double Q2[2][2] = {{0.5, 0.5}, {0.6, 0.4}};
const float C1[2] = {0.5f, 0.9f};  // per request
float c2(int x1) { return x1 == 0 ? 0.9f : 0.2f; }

const double STEP[7] = {0, 0, 1, 1, 1, 1.21, 1.21};  // by B
double step_time(const void*, int, int b) { return STEP[b]; }

// Chi-square critical values for 3 degrees of freedom (upper tail), from
// Q(x) = erfc(sqrt(x/2)) + sqrt(2x/pi) exp(-x/2) solved by bisection.
constexpr double CHI2_3DOF_P1E4 = 21.108;
constexpr double CHI2_3DOF_P1E6 = 30.665;

constexpr int TRIALS = 200000;

int sample(Rng& rng, const double* p) { return rng_uniform(rng) < p[0] ? 0 : 1; }

// From norm(max(0, p - q)); never all zero here since p != q.
int sample_residual(Rng& rng, const double* p, const double* q) {
    double r0 = std::max(0.0, p[0] - q[0]), r1 = std::max(0.0, p[1] - q[1]);
    return rng_uniform(rng) * (r0 + r1) < r0 ? 0 : 1;
}

bool accept(Rng& rng, double p, double q) { return rng_uniform(rng) < std::min(1.0, p / q); }

// Standard speculative sampling of a request's first two output tokens with
// l of its drafts x verified. A step that emits one token is followed by
// plain sampling, which is what any exact later step amounts to.
void verify(Rng& rng, int l, const int x[2], int y[2]) {
    if (l == 0) {
        y[0] = sample(rng, P1);
        y[1] = sample(rng, P2[y[0]]);
    } else if (!accept(rng, P1[x[0]], Q1[x[0]])) {
        y[0] = sample_residual(rng, P1, Q1);
        y[1] = sample(rng, P2[y[0]]);
    } else if (l == 1) {
        y[0] = x[0];
        y[1] = sample(rng, P2[x[0]]);  // the bonus token
    } else {
        y[0] = x[0];
        y[1] = accept(rng, P2[x[0]][x[1]], Q2[x[0]][x[1]]) ? x[1] : sample_residual(rng, P2[x[0]], Q2[x[0]]);
    }
}

enum Scheduler { EARLY_STOP, GLOBAL_ARGMAX, ASYNC };

struct Outcome {
    int64_t cells[2][4] = {};     // per request: (y1, y2) as 2 y1 + y2
    int64_t ell_seen[2][3] = {};  // per request: how often each l was chosen
    int64_t off_design = 0;       // steps whose l differs from the table in the header
};

Outcome run(Scheduler s, uint64_t seed) {
    Rng rng = rng_seed(seed, static_cast<uint64_t>(s));
    float conf[4], stale[4];
    int max_len[2] = {2, 2}, ell[2];
    PolicyInput in;
    in.n = 2;
    in.gamma = 2;
    in.conf = conf;
    in.conf_stale = stale;
    in.max_len = max_len;
    in.token_budget = 6;
    in.step_time = StepTime{step_time, nullptr};
    Policy async;
    std::string err;
    EXPECT_TRUE(policy_parse("dspark-async", &async, &err));
    Outcome o;
    for (int t = 0; t < TRIALS; t++) {
        int x[2][2];
        for (int r = 0; r < 2; r++) {
            x[r][0] = sample(rng, Q1);
            x[r][1] = sample(rng, Q2[x[r][0]]);
            conf[2 * r] = stale[2 * r] = C1[r];
            conf[2 * r + 1] = c2(x[r][0]);
            // two steps old: the drafts of an earlier, independent step
            stale[2 * r + 1] = c2(sample(rng, Q1));
        }
        if (s == ASYNC) {
            policy_choose(async, in, ell);
        } else {
            dspark_schedule(in, s == EARLY_STOP, ell);
            bool h0 = x[0][0] == 0, h1 = x[1][0] == 0;
            int want0 = h1 ? 0 : 1, want1 = h1 ? 2 : 1;
            if (s == GLOBAL_ARGMAX && h0 && h1) want0 = 2;
            o.off_design += ell[0] != want0 || ell[1] != want1;
        }
        for (int r = 0; r < 2; r++) {
            int y[2];
            verify(rng, ell[r], x[r], y);
            o.cells[r][2 * y[0] + y[1]]++;
            o.ell_seen[r][ell[r]]++;
        }
    }
    return o;
}

// Pearson's statistic of one request's four cells against the target joint.
double chi_square(const int64_t* cells);

void print(const char* what, const Outcome& o) {
    std::printf("%-14s chi2 request 0 %8.2f  request 1 %8.2f  (P(y1 = 0) of request 0: %.4f)\n", what,
                chi_square(o.cells[0]), chi_square(o.cells[1]),
                static_cast<double>(o.cells[0][0] + o.cells[0][1]) / TRIALS);
}

double chi_square(const int64_t* cells) {
    double x2 = 0;
    for (int y1 = 0; y1 < 2; y1++)
        for (int y2 = 0; y2 < 2; y2++) {
            double expected = TRIALS * P1[y1] * P2[y1][y2];
            double d = static_cast<double>(cells[2 * y1 + y2]) - expected;
            x2 += d * d / expected;
        }
    return x2;
}

}  // namespace

TEST(DSparkLossless, EarlyStopEmitsExactlyTheTargetDistribution) {
    Outcome o = run(EARLY_STOP, 20240601);
    print("early stop", o);
    ASSERT_EQ(o.off_design, 0) << "the scheduler no longer makes the decisions this world was built on";
    // Both kinds of causal selection happen: request 0's slot 1 on request
    // 1's draft, request 1's slot 2 on its own x1.
    EXPECT_GT(o.ell_seen[0][0], 0);
    EXPECT_GT(o.ell_seen[0][1], 0);
    EXPECT_GT(o.ell_seen[1][1], 0);
    EXPECT_GT(o.ell_seen[1][2], 0);
    EXPECT_LT(chi_square(o.cells[0]), CHI2_3DOF_P1E4);
    EXPECT_LT(chi_square(o.cells[1]), CHI2_3DOF_P1E4);
}

TEST(DSparkLossless, GlobalArgmaxWithoutTheBreakIsDetectablyBiased) {
    Outcome o = run(GLOBAL_ARGMAX, 20240601);
    print("global argmax", o);
    ASSERT_EQ(o.off_design, 0) << "the scheduler no longer makes the decisions this world was built on";
    EXPECT_GT(chi_square(o.cells[0]), CHI2_3DOF_P1E6);
    // The bias is the one derived in the header: P(y1 = 0) = 0.464, not 0.4
    // (6 standard errors of a proportion).
    double p0 = static_cast<double>(o.cells[0][0] + o.cells[0][1]) / TRIALS;
    EXPECT_NEAR(p0, 0.464, 6 * std::sqrt(0.464 * 0.536 / TRIALS));
    // Request 1's choices are the same as under the early stop: still exact.
    EXPECT_LT(chi_square(o.cells[1]), CHI2_3DOF_P1E4);
}

// dspark-async: the budget K comes from stale confidences (independent of
// this step's drafts), the K slots from the current ranking, where (r, 2)
// always follows (r, 1). Over the stale table K is 4 (stale H H) or 2.
TEST(DSparkLossless, AsyncVariantIsExactToo) {
    Outcome o = run(ASYNC, 20240601);
    print("dspark-async", o);
    EXPECT_GT(o.ell_seen[0][2], 0) << "K = 4 steps verify request 0's second draft";
    EXPECT_GT(o.ell_seen[0][0], 0);
    EXPECT_LT(chi_square(o.cells[0]), CHI2_3DOF_P1E4);
    EXPECT_LT(chi_square(o.cells[1]), CHI2_3DOF_P1E4);
}
