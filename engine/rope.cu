// rope.cu: Qwen3's per-head q/k RMSNorm and rotary position embedding, in
// place on the fused q|k|v projection output.
//
// Same numerics as reference.cpp's rope_rotate: rotate_half pairing (i, i +
// D/2), angle = fp32(inv_freq[i]) * fp32(pos) rounded to fp32, then cosf and
// sinf (full precision, not the __cosf intrinsics: angles reach pos * 1 rad).
// inv_freq comes from the host's rope_inv_freq, Llama 3 scaling included, so
// there is one definition of the frequencies. The normed head stays fp32
// until it is rotated; one bf16 rounding per element.
#include "engine/kernels.h"

namespace sp {

constexpr int kRopeHeadsPerBlock = 4;

// ----------------------------------------------------------------------------
// CUDA kernels

// One warp per (token, head) over the H query heads then the KVH key heads
// (then, when appending, the KVH value heads, which are only copied), four
// heads to a block (one-warp blocks cost 17 us a layer at 256 tokens of
// qwen3-8b, H100, 2026-12-07: the grid, not the work);
// lane j handles the pairs (i, i + D/2) for i = j, j + 32, ... (D <= 512).
__global__ void rope_forward_kernel1(bf16* qkv, const int* tok_pos, const float* inv_freq, const bf16* q_norm,
                                     const bf16* k_norm, int H, int KVH, int D, float eps, bf16* k_cache,
                                     bf16* v_cache, const int* slot) {
    pdl_launch_dependents();
    pdl_wait();
    const int t = blockIdx.x, head = blockIdx.y * kRopeHeadsPerBlock + threadIdx.y, lane = threadIdx.x, half = D / 2;
    if (head >= H + (k_cache ? 2 : 1) * KVH) return;
    bf16* x = qkv + static_cast<size_t>(t) * (H + 2 * KVH) * D + static_cast<size_t>(head) * D;
    // the cache row of this token's k head (head - H) or v head (head - H - KVH)
    bf16* cache_row = nullptr;
    if (k_cache && head >= H) {
        const size_t row = static_cast<size_t>(slot[t]) * KVH * D;
        cache_row = head < H + KVH ? k_cache + row + static_cast<size_t>(head - H) * D
                                   : v_cache + row + static_cast<size_t>(head - H - KVH) * D;
    }
    if (head >= H + KVH) {  // a v head: copy
        for (int i = lane; i < D; i += 32) cache_row[i] = x[i];
        return;
    }
    const bf16* norm_w = head < H ? q_norm : k_norm;
    constexpr int kMaxPairs = 8;
    float a[kMaxPairs], b[kMaxPairs];
    float ss = 0.0f;
#pragma unroll
    for (int p = 0; p < kMaxPairs; p++) {
        const int i = lane + 32 * p;
        a[p] = b[p] = 0.0f;
        if (i < half) {
            a[p] = __bfloat162float(x[i]);
            b[p] = __bfloat162float(x[i + half]);
            ss += a[p] * a[p] + b[p] * b[p];
        }
    }
    float scale = 1.0f;
    if (norm_w) scale = rsqrtf(warp_sum(ss) / static_cast<float>(D) + eps);
    const float pos = static_cast<float>(tok_pos[t]);
#pragma unroll
    for (int p = 0; p < kMaxPairs; p++) {
        const int i = lane + 32 * p;
        if (i >= half) continue;
        float xa = a[p], xb = b[p];
        if (norm_w) {
            xa = __bfloat162float(norm_w[i]) * (xa * scale);
            xb = __bfloat162float(norm_w[i + half]) * (xb * scale);
        }
        const float angle = inv_freq[i] * pos;
        const float c = cosf(angle), s = sinf(angle);
        const bf16 ra = __float2bfloat16(xa * c - xb * s), rb = __float2bfloat16(xb * c + xa * s);
        x[i] = ra;
        x[i + half] = rb;
        if (cache_row) {
            cache_row[i] = ra;
            cache_row[i + half] = rb;
        }
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

void rope_forward(bf16* qkv, const int* tok_pos, const float* inv_freq, const bf16* q_norm, const bf16* k_norm,
                  int T, int H, int KVH, int D, float eps, cudaStream_t stream, bf16* k_cache, bf16* v_cache,
                  const int* slot) {
    if ((k_cache != nullptr) != (v_cache != nullptr) || (k_cache != nullptr) != (slot != nullptr))
        cuda_throw("rope_forward: k_cache, v_cache and slot go together");
    if (D % 2 != 0 || D > 512) cuda_throw("rope_forward: head_dim " + std::to_string(D) + " must be even and <= 512");
    if (T == 0) return;
    const int heads = H + (k_cache ? 2 : 1) * KVH;
    launch_pdl(rope_forward_kernel1, dim3(T, ceil_div(heads, kRopeHeadsPerBlock)), dim3(32, kRopeHeadsPerBlock), 0, stream, qkv, tok_pos, inv_freq, q_norm, k_norm, H, KVH,
               D, eps, k_cache, v_cache, slot);
}

}  // namespace sp
