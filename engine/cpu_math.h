// cpu_math.h: the Eigen pieces the fp32 CPU reference forward and the CPU
// drafters share (reference.cpp, drafter_dspark.cpp, drafter_eagle3.cpp).
// Internal to specplan_engine, which links Eigen privately: no public header
// includes it.
#pragma once

#include <Eigen/Dense>

#include <cmath>
#include <vector>

#include "engine/model.h"
#include "engine/reference.h"  // rmsnorm_row

namespace sp::cpu {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMat = Eigen::Map<const RowMat>;
using Vec = Eigen::VectorXf;

// A weight matrix (rows, cols), row-major, as HF's nn.Linear stores it: y = W x.
inline ConstMat mat(const std::vector<float>& w, int rows, int cols) { return ConstMat(w.data(), rows, cols); }

inline Vec rmsnorm(const Vec& x, const std::vector<float>& w, double eps) {
    Vec out(x.size());
    rmsnorm_row(out.data(), x.data(), w.data(), static_cast<int>(x.size()), eps);
    return out;
}

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// A decoder layer's SwiGLU MLP on one normed row: down(silu(gate(xn)) * up(xn)).
// With a tensor-parallel shard's config and weights (ffn a tp-th, engine/tp.h)
// it is that shard's partial sum.
inline Vec mlp_out(const Vec& xn, const LayerWeights& lw, const Config& c) {
    const int d = c.hidden, F = c.ffn;
    const Vec gate = mat(lw.w_gate, F, d) * xn, up = mat(lw.w_up, F, d) * xn;
    Vec act(F);
    for (int i = 0; i < F; i++) act[i] = silu(gate[i]) * up[i];
    return mat(lw.w_down, d, F) * act;
}

// The MLP half of a decoder layer on one residual row: x += mlp_out(rmsnorm(x) * mlp_norm).
inline void mlp_add(Vec& x, const LayerWeights& lw, const Config& c) {
    x += mlp_out(rmsnorm(x, lw.mlp_norm, c.rms_eps), lw, c);
}

// Every tensor's size against w.cfg (sp::Error naming the tensor): what
// makes a forward over any ModelWeights safe to index.
void check_weights(const ModelWeights& w);

// Each new token's cache slot and absolute position (T), after the checks
// reference_forward makes of a batch against the cache and the config
// (sp::Error naming what is wrong; nothing touched yet).
struct TokenSlots {
    std::vector<int> seq, pos;
};
TokenSlots batch_slots(const Config& c, const CpuKvCache& kv, const RaggedBatch& b);

// The attention half of decoder layer `layer` (reference.cpp): for normed
// rows xn (T), q/k/v, QK-norm, RoPE, each token's K and V appended to its
// sequence's cache rows of that layer, causal attention over the sequence,
// and the output projection: returns wo * attention (T) before the residual
// add. With a shard's config and weights (a tp-th of the heads and KV
// heads, its own cache) it is that shard's partial sum.
std::vector<Vec> attention_out(const Config& c, const LayerWeights& lw, int layer, CpuKvCache& kv,
                               const TokenSlots& at, const std::vector<Vec>& xn);

}  // namespace sp::cpu
