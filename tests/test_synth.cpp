// test_synth.cpp: the synthetic generator against the closed forms of its
// generative model (traces/synth.h), and the acceptance statistics
// (traces/trace_stats.h) against hand-worked examples.
//
// Statistical checks use 5-sigma bounds from the model's own variance. The
// seeds are fixed, so a pass is repeatable; the bounds say why the expected
// value is right, and a wrong generator misses them by far more than 5 sigma.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "traces/synth.h"
#include "traces/trace_stats.h"

using namespace sp;
namespace fs = std::filesystem;

static fs::path temp_db(const std::string& name) {
    fs::path dir = fs::path(::testing::TempDir()) / "specplan_synth";
    fs::create_directories(dir);
    fs::path p = dir / name;
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(p.string() + ext);
    return p;
}

static SynthSpec two_domain_spec(uint64_t seed) {
    SynthSpec s;
    s.seed = seed;
    s.gamma = 4;
    s.domains = {{"code", {0.9, 0.8, 0.7, 0.6}, 60}, {"chat", {0.6, 0.5, 0.45, 0.4}, 60}};
    s.output_min = 100;
    s.output_max = 300;
    return s;
}

// [SECTION] statistics on hand-worked data ------------------------------------

TEST(TraceStats, ConditionalAcceptanceAndTauOnAHandWorkedRequest) {
    // gamma 2, output_len 5: full-block anchors are t = 0, 1, 2 (t + 2 < 5).
    Positions p;
    p.gamma = 2;
    p.n = 5;
    p.beta = {1, 1,   // t=0: both accepted
              1, 0,   // t=1: first only
              0, 1,   // t=2: first rejected, so the second never counts
              1, 0,   // t=3: not a full block, ignored
              0, 0};  // t=4
    AcceptanceSums s = acceptance_sums(2);
    acceptance_add(s, p);
    AcceptanceStats a = acceptance_finish(s, "x");
    EXPECT_EQ(a.n_anchors, 3);
    EXPECT_DOUBLE_EQ(a.survival[0], 2.0 / 3);
    EXPECT_DOUBLE_EQ(a.survival[1], 1.0 / 3);
    EXPECT_DOUBLE_EQ(a.alpha[0], 2.0 / 3);
    EXPECT_DOUBLE_EQ(a.alpha[1], 1.0 / 2);
    EXPECT_DOUBLE_EQ(a.tau, 2.0);  // (3 + 2 + 1) tokens over 3 steps
}

TEST(TraceStats, FractionalBetaPoolsAsExpectedProducts) {
    Positions p;
    p.gamma = 2;
    p.n = 3;
    p.beta = {0.5f, 0.5f, 0.25f, 1.0f, 0, 0};  // anchor t=0 only: survival 0.5, 0.25
    AcceptanceSums s = acceptance_sums(2);
    acceptance_add(s, p);
    AcceptanceStats a = acceptance_finish(s, "x");
    EXPECT_EQ(a.n_anchors, 1);
    EXPECT_DOUBLE_EQ(a.alpha[1], 0.5);
    EXPECT_DOUBLE_EQ(a.tau, 1.75);
}

TEST(TraceStats, NoAnchorsGiveNaNNotZero) {
    AcceptanceSums s = acceptance_sums(3);
    AcceptanceStats a = acceptance_finish(s, "empty");
    EXPECT_TRUE(std::isnan(a.tau));
    EXPECT_TRUE(std::isnan(a.alpha[0]));
}

// [SECTION] the generator against its model -----------------------------------

TEST(Synth, PerSlotConditionalAcceptanceMatchesTheRequestedVector) {
    fs::path path = temp_db("alpha.specdb");
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    SynthSpec spec = two_domain_spec(11);
    int64_t run = synth_write(db, spec);
    std::vector<AcceptanceStats> stats = trace_acceptance_stats(db, run);
    ASSERT_EQ(stats.size(), 3u);  // all, code, chat
    for (size_t d = 0; d < spec.domains.size(); d++) {
        const AcceptanceStats& a = stats[d + 1];
        ASSERT_EQ(a.domain, spec.domains[d].name);
        EXPECT_EQ(a.n_requests, 60);
        for (int k = 0; k < spec.gamma; k++) {
            double want = spec.domains[d].alpha[k];
            // alpha_k is a proportion over the anchors that survived to slot k.
            double trials = (k == 0 ? 1.0 : a.survival[k - 1]) * static_cast<double>(a.n_anchors);
            double sigma = std::sqrt(want * (1 - want) / trials);
            EXPECT_NEAR(a.alpha[k], want, 5 * sigma) << a.domain << " slot " << k + 1;
        }
    }
}

