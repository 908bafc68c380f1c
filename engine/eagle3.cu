// eagle3.cu: the input of the EAGLE-3 draft layer (eagle3.h), whose
// attention reads 2d features per token rather than d:
//   x2 = [input_layernorm(embed(token)) ; hidden_norm(h)]
// Two RMSNorms of two different rows into the two halves of one bf16 row,
// so that the q|k|v projection takes x2 as it is (matmul_forward has no
// place to fuse two norms). Each half is rmsnorm_forward's arithmetic
// (fp32 sum of squares, w * (x * scale), one bf16 rounding), up to the
// order of the fp32 sum.
//
// The token of a chain step is the draft markov_step_forward drew a step
// earlier (or the teacher-forced one); it is read here, on the device, so
// the drafter's loop of gamma steps needs no host round trip.
#include "engine/kernels.h"

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

// Grid (T, 2): block (t, 0) writes the embedding half of row t, block (t, 1)
// the h half; threads stride over d. The row is read twice (sum of squares,
// then the scaled write): d <= 5120 floats, from L1.
__global__ void eagle3_input_forward_kernel1(bf16* x2, const bf16* embed, const float* h, const bf16* input_norm,
                                             const bf16* hidden_norm, const int* tokens, const int* forced,
                                             const int* drafted, const int* out_row, int k, int gamma, int d,
                                             float eps) {
    pdl_launch_dependents();
    pdl_wait();
    const int t = blockIdx.x;
    const bool emb = blockIdx.y == 0;
    bf16* out = x2 + static_cast<size_t>(t) * 2 * d + (emb ? 0 : d);
    const bf16* w = emb ? input_norm : hidden_norm;
    const bf16* erow = nullptr;
    const float* hrow = h + static_cast<size_t>(t) * d;
    if (emb) {
        int tok;
        if (tokens) {
            tok = tokens[t];
        } else {
            const int f = forced ? forced[static_cast<size_t>(t) * gamma + k] : -1;
            tok = f >= 0 ? f : drafted[static_cast<size_t>(out_row[t]) * gamma + k];
        }
        erow = embed + static_cast<size_t>(tok) * d;
    }
    float ss = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        const float v = emb ? __bfloat162float(erow[i]) : hrow[i];
        ss += v * v;
    }
    ss = block_sum(ss);
    const float scale = rsqrtf(ss / static_cast<float>(d) + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        const float v = emb ? __bfloat162float(erow[i]) : hrow[i];
        out[i] = __float2bfloat16(__bfloat162float(w[i]) * (v * scale));
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

void eagle3_input_forward(bf16* x2, const bf16* embed, const float* h, const bf16* input_norm,
                          const bf16* hidden_norm, int T, int d, float eps, cudaStream_t stream, const int* tokens,
                          const int* forced, const int* drafted, const int* out_row, int k, int gamma) {
    if (!tokens && (!drafted || !out_row || k < 0 || k >= gamma))
        cuda_throw("eagle3_input_forward: without tokens, the chain's drafted tokens, out_row and a slot k in "
                   "0..gamma-1 are needed");
    if (T == 0) return;
    launch_pdl(eagle3_input_forward_kernel1, dim3(T, 2), 256, 0, stream, x2, embed, h, input_norm, hidden_norm,
               tokens, forced, drafted, out_row, k, gamma, d, eps);
}

}  // namespace sp
