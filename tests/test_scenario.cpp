// test_scenario.cpp: scenario files (simulator/scenario.h, scenarios/README.md).
//
// Three promises are tested: the shipped scenarios load with the values their
// files state; omitted keys take the documented defaults; and every bad input
// is refused with one sp::Error line that names the scenario file and the
// offending key, before the simulator could see a half-valid scenario.
//
// Each process builds its own small stores in a temporary folder (ctest runs
// tests in parallel processes): a synthetic trace (gamma 4, domains code and
// chat), a trace whose run has requests but no positions, profile stores with
// and without the draft phase, and a text file posing as a store.
#include "simulator/scenario.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "traces/models.h"
#include "traces/synth.h"

namespace fs = std::filesystem;
using namespace sp;

// [SECTION] fixtures: stores and scenario text --------------------------------------

static const fs::path SCENARIOS = fs::path(SPECPLAN_SOURCE_DIR) / "scenarios";

static const int TRACE_GAMMA = 4;
static const int TRACE_MAX_PROMPT = 200, TRACE_MAX_OUTPUT = 80;

static void add_profiles(TraceDb& db, const std::vector<Phase>& phases) {
    ModelShape m;
    model_preset("qwen3-8b", &m);
    for (Phase ph : phases)
        for (int r : {1, 8})
            for (int ctx : {0, 1024}) {
                Profile p;
                p.gpu = "test-gpu";
                p.model = m;
                p.phase = ph;
                p.n_seqs = r;
                p.n_tokens = r * 4;
                p.context = ctx;
                p.latency_us_p10 = 900;
                p.latency_us_p50 = 1000;
                p.latency_us_p90 = 1100;
                p.n_samples = 10;
                trace_db_append_profile(db, p);
            }
}

// The process's folder of stores, made on first use and removed at exit.
struct Stores {
    fs::path dir;
    Stores() {
        dir = fs::path(::testing::TempDir()) / ("specplan_scenario_" + std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir);
        {
            TraceDb db = trace_db_open((dir / "trace.specdb").string(), TRACE_CREATE);
            SynthSpec s;
            s.seed = 5;
            s.gamma = TRACE_GAMMA;
            s.domains = {{"code", {0.9, 0.8, 0.7, 0.6}, 8}, {"chat", {0.8, 0.7, 0.6, 0.5}, 8}};
            s.prompt_min = 100;
            s.prompt_max = TRACE_MAX_PROMPT;
            s.output_min = 40;
            s.output_max = TRACE_MAX_OUTPUT;
            synth_write(db, s);
        }
        {
            // A complete run whose request has no positions: nothing to replay.
            TraceDb db = trace_db_open((dir / "empty.specdb").string(), TRACE_CREATE);
            Run run;
            run.gamma = TRACE_GAMMA;
            model_preset("qwen3-8b", &run.target);
            int64_t id = trace_db_begin_run(db, run);
            Request q;
            q.run_id = id;
            q.domain = "code";
            q.prompt_len = 10;
            q.output_len = 10;
            trace_db_append_request(db, q);
            trace_db_finish_run(db, id);
        }
        {
            TraceDb db = trace_db_open((dir / "profiles-full.specdb").string(), TRACE_CREATE);
            add_profiles(db, {PHASE_DRAFT, PHASE_VERIFY, PHASE_PREFILL});
        }
        {
            TraceDb db = trace_db_open((dir / "profiles-nodraft.specdb").string(), TRACE_CREATE);
            add_profiles(db, {PHASE_VERIFY, PHASE_PREFILL});
        }
        std::ofstream(dir / "notes.txt") << "not a database\n";
    }
    ~Stores() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

static const Stores& stores() {
    static Stores s;
    return s;
}

// Where the scenario text "lives": relative paths in it resolve against the stores' folder.
static std::string scen_path() { return (stores().dir / "s.toml").string(); }

// A valid scenario in sections; a test replaces one section to break it.
struct Text {
    std::string top = "seed = 3\n";
    std::string workload = "[workload]\nconcurrency = [1, 2, 4]\n";
    std::string engine = "[engine]\ngamma = 4\n";
    std::string acceptance = "[acceptance]\ntrace = \"trace.specdb\"\n";
    std::string cost;
    std::string policies = "[policies]\nlist = [\"ar\", \"dspark\"]\n";
    std::string slo;
    std::string str() const {
        return top + "\n" + workload + "\n" + engine + "\n" + acceptance + "\n" + cost + "\n" + policies + "\n" + slo;
    }
};

static Scenario parse(const Text& t) { return scenario_parse(t.str(), scen_path()); }

// Passes when parsing throws sp::Error with one line that names the file and
// `key` (as "key: ") and contains `also` when given.
static ::testing::AssertionResult refused(const std::string& text, const std::string& key,
                                          const std::string& also = "", const std::string& file = "") {
    std::string msg;
    try {
        scenario_parse(text, file.empty() ? scen_path() : file);
        return ::testing::AssertionFailure() << "accepted; expected an error naming " << key;
    } catch (const Error& e) {
        msg = e.what();
    } catch (const std::exception& e) {
        return ::testing::AssertionFailure() << "threw a non-sp::Error: " << e.what();
    }
    const std::string& name = file.empty() ? scen_path() : file;
    if (msg.find('\n') != std::string::npos) return ::testing::AssertionFailure() << "two lines: " << msg;
    if (msg.rfind(name, 0) != 0) return ::testing::AssertionFailure() << "does not start with the file: " << msg;
    if (msg.find(key + ": ") == std::string::npos)
        return ::testing::AssertionFailure() << "does not name " << key << ": " << msg;
    if (!also.empty() && msg.find(also) == std::string::npos)
        return ::testing::AssertionFailure() << "does not say " << also << ": " << msg;
    return ::testing::AssertionSuccess() << msg;
}
static ::testing::AssertionResult refused(const Text& t, const std::string& key, const std::string& also = "") {
    return refused(t.str(), key, also);
}

static std::vector<std::string> policy_names(const Scenario& s) {
    std::vector<std::string> out;
    for (const Policy& p : s.policies) out.push_back(p.name);
    return out;
}

static const std::string BUNDLED_TRACE = (fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/synthetic.specdb").lexically_normal().string();
static const std::string DEMO_TRACE = (fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/demo.specdb").lexically_normal().string();

// [SECTION] the shipped scenarios ------------------------------------------------------

TEST(Scenario, DefaultLoadsWithTheValuesItsFileStates) {
    Scenario s = scenario_load((SCENARIOS / "default.toml").string());
    EXPECT_EQ(s.name, "default");
    EXPECT_EQ(s.workload.mode, WORKLOAD_CLOSED);
    EXPECT_GE(s.workload.concurrency.size(), 16u);
    EXPECT_EQ(s.workload.concurrency.front(), 1);
    EXPECT_EQ(s.workload.concurrency.back(), 256);
    EXPECT_TRUE(std::is_sorted(s.workload.concurrency.begin(), s.workload.concurrency.end()));
    EXPECT_EQ(s.workload.requests, 0);  // "auto": sized by the load (workload_window)
    EXPECT_EQ(s.workload.warmup, -1);
    EXPECT_EQ(s.workload.lengths, LENGTHS_TRACE);
    ASSERT_EQ(s.workload.mix.size(), 3u);   // the demo capture's three domains
    EXPECT_EQ(s.workload.mix[0].domain, "python");
    EXPECT_DOUBLE_EQ(s.workload.mix[0].weight, 0.4);
    EXPECT_EQ(s.workload.mix[1].domain, "c");
    EXPECT_DOUBLE_EQ(s.workload.mix[1].weight, 0.3);
    EXPECT_EQ(s.workload.mix[2].domain, "prose");
    EXPECT_DOUBLE_EQ(s.workload.mix[2].weight, 0.3);
    EXPECT_EQ(s.engine.gamma, 7);
    EXPECT_EQ(s.engine.max_seqs, 256);
    // Derived, as the file's comment says: 0.9 * (80 GB - 16.4 GB) / 144 KiB, about 388k tokens.
    EXPECT_NEAR(double(s.engine.kv_capacity_tokens), 388e3, 2e3);
    EXPECT_EQ(s.acceptance.kind, ACCEPT_TRACE);
    EXPECT_EQ(s.acceptance.trace_path, DEMO_TRACE);   // resolved against scenarios/
    EXPECT_EQ(s.acceptance.run_id, 1);                 // DSpark, greedy, with logits
    EXPECT_EQ(s.cost.kind, COST_ROOFLINE);
    EXPECT_EQ(s.cost.roofline.gpu.name, "h100-sxm");
    EXPECT_EQ(s.cost.roofline.model.name, "qwen3-8b");
    // calibrated to the engine's live H100 cells (bench/results/calibrate-cost-h100-qwen3-8b-live-2026-12-07.txt)
    EXPECT_NE(s.cost.calibration.find("H100"), std::string::npos) << s.cost.calibration;
    EXPECT_DOUBLE_EQ(s.cost.roofline.bw_efficiency, 0.83);
    EXPECT_DOUBLE_EQ(s.cost.roofline.flops_efficiency, 0.57);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.overhead_s, 76e-6);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.overhead_s_per_layer, 17.13e-6);
    EXPECT_DOUBLE_EQ(s.cost.roofline.overlap_n, 1.5);
    EXPECT_DOUBLE_EQ(s.cost.host_s, 5e-6);
    EXPECT_DOUBLE_EQ(s.cost.host_s_per_seq, 0.9e-6);
    EXPECT_EQ(s.cost.drafter.kind, DRAFTER_DSPARK);
    EXPECT_EQ(s.cost.drafter.n_layers, 5);
    EXPECT_EQ(s.cost.drafter.markov_rank, 256);
    EXPECT_EQ(policy_names(s), (std::vector<std::string>{"ar", "mtp1", "fixed:3", "fixed:7", "threshold:0.5",
                                                         "dspark", "dspark-async", "goodput"}));
    EXPECT_EQ(s.compare_a, "dspark");
    EXPECT_EQ(s.compare_b, "mtp1");
    EXPECT_DOUBLE_EQ(s.slo.per_user_tok_s, 120);
    EXPECT_DOUBLE_EQ(s.slo.ttft_s, 2.0);
}

// The run the default replays is the one its comment names: the demo pair's
// DSpark capture, greedy, gamma 7, on an H100.
TEST(Scenario, DefaultReplaysTheDemoPairsGreedyDsparkRun) {
    Scenario s = scenario_load((SCENARIOS / "default.toml").string());
    TraceDb db = trace_db_open(s.acceptance.trace_path, TRACE_READ);
    const sp::Run run = trace_db_run(db, s.acceptance.run_id);
    EXPECT_EQ(run.producer, PRODUCER_ENGINE);
    EXPECT_EQ(run.drafter_kind, "dspark");
    EXPECT_EQ(run.target.name, "models/demo-target");
    EXPECT_DOUBLE_EQ(run.temperature, 0);
    EXPECT_EQ(run.gamma, s.engine.gamma);
    EXPECT_NE(run.gpu.find("H100"), std::string::npos) << run.gpu;
    EXPECT_TRUE(run.complete);
}

TEST(Scenario, TeachingLoadsWithIidAcceptanceOnTheSlowestGpu) {
    Scenario s = scenario_load((SCENARIOS / "teaching.toml").string());
    EXPECT_EQ(s.acceptance.kind, ACCEPT_IID);
    EXPECT_DOUBLE_EQ(s.acceptance.alpha, 0.8);
    EXPECT_EQ(s.engine.gamma, 4);
    EXPECT_EQ(s.workload.concurrency, (std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128}));
    EXPECT_EQ(s.workload.lengths, LENGTHS_DIST);
    EXPECT_EQ(s.cost.roofline.model.name, "qwen3-8b");
    EXPECT_EQ(s.cost.roofline.gpu.name, "a100-80gb");
    EXPECT_EQ(policy_names(s), (std::vector<std::string>{"ar", "fixed:1", "fixed:2", "fixed:3", "fixed:4", "dspark"}));
}

