// init.cu: filling device tensors without a host copy, for random-weight
// models of any shape (CudaModel's Config constructor): a counter-based
// uniform draw and a constant fill.
//
// Element i of a draw is a pure function of (seed, i): splitmix64 of
// splitmix64(seed) ^ i, its top 24 bits mapped to (-1, 1) and scaled. No
// state, so the result does not depend on the launch shape.
#include "engine/kernels.h"

namespace sp {

namespace {

__device__ inline uint64_t init_splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 132 * 16;  // grid-stride beyond this

}  // namespace

// ----------------------------------------------------------------------------
// CUDA kernels

// Grid-stride loop; p[i] = scale * (2 u - 1), u in (0, 1) with 24 bits.
__global__ void init_uniform_kernel1(bf16* p, size_t n, float scale, uint64_t key) {
    const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const uint64_t h = init_splitmix64(key ^ i);
        const float u = (static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
        p[i] = __float2bfloat16(scale * (2.0f * u - 1.0f));
    }
}

__global__ void init_fill_kernel1(bf16* p, size_t n, float value) {
    const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
    const bf16 v = __float2bfloat16(value);
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) p[i] = v;
}

// ----------------------------------------------------------------------------
// kernel launchers

namespace {
unsigned grid_for(size_t n) {
    const size_t blocks = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}
}  // namespace

void init_uniform(bf16* p, size_t n, float scale, uint64_t seed, cudaStream_t stream) {
    if (n == 0) return;
    // hash the seed on the host: the same splitmix64 round as the device's
    uint64_t key = seed + 0x9e3779b97f4a7c15ull;
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
    key ^= key >> 31;
    init_uniform_kernel1<<<grid_for(n), kThreads, 0, stream>>>(p, n, scale, key);
    CUDA_CHECK_LAST();
}

void init_fill(bf16* p, size_t n, float value, cudaStream_t stream) {
    if (n == 0) return;
    init_fill_kernel1<<<grid_for(n), kThreads, 0, stream>>>(p, n, value);
    CUDA_CHECK_LAST();
}

}  // namespace sp
