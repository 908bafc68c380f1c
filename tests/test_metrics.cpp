// test_metrics.cpp: the percentile sketch against exact nearest-rank
// percentiles, within the documented relative error (metrics.h: < 0.5 %).
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

TEST(Sweep, CapacityInterpolatesTheSlaCrossing) {
    // per-user p90 falls 100, 80, 40 as throughput rises 1000, 2000, 3000; SLA 60
    std::vector<PointResult> curve{pt(1000, 100), pt(2000, 80), pt(3000, 40)};
    Capacity c = sweep_capacity(curve, {1, 2, 4}, 60);
    EXPECT_TRUE(c.met);
    EXPECT_DOUBLE_EQ(c.throughput, 2500);  // halfway from 80 to 40
    EXPECT_DOUBLE_EQ(c.load, 3);
    EXPECT_DOUBLE_EQ(c.best_point_throughput, 2000);
    EXPECT_FALSE(sweep_capacity(curve, {1, 2, 4}, 200).met);
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
