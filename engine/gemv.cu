// gemv.cu: the projections of a forward of a few tokens (decode, verify),
//   y (T, n_out) = x (T, n_in) @ W (n_out, n_in)^T,   T <= kGemvMaxT,
// where cuBLAS's GEMM is far from the memory bound at n = T. The product is
// a stream of W: 2 n_in n_out bytes against 2 T n_in n_out flops, so the
// kernel aims at reading W once at full bandwidth. Each warp owns kRows
// consecutive output rows for all T tokens: its lanes walk the rows in
// 16-byte vectors (8 bf16), kUnroll vectors per row in flight before the
// first use, W with evict-first loads (read once), x through the read-only
// cache (re-read by every warp, small). fp32 accumulation in registers, one
// warp reduction per (row, token) at the end. T is a template parameter.
#include "engine/kernels.h"

#include <cstdint>

namespace sp {

namespace {
constexpr int kRows = 4;     // output rows per warp: x's loads and conversions are shared by these
constexpr int kUnroll = 4;   // 16-byte vectors per lane per row in flight
constexpr int kWarpsPerBlock = 4;
}  // namespace

// ----------------------------------------------------------------------------
// CUDA kernels

__device__ __forceinline__ void unpack8(const uint4& u, float* f) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 p = __bfloat1622float2(h[i]);
        f[2 * i] = p.x;
        f[2 * i + 1] = p.y;
    }
}

template <int T, typename OutT>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) gemv_kernel1(OutT* y, const bf16* x, const bf16* W, int n_in,
                                                                    int n_out) {
    const int lane = threadIdx.x % 32;
    const int row0 = (blockIdx.x * kWarpsPerBlock + threadIdx.x / 32) * kRows;
    if (row0 >= n_out) return;
    const int nvec = n_in / 8;
    const uint4* w[kRows];
#pragma unroll
    for (int r = 0; r < kRows; r++)  // rows past the end re-read the last row; their sums are not written
        w[r] = reinterpret_cast<const uint4*>(W + static_cast<size_t>(min(row0 + r, n_out - 1)) * n_in);
    const uint4* xv = reinterpret_cast<const uint4*>(x);

    float acc[kRows][T];
#pragma unroll
    for (int r = 0; r < kRows; r++)
#pragma unroll
        for (int t = 0; t < T; t++) acc[r][t] = 0.0f;

    for (int v0 = lane; v0 < nvec; v0 += 32 * kUnroll) {
        uint4 wv[kUnroll][kRows];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            const int v = v0 + 32 * u;
#pragma unroll
            for (int r = 0; r < kRows; r++) wv[u][r] = v < nvec ? __ldcs(w[r] + v) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            const int v = v0 + 32 * u;
            if (v < nvec) {
                // each W vector is converted once and each x vector once per kRows rows:
                // at T = 8 the conversions, not the FMAs, would otherwise bound the kernel
                float wf[kRows][8];
#pragma unroll
                for (int r = 0; r < kRows; r++) unpack8(wv[u][r], wf[r]);
#pragma unroll
                for (int t = 0; t < T; t++) {
                    float xf[8];
                    unpack8(__ldg(xv + static_cast<size_t>(t) * nvec + v), xf);
#pragma unroll
                    for (int r = 0; r < kRows; r++)
#pragma unroll
                        for (int k = 0; k < 8; k++) acc[r][t] = fmaf(wf[r][k], xf[k], acc[r][t]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < kRows; r++)
#pragma unroll
        for (int t = 0; t < T; t++) {
            const float s = warp_sum(acc[r][t]);
            if (lane == (r * T + t) % 32 && row0 + r < n_out) {
                if constexpr (sizeof(OutT) == 4)
                    y[static_cast<size_t>(t) * n_out + row0 + r] = s;
                else
                    y[static_cast<size_t>(t) * n_out + row0 + r] = __float2bfloat16(s);
            }
        }
}

// ----------------------------------------------------------------------------
// kernel launchers

bool gemv_supported(const bf16* x, const bf16* W, int T, int n_in) {
    return T >= 1 && T <= kGemvMaxT && n_in % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
           reinterpret_cast<uintptr_t>(W) % 16 == 0;
}

namespace {
template <int T>
void launch(void* y, bool y_fp32, const bf16* x, const bf16* W, int n_in, int n_out, cudaStream_t stream) {
    const int blocks = ceil_div(n_out, kRows * kWarpsPerBlock);
    if (y_fp32)
        gemv_kernel1<T, float><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(static_cast<float*>(y), x, W, n_in, n_out);
    else
        gemv_kernel1<T, bf16><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(static_cast<bf16*>(y), x, W, n_in, n_out);
    CUDA_CHECK_LAST();
}
}  // namespace

void gemv_forward(void* y, bool y_fp32, const bf16* x, const bf16* W, int T, int n_in, int n_out,
                  cudaStream_t stream) {
    if (!gemv_supported(x, W, T, n_in))
        cuda_throw("gemv_forward: needs 1 <= T <= " + std::to_string(kGemvMaxT) +
                   ", n_in a multiple of 8 and 16-byte aligned x and W");
    if (n_out == 0) return;
    switch (T) {
        case 1: launch<1>(y, y_fp32, x, W, n_in, n_out, stream); break;
        case 2: launch<2>(y, y_fp32, x, W, n_in, n_out, stream); break;
        case 3: launch<3>(y, y_fp32, x, W, n_in, n_out, stream); break;
        case 4: launch<4>(y, y_fp32, x, W, n_in, n_out, stream); break;
        case 5: launch<5>(y, y_fp32, x, W, n_in, n_out, stream); break;
        case 6: launch<6>(y, y_fp32, x, W, n_in, n_out, stream); break;
        case 7: launch<7>(y, y_fp32, x, W, n_in, n_out, stream); break;
        default: launch<8>(y, y_fp32, x, W, n_in, n_out, stream); break;
    }
}

}  // namespace sp