TEST(Scenario, RooflineH200Llama3LoadsAsAnOpenLoopSweep) {
    Scenario s = scenario_load((SCENARIOS / "roofline-h200-llama3.toml").string());
    EXPECT_EQ(s.workload.mode, WORKLOAD_OPEN);
    EXPECT_EQ(s.workload.rates.size(), 9u);
    EXPECT_EQ(s.workload.arrival, ARRIVAL_POISSON);
    EXPECT_EQ(s.workload.prompt_len.kind, DIST_LOGNORMAL);
    EXPECT_EQ(s.workload.output_len.max, 2048);
    EXPECT_EQ(s.cost.roofline.gpu.name, "h200");
    EXPECT_EQ(s.cost.roofline.model.name, "llama3-8b");
    EXPECT_EQ(s.engine.gamma, 5);
    auto bt = std::find_if(s.policies.begin(), s.policies.end(), [](const Policy& p) { return p.kind == POLICY_BATCH_TABLE; });
    ASSERT_NE(bt, s.policies.end());
    EXPECT_EQ(bt->batch_table, (std::vector<std::pair<int, int>>{{1, 5}, {16, 3}, {64, 1}, {192, 0}}));
}

TEST(Scenario, DsparkVsMtp1LoadsTheMoeTargetOnEightGpus) {
    Scenario s = scenario_load((SCENARIOS / "dspark-vs-mtp1.toml").string());
    EXPECT_EQ(s.engine.gamma, 5);
    EXPECT_EQ(s.engine.tp, 8);
    EXPECT_EQ(s.cost.roofline.tp, 8);  // copied from engine.tp
    EXPECT_EQ(s.cost.roofline.gpu.name, "h200");
    EXPECT_EQ(s.cost.roofline.model.n_params, 671'000'000'000);
    EXPECT_EQ(s.cost.roofline.model.n_layers, 61);
    EXPECT_DOUBLE_EQ(s.cost.roofline.model.bytes_per_weight, 1);
    EXPECT_EQ(s.cost.roofline.moe.n_experts, 256);
    EXPECT_EQ(s.cost.roofline.moe.experts_per_token, 8);
    EXPECT_DOUBLE_EQ(roofline_kv_bytes_per_token(s.cost.roofline.model), 61 * 1152.0);  // one BF16 MLA latent per layer
    EXPECT_EQ(s.acceptance.kind, ACCEPT_PARAMETRIC);
    ASSERT_EQ(s.workload.mix.size(), 3u);
    double sum = 0;
    for (const DomainMix& d : s.workload.mix) {
        EXPECT_EQ(d.alpha.size(), 5u) << d.domain;
        sum += d.weight;
    }
    EXPECT_NEAR(sum, 1, 1e-12);
    EXPECT_EQ(policy_names(s), (std::vector<std::string>{"mtp1", "dspark", "dspark-async", "fixed:5"}));
    EXPECT_EQ(s.compare_a, "dspark");
    EXPECT_EQ(s.compare_b, "mtp1");
    EXPECT_GE(s.workload.concurrency.back(), 256);
}

TEST(Scenario, MeasuredLoadsWhenItsProfileStoreExists) {
    fs::path profiles = fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/profile-demo.specdb";
    if (!fs::exists(profiles))
        GTEST_SKIP() << profiles.string() << " does not exist yet (the engine's profiling run will make it)";
    Scenario s = scenario_load((SCENARIOS / "measured.toml").string());
    EXPECT_EQ(s.cost.kind, COST_MEASURED);
    EXPECT_EQ(s.engine.kv_capacity_tokens, 400000);
    EXPECT_FALSE(s.cost.measured.verify.empty());
}

// Catches a scenario added later without a test of its own.
TEST(Scenario, EveryScenarioInTheFolderLoads) {
    bool have_profiles = fs::exists(fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/profile-demo.specdb");
    int n = 0;
    for (const auto& e : fs::directory_iterator(SCENARIOS)) {
        if (e.path().extension() != ".toml") continue;
        if (e.path().filename() == "measured.toml" && !have_profiles) continue;
        EXPECT_NO_THROW(scenario_load(e.path().string())) << e.path();
        n++;
    }
    EXPECT_GE(n, 4);
}

// The README's annotated example is a real scenario: it loads as written.
TEST(Scenario, ReadmeAnnotatedExampleLoads) {
    std::ifstream in(SCENARIOS / "README.md");
    std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = readme.find("## Annotated example");
    ASSERT_NE(at, std::string::npos);
    size_t begin = readme.find("```toml\n", at);
    ASSERT_NE(begin, std::string::npos);
    begin += 8;
    size_t end = readme.find("```", begin);
    ASSERT_NE(end, std::string::npos);
    Scenario s = scenario_parse(readme.substr(begin, end - begin), (SCENARIOS / "example.toml").string());
    EXPECT_EQ(s.name, "example");
    EXPECT_DOUBLE_EQ(s.workload.mix[0].weight, 0.7);
    EXPECT_TRUE(s.workload.think_exponential);
    EXPECT_EQ(s.acceptance.trace_path, BUNDLED_TRACE);
}

// [SECTION] defaults ------------------------------------------------------------------------

TEST(Scenario, DefaultsApplyWhenKeysAreOmitted) {
    const std::string text =
        "[workload]\nconcurrency = [1]\n[engine]\ngamma = 4\n[acceptance]\ntrace = \"trace.specdb\"\n"
        "[policies]\nlist = [\"ar\"]\n";
    Scenario s = scenario_parse(text, scen_path());
    EXPECT_EQ(s.path, scen_path());
    EXPECT_EQ(s.name, "s");  // the file stem
    EXPECT_EQ(s.description, "");
    EXPECT_EQ(s.seed, 1u);
    EXPECT_EQ(s.workload.mode, WORKLOAD_CLOSED);
    EXPECT_EQ(s.workload.think_time_s, 0);
    EXPECT_FALSE(s.workload.think_exponential);
    EXPECT_EQ(s.workload.requests, 0);  // left out: sized by the load (workload_window)
    EXPECT_EQ(s.workload.warmup, -1);
    EXPECT_EQ(s.workload.lengths, LENGTHS_TRACE);  // a trace is given
    ASSERT_EQ(s.workload.mix.size(), 1u);
    EXPECT_EQ(s.workload.mix[0].domain, "all");
    EXPECT_EQ(s.workload.mix[0].weight, 1);
    EXPECT_EQ(s.engine.max_seqs, 256);
    EXPECT_EQ(s.engine.max_batch_tokens, 8192);
    EXPECT_EQ(s.engine.prefill_chunk_tokens, 2048);
    EXPECT_EQ(s.engine.draft_max_running, 0);
    EXPECT_EQ(s.engine.tp, 1);
    EXPECT_EQ(s.acceptance.kind, ACCEPT_TRACE);
    EXPECT_EQ(s.acceptance.trace_path, (stores().dir / "trace.specdb").lexically_normal().string());
    EXPECT_EQ(s.acceptance.run_id, 1);  // 0 resolves to the only run
    EXPECT_EQ(s.acceptance.kappa, 4);
    EXPECT_EQ(s.acceptance.raw_temperature, 1.5);
    EXPECT_EQ(s.cost.kind, COST_ROOFLINE);
    EXPECT_EQ(s.cost.roofline.gpu.name, "h100-sxm");
    EXPECT_EQ(s.cost.roofline.model.name, "qwen3-8b");
    EXPECT_EQ(s.cost.roofline.bw_efficiency, 0.8);
    EXPECT_EQ(s.cost.roofline.flops_efficiency, 0.6);
    EXPECT_EQ(s.cost.drafter.kind, DRAFTER_NONE);  // "ar" drafts nothing
    EXPECT_TRUE(s.compare_a.empty() && s.compare_b.empty());
    EXPECT_EQ(s.slo.per_user_tok_s, 0);
    EXPECT_EQ(s.slo.ttft_s, 0);

    // KV capacity: 0.9 * (1 x 80 GB - weights) / KV bytes per token.
    const Roofline& r = s.cost.roofline;
    double want = std::floor(0.9 * (r.gpu.hbm_bytes - double(r.model.n_params) * 2) /
                             roofline_kv_bytes_per_token(r.model));
    EXPECT_EQ(s.engine.kv_capacity_tokens, int64_t(want));
}

TEST(Scenario, DrafterDefaultsToDsparkWithFiveLayersAndMtpWithOne) {
    Text t;
    Scenario s = parse(t);
    EXPECT_EQ(s.cost.drafter.kind, DRAFTER_DSPARK);
    EXPECT_EQ(s.cost.drafter.n_layers, 5);
    EXPECT_EQ(s.cost.drafter.markov_rank, 256);
    t.cost = "[cost.drafter]\nkind = \"mtp\"\n";
    s = parse(t);
    EXPECT_EQ(s.cost.drafter.kind, DRAFTER_MTP);
    EXPECT_EQ(s.cost.drafter.n_layers, 1);
}

TEST(Scenario, LengthsDefaultToDistributionWithoutATrace) {
    Text t;
    t.acceptance = "[acceptance]\nsource = \"iid\"\nalpha = 0.7\n";
    t.workload = "[workload]\nconcurrency = [1]\noutput_len = { dist = \"fixed\", value = 100 }\n";
    Scenario s = parse(t);
    EXPECT_EQ(s.workload.lengths, LENGTHS_DIST);
    EXPECT_EQ(s.workload.prompt_len.kind, DIST_UNIFORM);  // default prompt lengths 128..1024
    EXPECT_EQ(s.workload.prompt_len.min, 128);
    EXPECT_EQ(s.workload.prompt_len.max, 1024);
    EXPECT_EQ(s.workload.output_len.kind, DIST_FIXED);
    EXPECT_EQ(s.workload.output_len.value, 100);
}

TEST(Scenario, IntegersAreAcceptedWhereNumbersAreExpected) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\nthink_time_ms = 250\n";
    t.slo = "[slo]\nper_user_tok_s = 30\n";
    Scenario s = parse(t);
    EXPECT_DOUBLE_EQ(s.workload.think_time_s, 0.25);
    EXPECT_DOUBLE_EQ(s.slo.per_user_tok_s, 30);
}

TEST(Scenario, DomainWeightsAreNormalisedToSumOne) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\n[[workload.domain]]\nname = \"code\"\nweight = 3\n"
                 "[[workload.domain]]\nname = \"chat\"\nweight = 1\n";
    Scenario s = parse(t);
    ASSERT_EQ(s.workload.mix.size(), 2u);
    EXPECT_DOUBLE_EQ(s.workload.mix[0].weight, 0.75);
    EXPECT_DOUBLE_EQ(s.workload.mix[1].weight, 0.25);
}

