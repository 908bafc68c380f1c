// test_calibrate.cpp: Sequential Temperature Scaling (traces/calibrate.h) and
// `specplan calibrate`.
//
//  - the fit recovers known per-slot temperatures from a trace written
//    through the store's writer API, whose raw logits are z = T_k s with
//    beta ~ Bernoulli(sigma(s)) per slot (so sigma(z / T_k) is calibrated and
//    survival is the product of independent coins);
//  - a slot with too few real slots, or with one outcome only, is named
//    unfittable (sts_unfittable_slot);
//  - ECE, Brier and AUROC equal closed forms on hand-worked sets;
//  - the CLI's calibration.json loads through the engine's own reader
//    (dspark_load on a copy of tests/fixtures/tiny-dspark) with the
//    temperatures the table printed, and held-out ECE falls;
//  - bad input: exit 1, one line on stderr naming the file and field, and
//    no file written (an existing one untouched).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/dspark.h"
#include "engine/model.h"
#include "tests/cli_run.h"
#include "tests/scratch.h"
#include "traces/calibrate.h"
#include "traces/rng.h"
#include "traces/trace_db.h"

namespace fs = std::filesystem;

namespace sp {
namespace {

const std::string kFixtures = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";

// A DSpark-like run: per real slot, s ~ N(mean, sd) is the calibrated
// logit, z = t_true[k] s the raw one, and beta = 1 with probability sigma(s).
struct SyntheticRun {
    std::vector<double> t_true = {0.7, 1.5, 2.5, 1.0};  // (gamma)
    int requests = 400;
    int output_len = 100;
    double mean = 1.5, sd = 1.5;
    uint64_t seed = 1;
    bool confidence = true;
    bool sampled = false;  // a sampling run (T 1): beta = sigma(s), the acceptance probability, no coin
};

int64_t synthetic_run_write(const std::string& path, const SyntheticRun& s) {
    const int G = int(s.t_true.size());
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    Run run;
    run.target.name = "test";
    run.drafter_kind = "dspark";
    run.drafter_name = "test_calibrate";
    run.gamma = G;
    run.temperature = s.sampled ? 1.0 : 0.0;
    trace_db_begin_run(db, run);
    Rng rng = rng_seed(s.seed, 7);
    TraceTxn txn(db);
    for (int i = 0; i < s.requests; i++) {
        Request q;
        q.run_id = run.id;
        q.idx = i;
        q.domain = "test";
        q.output_len = s.output_len;
        trace_db_append_request(db, q);
        Positions p;
        p.request_id = q.id;
        p.gamma = G;
        p.n = s.output_len;
        const size_t n = size_t(p.n) * size_t(G);
        p.beta.assign(n, 0.0f);
        if (s.confidence) p.conf_logit.assign(n, 0.0f), p.conf_prob.assign(n, 0.0f);
        for (int t = 0; t < p.n; t++)
            for (int k = 1; k <= G && t + k < p.n; k++) {
                const size_t at = size_t(t) * size_t(G) + size_t(k - 1);
                const double c_logit = s.mean + s.sd * rng_normal(rng), c = 1 / (1 + std::exp(-c_logit));
                p.beta[at] = s.sampled ? float(c) : rng_uniform(rng) < c ? 1.0f : 0.0f;
                if (s.confidence) {
                    p.conf_logit[at] = float(s.t_true[size_t(k - 1)] * c_logit);
                    p.conf_prob[at] = float(c);
                }
            }
        trace_db_append_positions(db, p);
    }
    txn.commit();
    trace_db_finish_run(db, run.id);
    return run.id;
}

// ---------------------------------------------------------------------------
// [SECTION] the fit

// 400 requests x 100 anchors: about 40k real slots per k. Over 40 seeds the
// worst relative error of the 160 fitted temperatures was 10% (the ECE
// objective is noisy: its finite-sample floor is ~1% at this size); 15% is
// the tolerance. The fit takes about 0.25 s.
TEST(Calibrate, TheFitRecoversEachSlotsTemperatureFromATrace) {
    ScratchDir dir;
    const SyntheticRun s;
    const std::string path = dir.file("t.specdb");
    const int64_t run = synthetic_run_write(path, s);
    TraceDb db = trace_db_open(path, TRACE_READ);
    CalibRows rows;
    rows.gamma = int(s.t_true.size());
    for (const Request& q : trace_db_requests(db, run)) {
        Positions p;
        ASSERT_TRUE(trace_db_positions(db, q.id, &p));
        calib_rows_append(rows, p);
    }
    // real slots: anchors t with t + k < output_len, per request
    for (int k = 1; k <= rows.gamma; k++)
        EXPECT_EQ(calib_rows_count(rows, k), int64_t(s.requests) * (s.output_len - k)) << "slot " << k;
    const std::vector<double> t = sts_fit(rows);
    ASSERT_EQ(t.size(), s.t_true.size());
    for (size_t k = 0; k < t.size(); k++) {
        std::printf("  slot %zu: T fitted %.4f, true %.2f (%+.1f%%)\n", k + 1, t[k], s.t_true[k],
                    100 * (t[k] / s.t_true[k] - 1));
        EXPECT_NEAR(t[k] / s.t_true[k], 1.0, 0.15) << "slot " << k + 1;
    }
}

// Under sampling beta is a probability and survival a soft label. With
// beta = sigma(s) exactly there is no coin noise: at the true temperatures
// the predictions equal the realised survival, ECE is ~0 there, and the fit
// lands within the search's own resolution (the float32 logits aside).
TEST(Calibrate, UnderSamplingSurvivalIsASoftLabelAndTheFitIsSharp) {
    ScratchDir dir;
    SyntheticRun s;
    s.requests = 40;
    s.sampled = true;
    const std::string path = dir.file("t.specdb");
    const int64_t run = synthetic_run_write(path, s);
    TraceDb db = trace_db_open(path, TRACE_READ);
    CalibRows rows;
    rows.gamma = int(s.t_true.size());
    for (const Request& q : trace_db_requests(db, run)) {
        Positions p;
        ASSERT_TRUE(trace_db_positions(db, q.id, &p));
        calib_rows_append(rows, p);
    }
    const std::vector<double> t = sts_fit(rows);
    for (size_t k = 0; k < t.size(); k++) EXPECT_NEAR(t[k] / s.t_true[k], 1.0, 1e-3) << "slot " << k + 1;
    const SlotScores all = slot_scores_compute(rows, t, 0);
    std::printf("  T fitted %.4f %.4f %.4f %.4f; pooled ECE raw %.4f, calibrated %.5f\n", t[0], t[1], t[2], t[3],
                all.ece_raw, all.ece_cal);
    EXPECT_LT(all.ece_cal, 1e-3);
    EXPECT_GT(all.ece_raw, 0.02);
    EXPECT_LT(all.brier_cal, 1e-4);
}

// The prefix: slot k's prediction multiplies in the slots before it at their
// fitted temperatures, so a wrong T_1 shows at slot 2 even when z_2 is right.
TEST(Calibrate, SurvivalIsTheProductOfTheSlotsCalibratedConfidences) {
    CalibRows rows;
    rows.gamma = 2;
    Positions p;
    p.gamma = 2;
    p.n = 3;  // rows: t = 0 has slots 1, 2; t = 1 has slot 1; t = 2 none
    p.conf_logit = {2.0f, -1.0f, 0.5f, 9.0f, 9.0f, 9.0f};
    p.beta = {1.0f, 0.5f, 0.0f, 1.0f, 1.0f, 1.0f};
    calib_rows_append(rows, p);
    EXPECT_EQ(rows.n_real, (std::vector<int>{2, 1, 0}));
    const std::vector<double> T = {2.0, 0.5};
    auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
    const std::vector<double> a1 = survival_predict(rows, T, 1), a2 = survival_predict(rows, T, 2);
    ASSERT_EQ(a1.size(), 2u);
    ASSERT_EQ(a2.size(), 1u);
    EXPECT_DOUBLE_EQ(a1[0], sig(1.0));
    EXPECT_DOUBLE_EQ(a1[1], sig(0.25));
    EXPECT_DOUBLE_EQ(a2[0], sig(1.0) * sig(-2.0));
    EXPECT_EQ(survival_realise(rows, 1), (std::vector<double>{1.0, 0.0}));
    EXPECT_EQ(survival_realise(rows, 2), (std::vector<double>{0.5}));
}

// Rows of one slot each, n of them, realised 1 for the first `survive`.
static CalibRows one_slot_rows(int gamma, int n, int survive) {
    CalibRows rows;
    rows.gamma = gamma;
    for (int r = 0; r < n; r++) {
        rows.z.insert(rows.z.end(), size_t(gamma), 0.0f);
        rows.beta.insert(rows.beta.end(), size_t(gamma), r < survive ? 1.0f : 0.0f);
        rows.n_real.push_back(gamma);
    }
    return rows;
}

TEST(Calibrate, ASlotIsUnfittableWithTooFewSlotsOrOneOutcome) {
    EXPECT_EQ(sts_unfittable_slot(one_slot_rows(2, int(STS_MIN_SLOTS), 40)), 0);
    EXPECT_EQ(sts_unfittable_slot(one_slot_rows(2, int(STS_MIN_SLOTS) - 1, 40)), 1);  // too few
    EXPECT_EQ(sts_unfittable_slot(one_slot_rows(2, 150, 0)), 1);                      // every prefix dies
    EXPECT_EQ(sts_unfittable_slot(one_slot_rows(2, 150, 150)), 1);                    // every prefix survives
    // slot 2: half the rows have it, and those all die there
    CalibRows rows = one_slot_rows(2, 300, 200);
    for (size_t r = 0; r < 300; r++) rows.beta[r * 2 + 1] = 0.0f;
    EXPECT_EQ(sts_unfittable_slot(rows), 2);
    // a soft label strictly inside (0, 1) is both outcomes at once
    CalibRows soft = one_slot_rows(1, 100, 0);
    for (float& b : soft.beta) b = 0.5f;
    EXPECT_EQ(sts_unfittable_slot(soft), 0);
}

TEST(Calibrate, TheSplitIsDeterministicAndHoldsOutAboutTheFraction) {
    int held = 0;
    for (int i = 0; i < 10000; i++) {
        held += request_heldout(i, 7, 0.3);
        EXPECT_EQ(request_heldout(i, 7, 0.3), request_heldout(i, 7, 0.3));
        EXPECT_FALSE(request_heldout(i, 7, 0.0));
    }
    EXPECT_NEAR(held / 10000.0, 0.3, 0.015);  // binomial sd 0.0046
    int moved = 0;
    for (int i = 0; i < 1000; i++) moved += request_heldout(i, 7, 0.3) != request_heldout(i, 8, 0.3);
    EXPECT_GT(moved, 200);  // another seed, another split (expected 420)
}

// ---------------------------------------------------------------------------
// [SECTION] scores against closed forms

TEST(CalibrationScores, PerfectlyCalibratedBinsHaveNoCalibrationError) {
    // bin 5 (0.25..0.30): mean 0.25, one of four survives; bin 15: 0.75, three of four
    const std::vector<double> pred = {0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75};
    const std::vector<double> real = {1, 0, 0, 0, 1, 1, 0, 1};
    EXPECT_NEAR(ece_compute(pred, real), 0.0, 1e-15);
    // soft labels: the bin's mean realised survival is what counts
    EXPECT_NEAR(ece_compute(std::vector<double>{0.4, 0.4}, std::vector<double>{0.3, 0.5}), 0.0, 1e-15);
}

TEST(CalibrationScores, TwoBinsWeighTheirGapsByTheirCounts) {
    // bin 2: predicted 0.1, realised 1/2 -> gap 0.4, weight 2/4; bin 18: 0.9 vs 1 -> 0.1, weight 2/4
    const std::vector<double> pred = {0.1, 0.1, 0.9, 0.9}, real = {1, 0, 1, 1};
    EXPECT_NEAR(ece_compute(pred, real), 0.5 * 0.4 + 0.5 * 0.1, 1e-12);
    // one bin pools everything: |0.5 - 0.75|
    EXPECT_NEAR(ece_compute(pred, real, 1), 0.25, 1e-12);
}

TEST(CalibrationScores, BinEdgesBelongToTheBinAboveAndOneToTheLast) {
    // 0.0499 and 0.05 fall in bins 0 and 1: two gaps, not one pooled
    EXPECT_NEAR(ece_compute(std::vector<double>{0.0499, 0.05}, std::vector<double>{0, 1}), (0.0499 + 0.95) / 2, 1e-12);
    // 1.0 is in bin 19 with 0.96
    EXPECT_NEAR(ece_compute(std::vector<double>{1.0, 0.96}, std::vector<double>{1, 0}), std::fabs(1.96 - 1) / 2, 1e-12);
}

TEST(CalibrationScores, BrierIsTheMeanSquaredGap) {
    EXPECT_NEAR(brier_compute(std::vector<double>{0.2, 0.7}, std::vector<double>{0, 1}), (0.04 + 0.09) / 2, 1e-15);
    EXPECT_DOUBLE_EQ(brier_compute(std::vector<double>{0.5}, std::vector<double>{0.5}), 0.0);
    EXPECT_DOUBLE_EQ(brier_compute(std::vector<double>{1, 0}, std::vector<double>{0, 1}), 1.0);
}

TEST(CalibrationScores, AurocIsOneForAPerfectRankingZeroReversedAndAHalfForTies) {
    const std::vector<double> real = {0, 0, 1, 1};
    EXPECT_DOUBLE_EQ(auroc_compute(std::vector<double>{0.1, 0.2, 0.8, 0.9}, real), 1.0);
    EXPECT_DOUBLE_EQ(auroc_compute(std::vector<double>{0.9, 0.8, 0.2, 0.1}, real), 0.0);
    EXPECT_DOUBLE_EQ(auroc_compute(std::vector<double>{0.5, 0.5, 0.5, 0.5}, real), 0.5);
    // one inversion of the four pairs: 3/4
    EXPECT_DOUBLE_EQ(auroc_compute(std::vector<double>{0.1, 0.7, 0.6, 0.9}, real), 0.75);
    // no surviving (or no dying) slot: undefined
    EXPECT_TRUE(std::isnan(auroc_compute(std::vector<double>{0.1, 0.9}, std::vector<double>{0, 0})));
    EXPECT_TRUE(std::isnan(auroc_compute(std::vector<double>{}, std::vector<double>{})));
}

TEST(CalibrationScores, SoftLabelsGiveTheRatioOfExpectedWinsToExpectedPairs) {
    // slots a (pred 0.2, r 0.25) and b (0.8, 0.75): the only ranked pair that
    // can occur with one surviving and one dying is across slots; b wins
    // with probability 0.75 * 0.75, a "wins" (an inversion) with 0.25 * 0.25.
    const double wins = 0.75 * 0.75, pairs = 0.75 * 0.75 + 0.25 * 0.25;
    EXPECT_NEAR(auroc_compute(std::vector<double>{0.2, 0.8}, std::vector<double>{0.25, 0.75}), wins / pairs, 1e-12);
    // a single soft slot pairs with nothing
    EXPECT_TRUE(std::isnan(auroc_compute(std::vector<double>{0.5}, std::vector<double>{0.5})));
}

// ---------------------------------------------------------------------------
// [SECTION] the command

// A drafter folder: tiny-dspark's config and weights, no calibration.json.
std::string drafter_copy(const ScratchDir& dir) {
    const std::string d = dir.file("drafter");
    fs::create_directories(d);
    for (const char* f : {"config.json", "model.safetensors"})
        fs::copy_file(kFixtures + "tiny-dspark/" + f, d + "/" + f);
    return d;
}

// The table's rows "k T n ece_raw ece_cal brier_raw brier_cal auroc_raw auroc_cal", slot k at [k - 1], "all" last.
std::vector<std::vector<double>> table_rows(const std::string& out) {
    std::vector<std::vector<double>> rows;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream l(line);
        std::string first;
        l >> first;
        if (first != "all" && (first.empty() || !std::isdigit(static_cast<unsigned char>(first[0])) ||
                               line.find("requests") != std::string::npos))
            continue;
        std::vector<double> v = {first == "all" ? 0.0 : std::stod(first)};
        std::string cell;
        while (l >> cell) v.push_back(cell == "-" ? std::nan("") : std::stod(cell));
        if (v.size() == 9) rows.push_back(v);
    }
    return rows;
}

TEST(CalibrateCli, TheFileLoadsThroughTheDSparkReaderAndHeldOutEceFalls) {
    ScratchDir dir;
    const std::string trace = dir.file("t.specdb"), drafter = drafter_copy(dir);
    // every raw slot well off calibration, in both directions
    const SyntheticRun s{.t_true = {2.0, 0.5, 3.0, 1.8}};
    synthetic_run_write(trace, s);
    CliResult r = cli_run(dir, "calibrate " + trace + " -o " + drafter + "/calibration.json --heldout 0.3 --seed 3");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    std::printf("%s", r.out.c_str());
    const std::vector<std::vector<double>> rows = table_rows(r.out);
    ASSERT_EQ(rows.size(), 5u) << r.out;  // slots 1..4 and "all"

    Config target = config_load(kFixtures + "tiny-qwen3-4l/config.json");
    target.name = kFixtures + "tiny-qwen3-4l";
    const DSparkWeights w = dspark_load(drafter, target);
    ASSERT_EQ(w.sts.size(), 4u);
    const std::vector<double>& t_true = s.t_true;
    for (size_t k = 0; k < 4; k++) {
        EXPECT_NEAR(w.sts[k], rows[k][1], 1e-4 * rows[k][1]) << "slot " << k + 1 << ": file vs table";
        EXPECT_NEAR(w.sts[k] / t_true[k], 1.0, 0.2) << "slot " << k + 1;  // fit on 70% of the test above's data
        EXPECT_LT(rows[k][4], rows[k][3]) << "slot " << k + 1 << ": held-out ECE after vs before";
    }
    EXPECT_LT(rows[4][4], rows[4][3]) << "pooled held-out ECE after vs before";
    // No temporary file left beside it.
    int files = 0;
    for (const auto& e : fs::directory_iterator(drafter)) files += e.is_regular_file();
    EXPECT_EQ(files, 3);
}

const std::string kOldCalibration = "{\"method\": \"sts\", \"temperatures\": [9, 9, 9, 9]}\n";

// A file already there is replaced whole, and the same input writes the same bytes.
TEST(CalibrateCli, ARerunReplacesTheFileWithTheSameBytes) {
    ScratchDir dir;
    const std::string trace = dir.file("t.specdb"), out = dir.file("calibration.json");
    SyntheticRun s;
    s.requests = 60;
    synthetic_run_write(trace, s);
    std::ofstream(out) << kOldCalibration;
    CliResult a = cli_run(dir, "calibrate " + trace + " -o " + out);
    ASSERT_EQ(a.code, 0) << a.err;
    const std::string first = slurp(out);
    EXPECT_NE(first, kOldCalibration);
    EXPECT_NE(first.find("\"method\": \"sts\""), std::string::npos) << first;
    CliResult b = cli_run(dir, "calibrate " + trace + " -o " + out);
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_EQ(slurp(out), first);
    EXPECT_EQ(a.out, b.out);
}

TEST(CalibrateCli, BadInputIsOneLineNamingTheFileAndWritesNothing) {
    ScratchDir dir;
    const std::string good = dir.file("good.specdb"), no_conf = dir.file("noconf.specdb"),
                      small = dir.file("small.specdb"), text = dir.file("text.specdb"),
                      gamma3 = dir.file("gamma3.specdb"), dead = dir.file("dead.specdb");
    synthetic_run_write(good, SyntheticRun{.requests = 60});
    synthetic_run_write(no_conf, SyntheticRun{.requests = 60, .confidence = false});
    synthetic_run_write(small, SyntheticRun{.requests = 3, .output_len = 20});  // 57 real slots at k = 1
    synthetic_run_write(gamma3, SyntheticRun{.t_true = {1, 1, 1}, .requests = 60});
    synthetic_run_write(dead, SyntheticRun{.requests = 60, .mean = -40, .sd = 0.1});  // every draft rejected
    std::ofstream(text) << "this is a text file, not a trace store\n";
    const std::string drafter = drafter_copy(dir);

    // The output folder holds an old calibration.json in every case but the
    // path ones; it must come out as it went in.
    const std::string out_dir = dir.file("out"), out = out_dir + "/calibration.json";
    fs::create_directories(out_dir);
    struct Case {
        std::string args, file, field;
    } cases[] = {
        {"/nonexistent/x.specdb -o " + out, "/nonexistent/x.specdb", ""},
        {text + " -o " + out, text, "not a SQLite database"},
        {good + " --run 99 -o " + out, good, "--run 99"},
        {no_conf + " -o " + out, no_conf, "conf_logit"},
        {small + " --heldout 0 -o " + out, small, "slot 1"},
        {dead + " -o " + out, dead, "rejected"},
        {good + " --heldout 0.001 -o " + out, good, "held-out"},
        {good + " --heldout 1 -o " + out, "--heldout", "[0, 1)"},
        {good + " -o /nonexistent/dir/calibration.json", "/nonexistent/dir/calibration.json", "-o"},
        {good + " -o " + good + "/calibration.json", good + "/calibration.json", "folder"},
        {good + " -o " + out_dir, out_dir, "folder"},
        {gamma3 + " -o " + drafter + "/calibration.json", drafter + "/config.json", "block_size"},
        {good + " -o " + drafter + "/config.json", drafter + "/config.json", "-o"},
        {good + " -o " + good, good, "-o"},
    };
    for (const Case& c : cases) {
        std::ofstream(out) << kOldCalibration;
        CliResult r = cli_run(dir, "calibrate " + c.args);
        std::printf("  %s", r.err.c_str());
        EXPECT_EQ(r.code, 1) << c.args << ": " << r.err;
        EXPECT_EQ(r.err_lines(), 1) << c.args << ": " << r.err;
        EXPECT_NE(r.err.find(c.file), std::string::npos) << c.args << ": " << r.err;
        EXPECT_NE(r.err.find(c.field), std::string::npos) << c.args << ": " << r.err;
        EXPECT_EQ(r.out, "") << c.args;
        EXPECT_EQ(slurp(out), kOldCalibration) << c.args;
        EXPECT_EQ(std::distance(fs::directory_iterator(out_dir), fs::directory_iterator{}), 1) << c.args;
    }
    EXPECT_FALSE(fs::exists(drafter + "/calibration.json"));
    EXPECT_EQ(slurp(drafter + "/config.json"), slurp(kFixtures + "tiny-dspark/config.json"));
    EXPECT_NO_THROW(trace_db_open(good, TRACE_READ));
    EXPECT_FALSE(fs::exists(fs::path(no_conf).parent_path() / "calibration.json"));
}

}  // namespace
}  // namespace sp
