// swiglu.cu: the SwiGLU activation, silu(gate) * up, on the fused gate|up
// projection's output.
#include "engine/kernels.h"

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

// One thread per output element. silu in fp32 with expf (not __expf), as the
// reference computes x / (1 + exp(-x)).
__global__ void swiglu_forward_kernel1(bf16* out, const bf16* gu, int T, int F) {
    const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= static_cast<size_t>(T) * F) return;
    const size_t t = idx / F, i = idx % F;
    const float g = __bfloat162float(gu[t * 2 * F + i]);
    const float u = __bfloat162float(gu[t * 2 * F + F + i]);
    out[idx] = __float2bfloat16(g / (1.0f + expf(-g)) * u);
}

// ----------------------------------------------------------------------------
// kernel launchers

void swiglu_forward(bf16* out, const bf16* gu, int T, int F, cudaStream_t stream) {
    const size_t n = static_cast<size_t>(T) * F;
    if (n == 0) return;
    const int block_size = 256;
    swiglu_forward_kernel1<<<static_cast<unsigned>((n + block_size - 1) / block_size), block_size, 0, stream>>>(
        out, gu, T, F);
    CUDA_CHECK_LAST();
}

}  // namespace sp
