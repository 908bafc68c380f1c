// test_cost_fit: the roofline fit (simulator/cost_fit.h) recovers the
// efficiencies and overhead that generated a profile, and the
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
// roofline with known numbers.
MeasuredCost profile_of(const Roofline& truth) {
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
    return m;
}

TEST(CostFit, RecoversTheNumbersThatMadeTheProfile) {
    Roofline truth;
    ASSERT_TRUE(model_preset("qwen3-8b", &truth.model));
    ASSERT_TRUE(gpu_preset("h100-sxm", &truth.gpu));
    truth.bw_efficiency = 0.70;
    truth.flops_efficiency = 0.45;
    truth.gpu.overhead_s = 350e-6;
    truth.overlap_n = 1.5;
    Roofline start = truth;  // the datasheet defaults
    start.bw_efficiency = 0.8;
    start.flops_efficiency = 0.6;
    start.gpu.overhead_s = 30e-6;
    start.overlap_n = 0;
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

TEST(CostFit, RefusesAProfileWithoutForwardCellsOrWithZeroTimes) {
    Roofline r;
    ASSERT_TRUE(model_preset("qwen3-8b", &r.model));
    ASSERT_TRUE(gpu_preset("h100-sxm", &r.gpu));
    MeasuredCost empty;
    EXPECT_THROW(cost_fit_roofline(r, empty), Error);
    MeasuredCost m = profile_of(r);
    m.verify[3].latency_us_p50 = 0;
    EXPECT_THROW(cost_fit_roofline(r, m), Error);
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
    EXPECT_EQ(j["cells"].size(), 131u);  // 115 verify + 16 prefill cells of qwen3-8b
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
