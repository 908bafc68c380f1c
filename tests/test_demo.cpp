// test_demo.cpp: the committed demo models (models/, trained on an H100 by
// scripts/gpu-train) and the real traces captured with them
// (traces/data/demo*.specdb), on the CPU reference.
//
//  - every committed drafter loads against the committed target, DSpark with
//    its committed calibration.json;
//  - greedy speculative generation with each trained drafter, and with
//    n-gram lookup, equals greedy autoregressive generation on a committed
//    held-out prompt of each domain (the target's greedy tokens are held to
//    HF transformers by test_reference's ReferenceHf.*DemoTarget);
//  - `specplan capture --device cpu` on the committed CPU-reference prompts
//    reproduces every run of traces/data/demo-cpu.specdb exactly (greedy
//    beta is 0 or 1, so equal means equal). The CUDA runs of demo.specdb are
//    not the reference here: the bf16 GPU and the fp32 CPU pick different
//    drafts at near ties (README, "Real acceptance");
//  - `specplan calibrate` on the committed DSpark run lowers held-out ECE and
//    writes the committed models/demo-dspark/calibration.json.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/drafter.h"
#include "engine/dspark.h"
#include "engine/model.h"
#include "engine/speculative.h"
#include "tests/cli_run.h"
#include "tests/scratch.h"
#include "tests/spec_run.h"
#include "traces/trace_db.h"

namespace sp {
namespace {

const std::string kSrc = SPECPLAN_SOURCE_DIR;
const std::string kModels = kSrc + "/models/";
const std::string kTraces = kSrc + "/traces/data/";
const std::vector<std::string> kDrafters = {"demo-dspark", "demo-dflash", "demo-eagle3", "demo-draft-model"};

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in) << path;
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
}

// The first held-out prompt of each domain (the CPU-reference capture's prompts).
std::vector<std::vector<int>> committed_prompts() {
    std::vector<std::vector<int>> out;
    for (const auto& j : read_jsonl(kTraces + "demo-cpu-prompts.jsonl"))
        out.push_back(j.at("prompt_ids").get<std::vector<int>>());
    return out;
}

TEST(DemoModels, EveryDrafterLoadsAgainstTheTarget) {
    const ModelWeights w = weights_load(kModels + "demo-target");
    EXPECT_EQ(w.cfg.vocab, 8192);
    EXPECT_EQ(w.cfg.n_layers, 6);
    for (const std::string& d : kDrafters) {
        auto drafter = drafter_open_cpu(kModels + d, w, DrafterOptions{0, 1});
        EXPECT_EQ(drafter->gamma(), 7) << d;
        EXPECT_EQ(drafter->has_confidence(), d == "demo-dspark") << d;
    }
    // the calibration the DSpark loader reads: not the identity
    const DSparkWeights ds = dspark_load(kModels + "demo-dspark", w.cfg);
    ASSERT_EQ(ds.sts.size(), 7u);
    for (float t : ds.sts) EXPECT_NE(t, 1.0f);
}

TEST(DemoModels, GreedySpeculationWithEachDrafterEqualsAutoregressive) {
    const ModelWeights w = weights_load(kModels + "demo-target");
    const auto prompts = committed_prompts();
    ASSERT_EQ(prompts.size(), 3u);
    const int max_new = 64;
    auto target = backend_cpu(w, int(prompts.size()));
    const auto want = ar_outputs(*target, prompts, max_new, w.cfg.eos_id);
    std::vector<std::string> drafters = {"ngram"};
    for (const std::string& d : kDrafters) drafters.push_back(kModels + d);
    for (const std::string& d : drafters) {
        SCOPED_TRACE(d);
        auto drafter = drafter_open_cpu(d, w, DrafterOptions{0, int(prompts.size())});
        SpecOptions o;
        o.eos = w.cfg.eos_id;
        o.gamma = drafter->gamma();
        o.policy = policy_of("fixed:" + std::to_string(o.gamma));
        Speculator spec(*target, drafter.get(), o);
        const std::vector<SpecRequest> reqs = spec_run_batch(spec, prompts, max_new);
        int steps = 0, accepted = 0;
        for (size_t i = 0; i < prompts.size(); i++) {
            EXPECT_EQ(reqs[i].output, want[i]) << "prompt " << i;
            for (const Step& st : reqs[i].steps) {
                steps++;
                accepted += st.n_accepted;
            }
        }
        std::printf("  %-40s %3d steps, %4d drafts accepted\n", d.c_str(), steps, accepted);
        EXPECT_GT(accepted, 0);   // a trained drafter that never lands a draft would pass the equality trivially
    }
}