TEST(Scenario, ExplicitTargetGpuAndMoeTablesReplaceThePresets) {
    Text t;
    t.cost = "[cost]\noverhead_us = 12\n"
             "[cost.gpu_spec]\nname = \"x\"\nhbm_tb_s = 2\nbf16_tflops = 500\nhbm_gb = 96\noverhead_us = 40\n"
             "[cost.target]\nname = \"m\"\nn_params = 20_000_000_000\nn_layers = 24\nhidden = 4096\n"
             "n_heads = 32\nn_kv_heads = 8\nhead_dim = 128\nffn = 11008\nvocab = 32000\n"
             "[cost.moe]\nexperts = 16\nactive = 2\nexpert_fraction = 0.8\n";
    Scenario s = parse(t);
    const Roofline& r = s.cost.roofline;
    EXPECT_EQ(r.gpu.name, "x");
    EXPECT_DOUBLE_EQ(r.gpu.hbm_bytes_per_s, 2e12);
    EXPECT_DOUBLE_EQ(r.gpu.bf16_flops, 500e12);
    EXPECT_DOUBLE_EQ(r.gpu.hbm_bytes, 96e9);
    EXPECT_DOUBLE_EQ(r.gpu.overhead_s, 12e-6);  // cost.overhead_us overrides the spec's
    EXPECT_EQ(r.model.n_params, 20'000'000'000);
    EXPECT_EQ(r.model.bytes_per_weight, 2);     // default
    EXPECT_EQ(r.moe.n_experts, 16);
    EXPECT_EQ(r.moe.experts_per_token, 2);
    EXPECT_DOUBLE_EQ(r.moe.expert_param_fraction, 0.8);
}

// The per-layer overhead: 0 unless set, from a [cost.gpu_spec] or [cost],
// the latter winning as overhead_us does.
TEST(Scenario, TheOverheadPerLayerDefaultsToZeroAndIsReadFromCostOrAGpuSpec) {
    Text t;
    EXPECT_EQ(parse(t).cost.roofline.gpu.overhead_s_per_layer, 0);
    t.cost = "[cost]\noverhead_us = 76\noverhead_us_per_layer = 17.13\n";
    Scenario s = parse(t);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.overhead_s, 76e-6);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.overhead_s_per_layer, 17.13e-6);
    const std::string spec = "[cost.gpu_spec]\nname = \"x\"\nhbm_tb_s = 2\nbf16_tflops = 500\nhbm_gb = 96\n"
                             "overhead_us = 40\noverhead_us_per_layer = 3\n";
    t.cost = spec;
    EXPECT_DOUBLE_EQ(parse(t).cost.roofline.gpu.overhead_s_per_layer, 3e-6);
    t.cost = "[cost]\noverhead_us_per_layer = 0\n" + spec;
    EXPECT_EQ(parse(t).cost.roofline.gpu.overhead_s_per_layer, 0);  // cost's overrides the spec's
}

