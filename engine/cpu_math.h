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

// A decoder layer's SwiGLU MLP on one residual row:
// x += down(silu(gate(xn)) * up(xn)), xn = rmsnorm(x) * mlp_norm.
inline void mlp_add(Vec& x, const LayerWeights& lw, const Config& c) {
    const int d = c.hidden, F = c.ffn;
    const Vec xn = rmsnorm(x, lw.mlp_norm, c.rms_eps);
    const Vec gate = mat(lw.w_gate, F, d) * xn, up = mat(lw.w_up, F, d) * xn;
    Vec act(F);
    for (int i = 0; i < F; i++) act[i] = silu(gate[i]) * up[i];
    x += mat(lw.w_down, d, F) * act;
}

}  // namespace sp::cpu
