// hf_config.h: a target model's shape from its Hugging Face config.json, for
// the roofline cost model (a scenario's cost.target_config). The engine reads
// config.json itself (engine/config.*) for the forward it runs, with every
// field that changes the math; the roofline needs only the sizes, for more
// families than the engine runs:
//
//   dense      Qwen3 ("qwen3"), Llama ("llama"), Qwen2 ("qwen2"), Mistral
//   qwen3_moe  Qwen3-MoE: num_experts, num_experts_per_tok, moe_intermediate_size,
//              decoder_sparse_step, mlp_only_layers
//   deepseek   DeepSeek-V2/V3 ("deepseek_v3", "deepseek_v2"): MLA (q_lora_rank,
//              kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim),
//              n_routed_experts, n_shared_experts, num_experts_per_tok,
//              first_k_dense_replace, moe_layer_freq, moe_intermediate_size
//
// The family comes from model_type, or from architectures[0] when model_type
// is absent. Parameters are counted from the shapes (hf_config.cpp says how);
// bf16 weights and KV are assumed, as the presets do.
//
// MLA caches one latent of kv_lora_rank + qk_rope_head_dim values a token and
// layer; the shape says so as n_kv_heads 1 and head_dim half that (the
// roofline's KV bytes are 2 x n_kv_heads x head_dim a layer), which keeps the
// KV exact. The roofline's attention FLOPs (4 H D a key) then undercount MLA's
// absorbed attention by about half: decode attention is bound by the KV reads.
//
// Errors: one sp::Error line, "<file>: <key>: expected <what>, got <what>".
#pragma once

#include <string>
#include <vector>

#include "traces/trace_db.h"  // ModelShape

namespace sp {

struct HfShape {
    ModelShape model;
    // Routed experts, 0 for a dense model (the simulator's MoeShape).
    int n_experts = 0, experts_per_token = 0;
    double expert_param_fraction = 0;   // routed-expert parameters / model.n_params
};

// Reads `path` (a config.json, or a folder holding one).
HfShape hf_config_load(const std::string& path);

// The same from the file's text; `name` names it in messages and is the shape's name.
HfShape hf_config_parse(const std::string& json_text, const std::string& name);

// The MoE presets, from the sizes in each model's config.json:
// "qwen3-30b-a3b" (Qwen/Qwen3-30B-A3B, 30.5 B, 128 experts, 8 active) and
// "deepseek-v3" (deepseek-ai/DeepSeek-V3, 671 B, 256 routed + 1 shared, 8
// active, MLA). Case-insensitive; false for another name.
bool hf_preset(const std::string& name, HfShape* out);
std::vector<std::string> hf_preset_names();

}  // namespace sp
