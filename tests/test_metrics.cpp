// test_metrics.cpp: the percentile sketch against exact nearest-rank
// percentiles, within the documented relative error (metrics.h: < 0.5 %);
// the measurement window against a hand-worked point; the sweep's read-outs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "simulator/metrics.h"
#include "simulator/sweep.h"
#include "traces/rng.h"

using namespace sp;

static double exact_quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))));
    return v[rank - 1];
}

TEST(Sketch, QuantilesAreWithinHalfAPercentOfExact) {
    Rng r = rng_seed(1);
    for (double sigma : {0.1, 1.0, 3.0}) {  // from narrow to nine decades wide
        std::vector<double> v;
        Sketch s;
        for (int i = 0; i < 100000; i++) {
            double x = 0.05 * std::exp(sigma * rng_normal(r));
            v.push_back(x);
            sketch_add(s, x);
        }
        for (double q : {0.01, 0.1, 0.5, 0.9, 0.99, 0.999}) {
            double want = exact_quantile(v, q);
            EXPECT_NEAR(sketch_quantile(s, q), want, 0.005 * want) << "sigma " << sigma << " q " << q;
        }
        double sum = 0;
        for (double x : v) sum += x;
        EXPECT_NEAR(sketch_mean(s), sum / static_cast<double>(v.size()), 1e-12 * sum);
    }
}

TEST(Sketch, MemoryDoesNotGrowWithTheNumberOfValues) {
    Sketch s;
    sketch_add(s, 1.0);
    size_t buckets = s.counts.size();
    for (int i = 0; i < 1000000; i++) sketch_add(s, 1.0 + i);
    EXPECT_EQ(s.counts.size(), buckets);
    EXPECT_EQ(s.n, 1000001);
}

TEST(Sketch, SpeedPercentilesAreTheSlowTail) {
    Sketch s;
    for (int i = 1; i <= 100; i++) sketch_add(s, i);  // speeds 1..100 tok/s
    Summary sp_ = summary_speed(s);
    EXPECT_NEAR(sp_.p90, 10, 0.05);   // 90 % of requests are at least this fast
    EXPECT_NEAR(sp_.p99, 1, 0.005);
    Summary lat = summary_latency(s);
    EXPECT_NEAR(lat.p90, 90, 0.45);
}

// [SECTION] sweep read-outs on hand-made curves ------------------------------

static PointResult pt(double thr, double p90) {
    PointResult p;
    p.throughput = thr;
    p.per_user.p90 = p90;
    return p;
}

// A hand-worked window: warmup 1, 2 measured requests, SLO 10 tok/s and
// TTFT 0.5 s. Times in ms.
TEST(Window, OpensAtTheWarmupCompletionAndMeasuresTheNextRequests) {
    const int64_t ms = 1000000;
    Window w = window_init(1, 2, 10, 0.5);
    w.kv_capacity = 1000;
    EXPECT_FALSE(window_step(w, 0, 5 * ms, 1, 8, 900));   // not open yet: nothing counts
    window_complete(w, 10 * ms, 0, 0, 2 * ms, 5);         // the warmup completion opens it at 10 ms
    EXPECT_EQ(w.start, 10 * ms);
    EXPECT_EQ(w.n_requests, 0);
    ASSERT_TRUE(window_step(w, 8 * ms, 20 * ms, 2, 6, 250));  // counts from 10 ms: 10 ms busy; KV 25 % reserved
    window_request_step(w, 3, 2, 8 * ms);             // 3 drafts verified, 2 accepted: 3 emitted, 8 ms after its last
    window_request_step(w, 0, 0, 4 * ms);             // plain decode: 1 emitted, 4 ms after its last
    window_tokens(w, 4);
    window_complete(w, 20 * ms, 0, 4 * ms, 100 * ms / 10, 11);  // TTFT 10 ms (4 ms waiting), 1000 tok/s, good
    window_complete(w, 30 * ms, 12 * ms, 12 * ms, 13 * ms, 2);  // admitted at once; 1 token in 17 ms: good
    EXPECT_TRUE(w.closed());
    EXPECT_FALSE(window_step(w, 30 * ms, 40 * ms, 1, 1, 1000));
    PointResult r;
    window_result(w, 2, &r);
    EXPECT_DOUBLE_EQ(r.window_s, 0.020);
    EXPECT_EQ(r.n_requests, 2);
    EXPECT_EQ(r.n_steps, 1);
    EXPECT_DOUBLE_EQ(r.throughput, 4 / 0.020 / 2);   // per GPU of 2
    EXPECT_DOUBLE_EQ(r.request_rate, 2 / 0.020);
    EXPECT_DOUBLE_EQ(r.busy_fraction, 0.010 / 0.020);
    EXPECT_DOUBLE_EQ(r.goodput_fraction, 1.0);
    EXPECT_DOUBLE_EQ(r.tau, 4.0 / 2);
    EXPECT_DOUBLE_EQ(r.mean_verified, (4 + 1) / 2.0);
    EXPECT_DOUBLE_EQ(r.waste, 1.0 / 5);
    EXPECT_DOUBLE_EQ(r.mean_batch_tokens, 6);
    EXPECT_DOUBLE_EQ(r.mean_running, 2);
    EXPECT_DOUBLE_EQ(r.kv_use, 0.25);                 // the counted step's reservation only
    EXPECT_NEAR(r.queue_wait.p90, 0.004, 0.004 * 0.005);  // waits of 4 and 0 ms
    EXPECT_NEAR(r.queue_wait.p50, 0.0, 1e-6);
    // ITL: gaps of 8 ms (then 0, 0: the two accepted tokens come with it) and 4 ms
    EXPECT_NEAR(r.itl.mean, 0.012 / 4, 1e-12);
    EXPECT_NEAR(r.itl.p50, 0.0, 1e-6);
    EXPECT_NEAR(r.itl.p90, 0.008, 0.008 * 0.005);            // 0, within the sketch's floor (about 1 ns)
    EXPECT_DOUBLE_EQ(r.mean_output_len, 6.5);
    EXPECT_NEAR(r.ttft.p50, 0.001, 0.001 * 0.005);    // the sketch's 0.5 % bound: TTFTs 10 and 1 ms
    // a slow request fails the SLO: 10 tokens in 2 s
    Window v = window_init(0, 1, 10, 0);
    EXPECT_EQ(v.start, 0);
    window_complete(v, 3000 * ms, 0, 0, 1000 * ms, 11);  // 10 tok / 2 s = 5 tok/s < 10
    PointResult q;
    window_result(v, 1, &q);
    EXPECT_DOUBLE_EQ(q.goodput_fraction, 0.0);
}