// The all-reduce figures: the GPU preset's, or a [cost.gpu_spec]'s (both or
// neither), or [cost]'s, the latter winning as overhead_us does. A GPU spec
// without them runs at tp 1 and is refused at tp 2, where they price the
// collectives.
TEST(Scenario, TheAllReduceFiguresComeFromThePresetAGpuSpecOrCost) {
    Text t;
    Scenario s = parse(t);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.allreduce_bus_bytes_per_s, 360e9);  // h100-sxm's
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.allreduce_latency_s, 10e-6);
    t.cost = "[cost]\nallreduce_bus_gb_s = 400\nallreduce_latency_us = 12.5\n";
    s = parse(t);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.allreduce_bus_bytes_per_s, 400e9);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.allreduce_latency_s, 12.5e-6);
    const std::string spec = "[cost.gpu_spec]\nname = \"x\"\nhbm_tb_s = 2\nbf16_tflops = 500\nhbm_gb = 96\n"
                             "overhead_us = 40\n";
    t.cost = spec + "allreduce_bus_gb_s = 100\nallreduce_latency_us = 20\n";
    s = parse(t);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.allreduce_bus_bytes_per_s, 100e9);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.allreduce_latency_s, 20e-6);
    t.cost = "[cost]\nallreduce_latency_us = 0\n" + t.cost;
    s = parse(t);
    EXPECT_DOUBLE_EQ(s.cost.roofline.gpu.allreduce_bus_bytes_per_s, 100e9);
    EXPECT_EQ(s.cost.roofline.gpu.allreduce_latency_s, 0);  // cost's overrides the spec's
    t.cost = spec;
    EXPECT_EQ(parse(t).cost.roofline.gpu.allreduce_bus_bytes_per_s, 0);
    t.engine = "[engine]\ngamma = 4\ntp = 2\n";
    EXPECT_TRUE(refused(t, "gpu.allreduce_bus_bytes_per_s", "expected > 0 at tp > 1 (allreduce_bus_gb_s), got 0"));
}

TEST(Scenario, RelativeTracePathsResolveAgainstTheScenarioFolder) {
    fs::path sub = stores().dir / "nested";
    fs::create_directories(sub);
    fs::path file = sub / "run.toml";
    Text t;
    t.acceptance = "[acceptance]\ntrace = \"../trace.specdb\"\n";
    std::ofstream(file) << t.str();
    Scenario s = scenario_load(file.string());
    EXPECT_EQ(s.name, "run");
    EXPECT_EQ(s.acceptance.trace_path, (stores().dir / "trace.specdb").lexically_normal().string());
}

