// test_reliability.cpp: the reliability diagram's bins (gui/reliability.h),
// before and after calibration.
//
//  - without logits the one series bins the recorded conf_prob: a hand-worked
//    run, an oracle head, rows that lie about their extent;
//  - with logits the raw series bins sigma(z), not conf_prob (hand-worked,
//    and against a trivially correct twin on a generated run);
//  - on a run whose logits are z = T_k s with beta ~ Bernoulli(sigma(s)), the
//    temperatures are sts_fit's on the rows `specplan calibrate` builds
//    (calib_rows_append), the calibrated series bins sigma(z / T_k), and its
//    ECE is far below the raw one;
//  - the bundled synthetic trace, through acceptance_load, has logits (raw
//    temperature 1.5) and the diagram finds T_k near 1.5;
//  - the default scenario's run, a real capture (the demo pair's DSpark head,
//    greedy), has logits for every slot, and the STS fit lowers its ECE.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gui/reliability.h"
#include "simulator/scenario.h"
#include "traces/calibrate.h"
#include "traces/rng.h"

using namespace sp;

// [SECTION] the recorded confidences (no logits) --------------------------------

// One request, gamma 2, output 3: slots (t, k) with t + k < 3 are (0,1),
// (0,2) and (1,1).
static AcceptanceData one_request() {
    AcceptanceData a;
    a.kind = ACCEPT_TRACE;
    a.gamma = a.trace_gamma = 2;
    TraceRequest q;
    q.output_len = 3;
    q.offset = 0;
    a.requests = {q};
    a.conf = {0.93f, 0.5f, 0.27f, 0.7f, 0.6f, 0.6f};
    a.beta = {1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 1.0f};
    return a;
}

// The three slots of one_request() (or their sigma(z) twins) land alone in
// bins 18, 9 and 5 of 20, none near an edge.
static void expect_hand_worked(const ReliabilityBins& r) {
    EXPECT_EQ(r.total, 3);
    // (0,1): predicted 0.93 (bin 18), realised 1; (0,2): 0.93 * 0.5 = 0.465
    // (bin 9), realised 1 * 0 = 0; (1,1): 0.27 (bin 5), realised 1.
    EXPECT_EQ(r.count[18], 1);
    EXPECT_EQ(r.count[9], 1);
    EXPECT_EQ(r.count[5], 1);
    EXPECT_NEAR(r.pred[18], 0.93, 1e-7);
    EXPECT_NEAR(r.pred[9], 0.465, 1e-7);
    EXPECT_DOUBLE_EQ(r.real[9], 0.0);
    EXPECT_NEAR(r.pred[5], 0.27, 1e-7);
    EXPECT_DOUBLE_EQ(r.real[5], 1.0);
    EXPECT_NEAR(r.ece, (0.07 + 0.465 + 0.73) / 3, 1e-6);
}

TEST(Reliability, WithoutLogitsTheRecordedConfidenceIsTheOnlySeries) {
    Reliability r = reliability_compute(one_request());
    EXPECT_EQ(r.source, RELIABILITY_CONF_PROB);
    expect_hand_worked(r.raw);
    EXPECT_EQ(r.calibrated.total, 0);
    EXPECT_TRUE(r.temperatures.empty());
}

TEST(Reliability, AnOracleHeadHasNoCalibrationError) {
    AcceptanceData a = one_request();
    a.conf = a.beta;   // confidence 1 exactly where accepted, 0 where rejected
    Reliability r = reliability_compute(a);
    EXPECT_EQ(r.raw.total, 3);
    EXPECT_DOUBLE_EQ(r.raw.ece, 0.0);
    EXPECT_EQ(r.raw.count[0] + r.raw.count[RELIABILITY_BINS - 1], 3);
}

TEST(Reliability, OnlyTraceRunsWithConfidences) {
    AcceptanceData a = one_request();
    a.conf.clear();
    EXPECT_EQ(reliability_compute(a).source, RELIABILITY_NONE);
    a = one_request();
    a.kind = ACCEPT_PARAMETRIC;
    EXPECT_EQ(reliability_compute(a).source, RELIABILITY_NONE);
    a.conf_logit = {3, 0, -1, 1, 0, 0};
    EXPECT_EQ(reliability_compute(a).source, RELIABILITY_NONE);
}

TEST(Reliability, RowsBeyondTheArraysAreNotRead) {
    AcceptanceData a = one_request();
    a.requests[0].output_len = 1000;   // claims far more rows than stored
    TraceRequest past;
    past.output_len = 5;
    past.offset = 600;                 // starts past the end
    a.requests.push_back(past);
    Reliability r = reliability_compute(a);
    // the first request stops at the end of its stored rows (3 rows, every slot of each now real)
    EXPECT_EQ(r.raw.total, 6);
    a.conf_logit.assign(a.beta.size(), 0.0f);
    r = reliability_compute(a);
    EXPECT_EQ(r.source, RELIABILITY_LOGITS);
    EXPECT_EQ(r.raw.total, 6);
}

