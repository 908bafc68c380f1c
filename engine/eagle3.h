// eagle3.h: the EAGLE-3 drafter as plain data, loaded from a DeepSpec
// Qwen3Eagle3Model checkpoint folder as it is (digest §1.4), for its CPU
// reference (drafter_eagle3_cpu in drafter.h) and its CUDA drafter
// (drafter_eagle3_cuda in drafter_cuda.h).
//
// The model (one decoder layer of the target's family, d wide, whose
// attention input is 2d wide):
//   x   = [input_layernorm(embed(token)) ; hidden_norm(h)],  residual h
//   out = h + o_proj(attention(q, k, v of x)),  out += mlp(post_attention_layernorm(out))
//   logits = lm_head(norm(out))
// Pairing (digest §1.4): the target's features f_i = [h_l1; ...; h_lm] of
// position i go with token i + 1, at RoPE position i, as h = fc f_i: the
// cache holds one such "step-0" entry per committed position. Drafting from
// the anchor x_a: the step-0 entry of position a - 1 (whose token is the
// anchor) gives draft 1; draft j + 1 feeds (draft j, the layer's output of
// the step before) at position a - 1 + j, attending causally to the step-0
// entries and the chain's own earlier steps, which the cache drops after
// the call. Trained with test-time training over ttt_length such steps.
// The embedding and LM head are the target's (DeepSpec saves frozen copies,
// which are not read).
#pragma once

#include <string>
#include <vector>

#include "engine/model.h"

namespace sp {

// config.json of a Qwen3Eagle3Model: a copy of the target's config with the
// drafter's keys.
struct Eagle3Config {
    Config layers;                   // the draft layer's shape: the target's, n_layers = 1
    std::vector<int> target_layers;  // (m) target_layer_ids: the low, mid and high features
    int n_target_layers = 0;         // num_target_layers: the target it was trained on
    int ttt_length = 0;              // the chain length it was trained for: its default gamma
};

// Reads and validates an EAGLE-3 config.json; "<path>: <key>: expected ...,
// got ..." for a missing or bad key, and a refusal by name of more than one
// draft layer.
Eagle3Config eagle3_config_load(const std::string& path);

// EAGLE-3's shape for `target` as DeepSpec trains one: one layer of the
// target's shape, target layers low, mid and high, chains of gamma steps.
Eagle3Config eagle3_config_preset(const Config& target, int gamma);

struct Eagle3Weights {
    Eagle3Config cfg;
    std::vector<float> fc;           // (d, m d)
    std::vector<float> hidden_norm;  // (d) the layer's norm of h
    LayerWeights layer;              // wq (H D, 2d), wk and wv (KVH D, 2d): inputs [embedding ; h]
    std::vector<float> final_norm;   // (d)
};

// Loads an EAGLE-3 folder for `target`; refuses, with one line naming the
// file, another vocabulary or hidden size, a target layer outside the target
// (or its final layer), a missing tensor or a wrong shape.
Eagle3Weights eagle3_load(const std::string& dir, const Config& target);

}  // namespace sp