TEST(Scenario, MeasuredModelLoadsItsProfileCells) {
    Text t;
    t.engine = "[engine]\ngamma = 4\nkv_capacity_tokens = 100000\n";
    t.cost = "[cost]\nmodel = \"measured\"\nprofiles = \"profiles-full.specdb\"\n";
    Scenario s = parse(t);
    EXPECT_EQ(s.cost.kind, COST_MEASURED);
    EXPECT_EQ(s.cost.measured.gpu, "test-gpu");
    EXPECT_EQ(s.cost.measured.draft.size(), 4u);
    EXPECT_EQ(s.cost.measured.verify.size(), 4u);
    EXPECT_EQ(s.cost.measured.prefill.size(), 4u);
    EXPECT_EQ(s.cost.token_tile, 0);
    t.cost += "token_tile = 128\n";
    EXPECT_EQ(parse(t).cost.token_tile, 128);
}

TEST(Scenario, ParametricAlphaVectorsAreKept) {
    Text t;
    t.acceptance = "[acceptance]\nsource = \"parametric\"\n";
    t.workload = "[workload]\nconcurrency = [1]\noutput_len = { dist = \"uniform\", min = 10, max = 20 }\n"
                 "[[workload.domain]]\nname = \"x\"\nalpha = [0.9, 0.8, 0.7, 1]\n";
    Scenario s = parse(t);
    ASSERT_EQ(s.workload.mix.size(), 1u);
    EXPECT_EQ(s.workload.mix[0].alpha, (std::vector<double>{0.9, 0.8, 0.7, 1.0}));
}

TEST(Scenario, TraceCanSupplyLengthsAloneWhileAcceptanceIsParametric) {
    Text t;
    t.engine = "[engine]\ngamma = 5\n";  // more than the trace's gamma 4: its positions are not replayed
    t.acceptance = "[acceptance]\nsource = \"parametric\"\ntrace = \"trace.specdb\"\n";
    t.workload = "[workload]\nconcurrency = [1]\n[[workload.domain]]\nname = \"code\"\n"
                 "alpha = [0.9, 0.8, 0.7, 0.6, 0.5]\n";
    Scenario s = parse(t);
    EXPECT_EQ(s.workload.lengths, LENGTHS_TRACE);
    EXPECT_EQ(s.acceptance.kind, ACCEPT_PARAMETRIC);
    // The domain must still be one of the trace's.
    t.workload = "[workload]\nconcurrency = [1]\n[[workload.domain]]\nname = \"math\"\n"
                 "alpha = [0.9, 0.8, 0.7, 0.6, 0.5]\n";
    EXPECT_TRUE(refused(t, "workload.domain[0].name", "\"math\""));
}

// [SECTION] one-line errors naming the key ------------------------------------------------

TEST(ScenarioErrors, UnknownTopLevelKeyIsNamed) {
    Text t;
    t.top += "colour = \"red\"\n";
    EXPECT_TRUE(refused(t, "colour", "unknown key"));
}

TEST(ScenarioErrors, UnknownNestedKeyIsNamedWithItsTable) {
    Text t;
    t.engine = "[engine]\ngamma = 4\ngama = 4\n";
    EXPECT_TRUE(refused(t, "engine.gama", "unknown key"));
    t = Text();
    t.cost = "[cost.drafter]\nlayer = 2\n";
    EXPECT_TRUE(refused(t, "cost.drafter.layer"));
}

TEST(ScenarioErrors, UnknownKeyInsideALengthDistributionIsNamed) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\nprompt_len = { dist = \"uniform\", min = 1, max = 9, value = 3 }\n";
    EXPECT_TRUE(refused(t, "workload.prompt_len.value"));
}

TEST(ScenarioErrors, StringWhereAnIntegerIsExpectedSaysString) {
    Text t;
    t.engine = "[engine]\ngamma = \"4\"\n";
    EXPECT_TRUE(refused(t, "engine.gamma", "got a string"));
}

TEST(ScenarioErrors, FloatWhereAnIntegerIsExpectedSaysFloat) {
    Text t;
    t.engine = "[engine]\ngamma = 4.0\n";
    EXPECT_TRUE(refused(t, "engine.gamma", "got a float"));
}

TEST(ScenarioErrors, TableWhereAValueIsExpectedAndViceVersa) {
    Text t;
    t.top += "slo = 3\n";
    EXPECT_TRUE(refused(t, "slo", "expected a table"));
    t = Text();
    t.workload = "[workload]\nconcurrency = 4\n";
    EXPECT_TRUE(refused(t, "workload.concurrency", "got an integer"));
}

TEST(ScenarioErrors, GammaZeroIsOutOfRange) {
    Text t;
    t.engine = "[engine]\ngamma = 0\n";
    EXPECT_TRUE(refused(t, "engine.gamma", "1..64, got 0"));
}

TEST(ScenarioErrors, GammaSixtyFiveIsOutOfRange) {
    Text t;
    t.engine = "[engine]\ngamma = 65\n";
    EXPECT_TRUE(refused(t, "engine.gamma", "got 65"));
}

TEST(ScenarioErrors, NegativeThinkTimeIsRefused) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\nthink_time_ms = -5.0\n";
    EXPECT_TRUE(refused(t, "workload.think_time_ms", "[0, 8.64e+07], got -5.0"));
}

TEST(ScenarioErrors, ZeroDomainWeightIsRefused) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\n[[workload.domain]]\nname = \"code\"\nweight = 0\n";
    EXPECT_TRUE(refused(t, "workload.domain[0].weight", "> 0"));
}

TEST(ScenarioErrors, AlphaAboveOneIsRefused) {
    Text t;
    t.acceptance = "[acceptance]\nsource = \"iid\"\nalpha = 1.5\n";
    t.workload = "[workload]\nconcurrency = [1]\noutput_len = { dist = \"fixed\", value = 10 }\n";
    EXPECT_TRUE(refused(t, "acceptance.alpha", "[0, 1], got 1.5"));
}

TEST(ScenarioErrors, ATokenTileNeedsAMeasuredModelAndAtMost4096Tokens) {
    Text t;
    t.cost = "[cost]\ntoken_tile = 128\n";
    EXPECT_TRUE(refused(t, "cost.token_tile", "measured"));
    t.engine = "[engine]\ngamma = 4\nkv_capacity_tokens = 100000\n";
    t.cost = "[cost]\nmodel = \"measured\"\nprofiles = \"profiles-full.specdb\"\ntoken_tile = 5000\n";
    EXPECT_TRUE(refused(t, "cost.token_tile", "4096"));
}

TEST(ScenarioErrors, ZeroEfficiencyIsRefused) {
    Text t;
    t.cost = "[cost]\nbw_efficiency = 0\n";
    EXPECT_TRUE(refused(t, "cost.bw_efficiency", "(0, 1]"));
}

