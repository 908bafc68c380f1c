// dspark.h: the DSpark drafter (and DFlash, the same model without the
// Markov and confidence heads) as plain data, loaded from a DeepSpec
// checkpoint folder as it is (digest §1.4), and its CPU reference.
//
// The model, per block (digest §1.1-1.2; shapes in model.h's legend, m target
// layers, r Markov rank, G block_size):
//   context   H_ctx = hidden_norm(fc [h_l1; ...; h_lm]) of every committed
//             position, from the target's raw decoder-layer outputs; in every
//             draft layer its k_norm(k_proj) (RoPE at the position) and v_proj
//             join the keys and values. H_ctx skips input_layernorm.
//   block     [anchor, MASK x (G-1)] at positions anchor_pos + k, through
//             Qwen3 decoder layers whose queries see every context position
//             and the whole block (bidirectional); then norm: h_k (G, d), and
//             the target's own LM head: U_k = lm_head h_k (G, V).
//   Markov    logits_k = U_k + W2 W1[x_{k-1}], x_{-1} = anchor, sampled left to
//             right (markov_rank 0: U_k alone, DFlash).
//   confidence z_k = w . [h_k ; W1[x_{k-1}]] + b, c_k = sigma(z_k / T_k) with
//             the per-slot STS temperatures of calibration.json (all 1 without).
// The embedding (for the anchor and MASK) and the LM head are the target's:
// DeepSpec saves frozen copies of them, which are not read.
#pragma once

#include <string>
#include <vector>

#include "engine/model.h"

namespace sp {

// config.json of a Qwen3DSparkModel: a deep copy of the target's config
// with the drafter's keys added (digest §1.4).
struct DSparkConfig {
    Config layers;                   // the draft layers: the target's shape, n_layers = draft layers
    std::vector<int> target_layers;  // (m) target_layer_ids, strictly increasing, 0-based
    int n_target_layers = 0;         // num_target_layers: the target it was trained on
    int block_size = 0;              // G: drafts per block
    int mask_token = 0;              // mask_token_id
    int markov_rank = 0;             // r; 0 = no Markov head (DFlash)
    bool confidence = false;         // enable_confidence_head
    bool confidence_with_markov = false;  // the head reads [h ; W1[x_prev]] (else h alone)
};

// Reads and validates a drafter's config.json. Throws sp::Error
// "<path>: <key>: expected ..., got ..." for a missing or bad key, an
// architecture other than Qwen3DSparkModel, or a markov_head_type other than
// "vanilla" ("gated" and "rnn" are refused by name).
DSparkConfig dspark_config_load(const std::string& path);

// A DSpark (or, with dflash, DFlash: no Markov head, no confidence head)
// drafter's shape for `target` as DeepSpec trains one for Qwen3-8B: the
// target's layer shape, draft_layers layers, five target layers spread from
// 1 to n - 3, a block of gamma, the last token as the mask. For drafters with
// random weights at a production shape (benchmarks, `--drafter dspark` with a
// preset --model).
DSparkConfig dspark_config_preset(const Config& target, int gamma, bool dflash, int draft_layers = 5,
                                  int markov_rank = 256);

struct DSparkWeights {
    DSparkConfig cfg;
    std::vector<float> fc;               // (d, m d)
    std::vector<float> hidden_norm;      // (d)
    std::vector<LayerWeights> layers;    // (draft layers)
    std::vector<float> final_norm;       // (d)
    std::vector<float> markov_w1;        // (V, r) an embedding: row v is W1[v]
    std::vector<float> markov_w2;        // (V, r) Linear r -> V
    std::vector<float> conf_w;           // (d + r) or (d); empty without a head
    float conf_b = 0;
    std::vector<float> sts;              // (G) per-slot STS temperatures, > 0
};

// Loads a DeepSpec checkpoint folder for `target`: config.json,
// model.safetensors (or its index) and, when present, calibration.json
// ({"method": "sts", "temperatures": [G numbers > 0]}). Refuses, with one
// line naming the file, a drafter the target cannot use: another vocabulary,
// hidden size or head shape, a target layer outside the target (or its final
// layer, whose HF hidden state is normed), a mask token outside the
// vocabulary, a missing tensor or a wrong shape.
DSparkWeights dspark_load(const std::string& dir, const Config& target);

}  // namespace sp