TEST(Synth, TauFromPositionsEqualsOnePlusSumOfPrefixProducts) {
    fs::path path = temp_db("tau.specdb");
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    SynthSpec spec;
    spec.seed = 5;
    spec.gamma = 6;
    spec.domains = {{"iid", std::vector<double>(6, 0.7), 80}};
    spec.output_min = 200;
    spec.output_max = 400;
    int64_t run = synth_write(db, spec);
    AcceptanceStats a = trace_acceptance_stats(db, run)[0];

    // X = sum_k P_k with P_k = prod_{i<=k} beta_i in {0,1}, s_k = E[P_k] = 0.7^k.
    // E[X] = sum s_k; since P_j P_k = P_max(j,k), E[X^2] = sum_k (2k-1) s_k.
    double ex = 0, ex2 = 0, s = 1;
    for (int k = 1; k <= 6; k++) {
        s *= 0.7;
        ex += s;
        ex2 += (2 * k - 1) * s;
    }
    double sigma = std::sqrt((ex2 - ex * ex) / static_cast<double>(a.n_anchors));
    EXPECT_NEAR(a.tau, 1 + ex, 5 * sigma);
    EXPECT_NEAR(1 + ex, 3.058819, 1e-6);  // 1 + 0.7 (1 - 0.7^6) / 0.3, by hand
}

TEST(Synth, ConfidenceIsCalibratedAndInformativeButImperfect) {
    fs::path path = temp_db("conf.specdb");
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    SynthSpec spec;
    spec.seed = 9;
    spec.gamma = 1;
    const double alpha = 0.7, kappa = 4;
    spec.kappa = kappa;
    spec.raw_temperature = 1.5;
    spec.domains = {{"one", {alpha}, 200}};
    int64_t run = synth_write(db, spec);

    const int bins = 10;
    std::vector<double> sum_c(bins), sum_b(bins), n(bins);
    double c_acc = 0, n_acc = 0, c_rej = 0, n_rej = 0;
    Positions p;
    for (const Request& q : trace_db_requests(db, run)) {
        ASSERT_TRUE(trace_db_positions(db, q.id, &p));
        for (int t = 0; t + 1 < p.n; t++) {
            float c = p.conf_prob[t], b = p.beta[t], z = p.conf_logit[t];
            // raw logit z maps back to c through the STS temperature: c = sigma(z / T)
            if (c > 1e-6f && c < 1 - 1e-6f) {
                ASSERT_NEAR(1 / (1 + std::exp(-z / 1.5)), c, 1e-5);
            }
            int bin = std::min(bins - 1, static_cast<int>(c * bins));
            sum_c[bin] += c;
            sum_b[bin] += b;
            n[bin] += 1;
            (b > 0 ? c_acc : c_rej) += c;
            (b > 0 ? n_acc : n_rej) += 1;
        }
    }
    // Calibrated: in every well-filled bin the acceptance rate is the mean confidence.
    for (int i = 0; i < bins; i++) {
        if (n[i] < 500) continue;
        double c = sum_c[i] / n[i];
        EXPECT_NEAR(sum_b[i] / n[i], c, 5 * std::sqrt(c * (1 - c) / n[i])) << "bin " << i;
    }
    // Informative but imperfect: with c ~ Beta(k a, k (1-a)),
    // E[c | accepted] = a + (1-a)/(k+1) and E[c | rejected] = a k/(k+1).
    double acc = c_acc / n_acc, rej = c_rej / n_rej;
    double var_c = alpha * (1 - alpha) / (kappa + 1);
    EXPECT_NEAR(acc, alpha + (1 - alpha) / (kappa + 1), 5 * std::sqrt(var_c / n_acc));
    EXPECT_NEAR(rej, alpha * kappa / (kappa + 1), 5 * std::sqrt(var_c / n_rej));
}

