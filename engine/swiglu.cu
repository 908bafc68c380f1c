// swiglu.cu: the SwiGLU activation, silu(gate) * up, on the fused gate|up
// projection's output, whose columns come gate/up interleaved in groups of
// kGluGroup (kernels.h). The projections of a few tokens fuse this into
// their epilogue (gemv.cu); this kernel serves the cuBLAS path.
#include "engine/kernels.h"

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

// One thread per output element. silu in fp32 with expf (not __expf), as the
// reference computes x / (1 + exp(-x)).
__global__ void swiglu_forward_kernel1(bf16* out, const bf16* gu, int T, int F) {
    pdl_launch_dependents();
    const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    pdl_wait();
    if (idx >= static_cast<size_t>(T) * F) return;
    const size_t t = idx / F, i = idx % F;
    const size_t at = t * 2 * F + i / kGluGroup * 2 * kGluGroup + i % kGluGroup;  // gate; up kGluGroup later
    const float g = __bfloat162float(gu[at]);
    const float u = __bfloat162float(gu[at + kGluGroup]);
    out[idx] = __float2bfloat16(g / (1.0f + expf(-g)) * u);
}

// ----------------------------------------------------------------------------
// kernel launchers

void swiglu_forward(bf16* out, const bf16* gu, int T, int F, cudaStream_t stream) {
    if (F % kGluGroup != 0) cuda_throw("swiglu_forward: F must be a multiple of " + std::to_string(kGluGroup));
    const size_t n = static_cast<size_t>(T) * F;
    if (n == 0) return;
    const int block_size = 256;
    launch_pdl(swiglu_forward_kernel1, static_cast<unsigned>((n + block_size - 1) / block_size), block_size, 0, stream,
               out, gu, T, F);
}

}  // namespace sp
