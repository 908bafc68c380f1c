// reference.h: the CPU reference forward, fp32 with Eigen, written to be
// obviously correct rather than fast (llama2.c-shaped). Tests compare the
// CUDA backend and the HF fixtures against it.
//
// A forward takes a ragged batch: each sequence brings q_len >= 1 new tokens
// at its own position (one decode token, a verify block of 1 + l tokens, or a
// prefill chunk). Attention is causal within a sequence's new tokens and full
// over its cached prefix. The new tokens' K and V are appended to that
// sequence's cache; speculation drops the rejected tail with kv_truncate.
#pragma once

#include <vector>

#include "engine/model.h"

namespace sp {

// Per-sequence, per-layer K and V, grown as tokens arrive.
struct CpuKvCache {
    int n_layers = 0, kv_dim = 0;               // KVH*D
    std::vector<std::vector<std::vector<float>>> k, v;  // [seq][layer] (len, KVH*D)
    std::vector<int> len;                       // [seq] tokens cached
};

CpuKvCache kv_cache_init(const Config& c, int n_seqs);
void kv_truncate(CpuKvCache& kv, int seq, int new_len);  // new_len <= len[seq]

struct RaggedBatch {
    std::vector<int> seq;      // (S) cache slot of each sequence
    std::vector<int> q_len;    // (S) new tokens of each sequence, >= 1
    std::vector<int> tokens;   // (T) all new tokens, sequence after sequence; T = sum q_len
    // The position of a sequence's first new token is its cache length.
};

// Runs the batch; writes logits (T, V) for every new token (logits null:
// the LM head is skipped, as a prefill whose logits nobody reads). When
// hidden_layers is not empty, also writes the raw outputs of those decoder
// layers (0-based; the residual stream after the layer, before the final norm)
// for every token: hidden (hidden_layers.size(), T, d).
void reference_forward(const ModelWeights& w, CpuKvCache& kv, const RaggedBatch& b, std::vector<float>* logits,
                       const std::vector<int>& hidden_layers = {}, std::vector<float>* hidden = nullptr);

// RoPE, as the forward applies it (exposed for tests and the CUDA backend).
// rope_inv_freq: (D/2) theta^(-2i/D), with Llama 3 scaling when
// c.rope_scaling.factor > 0 (HF's _compute_llama3_parameters).
// rope_rotate: turns one head vector x (D) to position pos, HF's rotate_half
// pairing (i, i + D/2) by angle fp32(inv_freq[i]) * pos.
std::vector<double> rope_inv_freq(const Config& c);
void rope_rotate(float* x, int D, int pos, const std::vector<double>& inv_freq);
// RMSNorm of n values, as the forward applies it: out = x * rsqrt(mean(x^2) +
// eps) * w, in fp32 (out may be x). The drafters' references use it too.
void rmsnorm_row(float* out, const float* x, const float* w, int n, double eps);

}  // namespace sp