TEST(Synth, LengthsLieInTheirRangesAndSlotsPastTheEndAreZero) {
    fs::path path = temp_db("lengths.specdb");
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    SynthSpec spec = two_domain_spec(3);
    spec.prompt_min = 10;
    spec.prompt_max = 12;
    spec.output_min = 3;
    spec.output_max = 5;
    int64_t run = synth_write(db, spec);
    std::vector<int> seen_out(6, 0);
    Positions p;
    for (const Request& q : trace_db_requests(db, run)) {
        EXPECT_GE(q.prompt_len, 10);
        EXPECT_LE(q.prompt_len, 12);
        ASSERT_GE(q.output_len, 3);
        ASSERT_LE(q.output_len, 5);
        seen_out[q.output_len]++;
        ASSERT_TRUE(trace_db_positions(db, q.id, &p));
        for (int t = 0; t < p.n; t++)
            for (int k = 1; k <= p.gamma; k++)
                if (t + k >= p.n) {
                    size_t at = static_cast<size_t>(t) * p.gamma + (k - 1);
                    EXPECT_EQ(p.beta[at], 0.0f);
                    EXPECT_EQ(p.conf_prob[at], 0.0f);
                    EXPECT_EQ(p.conf_logit[at], 0.0f);
                }
    }
    EXPECT_GT(seen_out[3], 0);
    EXPECT_GT(seen_out[5], 0);
    sp::Run r = trace_db_run(db, run);  // qualified: gtest's Test::Run hides it
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.producer, PRODUCER_SYNTHETIC);
    EXPECT_EQ(r.temperature, 0.0);
    EXPECT_EQ(r.target.name, "qwen3-8b");
}

TEST(Synth, TheSameSeedGivesTheSameTraceAndAnotherSeedDoesNot) {
    auto generate = [](const std::string& name, uint64_t seed) {
        fs::path path = temp_db(name);
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        int64_t run = synth_write(db, two_domain_spec(seed));
        std::vector<float> all;
        Positions p;
        for (const Request& q : trace_db_requests(db, run)) {
            all.push_back(static_cast<float>(q.output_len));
            trace_db_positions(db, q.id, &p);
            all.insert(all.end(), p.beta.begin(), p.beta.end());
            all.insert(all.end(), p.conf_logit.begin(), p.conf_logit.end());
        }
        return all;
    };
    EXPECT_EQ(generate("a.specdb", 17), generate("b.specdb", 17));
    EXPECT_NE(generate("c.specdb", 17), generate("d.specdb", 18));
}

