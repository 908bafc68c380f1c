// test_rng.cpp: the project RNG against closed forms. Each moment check uses
// a 6-sigma bound from the distribution's own variance, so a wrong transform
// (a biased uniform, a mis-scaled gamma) fails while sampling noise does not.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "traces/rng.h"

using namespace sp;

// Sample mean within 6 standard errors of `mean`, given the true variance.
static void expect_mean(const std::vector<double>& xs, double mean, double var) {
    double sum = 0;
    for (double x : xs) sum += x;
    double m = sum / static_cast<double>(xs.size());
    EXPECT_NEAR(m, mean, 6 * std::sqrt(var / static_cast<double>(xs.size())));
}

TEST(Rng, SameSeedAndStreamGiveTheSameSequence) {
    Rng a = rng_seed(42, 3), b = rng_seed(42, 3);
    for (int i = 0; i < 1000; i++) ASSERT_EQ(rng_u64(a), rng_u64(b));
}

TEST(Rng, StreamsOfOneSeedDiffer) {
    Rng a = rng_seed(42, 1), b = rng_seed(42, 2);
    int same = 0;
    for (int i = 0; i < 1000; i++) same += rng_u64(a) == rng_u64(b);
    EXPECT_EQ(same, 0);
}

// The first outputs of xoshiro256** from state {1, 2, 3, 4}, computed with a
// line-by-line Python transcription of the authors' xoshiro256starstar.c.
TEST(Rng, XoshiroMatchesTheReferenceImplementation) {
    Rng r{{1, 2, 3, 4}};
    EXPECT_EQ(rng_u64(r), 11520u);
    EXPECT_EQ(rng_u64(r), 0u);
    EXPECT_EQ(rng_u64(r), 1509978240u);
    EXPECT_EQ(rng_u64(r), 1215971899390074240u);
}

TEST(Rng, UniformHasMeanHalfAndVarianceTwelfth) {
    Rng r = rng_seed(1);
    std::vector<double> xs(200000), sq(200000);
    for (size_t i = 0; i < xs.size(); i++) {
        xs[i] = rng_uniform(r);
        ASSERT_GE(xs[i], 0.0);
        ASSERT_LT(xs[i], 1.0);
        sq[i] = (xs[i] - 0.5) * (xs[i] - 0.5);
    }
    expect_mean(xs, 0.5, 1.0 / 12);
    expect_mean(sq, 1.0 / 12, 1.0 / 180);  // Var((U-1/2)^2) = 1/80 - 1/144 = 1/180
}

TEST(Rng, BelowIsUniformOverSmallRanges) {
    Rng r = rng_seed(2);
    const int n = 7, draws = 140000;
    std::vector<int> count(n, 0);
    for (int i = 0; i < draws; i++) count[rng_below(r, n)]++;
    double p = 1.0 / n, sd = std::sqrt(draws * p * (1 - p));
    for (int c : count) EXPECT_NEAR(c, draws * p, 6 * sd);
}

TEST(Rng, RangeIsInclusive) {
    Rng r = rng_seed(3);
    bool lo = false, hi = false;
    for (int i = 0; i < 10000; i++) {
        int64_t v = rng_range(r, -2, 2);
        ASSERT_GE(v, -2);
        ASSERT_LE(v, 2);
        lo |= v == -2;
        hi |= v == 2;
    }
    EXPECT_TRUE(lo && hi);
}

TEST(Rng, NormalHasMeanZeroAndUnitVariance) {
    Rng r = rng_seed(4);
    std::vector<double> xs(200000), sq(200000);
    for (size_t i = 0; i < xs.size(); i++) {
        xs[i] = rng_normal(r);
        sq[i] = xs[i] * xs[i];
    }
    expect_mean(xs, 0, 1);
    expect_mean(sq, 1, 2);  // Var(Z^2) = 2
}

TEST(Rng, GammaHasMeanAndVarianceEqualToShape) {
    for (double shape : {0.3, 1.0, 2.5, 9.0}) {
        Rng r = rng_seed(5);
        std::vector<double> xs(100000), dev(100000);
        for (size_t i = 0; i < xs.size(); i++) {
            xs[i] = rng_gamma(r, shape);
            ASSERT_GT(xs[i], 0.0);
            dev[i] = (xs[i] - shape) * (xs[i] - shape);
        }
        expect_mean(xs, shape, shape);
        // Var((X-k)^2) = E(X-k)^4 - k^2 = (3k^2 + 6k) - k^2 for Gamma(k, 1)
        expect_mean(dev, shape, 2 * shape * shape + 6 * shape);
    }
}

TEST(Rng, BetaHasItsClosedFormMoments) {
    for (auto [a, b] : {std::pair{3.2, 0.8}, std::pair{0.5, 0.5}, std::pair{2.0, 6.0}}) {
        Rng r = rng_seed(6);
        double mean = a / (a + b), var = a * b / ((a + b) * (a + b) * (a + b + 1));
        std::vector<double> xs(100000);
        for (double& x : xs) {
            x = rng_beta(r, a, b);
            ASSERT_GE(x, 0.0);
            ASSERT_LE(x, 1.0);
        }
        expect_mean(xs, mean, var);
    }
}

TEST(Rng, ExponentialHasMeanOneOverRate) {
    Rng r = rng_seed(7);
    std::vector<double> xs(100000);
    for (double& x : xs) x = rng_exponential(r, 4.0);
    expect_mean(xs, 0.25, 1.0 / 16);
}
