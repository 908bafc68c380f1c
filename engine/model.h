// model.h: a Qwen3 or Llama decoder as plain data: its config, its weights,
// and the functions that load or build them. Both backends (the Eigen CPU
// reference and CUDA) start from these structs.
//
// Dimension legend, used in every shape comment of engine/:
//   V vocab, d hidden, L layers, H query heads, KVH key/value heads,
//   D head_dim, F ffn (SwiGLU intermediate), T tokens in a forward (all
//   sequences' new tokens, flattened), S sequences in a batch.
// Weight matrices keep HF's nn.Linear layout: (out, in), row-major, so
// y = W x is a row-major matrix-vector product.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "traces/trace_db.h"  // sp::Error, ModelShape

namespace sp {

enum Arch { ARCH_QWEN3, ARCH_LLAMA };

// Llama 3 rope scaling ("rope_type": "llama3"); factor 0 = none.
struct RopeScaling {
    double factor = 0;
    double low_freq_factor = 1, high_freq_factor = 4;
    int original_max_position = 8192;
};

// The fields of HF config.json that the forward needs.
struct Config {
    Arch arch = ARCH_QWEN3;
    std::string name;            // preset name or the checkpoint folder
    int vocab = 0;               // V
    int hidden = 0;              // d
    int ffn = 0;                 // F
    int n_layers = 0;            // L
    int n_heads = 0;             // H
    int n_kv_heads = 0;          // KVH, divides H
    int head_dim = 0;            // D (Qwen3: explicit; Llama: d / H)
    double rms_eps = 1e-6;
    double rope_theta = 10000;
    RopeScaling rope_scaling;
    bool tie_embeddings = false; // LM head = embedding matrix
    bool qk_norm = false;        // Qwen3: per-head RMSNorm of q and k before RoPE
    int max_position = 32768;
    int bos_id = -1, eos_id = -1;
};

// Reads and validates config.json. Throws sp::Error "<path>: <key>: expected ..., got ..."
// for a missing key, a wrong type, an out-of-range value, or an architecture
// other than Qwen3ForCausalLM / LlamaForCausalLM.
Config config_load(const std::string& path);
// The first entry of config.json's "architectures" ("" when there is none),
// read with config_load's checks (size cap, valid JSON, an object): what
// decides which loader a folder needs.
std::string config_architecture(const std::string& path);

// The range and consistency checks config_load applies (positive sizes under
// sane caps, KVH divides H, D even, token ids inside V, ...), for a Config
// that did not come from a file. Throws sp::Error "<where>: <HF key>: expected ..., got ...".
void config_check(const Config& c, const std::string& where);

// Presets for random-weight timing: "qwen3-0.6b", "qwen3-4b", "qwen3-8b", "qwen3-14b", "qwen3-32b",
// "llama3-8b", "llama3-70b" (traces/models.h holds the same shapes), plus tiny shapes for tests; any case.
bool config_preset(const std::string& name, Config* out);
// The shape of a random-weight model, by name or by explicit dimensions: a
// preset, a config.json, or a checkpoint folder holding one (only its
// config.json is read; c.name is then the folder's name). Throws sp::Error
// naming the argument when it is none of these, or config_load's error.
Config config_resolve(const std::string& preset_or_path);
ModelShape config_shape(const Config& c);  // for the trace store and the simulator

struct LayerWeights {
    std::vector<float> attn_norm;   // (d)
    std::vector<float> wq;          // (H*D, d)
    std::vector<float> wk, wv;      // (KVH*D, d)
    std::vector<float> wo;          // (d, H*D)
    std::vector<float> q_norm;      // (D), Qwen3 only
    std::vector<float> k_norm;      // (D), Qwen3 only
    std::vector<float> mlp_norm;    // (d)
    std::vector<float> w_gate;      // (F, d)
    std::vector<float> w_up;        // (F, d)
    std::vector<float> w_down;      // (d, F)
};

// fp32 host weights, whatever the checkpoint's dtype.
struct ModelWeights {
    Config cfg;
    std::vector<float> embed;       // (V, d)
    std::vector<LayerWeights> layers;  // (L)
    std::vector<float> final_norm;  // (d)
    std::vector<float> lm_head;     // (V, d); empty when cfg.tie_embeddings (use embed)
};

// Loads a checkpoint folder: config.json plus model.safetensors, or the shards
// listed in model.safetensors.index.json; bf16, fp16 or fp32 tensors under HF
// names ("model.layers.0.self_attn.q_proj.weight", ...). Every tensor's dtype,
// shape and byte range is checked against the file and against config.json
// before it is read. Throws sp::Error naming the file and the tensor.
ModelWeights weights_load(const std::string& dir);

// Random weights of a config (timing, tests): normal(0, 0.02) matrices,
// norms at 1, from the project RNG with `seed`.
ModelWeights weights_random(const Config& c, uint64_t seed);

}  // namespace sp
