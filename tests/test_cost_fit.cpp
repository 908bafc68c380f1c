// test_cost_fit: the roofline fit (simulator/cost_fit.h) recovers the
// efficiencies, overlap and overheads that generated a profile, and the
// calibrate-cost command reports them from a real trace store.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "simulator/cost_fit.h"
#include "tests/cli_run.h"
#include "traces/models.h"

namespace sp {
namespace {

// Verify cells over R, B and context, and prefill chunks, timed by a
// roofline with known numbers; with a drafter, draft cells too (R requests
// drafting gamma each, B = R gamma, as `specplan live` writes them).
MeasuredCost profile_of(const Roofline& truth, const DrafterSpec* drafter = nullptr) {
    MeasuredCost m;
    m.gpu = "NVIDIA H100 80GB HBM3";
    m.model = truth.model.name;
    CostModel cm;
    cm.roofline = truth;
    auto cell = [&](Phase ph, int R, int B, int ctx) {
        Profile p;
        p.gpu = m.gpu;
        p.model = truth.model;
        p.phase = ph;
        p.n_seqs = R;
        p.n_tokens = B;
        p.context = ctx;
        BatchShape b;
        if (ph == PHASE_PREFILL) b.n_prefill_seqs = R, b.n_prefill_tokens = B, b.prefill_context = ctx;
        else b.n_decode_seqs = R, b.n_decode_tokens = B, b.decode_context = ctx;
        p.latency_us_p50 = p.latency_us_p10 = p.latency_us_p90 = cost_forward_s(cm, b) * 1e6;
        p.n_samples = 5;
        (ph == PHASE_PREFILL ? m.prefill : m.verify).push_back(p);
    };
    for (int ctx : {512, 2048, 8192})
        for (int R : {1, 4, 16, 64, 256})
            for (int q : {1, 2, 8}) cell(PHASE_VERIFY, R, R * q, ctx);
    for (int B : {256, 512, 1024, 2048}) cell(PHASE_PREFILL, 1, B, 0);
    if (!drafter) return m;
    cm.drafter = *drafter;
    for (int ctx : {64, 512, 2048})
        for (int R : {1, 4, 16, 64, 256})
            for (int gamma : {4, 7}) {
                Profile p;
                p.gpu = m.gpu;
                p.model = truth.model;
                p.phase = PHASE_DRAFT;
                p.n_seqs = R;
                p.n_tokens = R * gamma;
                p.context = ctx;
                p.latency_us_p50 = p.latency_us_p10 = p.latency_us_p90 = cost_draft_s(cm, R, gamma, ctx) * 1e6;
                p.n_samples = 5;
                m.draft.push_back(p);
            }
    return m;
}

// qwen3-8b on the H100 with the numbers a fit should find (overlap 1.5),
// and the same shape with the datasheet defaults to start it from.
static Roofline qwen3_8b_h100(double overhead_s, double per_layer_s) {
    Roofline r;
    EXPECT_TRUE(model_preset("qwen3-8b", &r.model));
    EXPECT_TRUE(gpu_preset("h100-sxm", &r.gpu));
    r.bw_efficiency = 0.70;
    r.flops_efficiency = 0.45;
    r.gpu.overhead_s = overhead_s;
    r.gpu.overhead_s_per_layer = per_layer_s;
    r.overlap_n = 1.5;
    return r;
}
static Roofline datasheet_start(const Roofline& truth) {
    Roofline start = truth;
    start.bw_efficiency = 0.8;
    start.flops_efficiency = 0.6;
    start.gpu.overhead_s = 30e-6;
    start.gpu.overhead_s_per_layer = 0;
    start.overlap_n = 0;
    return start;
}

TEST(CostFit, RecoversTheNumbersThatMadeTheProfile) {
    const Roofline truth = qwen3_8b_h100(350e-6, 0), start = datasheet_start(truth);
    const CostFit fit = cost_fit_roofline(start, profile_of(truth));
    EXPECT_NEAR(fit.fitted.bw_efficiency, 0.70, 0.0051);
    EXPECT_NEAR(fit.fitted.flops_efficiency, 0.45, 0.0051);
    EXPECT_NEAR(fit.fitted.gpu.overhead_s, 350e-6, 2e-6);
    EXPECT_EQ(fit.fitted.overlap_n, 1.5);
    EXPECT_LT(fit.after.mape, 1e-3);
    EXPECT_GT(fit.before.mape, 0.10);  // the defaults are far off this GPU
    EXPECT_EQ(fit.cells.size(), 49u);
    // model / measured - 1 of the starting roofline at one cell, worked out from the cells' own times
    const CostFitCell& c = fit.cells.front();
    EXPECT_LT(c.before_s, c.measured_s);  // 0.8 > 0.7 and 30 us < 350 us: the defaults are optimistic
}

// A target forward pays overhead_s + 36 per-layer overheads, a DSpark draft
// 1 + gamma overhead_s and 5 per-layer ones: the draft cells tell the two
// apart. Without them only the target's sum is seen, 40 + 36 x 25 = 940 us,
// and the fit puts it all in overhead_s.
TEST(CostFit, DraftCellsTellThePerStepOverheadFromThePerLayerOne) {
    const Roofline truth = qwen3_8b_h100(40e-6, 25e-6), start = datasheet_start(truth);
    DrafterSpec dspark;
    dspark.kind = DRAFTER_DSPARK;
    dspark.n_layers = 5;
    dspark.markov_rank = 256;
    const MeasuredCost profile = profile_of(truth, &dspark);

    const CostFit fit = cost_fit_roofline(start, profile, dspark);
    EXPECT_EQ(fit.cells.size(), 49u + 30u);
    EXPECT_TRUE(fit.per_layer_fitted);
    EXPECT_NEAR(fit.fitted.bw_efficiency, 0.70, 0.0051);
    EXPECT_NEAR(fit.fitted.flops_efficiency, 0.45, 0.0051);
    EXPECT_NEAR(fit.fitted.gpu.overhead_s, 40e-6, 0.5e-6);
    EXPECT_NEAR(fit.fitted.gpu.overhead_s_per_layer, 25e-6, 0.05e-6);
    EXPECT_EQ(fit.fitted.overlap_n, 1.5);
    EXPECT_LT(fit.after.mape, 1e-3);
    EXPECT_EQ(fit.cells.back().phase, PHASE_DRAFT);

    const CostFit blind = cost_fit_roofline(start, profile, DrafterSpec{});  // DRAFTER_NONE: no draft cells
    EXPECT_EQ(blind.cells.size(), 49u);
    EXPECT_FALSE(blind.per_layer_fitted);
    EXPECT_EQ(blind.fitted.gpu.overhead_s_per_layer, 0);  // kept as given
    EXPECT_NEAR(blind.fitted.gpu.overhead_s, 40e-6 + 36 * 25e-6, 2e-6);
    EXPECT_NEAR(blind.fitted.bw_efficiency, 0.70, 0.0051);
    EXPECT_LT(blind.after.mape, 1e-3);
}

TEST(CostFit, RefusesAProfileWithoutForwardCellsOrWithZeroTimes) {
    Roofline r;
    ASSERT_TRUE(model_preset("qwen3-8b", &r.model));
    ASSERT_TRUE(gpu_preset("h100-sxm", &r.gpu));
    MeasuredCost empty;
    EXPECT_THROW(cost_fit_roofline(r, empty), Error);
    MeasuredCost m = profile_of(r);
    m.verify[3].latency_us_p50 = 0;
    EXPECT_THROW(cost_fit_roofline(r, m), Error);
    DrafterSpec dspark;
    dspark.kind = DRAFTER_DSPARK;
    m = profile_of(r, &dspark);
    m.draft[5].n_tokens += 1;  // not R drafts of gamma each
    EXPECT_THROW(cost_fit_roofline(r, m, dspark), Error);
    EXPECT_NO_THROW(cost_fit_roofline(r, m, DrafterSpec{}));  // the draft cells are not read
    r.tp = 2;
    EXPECT_THROW(cost_fit_roofline(r, profile_of(r)), Error);
}

TEST(CalibrateCostCli, FitsTheBundledH100ProfileAndRefusesUnknownGpus) {
    ScratchDir dir;
    const std::string db = std::string(SPECPLAN_SOURCE_DIR) + "/scenarios/profiles/h100.specdb";
    CliResult r = cli_run(dir, "calibrate-cost " + db + " --model qwen3-8b --json " + dir.file("fit.json"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("bw_efficiency = "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("calibrated = \"" + db + ": qwen3-8b on NVIDIA H100 80GB HBM3, MAPE "), std::string::npos)
        << r.out;
    const nlohmann::json j = nlohmann::json::parse(slurp(dir.file("fit.json")));
    EXPECT_EQ(j["gpu_preset"], "h100-sxm");
    EXPECT_LT(j["fitted"]["mape"].get<double>(), j["given"]["mape"].get<double>());
    EXPECT_EQ(j["cells"].size(), 266u);  // 115 verify + 16 prefill + 135 draft cells of qwen3-8b
    EXPECT_EQ(j["drafter"]["kind"], "dspark");
    EXPECT_NE(r.out.find("overhead_us_per_layer = "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("[cost.drafter]\n  kind = \"dspark\"\n  layers = 5\n  markov_rank = 256\n"),
              std::string::npos) << r.out;
    // --drafter none: the verify and prefill cells alone, as before the draft phase was fitted
    r = cli_run(dir, "calibrate-cost " + db + " --model qwen3-8b --drafter none --json " + dir.file("fit.json"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(slurp(dir.file("fit.json")))["cells"].size(), 131u);
    EXPECT_EQ(r.out.find("[cost.drafter]"), std::string::npos) << r.out;
    r = cli_run(dir, "calibrate-cost " + db + " --model qwen3-8b --gpu-preset tpu-v9");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("no datasheet preset 'tpu-v9'"), std::string::npos) << r.err;
    r = cli_run(dir, "calibrate-cost " + db);  // three models: must say which
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
}

}  // namespace
}  // namespace sp
