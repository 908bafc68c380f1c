// kv_append.cu: writes a forward's new K and V rows into the paged cache.
#include "engine/kernels.h"

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

// One block per token; threads stride over the KVH*D values of k and of v.
__global__ void kv_append_kernel1(bf16* k_cache, bf16* v_cache, const bf16* qkv, const int* slot, int H, int KVH,
                                  int D) {
    const int t = blockIdx.x, kv_dim = KVH * D;
    const bf16* k = qkv + static_cast<size_t>(t) * (H + 2 * KVH) * D + static_cast<size_t>(H) * D;
    const bf16* v = k + kv_dim;
    const size_t row = static_cast<size_t>(slot[t]) * kv_dim;
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        k_cache[row + i] = k[i];
        v_cache[row + i] = v[i];
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

void kv_append(bf16* k_cache, bf16* v_cache, const bf16* qkv, const int* slot, int T, int H, int KVH, int D,
               cudaStream_t stream) {
    if (T == 0) return;
    kv_append_kernel1<<<T, 128, 0, stream>>>(k_cache, v_cache, qkv, slot, H, KVH, D);
    CUDA_CHECK_LAST();
}

}  // namespace sp