TEST(DemoTraces, ACpuCaptureReproducesTheCommittedCpuRuns) {
    TraceDb want_db = trace_db_open(kTraces + "demo-cpu.specdb", TRACE_READ);
    const std::vector<sp::Run> runs = trace_db_runs(want_db);
    ASSERT_EQ(runs.size(), kDrafters.size());
    for (size_t i = 0; i < runs.size(); i++) {
        const sp::Run& want_run = runs[i];
        SCOPED_TRACE(want_run.drafter_name);
        ASSERT_EQ(want_run.drafter_name, "models/" + kDrafters[i]);
        ASSERT_EQ(want_run.temperature, 0.0);
        ScratchDir dir;
        // the README's command, from the repository root as it was run
        CliResult r = cli_run(dir, "capture --device cpu --model " + kModels + "demo-target --drafter " + kModels +
                                       kDrafters[i] + " --prompts " + kTraces + "demo-cpu-prompts.jsonl --max-new 96" +
                                       " --quiet -o " + dir.file("t.specdb"));
        ASSERT_EQ(r.code, 0) << r.err;
        TraceDb got_db = trace_db_open(dir.file("t.specdb"), TRACE_READ);
        const auto got_reqs = trace_db_requests(got_db, trace_db_runs(got_db).at(0).id);
        const auto want_reqs = trace_db_requests(want_db, want_run.id);
        ASSERT_EQ(got_reqs.size(), want_reqs.size());
        for (size_t j = 0; j < want_reqs.size(); j++) {
            EXPECT_EQ(got_reqs[j].domain, want_reqs[j].domain);
            EXPECT_EQ(got_reqs[j].output_len, want_reqs[j].output_len);
            Positions got, want;
            ASSERT_TRUE(trace_db_positions(got_db, got_reqs[j].id, &got));
            ASSERT_TRUE(trace_db_positions(want_db, want_reqs[j].id, &want));
            EXPECT_EQ(got.beta, want.beta) << "request " << j;
            EXPECT_EQ(got.conf_logit.size(), want.conf_logit.size());
            for (size_t k = 0; k < got.conf_logit.size() && k < want.conf_logit.size(); k++)
                ASSERT_NEAR(got.conf_logit[k], want.conf_logit[k], 1e-4f) << "request " << j << " slot " << k;
        }
    }
}

// The "all" row of calibrate's table: ECE raw, ECE calibrated.
bool ece_all(const std::string& out, double* raw, double* cal) {
    std::smatch m;
    static const std::regex row(R"(\n\s*all\s+-\s+\d+\s+([0-9.]+)\s+([0-9.]+))");
    if (!std::regex_search(out, m, row)) return false;
    *raw = std::stod(m[1]);
    *cal = std::stod(m[2]);
    return true;
}

TEST(DemoTraces, CalibrateLowersHeldOutEceAndWritesTheCommittedFile) {
    ScratchDir dir;
    CliResult r = cli_run(dir, "calibrate " + kTraces + "demo.specdb --run 1 -o " + dir.file("calibration.json"));
    ASSERT_EQ(r.code, 0) << r.err;
    double raw = 0, cal = 0;
    ASSERT_TRUE(ece_all(r.out, &raw, &cal)) << r.out;
    std::printf("  held-out ECE of DSpark's prefix survival, greedy: raw %.4f, STS %.4f\n", raw, cal);
    EXPECT_LT(cal, raw);
    const auto got = nlohmann::json::parse(slurp(dir.file("calibration.json")));
    const auto want = nlohmann::json::parse(slurp(kModels + "demo-dspark/calibration.json"));
    EXPECT_EQ(got, want) << "models/demo-dspark/calibration.json is not what the README's command writes";
}

}  // namespace
}  // namespace sp
