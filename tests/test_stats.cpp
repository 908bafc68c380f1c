// test_stats.cpp: the statistics a point reports, against closed forms: the
// batch-means confidence intervals cover the true mean at their stated rate
// over many seeds (the true throughput from the renewal-reward closed form
// of one user's requests, computed here from the cost model step by step),
// the Student t table, the ratio estimator's half-width, input throughput,
// and the window that closes on matched edges.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "sim_scenario.h"
#include "simulator/metrics.h"
#include "simulator/sim.h"
#include "simulator/workload.h"

using namespace sp;

// [SECTION] the arithmetic --------------------------------------------------------

TEST(Stats, StudentTMatchesTheTable) {
    // t(0.975, df) from any statistics table
    EXPECT_NEAR(student_t95(1), 12.706, 1e-3);
    EXPECT_NEAR(student_t95(9), 2.262, 1e-3);
    EXPECT_NEAR(student_t95(19), 2.093, 1e-3);
    EXPECT_NEAR(student_t95(60), 2.000, 2e-3);
    EXPECT_NEAR(student_t95(1000), 1.962, 2e-3);
}

// Four batches with x = (10, 12, 9, 13), y = (2, 2, 2, 2): the ratio is the
// mean of x / 2 = 5.5, the residuals x - 5.5 y = (-1, 1, -2, 2), their
// squares sum to 10, so the half-width is t(3) sqrt(10 / 12) / 2.
TEST(Stats, RatioHalfWidthIsTheBatchMeansFormula) {
    EXPECT_NEAR(ratio_ci95({10, 12, 9, 13}, {2, 2, 2, 2}), 3.182 * std::sqrt(10.0 / 12) / 2, 1e-9);
    EXPECT_EQ(ratio_ci95({10}, {2}), 0);   // one batch says nothing
    EXPECT_EQ(ratio_ci95({3, 6}, {1, 2}), 0);  // proportional batches: no spread
}

// [SECTION] coverage ----------------------------------------------------------------

// One user, think time 0, fixed prompt P and output L, i.i.d. acceptance
// alpha, fixed:k. Its requests are independent cycles (the prefill step,
// then decode steps), so throughput over whole cycles tends to L / E[cycle]
// (renewal-reward). E[cycle] follows from the engine's rules: a decode step
// at g tokens generated verifies l = min(k, L - g - 1) drafts, costs the
// draft phase plus a forward of 1 + l tokens at context P + g (each rounded
// to the ns as the simulator's clock does), and emits n + 1 tokens with
// P(n) = alpha^n (1 - alpha) for n < l and alpha^l for n = l.
static double one_user_throughput(const Scenario& sc, int k) {
    const int P = sc.workload.prompt_len.value, L = sc.workload.output_len.value;
    const double alpha = sc.acceptance.alpha;
    auto ns = [](double s) { return static_cast<double>(std::max<int64_t>(1, std::llround(s * 1e9))); };
    BatchShape pre;
    pre.n_prefill_seqs = 1;
    pre.n_prefill_tokens = P;
    const double prefill = ns(cost_forward_s(sc.cost, pre));
    std::vector<double> rest(static_cast<size_t>(L) + 2, 0.0);  // expected ns from g tokens to the end
    for (int g = L - 1; g >= 1; g--) {
        const int l = std::min(k, L - g - 1);
        BatchShape b;
        b.n_decode_seqs = 1;
        b.n_decode_tokens = 1 + l;
        b.decode_context = P + g;
        double t = ns(cost_draft_s(sc.cost, 1, k, P + g) + cost_forward_s(sc.cost, b));
        for (int n = 0; n <= l; n++) {
            const double p = n < l ? std::pow(alpha, n) * (1 - alpha) : std::pow(alpha, l);
            t += p * rest[static_cast<size_t>(std::min(g + n + 1, L))];
        }
        rest[static_cast<size_t>(g)] = t;
    }
    return L / ((prefill + rest[1]) * 1e-9);
}

