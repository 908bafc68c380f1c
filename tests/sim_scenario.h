// sim_scenario.h: the scenario the simulator's closed-form tests build in
// code, shared by test_sim.cpp and test_timeline.cpp. A dense 8B-like target
// whose KV cache is negligible (1 KV head of dim 8): the step time then does
// not drift with context, which the closed forms assume. H100 datasheet
// numbers (and the preset's all-reduce figures, 360 GB/s bus and 10 us),
// written out here; i.i.d. acceptance alpha; one closed-loop user;
// fixed lengths (prompt 100 tokens).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "simulator/scenario.h"
#include "traces/models.h"

inline sp::Scenario sim_scenario(double alpha, int gamma, int output_len = 400, int warmup = 20,
                                 int requests = 200) {
    using namespace sp;
    Scenario sc;
    sc.path = "test";
    sc.name = "test";
    sc.seed = 7;
    Workload& w = sc.workload;
    w.mode = WORKLOAD_CLOSED;
    w.concurrency = {1};
    w.requests = requests;
    w.warmup = warmup;
    w.lengths = LENGTHS_DIST;
    w.prompt_len = {DIST_FIXED, 100, 1, 1, 0, 0};
    w.output_len = {DIST_FIXED, output_len, 1, 1, 0, 0};
    w.mix = {{"all", 1, {}}};
    sc.engine.gamma = gamma;
    sc.engine.max_seqs = 256;
    sc.engine.max_batch_tokens = 8192;
    sc.engine.kv_capacity_tokens = 10'000'000;
    sc.engine.prefill_chunk_tokens = 2048;
    sc.acceptance.kind = ACCEPT_IID;
    sc.acceptance.alpha = alpha;
    CostModel& c = sc.cost;
    c.kind = COST_ROOFLINE;
    model_preset("llama3-8b", &c.roofline.model);
    c.roofline.model.n_kv_heads = 1;
    c.roofline.model.head_dim = 8;
    c.roofline.gpu = {"h100-sxm", "test", 3.35e12, 360e9, 10e-6, 989e12, 80e9, 30e-6};
    c.drafter = {DRAFTER_MTP, 1, 256};
    sc.slo = {10, 0};
    return sc;
}

inline sp::Policy sim_policy(const char* text) {
    sp::Policy p;
    std::string err;
    EXPECT_TRUE(sp::policy_parse(text, &p, &err)) << err;
    return p;
}