// [SECTION] raw logits -----------------------------------------------------------

TEST(Reliability, TheRawSeriesIsSigmaOfTheLogitsNotTheRecordedConfidence) {
    AcceptanceData a = one_request();
    // sigma(ln(0.93 / 0.07)) = 0.93, sigma(0) = 0.5, sigma(ln(0.27 / 0.73)) =
    // 0.27: one_request()'s confidences as logits. The recorded conf_prob (a capture's calibration)
    // is set elsewhere to show it is not what the raw series reads.
    a.conf_logit = {std::log(0.93f / 0.07f), 0.0f, std::log(0.27f / 0.73f), 5.0f, -5.0f, 2.0f};
    a.conf.assign(a.beta.size(), 0.6f);
    Reliability r = reliability_compute(a);
    EXPECT_EQ(r.source, RELIABILITY_LOGITS);
    expect_hand_worked(r.raw);
    // three slots cannot fit a temperature: raw alone
    EXPECT_EQ(r.unfittable_slot, 1);
    EXPECT_EQ(r.calibrated.total, 0);
    EXPECT_TRUE(r.temperatures.empty());
}

TEST(Reliability, IncompleteLogitsFallBackToTheRecordedConfidence) {
    AcceptanceData a = one_request();
    a.conf_logit = {0.0f, 0.0f, 0.0f};   // a mixed run: acceptance_load would have dropped them
    Reliability r = reliability_compute(a);
    EXPECT_EQ(r.source, RELIABILITY_CONF_PROB);
    expect_hand_worked(r.raw);
}

// A run written as a capture would: per real slot, s ~ N(1.5, 1.5) is the
// calibrated logit, z = t_true[k] s the raw one, beta = 1 with probability
// sigma(s). The trace has trace_gamma = t_true.size(); the engine uses gamma.
struct KnownRun {
    std::vector<Positions> positions;
    AcceptanceData acceptance;
};

static KnownRun known_run(const std::vector<double>& t_true, int gamma, int requests = 400, int output_len = 100) {
    const int TG = static_cast<int>(t_true.size());
    KnownRun run;
    AcceptanceData& a = run.acceptance;
    a.kind = ACCEPT_TRACE;
    a.gamma = gamma;
    a.trace_gamma = TG;
    Rng rng = rng_seed(5, 7);
    for (int i = 0; i < requests; i++) {
        Positions p;
        p.gamma = TG;
        p.n = output_len;
        const size_t n = static_cast<size_t>(p.n) * static_cast<size_t>(TG);
        p.beta.assign(n, 0.0f);
        p.conf_logit.assign(n, 0.0f);
        p.conf_prob.assign(n, 0.0f);
        for (int t = 0; t < p.n; t++)
            for (int k = 1; k <= TG && t + k < p.n; k++) {
                const size_t at = static_cast<size_t>(t * TG + k - 1);
                const double s = 1.5 + 1.5 * rng_normal(rng);
                const double c = 1 / (1 + std::exp(-s));
                p.conf_logit[at] = static_cast<float>(t_true[static_cast<size_t>(k - 1)] * s);
                p.conf_prob[at] = static_cast<float>(c);
                p.beta[at] = rng_uniform(rng) < c ? 1.0f : 0.0f;
            }
        // as acceptance_load appends a request
        TraceRequest q;
        q.output_len = output_len;
        q.offset = a.beta.size();
        a.requests.push_back(q);
        a.beta.insert(a.beta.end(), p.beta.begin(), p.beta.end());
        a.conf.insert(a.conf.end(), p.conf_prob.begin(), p.conf_prob.end());
        a.conf_logit.insert(a.conf_logit.end(), p.conf_logit.begin(), p.conf_logit.end());
        run.positions.push_back(std::move(p));
    }
    return run;
}