// Over 300 seeds of a 240-request window, the 95 % interval of throughput
// must hold the closed form about 95 % of the time: 285 expected, sd 3.8.
// [272, 298] is about 3.5 sd either side; an interval half as wide covers
// about 2/3, one twice as wide about all 300.
TEST(Stats, ThroughputIntervalCoversTheClosedFormAtItsRate) {
    const int k = 3, seeds = 300;
    Scenario sc = sim_scenario(0.7, 4, /*output_len=*/48, /*warmup=*/5, /*requests=*/240);
    const double truth = one_user_throughput(sc, k);
    Policy pol = sim_policy("fixed:3");
    AcceptanceData acc = acceptance_load(sc);  // its confidence tables are slow to build; only the seed varies
    int covered = 0;
    double width = 0;
    for (int s = 0; s < seeds; s++) {
        sc.seed = acc.seed = 1000 + static_cast<uint64_t>(s);
        PointResult p = sim_run_point(sc, acc, pol, 1);
        ASSERT_GT(p.throughput_ci95, 0);
        covered += std::fabs(p.throughput - truth) <= p.throughput_ci95;
        width += p.throughput_ci95 / truth / seeds;
    }
    std::printf("throughput: %d of %d intervals cover the closed form\n", covered, seeds);
    EXPECT_GE(covered, 272) << "truth " << truth << " tok/s; mean half-width " << 100 * width << " %";
    EXPECT_LE(covered, 298) << "truth " << truth << " tok/s; mean half-width " << 100 * width << " %";
    EXPECT_LT(width, 0.05);  // and the interval says something
}

// The same for the mean per-user speed of 4 users with uniform output
// lengths, where no closed form is at hand: the reference is one run 200
// times as long (its own half-width is a fifteenth of the short runs').
TEST(Stats, PerUserSpeedIntervalCoversALongRunAtItsRate) {
    const int seeds = 300;
    Scenario sc = sim_scenario(0.7, 4, 48, /*warmup=*/20, /*requests=*/200);
    sc.workload.output_len = {DIST_UNIFORM, 0, 16, 96, 0, 0};
    Policy pol = sim_policy("fixed:3");
    Scenario ref_sc = sc;
    ref_sc.seed = 99;
    ref_sc.workload.requests = 40000;
    AcceptanceData ref_acc = acceptance_load(ref_sc);
    const PointResult ref = sim_run_point(ref_sc, ref_acc, pol, 4);
    AcceptanceData acc = acceptance_load(sc);
    int covered = 0;
    double width = 0;
    for (int s = 0; s < seeds; s++) {
        sc.seed = acc.seed = 5000 + static_cast<uint64_t>(s);
        PointResult p = sim_run_point(sc, acc, pol, 4);
        covered += std::fabs(p.per_user.mean - ref.per_user.mean) <= p.per_user_mean_ci95;
        width += p.per_user_mean_ci95 / seeds;
    }
    std::printf("per-user speed: %d of %d intervals cover the long run\n", covered, seeds);
    EXPECT_LT(ref.per_user_mean_ci95, width / 10);
    EXPECT_GE(covered, 272) << "reference " << ref.per_user.mean << " tok/s; mean half-width " << width;
    EXPECT_LE(covered, 298) << "reference " << ref.per_user.mean << " tok/s; mean half-width " << width;
}

// [SECTION] the window ----------------------------------------------------------------

// Fixed prompt and output lengths: every measured request brings P prompt
// tokens per L output tokens, so input throughput is P / L of output
// throughput to within the requests in flight at the window's edges.
TEST(Stats, InputThroughputIsPromptTokensOfTheMeasuredRequests) {
    Scenario sc = sim_scenario(0.7, 4, 400, 40, 2000);  // prompt 100 tokens
    AcceptanceData acc = acceptance_load(sc);
    PointResult p = sim_run_point(sc, acc, sim_policy("fixed:3"), 8);
    EXPECT_NEAR(p.input_throughput, p.throughput * 100 / 400, 0.01 * p.throughput * 100 / 400);
    // and exactly the measured requests' prompts over the window
    EXPECT_NEAR(p.input_throughput, 100.0 * static_cast<double>(p.n_requests) / p.window_s, 1e-9 * p.input_throughput);
}

