// swiglu.cu: the SwiGLU activation, silu(gate) * up, on the fused gate|up
// projection's output, whose columns come gate/up interleaved in groups of
// kGluGroup (kernels.h). The projections of a few tokens fuse this into
// their epilogue (gemv.cu); this kernel serves the cuBLAS path.
#include "engine/kernels.h"

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

// One thread per group of kGluGroup (8) outputs: one 16-byte load of the
// gate, one of the up, one 16-byte store. (One thread per element, with
// 2-byte accesses, took 17 us a layer at 256 tokens of qwen3-8b, 2.5x its
// bytes at copy bandwidth; H100, 2026-12-07.) silu in fp32 with expf (not
// __expf), as the reference computes x / (1 + exp(-x)).
__global__ void swiglu_forward_kernel1(bf16* out, const bf16* gu, int T, int F) {
    static_assert(kGluGroup == 8, "a group is one 16-byte vector");
    pdl_launch_dependents();
    const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // group
    pdl_wait();
    if (idx >= static_cast<size_t>(T) * F / kGluGroup) return;
    const uint4 g8 = reinterpret_cast<const uint4*>(gu)[2 * idx];  // (t, group i): gate at t*2F + 2*8*i
    const uint4 u8 = reinterpret_cast<const uint4*>(gu)[2 * idx + 1];
    const bf16* g = reinterpret_cast<const bf16*>(&g8);
    const bf16* u = reinterpret_cast<const bf16*>(&u8);
    uint4 o8;
    bf16* o = reinterpret_cast<bf16*>(&o8);
#pragma unroll
    for (int k = 0; k < kGluGroup; k++) {
        const float x = __bfloat162float(g[k]);
        o[k] = __float2bfloat16(x / (1.0f + expf(-x)) * __bfloat162float(u[k]));
    }
    reinterpret_cast<uint4*>(out)[idx] = o8;
}

// ----------------------------------------------------------------------------
// kernel launchers

void swiglu_forward(bf16* out, const bf16* gu, int T, int F, cudaStream_t stream) {
    if (F % kGluGroup != 0) cuda_throw("swiglu_forward: F must be a multiple of " + std::to_string(kGluGroup));
    const size_t n = static_cast<size_t>(T) * F / kGluGroup;  // threads
    if (n == 0) return;
    if (reinterpret_cast<uintptr_t>(out) % 16 || reinterpret_cast<uintptr_t>(gu) % 16)
        cuda_throw("swiglu_forward: out and gu must be 16-byte aligned");
    const int block_size = 256;
    launch_pdl(swiglu_forward_kernel1, static_cast<unsigned>((n + block_size - 1) / block_size), block_size, 0, stream,
               out, gu, T, F);
}

}  // namespace sp
