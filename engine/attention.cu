// attention.cu: attention of a ragged batch over the paged KV cache.
//
// Each new token attends to its own sequence's positions 0..pos: the cached
// prefix and the new tokens up to itself (causal within the new ones), which
// kv_append has already written into the cache. This is the first, plain
// version: one block per (token, query head), each warp an online softmax in
// fp32 over every 4th key, the warps' partial states merged at the end.
// Tokens of one verify block re-read the same keys; sharing those reads
// (one block per sequence and KV head) is the obvious next version.
//
// A token's result depends only on its own q, its context and the launch
// shape, never on which other tokens share the batch.
#include <cmath>

#include "engine/kernels.h"

namespace sp {

namespace {
constexpr int kWarps = 4;
constexpr int kMaxD = 256;
constexpr int kDimsPerLane = kMaxD / 32;
}  // namespace

// ----------------------------------------------------------------------------
// CUDA kernels

__global__ void attention_forward_kernel1(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                                          const int* block_tables, int max_blocks, int block_size,
                                          const int* tok_seq, const int* tok_pos, int H, int KVH, int D) {
    const int t = blockIdx.x, h = blockIdx.y;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int kv_dim = KVH * D, g = h / (H / KVH);
    const int n_ctx = tok_pos[t] + 1;
    const int* table = block_tables + static_cast<size_t>(tok_seq[t]) * max_blocks;
    const float scale = rsqrtf(static_cast<float>(D));

    __shared__ float q[kMaxD];
    const bf16* qh = qkv + static_cast<size_t>(t) * (H + 2 * KVH) * D + static_cast<size_t>(h) * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) q[i] = __bfloat162float(qh[i]);
    __syncthreads();

    // this warp's online softmax state: running max m, sum l, output acc
    float m = -INFINITY, l = 0.0f, acc[kDimsPerLane];
#pragma unroll
    for (int p = 0; p < kDimsPerLane; p++) acc[p] = 0.0f;

    for (int j = warp; j < n_ctx; j += kWarps) {
        const size_t row = static_cast<size_t>(table[j / block_size]) * block_size + j % block_size;
        const bf16* kj = k_cache + row * kv_dim + static_cast<size_t>(g) * D;
        const bf16* vj = v_cache + row * kv_dim + static_cast<size_t>(g) * D;
        float dot = 0.0f;
#pragma unroll
        for (int p = 0; p < kDimsPerLane; p++) {
            const int i = lane + 32 * p;
            if (i < D) dot += q[i] * __bfloat162float(kj[i]);
        }
        const float s = warp_sum(dot) * scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new), e = expf(s - m_new);
        l = l * corr + e;
#pragma unroll
        for (int p = 0; p < kDimsPerLane; p++) {
            const int i = lane + 32 * p;
            if (i < D) acc[p] = acc[p] * corr + e * __bfloat162float(vj[i]);
        }
        m = m_new;
    }

    // merge the warps: weights exp(m_w - M); a warp that saw no key has l = 0
    __shared__ float wm[kWarps], wl[kWarps], wacc[kWarps][kMaxD];
    if (lane == 0) {
        wm[warp] = m;
        wl[warp] = l;
    }
#pragma unroll
    for (int p = 0; p < kDimsPerLane; p++) {
        const int i = lane + 32 * p;
        if (i < D) wacc[warp][i] = acc[p];
    }
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < kWarps; w++) M = fmaxf(M, wm[w]);
    float L = 0.0f;
    for (int w = 0; w < kWarps; w++)
        if (wl[w] > 0.0f) L += wl[w] * expf(wm[w] - M);
    bf16* o = out + static_cast<size_t>(t) * H * D + static_cast<size_t>(h) * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float sum = 0.0f;
        for (int w = 0; w < kWarps; w++)
            if (wl[w] > 0.0f) sum += wacc[w][i] * expf(wm[w] - M);
        o[i] = __float2bfloat16(sum / L);
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

void attention_forward(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                       const int* block_tables, int max_blocks, int block_size, const int* tok_seq,
                       const int* tok_pos, int T, int H, int KVH, int D, cudaStream_t stream) {
    if (D > kMaxD || KVH <= 0 || H % KVH != 0)
        cuda_throw("attention_forward: needs head_dim <= " + std::to_string(kMaxD) + " and KVH dividing H");
    if (T == 0) return;
    attention_forward_kernel1<<<dim3(T, H), 32 * kWarps, 0, stream>>>(
        out, qkv, k_cache, v_cache, block_tables, max_blocks, block_size, tok_seq, tok_pos, H, KVH, D);
    CUDA_CHECK_LAST();
}

}  // namespace sp