TEST(ScenarioErrors, NonIncreasingConcurrencyNamesTheElement) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1, 4, 4]\n";
    EXPECT_TRUE(refused(t, "workload.concurrency[2]", "more than the previous point (4)"));
    t.workload = "[workload]\nconcurrency = [1, 0]\n";
    EXPECT_TRUE(refused(t, "workload.concurrency[1]"));
}

TEST(ScenarioErrors, OpenLoopNeedsIncreasingPositiveRates) {
    Text t;
    t.workload = "[workload]\nmode = \"open\"\n";
    EXPECT_TRUE(refused(t, "workload.rate", "got nothing"));
    t.workload = "[workload]\nmode = \"open\"\nrate = [1.0, 0.5]\n";
    EXPECT_TRUE(refused(t, "workload.rate[1]"));
}

TEST(ScenarioErrors, MissingRequiredKeysAreNamed) {
    Text t;
    t.workload = "[workload]\n";
    EXPECT_TRUE(refused(t, "workload.concurrency", "got nothing"));
    t = Text();
    t.engine = "";
    EXPECT_TRUE(refused(t, "engine.gamma", "got nothing"));
    t = Text();
    t.policies = "";
    EXPECT_TRUE(refused(t, "policies.list", "got nothing"));
    t = Text();
    t.workload = "[workload]\nconcurrency = [1]\n[[workload.domain]]\nweight = 1\n";
    EXPECT_TRUE(refused(t, "workload.domain[0].name", "got nothing"));
}

TEST(ScenarioErrors, DistributionLengthsNeedAnOutputLength) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\nlengths = \"distribution\"\n";
    EXPECT_TRUE(refused(t, "workload.output_len", "got nothing"));
}

TEST(ScenarioErrors, UnknownPolicyIsNamedByItsPlaceInTheList) {
    Text t;
    t.policies = "[policies]\nlist = [\"ar\", \"warp\"]\n";
    EXPECT_TRUE(refused(t, "policies.list[1]", "\"warp\""));
}

TEST(ScenarioErrors, DuplicatePolicyIsRefusedEvenWhenSpelledDifferently) {
    Text t;
    t.policies = "[policies]\nlist = [\"ar\", \"dspark\", \"ar\"]\n";
    EXPECT_TRUE(refused(t, "policies.list[2]"));
    t.policies = "[policies]\nlist = [\"fixed:3\", \"fixed:03\"]\n";
    EXPECT_TRUE(refused(t, "policies.list[1]"));
}

TEST(ScenarioErrors, CompareMustNameTwoPoliciesOfTheList) {
    Text t;
    t.policies = "[policies]\nlist = [\"ar\", \"dspark\"]\ncompare = [\"dspark\", \"mtp1\"]\n";
    EXPECT_TRUE(refused(t, "policies.compare[1]", "\"mtp1\""));
    t.policies = "[policies]\nlist = [\"ar\", \"dspark\"]\ncompare = [\"dspark\"]\n";
    EXPECT_TRUE(refused(t, "policies.compare"));
    t.policies = "[policies]\nlist = [\"ar\", \"dspark\"]\ncompare = [\"dspark\", \"dspark\"]\n";
    EXPECT_TRUE(refused(t, "policies.compare[1]"));
}

TEST(ScenarioErrors, BatchTablePolicyWithoutItsTableIsRefused) {
    Text t;
    t.policies = "[policies]\nlist = [\"ar\", \"batch-table\"]\n";
    EXPECT_TRUE(refused(t, "policies.batch_table", "got nothing"));
}

TEST(ScenarioErrors, BatchTableRowsMustBeIncreasingAndWithinGamma) {
    Text t;
    t.policies = "[policies]\nlist = [\"batch-table\"]\nbatch_table = [[1, 4], [8, 2], [8, 1]]\n";
    EXPECT_TRUE(refused(t, "policies.batch_table[2][0]"));
    t.policies = "[policies]\nlist = [\"batch-table\"]\nbatch_table = [[1, 5]]\n";
    EXPECT_TRUE(refused(t, "policies.batch_table[0][1]", "0..4"));
    t.policies = "[policies]\nlist = [\"ar\"]\nbatch_table = [[1, 2]]\n";
    EXPECT_TRUE(refused(t, "policies.batch_table"));
}

TEST(Scenario, BatchTableFillsThePolicy) {
    Text t;
    t.policies = "[policies]\nlist = [\"batch-table\"]\nbatch_table = [[1, 4], [8, 2]]\n";
    Scenario s = parse(t);
    ASSERT_EQ(s.policies.size(), 1u);
    EXPECT_EQ(s.policies[0].batch_table, (std::vector<std::pair<int, int>>{{1, 4}, {8, 2}}));
}

TEST(ScenarioErrors, MissingTraceFileIsNamed) {
    Text t;
    t.acceptance = "[acceptance]\ntrace = \"nowhere.specdb\"\n";
    EXPECT_TRUE(refused(t, "acceptance.trace", "no such file"));
}

TEST(ScenarioErrors, TextFileAsTraceIsRefused) {
    Text t;
    t.acceptance = "[acceptance]\ntrace = \"notes.txt\"\n";
    EXPECT_TRUE(refused(t, "acceptance.trace", "not a SQLite database"));
}

TEST(ScenarioErrors, TraceWithoutPositionsIsEmpty) {
    Text t;
    t.acceptance = "[acceptance]\ntrace = \"empty.specdb\"\n";
    EXPECT_TRUE(refused(t, "acceptance.trace", "with positions, got none"));
}

TEST(ScenarioErrors, RunIdNotInTheTraceIsRefused) {
    Text t;
    t.acceptance = "[acceptance]\ntrace = \"trace.specdb\"\nrun = 7\n";
    EXPECT_TRUE(refused(t, "acceptance.run", "got 7"));
}

TEST(ScenarioErrors, TraceGammaSmallerThanEngineGammaNamesBoth) {
    Text t;
    t.engine = "[engine]\ngamma = 5\n";
    EXPECT_TRUE(refused(t, "engine.gamma", "gamma 4"));
    EXPECT_TRUE(refused(t, "engine.gamma", "got 5"));
}

TEST(ScenarioErrors, DomainMissingFromTheTraceIsNamed) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\n[[workload.domain]]\nname = \"code\"\n"
                 "[[workload.domain]]\nname = \"math\"\n";
    EXPECT_TRUE(refused(t, "workload.domain[1].name", "\"math\""));
}

TEST(ScenarioErrors, KvCapacityBelowTheLargestTraceRequestIsRefused) {
    Text t;
    t.engine = "[engine]\ngamma = 4\nkv_capacity_tokens = 150\n";
    EXPECT_TRUE(refused(t, "engine.kv_capacity_tokens", "largest trace request"));
    // Enough for the largest request possible under the synth spec: accepted.
    t.engine = "[engine]\ngamma = 4\nkv_capacity_tokens = " +
               std::to_string(TRACE_MAX_PROMPT + TRACE_MAX_OUTPUT + TRACE_GAMMA) + "\n";
    EXPECT_NO_THROW(parse(t));
}