// The trivially correct twin: every real slot's prod_{i<=k} sigma(z_i / T_i)
// binned by hand, slots 1..G.
static ReliabilityBins reference_bins(const AcceptanceData& a, const std::vector<double>& temps, int G) {
    ReliabilityBins rb;
    const size_t TG = static_cast<size_t>(a.trace_gamma);
    std::vector<double> pred, real;
    for (const TraceRequest& q : a.requests)
        for (int t = 0; t < q.output_len; t++) {
            double p = 1, r = 1;
            for (int k = 1; k <= G && t + k < q.output_len; k++) {
                const size_t at = q.offset + static_cast<size_t>(t) * TG + static_cast<size_t>(k - 1);
                p *= 1 / (1 + std::exp(-double(a.conf_logit[at]) / temps[static_cast<size_t>(k - 1)]));
                r *= a.beta[at];
                const int b = std::min(static_cast<int>(p * RELIABILITY_BINS), RELIABILITY_BINS - 1);
                rb.pred[b] += p;
                rb.real[b] += r;
                rb.count[b]++;
                rb.total++;
            }
        }
    for (int b = 0; b < RELIABILITY_BINS; b++) {
        rb.ece += std::fabs(rb.pred[b] - rb.real[b]) / static_cast<double>(rb.total);
        if (rb.count[b]) rb.pred[b] /= static_cast<double>(rb.count[b]), rb.real[b] /= static_cast<double>(rb.count[b]);
    }
    return rb;
}

static void expect_same_bins(const ReliabilityBins& got, const ReliabilityBins& want) {
    EXPECT_EQ(got.total, want.total);
    for (int b = 0; b < RELIABILITY_BINS; b++) {
        EXPECT_EQ(got.count[b], want.count[b]) << "bin " << b;
        EXPECT_NEAR(got.pred[b], want.pred[b], 1e-9) << "bin " << b;
        EXPECT_NEAR(got.real[b], want.real[b], 1e-9) << "bin " << b;
    }
    EXPECT_NEAR(got.ece, want.ece, 1e-9);
}

TEST(Reliability, AtAKnownTemperatureTheCalibratedSeriesIsSigmaOfZOverTheStsFit) {
    // the trace has 4 slots, the engine verifies 3: the diagram covers 1..3
    const std::vector<double> t_true = {2.0, 0.6, 1.5, 3.0};
    const KnownRun run = known_run(t_true, 3);
    const Reliability r = reliability_compute(run.acceptance);
    ASSERT_EQ(r.source, RELIABILITY_LOGITS);
    ASSERT_EQ(r.unfittable_slot, 0);
    ASSERT_EQ(r.temperatures.size(), 3u);

    // the temperatures are `specplan calibrate`'s on the same run: sts_fit on
    // the rows calib_rows_append builds from the positions. STS is sequential,
    // so fitting all 4 trace slots gives the same T_1..T_3.
    CalibRows rows;
    rows.gamma = 4;
    for (const Positions& p : run.positions) calib_rows_append(rows, p);
    const std::vector<double> fitted = sts_fit(rows);
    for (size_t k = 0; k < 3; k++) {
        EXPECT_EQ(r.temperatures[k], fitted[k]) << "T_" << k + 1;
        EXPECT_NEAR(r.temperatures[k], t_true[k], 0.15 * t_true[k]) << "T_" << k + 1;
    }

    // raw is sigma(z), calibrated sigma(z / T_k), each binned as the twin bins
    expect_same_bins(r.raw, reference_bins(run.acceptance, {1, 1, 1}, 3));
    expect_same_bins(r.calibrated, reference_bins(run.acceptance, r.temperatures, 3));
    EXPECT_EQ(r.raw.total, 400 * (99 + 98 + 97));

    std::printf("  T fitted %.3f %.3f %.3f (true %.1f %.1f %.1f); ECE raw %.4f -> calibrated %.4f\n", r.temperatures[0],
                r.temperatures[1], r.temperatures[2], t_true[0], t_true[1], t_true[2], r.raw.ece, r.calibrated.ece);
    // and calibration is what it did: raw is off by several points, calibrated by about none
    EXPECT_GT(r.raw.ece, 0.03);
    EXPECT_LT(r.calibrated.ece, 0.015);
    EXPECT_LT(r.calibrated.ece, r.raw.ece / 3);
}

TEST(Reliability, ACalibratedHeadKeepsTemperaturesNearOne) {
    const KnownRun run = known_run({1.0, 1.0}, 2, 200, 50);
    const Reliability r = reliability_compute(run.acceptance);
    ASSERT_EQ(r.temperatures.size(), 2u);
    std::printf("  T fitted %.3f %.3f; ECE raw %.4f -> calibrated %.4f\n", r.temperatures[0], r.temperatures[1],
                r.raw.ece, r.calibrated.ece);
    for (double t : r.temperatures) EXPECT_NEAR(t, 1.0, 0.15);
    EXPECT_LT(r.raw.ece, 0.02);
    EXPECT_LE(r.calibrated.ece, r.raw.ece + 1e-12);   // ECE is what the fit minimises, T = 1 among its candidates
}

// [SECTION] through the loader -----------------------------------------------------