TEST(Synth, InvalidSpecsAreRefusedWithTheFieldNamed) {
    auto message = [](SynthSpec s) {
        try {
            synth_validate(s);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    SynthSpec s = two_domain_spec(1);
    SynthSpec bad = s;
    bad.domains[1].alpha.pop_back();
    EXPECT_NE(message(bad).find("chat"), std::string::npos);
    bad = s;
    bad.domains[0].alpha[2] = 1.5;
    EXPECT_NE(message(bad).find("[0, 1]"), std::string::npos);
    bad = s;
    bad.gamma = 0;
    EXPECT_NE(message(bad).find("gamma"), std::string::npos);
    bad = s;
    bad.output_min = 0;
    EXPECT_NE(message(bad).find("output length"), std::string::npos);
    bad = s;
    bad.kappa = 0;
    EXPECT_NE(message(bad).find("kappa"), std::string::npos);
    EXPECT_EQ(message(s), "accepted");
}

// [SECTION] the bundled database --------------------------------------------

// traces/data/synthetic.specdb is made by scripts/make-bundled-trace with these vectors.
TEST(Synth, TheBundledTraceMatchesItsRecipe) {
    fs::path src = fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/synthetic.specdb";
    fs::path copy = temp_db("bundled.specdb");
    fs::copy_file(src, copy);
    TraceDb db = trace_db_open(copy, TRACE_READ);
    std::vector<sp::Run> runs = trace_db_runs(db);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_TRUE(runs[0].complete);
    EXPECT_EQ(runs[0].gamma, 7);
    const std::vector<std::pair<std::string, std::vector<double>>> recipe = {
        {"code", {0.92, 0.88, 0.85, 0.82, 0.80, 0.78, 0.76}},
        {"chat", {0.80, 0.72, 0.68, 0.65, 0.62, 0.60, 0.58}}};
    std::vector<AcceptanceStats> stats = trace_acceptance_stats(db, runs[0].id);
    ASSERT_EQ(stats.size(), 3u);
    for (size_t d = 0; d < recipe.size(); d++) {
        const AcceptanceStats& a = stats[d + 1];
        EXPECT_EQ(a.domain, recipe[d].first);
        EXPECT_EQ(a.n_requests, 48);
        for (int k = 0; k < 7; k++) {
            double want = recipe[d].second[k];
            double trials = (k == 0 ? 1.0 : a.survival[k - 1]) * static_cast<double>(a.n_anchors);
            EXPECT_NEAR(a.alpha[k], want, 5 * std::sqrt(want * (1 - want) / trials)) << a.domain << k;
        }
    }
}

// [SECTION] the confidence table --------------------------------------------

TEST(BetaCdf, MatchesClosedForms) {
    for (double x : {0.001, 0.1, 0.37, 0.5, 0.8, 0.999}) {
        EXPECT_NEAR(beta_cdf(1, 1, x), x, 1e-13);                          // uniform
        EXPECT_NEAR(beta_cdf(3.6, 1, x), std::pow(x, 3.6), 1e-13);          // I_x(a, 1) = x^a
        EXPECT_NEAR(beta_cdf(1, 0.4, x), 1 - std::pow(1 - x, 0.4), 1e-13);  // I_x(1, b) = 1 - (1-x)^b
        EXPECT_NEAR(beta_cdf(2, 2, x), 3 * x * x - 2 * x * x * x, 1e-13);
        EXPECT_NEAR(beta_cdf(0.3, 2.7, x), 1 - beta_cdf(2.7, 0.3, 1 - x), 1e-13);  // symmetry
    }
    // I_{1/2}(a, a) = 1/2 for any a
    for (double a : {0.2, 1.5, 30.0}) EXPECT_NEAR(beta_cdf(a, a, 0.5), 0.5, 1e-12);
}

TEST(ConfTable, QuantilesInvertTheCdfAndTheMeanIsAlpha) {
    for (double alpha : {0.1, 0.5, 0.92}) {
        const double kappa = 4, a = kappa * alpha, b = kappa * (1 - alpha);
        ConfTable t = conf_table(alpha, kappa);
        ASSERT_EQ(t.quantile.size(), static_cast<size_t>(CONF_TABLE_N + 1));
        for (int i = 1; i < CONF_TABLE_N; i += 97) {
            double u = static_cast<double>(i) / CONF_TABLE_N;
            // Stored as float: exact up to half an ulp of q, which moves the
            // CDF by pdf(q) x ulp/2; near a pole of the density that is large.
            double q = t.quantile[static_cast<size_t>(i)];
            double pdf = std::exp((a - 1) * std::log(q) + (b - 1) * std::log1p(-q) -
                                  (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b)));
            double half_ulp = 0.5 * (std::nextafter(static_cast<float>(q), 2.0f) - static_cast<float>(q));
            EXPECT_NEAR(beta_cdf(a, b, q), u, pdf * half_ulp * 1.01 + 1e-10) << alpha << " u " << u;
        }
        // E[c] = alpha through the table: a million evenly spaced u
        const int n = 1 << 20;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += synth_slot_table(t, (i + 0.5) / n, 0.5, 1.5).conf_prob;
        EXPECT_NEAR(sum / n, alpha, 2e-4) << alpha;
    }
    ConfTable point = conf_table(1.0, 4);
    EXPECT_EQ(synth_slot_table(point, 0.3, 0.99, 1.5).beta, 1.0f);
}