TEST(ScenarioErrors, KvCapacityBelowTheLongestDistributionRequestIsRefused) {
    Text t;
    t.acceptance = "[acceptance]\nsource = \"iid\"\nalpha = 0.5\n";
    t.workload = "[workload]\nconcurrency = [1]\nprompt_len = { dist = \"fixed\", value = 100 }\n"
                 "output_len = { dist = \"uniform\", min = 1, max = 100 }\n";
    t.engine = "[engine]\ngamma = 4\nkv_capacity_tokens = 203\n";
    EXPECT_TRUE(refused(t, "engine.kv_capacity_tokens", "at least 204"));
    t.engine = "[engine]\ngamma = 4\nkv_capacity_tokens = 204\n";
    EXPECT_NO_THROW(parse(t));
}

TEST(ScenarioErrors, ParametricDomainAlphaOfTheWrongLengthIsRefused) {
    Text t;
    t.acceptance = "[acceptance]\nsource = \"parametric\"\n";
    t.workload = "[workload]\nconcurrency = [1]\noutput_len = { dist = \"fixed\", value = 10 }\n"
                 "[[workload.domain]]\nname = \"x\"\nalpha = [0.9, 0.8, 0.7]\n";
    EXPECT_TRUE(refused(t, "workload.domain[0].alpha", "4 numbers"));
    t.workload = "[workload]\nconcurrency = [1]\noutput_len = { dist = \"fixed\", value = 10 }\n";
    EXPECT_TRUE(refused(t, "workload.domain", "alpha"));
}

TEST(ScenarioErrors, IidWithoutAlphaIsRefused) {
    Text t;
    t.acceptance = "[acceptance]\nsource = \"iid\"\n";
    t.workload = "[workload]\nconcurrency = [1]\noutput_len = { dist = \"fixed\", value = 10 }\n";
    EXPECT_TRUE(refused(t, "acceptance.alpha", "got nothing"));
}

TEST(ScenarioErrors, TomlSyntaxErrorGivesLineAndColumn) {
    const std::string text = "seed = 1\n[engine\ngamma = 4\n";
    std::string msg;
    try {
        scenario_parse(text, scen_path());
    } catch (const Error& e) {
        msg = e.what();
    }
    EXPECT_EQ(msg.find('\n'), std::string::npos);
    EXPECT_TRUE(std::regex_search(msg, std::regex("^" + std::regex_replace(scen_path(), std::regex(R"([.^$|()\[\]{}*+?\\])"),
                                                                          R"(\$&)") +
                                                  R"(:2:\d+: )")))
        << msg;
}

TEST(ScenarioErrors, IntegerOverflowIsAnErrorNotUndefinedBehaviour) {
    Text t;
    t.engine = "[engine]\ngamma = 1e20\n";
    EXPECT_TRUE(refused(t, "engine.gamma", "got a float"));
    t = Text();
    t.workload = "[workload]\nconcurrency = [1]\nrequests = 9223372036854775807\n";
    EXPECT_TRUE(refused(t, "workload.requests", "got 9223372036854775807"));
    t = Text();
    t.workload = "[workload]\nconcurrency = [4294967297]\n";  // 2^32 + 1: wraps to 1 as an int
    EXPECT_TRUE(refused(t, "workload.concurrency[0]"));
    // Past int64: toml++ refuses the literal itself, with line and column.
    std::string msg;
    try {
        scenario_parse("seed = 99999999999999999999\n", scen_path());
    } catch (const Error& e) {
        msg = e.what();
    }
    EXPECT_EQ(msg.rfind(scen_path() + ":1:", 0), 0u) << msg;
}

// The simulated clock is int64 ns: keys that set a duration are bounded so a
// run fits it (scenarios/README.md), where think_time_ms = 1e13 overflowed
// it, rate = [1e-12] read 22.8 req/s and overhead_us = 1e16 read 1.3e11
// tok/s/GPU.
TEST(ScenarioErrors, KeysThatSetADurationAreBoundedSoARunFitsTheClock) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1]\nthink_time_ms = 1e13\n";
    EXPECT_TRUE(refused(t, "workload.think_time_ms", "[0, 8.64e+07], got 1e+13"));
    t.workload = "[workload]\nmode = \"open\"\nrate = [1e-12]\n";
    EXPECT_TRUE(refused(t, "workload.rate[0]", "[0.001, 1e+08], got 1e-12"));
    t.workload = "[workload]\nmode = \"open\"\nrate = [1, 1e9]\n";
    EXPECT_TRUE(refused(t, "workload.rate[1]", "[0.001, 1e+08]"));
    t.workload = "[workload]\nmode = \"open\"\nrate = [1]\narrival = \"gamma\"\nburstiness = 1e-300\n";
    EXPECT_TRUE(refused(t, "workload.burstiness", "[0.01, 10000]"));
    t = Text();
    t.cost = "[cost]\noverhead_us = 1e16\n";
    EXPECT_TRUE(refused(t, "cost.overhead_us", "[0, 1e+06], got 1e+16"));
    const std::string spec = "[cost.gpu_spec]\nname = \"x\"\nhbm_gb = 96\n";
    t.cost = spec + "hbm_tb_s = 2\nbf16_tflops = 500\noverhead_us = 1e16\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.overhead_us", "[0, 1e+06]"));
    t.cost = spec + "hbm_tb_s = 2\nbf16_tflops = 500\noverhead_us = 40\noverhead_us_per_layer = 1e16\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.overhead_us_per_layer", "[0, 1e+06], got 1e+16"));
    t.cost = "[cost]\noverhead_us_per_layer = -1\n";
    EXPECT_TRUE(refused(t, "cost.overhead_us_per_layer", "expected a number in [0, 1e+06], got -1.0"));
    t.cost = "[cost]\noverhead_us_per_layer = nan\n";
    EXPECT_TRUE(refused(t, "cost.overhead_us_per_layer", "[0, 1e+06], got nan"));
    t.cost = "[cost]\noverhead_us_per_layer = \"27\"\n";
    EXPECT_TRUE(refused(t, "cost.overhead_us_per_layer", "[0, 1e+06], got a string"));
    t.cost = spec + "hbm_tb_s = 1e-300\nbf16_tflops = 500\noverhead_us = 40\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.hbm_tb_s", "[0.001, 1000]"));
    t.cost = spec + "hbm_tb_s = 2\nbf16_tflops = 1e-300\noverhead_us = 40\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.bf16_tflops", "[0.001, 1e+06]"));
    // The ends of each range load.
    t = Text();
    t.workload = "[workload]\nconcurrency = [1]\nthink_time_ms = 86400000\nrequests = 10\nwarmup = 0\n";
    t.cost = "[cost]\noverhead_us = 1e6\n";
    EXPECT_NO_THROW(parse(t));
}