// Hand-fed, 3 requests to measure: two requests in flight as the window
// opens, aged 6 and 2 ms (8 in all). The 3rd measured completion leaves
// ages 7 + 5 = 12 ms in flight: no match, the window goes on; the 4th
// leaves 8 ms: it closes there, before its cap of 6.
TEST(Stats, SizedWindowClosesWhenTheAgesInFlightMatchTheOpening) {
    const int64_t ms = 1'000'000;
    Window w = window_init(1, 3, 0, 0);
    w.match_ages = true;
    window_arrive(w, 0);             // a: the warmup completion
    window_arrive(w, 4 * ms);        // b
    window_arrive(w, 8 * ms);        // c
    window_complete(w, 10 * ms, 0, 0, 1 * ms, 10);  // a opens the window at 10 ms: b 6 ms old, c 2 ms
    EXPECT_DOUBLE_EQ(w.age_open, 8.0 * ms);
    window_arrive(w, 10 * ms);       // d
    window_complete(w, 12 * ms, 4 * ms, 4 * ms, 5 * ms, 10);   // b; c 4, d 2 ms old
    window_arrive(w, 12 * ms);       // e
    window_complete(w, 13 * ms, 8 * ms, 8 * ms, 9 * ms, 10);   // c: the 2nd measured
    EXPECT_FALSE(w.closed());
    window_arrive(w, 13 * ms);       // f
    window_complete(w, 17 * ms, 13 * ms, 13 * ms, 14 * ms, 10);  // f, the 3rd; d 7, e 5 ms: 12
    EXPECT_FALSE(w.closed());
    window_complete(w, 18 * ms, 12 * ms, 12 * ms, 13 * ms, 10);  // e; d 8 ms: matched
    EXPECT_TRUE(w.closed());
    EXPECT_EQ(w.n_requests, 4);
    // An unmatched window closes at its count, and a matched one at WINDOW_STRETCH_MAX times it.
    Window v = window_init(0, 1, 0, 0);
    window_arrive(v, 0);
    window_arrive(v, 0);
    window_complete(v, 5 * ms, 0, 0, 1 * ms, 10);
    EXPECT_TRUE(v.closed());
    Window m = window_init(0, 1, 0, 0);
    m.match_ages = true;
    for (int i = 0; i < 3; i++) window_arrive(m, 0);
    window_complete(m, 5 * ms, 0, 0, 1 * ms, 10);  // 2 in flight, 10 ms of age against 0 at the opening
    EXPECT_FALSE(m.closed());
    window_complete(m, 6 * ms, 0, 0, 1 * ms, 10);
    EXPECT_TRUE(m.closed());
}

// A load-sized window: ten completions a user after ten a user of warm-up
// (at least 500 and 100); set values are kept and, when short, said so.
TEST(Stats, WindowIsSizedByTheLoadUnlessSet) {
    Workload w;
    w.mode = WORKLOAD_CLOSED;
    WindowSize a = workload_window(w, 8);
    EXPECT_EQ(a.warmup, 100);
    EXPECT_EQ(a.requests, 500);
    EXPECT_FALSE(a.short_window);
    WindowSize b = workload_window(w, 2000);
    EXPECT_EQ(b.warmup, 20000);
    EXPECT_EQ(b.requests, 20000);
    EXPECT_TRUE(b.sized);
    w.requests = 1000;
    w.warmup = 100;
    WindowSize c = workload_window(w, 2000);
    EXPECT_EQ(c.requests, 1000);
    EXPECT_EQ(c.warmup, 100);
    EXPECT_FALSE(c.sized);
    EXPECT_TRUE(c.short_window);
}
