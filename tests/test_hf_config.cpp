// test_hf_config.cpp: target shapes from HF config.json (traces/hf_config.h)
// against parameter counts worked by hand from the formulas in hf_config.cpp,
// on small hand-written configs (tests/fixtures/hf_configs/) and DeepSeek-V3's
// published sizes; and a scenario naming a config.json as its target.
#include <gtest/gtest.h>

#include <string>

#include "simulator/cost.h"
#include "simulator/scenario.h"
#include "traces/hf_config.h"
#include "traces/models.h"

using namespace sp;

namespace {

const std::string CONFIGS = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/hf_configs/";

std::string error_of(const std::string& text) {
    try {
        hf_config_parse(text, "c.json");
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

// d 8, 2 layers, 2 heads of 4, 1 KV head, vocab 10. Attention 64 + 64 + 64 +
// 8 (q/k norms) = 200; norms 16 a layer; a MoE layer's MLP: router 8 x 4 = 32
// and 4 experts of 3 x 8 x 4 = 96, 416; embeddings untied 160, final norm 8.
// (200 + 16 + 416) x 2 + 160 + 8 = 1432, of which 2 x 4 x 96 = 768 routed.
TEST(HfConfig, Qwen3MoeCountsExpertsAndTheirShare) {
    HfShape h = hf_config_load(CONFIGS + "qwen3-moe-tiny");
    EXPECT_EQ(h.model.name, "qwen3-moe-tiny");
    EXPECT_EQ(h.model.n_params, 1432);
    EXPECT_EQ(h.n_experts, 4);
    EXPECT_EQ(h.experts_per_token, 2);
    EXPECT_DOUBLE_EQ(h.expert_param_fraction, 768.0 / 1432);
    EXPECT_EQ(h.model.n_kv_heads, 1);
    EXPECT_EQ(h.model.head_dim, 4);
    EXPECT_EQ(h.model.ffn, 8);  // 2 active experts of 4
}

// d 8, 3 layers, 2 heads; MLA with q_lora 4, kv_lora 4, nope 2, rope 2, v 2:
// q 8x4 + 4 + 4x2x4 = 68, kv 8x6 + 4 + 4x2x4 = 84, o 2x2x8 = 32: 184. Layer 0
// dense, 3 x 8 x 16 = 384; layers 1 and 2 MoE: router 32 + (4 routed + 1
// shared) x 96 = 512. 584 + 2 x 712 + 160 + 8 = 2176, 2 x 4 x 96 = 768 routed.
TEST(HfConfig, DeepSeekV3LikeCountsMlaSharedExpertsAndDenseFirstLayers) {
    HfShape h = hf_config_load(CONFIGS + "deepseek-v3-tiny/config.json");
    EXPECT_EQ(h.model.n_params, 2176);
    EXPECT_EQ(h.n_experts, 4);
    EXPECT_EQ(h.experts_per_token, 2);
    EXPECT_DOUBLE_EQ(h.expert_param_fraction, 768.0 / 2176);
    // The latent cache: kv_lora 4 + rope 2 = 6 values a layer, 2 bytes each: 36 bytes a token over 3 layers.
    Roofline r;
    r.model = h.model;
    EXPECT_DOUBLE_EQ(roofline_kv_bytes_per_token(r.model), 36.0);
}

// DeepSeek-V3's config.json sizes give its published 671 B: attention
// 7168x1536 + 1536 + 1536x128x192 + 7168x576 + 512 + 512x128x256 + 128x128x7168
// = 187,107,328; 3 dense layers of 3x7168x18432; 58 MoE layers with a router
// 7168x256 and 257 experts of 3x7168x2048; embeddings 2x129280x7168.
TEST(HfConfig, DeepSeekV3SizesGiveItsPublishedParameterCount) {
    const std::string text = R"({"model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": 7168,
        "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
        "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "n_routed_experts": 256,
        "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1})";
    HfShape h = hf_config_parse(text, "v3");
    EXPECT_EQ(h.model.n_params, 671'026'404'352);
    EXPECT_DOUBLE_EQ(h.expert_param_fraction, 58.0 * 256 * 3 * 7168 * 2048 / 671'026'404'352.0);
}

// Without "architectures", by model_type as transformers reads it. Tied:
// embeddings 80; (200 + 384 + 16) x 2 + 80 + 8 = 1288.
TEST(HfConfig, DenseQwen3ByModelTypeAlone) {
    HfShape h = hf_config_load(CONFIGS + "qwen3-tiny");
    EXPECT_EQ(h.model.n_params, 1288);
    EXPECT_EQ(h.n_experts, 0);
    EXPECT_EQ(h.model.ffn, 16);
}

TEST(HfConfig, RefusalsNameTheKey) {
    EXPECT_EQ(error_of(R"({"model_type": "gpt2"})"),
              "c.json: model_type: expected a model_type of \"qwen3\", \"llama\", \"qwen3_moe\", \"deepseek_v3\" or "
              "\"deepseek_v2\" (or their architectures), got \"gpt2\"");
    EXPECT_EQ(error_of(R"({"model_type": "qwen3_moe", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 2, "num_attention_heads": 2})"),
              "c.json: num_experts: expected an integer in 1..65536, got nothing");
    EXPECT_EQ(error_of(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8.5})"),
              "c.json: hidden_size: expected an integer in 1..1048576, got 8.5");
    EXPECT_EQ(error_of("[1]"), "c.json: expected a JSON object, got [1]");
}

TEST(HfConfig, AScenarioTargetFillsTheModelAndItsExperts) {
    const std::string base =
        "[workload]\nconcurrency = [1]\noutput_len = { dist = \"fixed\", value = 8 }\n"
        "prompt_len = { dist = \"fixed\", value = 8 }\n[engine]\ngamma = 2\nkv_capacity_tokens = 1000\n"
        "[acceptance]\nsource = \"iid\"\nalpha = 0.5\n[policies]\nlist = [\"ar\"]\n[cost]\ntarget_config = \"" +
        CONFIGS + "qwen3-moe-tiny\"\n";
    Scenario s = scenario_parse(base, "x.toml");
    EXPECT_EQ(s.cost.roofline.model.n_params, 1432);
    EXPECT_EQ(s.cost.roofline.moe.n_experts, 4);
    EXPECT_EQ(s.cost.roofline.moe.experts_per_token, 2);
    EXPECT_DOUBLE_EQ(s.cost.roofline.moe.expert_param_fraction, 768.0 / 1432);
    try {
        scenario_parse(base + "preset = \"qwen3-8b\"\n", "x.toml");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "x.toml: cost.preset: expected no cost.preset beside cost.target_config, got one");
    }
}

// Parameter counts worked by hand from each model's config.json sizes (the
// published sizes in brackets). Qwen3-4B, tied: embeddings 151936 x 2560, a
// layer 2560x4096 + 2x2560x1024 + 4096x2560 + 256 + 3x2560x9728 + 5120 =
// 100,930,816, 36 of them, final norm 2560 [4.0 B]. Llama-3-70B: 2 x 128256 x
// 8192, 80 layers of 150,994,944 + 704,643,072 + 16384, 8192 [70.6 B].
// Qwen3-30B-A3B: 2 x 151936 x 2048, 48 layers of 18,874,624 attention + 2048x128
// router + 128 x 3 x 2048 x 768 experts + 4096, 2048 [30.5 B].
TEST(Presets, NewShapesAndAnyCase) {
    ModelShape m;
    ASSERT_TRUE(model_preset("Qwen3-4B", &m));
    EXPECT_EQ(m.n_params, 4'022'468'096);
    ASSERT_TRUE(model_preset("llama3-70b", &m));
    EXPECT_EQ(m.n_params, 70'553'706'496);
    ASSERT_TRUE(model_preset("QWEN3-14B", &m));
    EXPECT_EQ(m.name, "qwen3-14b");
    HfShape h;
    ASSERT_TRUE(hf_preset("Qwen3-30B-A3B", &h));
    EXPECT_EQ(h.model.n_params, 30'532'122'624);
    EXPECT_EQ(h.n_experts, 128);
    EXPECT_EQ(h.experts_per_token, 8);
    ASSERT_TRUE(hf_preset("deepseek-v3", &h));
    EXPECT_EQ(h.model.n_params, 671'026'404'352);
    EXPECT_FALSE(hf_preset("qwen3-8b", &h));
    GpuSpec g;
    EXPECT_TRUE(gpu_preset("H100-SXM", &g));
}

TEST(Presets, AScenarioNamesAMoePresetAndGetsItsExperts) {
    Scenario s = scenario_parse(
        "[workload]\nconcurrency = [1]\noutput_len = { dist = \"fixed\", value = 8 }\n[engine]\ngamma = 2\ntp = 8\nkv_capacity_tokens = 100000\n"
        "[acceptance]\nsource = \"iid\"\nalpha = 0.5\n[policies]\nlist = [\"ar\"]\n[cost]\ngpu = \"H200\"\n"
        "preset = \"DeepSeek-V3\"\n",
        "x.toml");
    EXPECT_EQ(s.cost.roofline.moe.n_experts, 256);
    EXPECT_EQ(s.cost.roofline.moe.experts_per_token, 8);
    EXPECT_EQ(s.cost.roofline.model.n_params, 671'026'404'352);
}