// Each key may be in range while the run is not: the arrivals alone must
// reach warmup + requests completions within 1e8 s.
TEST(ScenarioErrors, ARunWhoseArrivalsOutlastTheClocksHorizonIsRefused) {
    Text t;
    t.workload = "[workload]\nconcurrency = [1, 8]\nthink_time_ms = 86400000\nrequests = 1100\nwarmup = 100\n";
    EXPECT_TRUE(refused(t, "workload.think_time_ms", "at most 8.33333e+07 ms at 1 users"));
    t.workload = "[workload]\nconcurrency = [1000]\nthink_time_ms = 86400000\nrequests = 1100\nwarmup = 100\n";
    EXPECT_NO_THROW(parse(t));   // two requests a user
    t.workload = "[workload]\nmode = \"open\"\nrate = [0.001, 1]\nrequests = 100000000\nwarmup = 0\n";
    EXPECT_TRUE(refused(t, "workload.rate[0]", "at least 1.0 requests/s"));
    t.workload = "[workload]\nmode = \"open\"\nrate = [0.001]\nrequests = 99900\n";
    EXPECT_NO_THROW(parse(t));
}

// Bus bandwidth in [0.001, 1e6] GB/s (1 MB/s to 1 PB/s), latency in [0, 1e6]
// us as every overhead; a GPU spec sets both or neither.
TEST(ScenarioErrors, AllReduceFiguresAreFiniteInRangeAndAGpuSpecSetsBothOrNeither) {
    Text t;
    for (const char* bad : {"0", "-5", "nan", "inf", "1e7"}) {
        t.cost = std::string("[cost]\nallreduce_bus_gb_s = ") + bad + "\n";
        EXPECT_TRUE(refused(t, "cost.allreduce_bus_gb_s", "expected a number in [0.001, 1e+06], got")) << bad;
    }
    t.cost = "[cost]\nallreduce_bus_gb_s = \"360\"\n";
    EXPECT_TRUE(refused(t, "cost.allreduce_bus_gb_s", "got a string"));
    for (const char* bad : {"-1", "nan", "1e7"}) {
        t.cost = std::string("[cost]\nallreduce_latency_us = ") + bad + "\n";
        EXPECT_TRUE(refused(t, "cost.allreduce_latency_us", "expected a number in [0, 1e+06], got")) << bad;
    }
    const std::string spec = "[cost.gpu_spec]\nname = \"x\"\nhbm_tb_s = 2\nbf16_tflops = 500\nhbm_gb = 96\n"
                             "overhead_us = 40\n";
    t.cost = spec + "allreduce_bus_gb_s = 100\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.allreduce_latency_us", "beside allreduce_bus_gb_s, got nothing"));
    t.cost = spec + "allreduce_latency_us = 10\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.allreduce_bus_gb_s", "beside allreduce_latency_us, got nothing"));
    t.cost = spec + "allreduce_bus_gb_s = 0\nallreduce_latency_us = 10\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.allreduce_bus_gb_s", "[0.001, 1e+06], got 0.0"));
    t.cost = spec + "allreduce_bus_gb_s = 100\nallreduce_latency_us = -1\n";
    EXPECT_TRUE(refused(t, "cost.gpu_spec.allreduce_latency_us", "[0, 1e+06], got -1.0"));
}

TEST(ScenarioErrors, UnknownGpuPresetListsTheKnownOnes) {
    Text t;
    t.cost = "[cost]\ngpu = \"h900\"\n";
    EXPECT_TRUE(refused(t, "cost.gpu", "h100-sxm"));
}

TEST(ScenarioErrors, UnknownModelPresetListsTheKnownOnes) {
    Text t;
    t.cost = "[cost]\npreset = \"gpt-5\"\n";
    EXPECT_TRUE(refused(t, "cost.preset", "qwen3-8b"));
}

TEST(ScenarioErrors, PresetAndExplicitTableTogetherAreAmbiguous) {
    Text t;
    t.cost = "[cost]\ngpu = \"h200\"\n[cost.gpu_spec]\nname = \"x\"\nhbm_tb_s = 2\nbf16_tflops = 500\n"
             "hbm_gb = 96\noverhead_us = 40\n";
    EXPECT_TRUE(refused(t, "cost.gpu", "not both"));
}

TEST(ScenarioErrors, MoeActiveExpertsAboveExpertsIsRefused) {
    Text t;
    t.cost = "[cost.moe]\nexperts = 8\nactive = 9\nexpert_fraction = 0.5\n";
    EXPECT_TRUE(refused(t, "cost.moe.active", "1..8"));
}

TEST(ScenarioErrors, MeasuredProfilesWithoutTheDraftPhaseAreRefusedWhenAPolicyDrafts) {
    Text t;
    t.engine = "[engine]\ngamma = 4\nkv_capacity_tokens = 100000\n";
    t.cost = "[cost]\nmodel = \"measured\"\nprofiles = \"profiles-nodraft.specdb\"\n";
    EXPECT_TRUE(refused(t, "cost.profiles", "draft"));
    // Without a drafting policy the draft phase is not needed.
    t.policies = "[policies]\nlist = [\"ar\"]\n";
    EXPECT_NO_THROW(parse(t));
}

TEST(ScenarioErrors, MeasuredModelNeedsAKvCapacity) {
    Text t;
    t.cost = "[cost]\nmodel = \"measured\"\nprofiles = \"profiles-full.specdb\"\n";
    EXPECT_TRUE(refused(t, "engine.kv_capacity_tokens", "measured"));
}

TEST(ScenarioErrors, ModelLargerThanTheGpuLeavesNoKvToDerive) {
    Text t;
    t.cost = "[cost.target]\nname = \"huge\"\nn_params = 100_000_000_000\nn_layers = 80\nhidden = 8192\n"
             "n_heads = 64\nn_kv_heads = 8\nhead_dim = 128\nffn = 28672\nvocab = 128256\n";
    EXPECT_TRUE(refused(t, "engine.kv_capacity_tokens", "weights"));
}

TEST(ScenarioErrors, MaxBatchTokensMustExceedMaxSeqs) {
    Text t;
    t.engine = "[engine]\ngamma = 4\nmax_seqs = 64\nmax_batch_tokens = 64\n";
    EXPECT_TRUE(refused(t, "engine.max_batch_tokens", "engine.max_seqs"));
}

TEST(ScenarioErrors, DraftMaxRunningIsAWholeNumberOfRequests) {
    Text t;
    t.engine = "[engine]\ngamma = 4\ndraft_max_running = 48\n";
    EXPECT_EQ(parse(t).engine.draft_max_running, 48);
    for (const char* bad : {"-1", "2.5", "\"many\"", "100000000"}) {
        t.engine = std::string("[engine]\ngamma = 4\ndraft_max_running = ") + bad + "\n";
        EXPECT_TRUE(refused(t, "engine.draft_max_running")) << bad;
    }
}

TEST(ScenarioErrors, UnreadableFileIsNamed) {
    std::string missing = (stores().dir / "missing.toml").string();
    try {
        scenario_load(missing);
        ADD_FAILURE() << "loaded a missing file";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), missing + ": cannot read");
    }
}

TEST(ScenarioErrors, NewlinesInQuotedValuesDoNotBreakTheLine) {
    Text t;
    t.policies = "[policies]\nlist = [\"ar\\nx\"]\n";
    EXPECT_TRUE(refused(t, "policies.list[0]"));
}