static Slo speed_slo(double tok_s) {
    Slo s;
    s.per_user_tok_s = tok_s;
    return s;
}

// A grid's capacity is its last load before the first that misses an SLO,
// with that point's throughput: no interpolation between points.
TEST(Sweep, CapacityOnAGridIsTheLastLoadBeforeTheFirstMiss) {
    // per-user p90 falls 100, 80, 40 as throughput rises 1000, 2000, 3000; SLA 60
    std::vector<PointResult> curve{pt(1000, 100), pt(2000, 80), pt(3000, 40)};
    Capacity c = sweep_capacity(curve, {1, 2, 4}, speed_slo(60));
    EXPECT_TRUE(c.met);
    EXPECT_TRUE(c.bounded);
    EXPECT_EQ(c.binding, SLO_SPEED);
    EXPECT_DOUBLE_EQ(c.throughput, 2000);
    EXPECT_DOUBLE_EQ(c.load, 2);
    EXPECT_DOUBLE_EQ(c.best_point_throughput, 2000);
    EXPECT_FALSE(sweep_capacity(curve, {1, 2, 4}, speed_slo(200)).met);
    // every load meets: the grid's top, not bounded
    c = sweep_capacity(curve, {1, 2, 4}, speed_slo(10));
    EXPECT_DOUBLE_EQ(c.load, 4);
    EXPECT_FALSE(c.bounded);
    // a TTFT bound binds too: the third point's TTFT p90 is 3 s against 2 s
    curve[2].per_user.p90 = 90;
    curve[2].ttft.p90 = 3;
    Slo both = speed_slo(60);
    both.ttft_s = 2;
    c = sweep_capacity(curve, {1, 2, 4}, both);
    EXPECT_DOUBLE_EQ(c.load, 2);
    EXPECT_EQ(c.binding, SLO_TTFT);
}

// Every SLO at its percentile: speed met by p% of requests >= the bound,
// TTFT and TPOT at p% <= theirs; unset bounds always hold.
TEST(Slo, EveryBoundAtItsPercentile) {
    PointResult p;
    p.per_user = {0, 50, 40, 30};   // mean, p50, p90, p99
    p.ttft = {0, 0.1, 0.5, 2.0};
    p.tpot = {0, 0.02, 0.03, 0.05};
    Slo s;
    EXPECT_EQ(slo_check(s, p), SLO_MET);
    s.per_user_tok_s = 35;
    EXPECT_EQ(slo_check(s, p), SLO_MET);   // p90 40 >= 35
    s.percentile = 99;
    EXPECT_EQ(slo_check(s, p), SLO_SPEED); // p99 30 < 35
    s.percentile = 50;
    s.ttft_s = 0.2;
    EXPECT_EQ(slo_check(s, p), SLO_MET);   // p50 0.1 <= 0.2
    s.percentile = 90;
    EXPECT_EQ(slo_check(s, p), SLO_TTFT);  // p90 0.5 > 0.2
    s.ttft_s = 0.5;
    s.tpot_s = 0.025;
    EXPECT_EQ(slo_check(s, p), SLO_TPOT);  // p90 30 ms > 25 ms
    EXPECT_EQ(slo_text(s), "per-user p90 >= 35 tok/s, TTFT p90 <= 500 ms, TPOT p90 <= 25 ms");
    // an unstable point (a growing queue) meets no SLO, whatever its numbers
    s.tpot_s = 0;
    EXPECT_EQ(slo_check(s, p), SLO_MET);
    p.unstable = true;
    EXPECT_EQ(slo_check(s, p), SLO_UNSTABLE);
    EXPECT_EQ(slo_check(Slo{}, p), SLO_UNSTABLE);
}

TEST(Sweep, PerUserAtAThroughputInterpolatesBetweenBracketingPoints) {
    std::vector<PointResult> curve{pt(1000, 100), pt(2000, 80), pt(3000, 40)};
    double v = 0;
    ASSERT_TRUE(sweep_per_user_at(curve, 2250, &v));
    EXPECT_DOUBLE_EQ(v, 70);
    EXPECT_FALSE(sweep_per_user_at(curve, 5000, &v));
}

TEST(Sweep, TheParetoFrontierDropsDominatedPoints) {
    std::vector<PointResult> pts{pt(1000, 100), pt(900, 90), pt(2000, 80), pt(1500, 85), pt(3000, 40)};
    std::vector<int> f = sweep_pareto(pts);
    EXPECT_EQ(f, (std::vector<int>{4, 2, 3, 0}));  // ascending per-user speed: 40, 80, 85, 100
}