TEST(Reliability, TheBundledTraceHasLogitsAndCalibratesNearItsRawTemperature) {
    // traces/data/synthetic.specdb: z = 1.5 logit(c), c calibrated (scripts/make-bundled-trace).
    // A scenario of its own, anchored in scenarios/ as the shipped ones are.
    const Scenario sc = scenario_parse(
        "[workload]\nconcurrency = [1]\n[engine]\ngamma = 7\n"
        "[acceptance]\ntrace = \"../traces/data/synthetic.specdb\"\n[policies]\nlist = [\"dspark\"]\n",
        std::string(SPECPLAN_SOURCE_DIR) + "/scenarios/synthetic-reliability.toml");
    EXPECT_TRUE(acceptance_load(sc).conf_logit.empty());   // the simulator's load leaves them out
    const AcceptanceData a = acceptance_load(sc, true);
    ASSERT_FALSE(a.conf_logit.empty());
    ASSERT_EQ(a.conf_logit.size(), a.beta.size());
    const Reliability r = reliability_compute(a);
    ASSERT_EQ(r.source, RELIABILITY_LOGITS);
    ASSERT_EQ(r.temperatures.size(), static_cast<size_t>(std::min(a.gamma, a.trace_gamma)));
    std::printf("  T fitted");
    for (double t : r.temperatures) std::printf(" %.3f", t);
    std::printf("; ECE raw %.4f -> calibrated %.4f over %lld slots\n", r.raw.ece, r.calibrated.ece,
                static_cast<long long>(r.raw.total));
    for (double t : r.temperatures) EXPECT_NEAR(t, 1.5, 0.25);
    EXPECT_LT(r.calibrated.ece, r.raw.ece);
}

TEST(Reliability, TheDefaultScenariosCapturedRunHasLogitsAndStsLowersItsEce) {
    // scenarios/default.toml replays traces/data/demo.specdb run 1: `specplan
    // capture` of the demo target with its DSpark drafter, greedy, gamma 7.
    // `specplan calibrate --run 1 --heldout 0` on it, 2026-12: pooled ECE 0.123
    // raw, 0.045 calibrated (T_k 0.38..0.61: the raw head is underconfident).
    const Scenario sc = scenario_load(std::string(SPECPLAN_SOURCE_DIR) + "/scenarios/default.toml");
    EXPECT_TRUE(acceptance_load(sc).conf_logit.empty());
    const AcceptanceData a = acceptance_load(sc, true);
    // the capture's three domains, each with requests (the synthetic trace has code and chat)
    EXPECT_EQ(a.domains, (std::vector<std::string>{"python", "c", "prose"}));
    for (const std::vector<int>& d : a.by_domain) EXPECT_FALSE(d.empty());
    ASSERT_FALSE(a.conf_logit.empty());
    ASSERT_EQ(a.conf_logit.size(), a.beta.size());
    const Reliability r = reliability_compute(a);
    ASSERT_EQ(r.source, RELIABILITY_LOGITS);
    EXPECT_EQ(r.unfittable_slot, 0);
    ASSERT_EQ(r.temperatures.size(), 7u);
    std::printf("  T fitted");
    for (double t : r.temperatures) std::printf(" %.3f", t);
    std::printf("; ECE raw %.4f -> calibrated %.4f over %lld slots\n", r.raw.ece, r.calibrated.ece,
                static_cast<long long>(r.raw.total));
    // every real slot of the 72 requests is binned in both series
    EXPECT_GT(r.raw.total, 80000);
    EXPECT_EQ(r.calibrated.total, r.raw.total);
    // the fit does what it is for, by a wide margin on this head
    EXPECT_LT(r.calibrated.ece, r.raw.ece / 2);
}

// [SECTION] the sweep worker's cache key -------------------------------------------

TEST(Reliability, TheDigestChangesWithAnythingTheDiagramReads) {
    const AcceptanceData a = known_run({2.0, 1.0}, 2, 20, 30).acceptance;
    const uint64_t d = reliability_digest(a);
    EXPECT_EQ(reliability_digest(known_run({2.0, 1.0}, 2, 20, 30).acceptance), d);   // the same run again
    AcceptanceData b = a;
    b.beta[17] = 1.0f - b.beta[17];
    EXPECT_NE(reliability_digest(b), d);
    b = a;
    b.conf_logit[5] += 0.5f;
    EXPECT_NE(reliability_digest(b), d);
    b = a;
    b.conf_logit.clear();   // the fallback diagram
    EXPECT_NE(reliability_digest(b), d);
    b = a;
    b.gamma = 1;            // fewer slots binned
    EXPECT_NE(reliability_digest(b), d);
    b = a;
    b.requests[3].output_len--;
    EXPECT_NE(reliability_digest(b), d);
}
