// gemv.cu: the projections of a forward of a few tokens (decode, verify),
//   y (T, n_out) = x (T, n_in) @ W (n_out, n_in)^T,   T <= kGemvMaxT,
// where cuBLAS's GEMM is far from the memory bound at n = T. The product is
// a stream of W: 2 n_in n_out bytes against 2 T n_in n_out flops, so the
// kernel aims at reading W once at full bandwidth whatever T is.
//
// kernel2 (kernel1, fp32 FMAs with 4 rows per warp, took 23.6 us against
// 17.4 us on the qkv shape at T = 1 and grew with T; the CPU loop in the
// tests is the reference): tensor cores, mma.sync m16n8k16 (bf16 in, fp32
// accumulate) with the weight rows as the m = 16 side and the tokens as the
// n = 8 side (two n-tiles for T 9..16), so the T FMAs per weight element
// cost nothing on the FP32 pipes and T = 8 streams W within 3 % of T = 1. A block owns MT x 16 consecutive output rows; its NW warps split
// n_in. Lane (g, q) = (lane / 4, lane % 4) loads 16-byte vectors of W rows g
// and g + 8 of each 16-row tile, and of x row (token) g, at the same columns
// 8 q .. 8 q + 7 of each 32-column chunk: the dot product does not care which
// k-slot a column lands in, only that A and B agree, and lanes of the same q
// (which share k-slots in both fragments) read the same columns. So W needs
// no shared memory and no shuffles. The first U chunks of W are loaded before
// pdl_wait (weights do not depend on the previous kernel). Partial sums meet
// in shared memory at the end, where the epilogue runs:
//   Bf16, Fp32   y = the product
//   AddFp32      y (fp32) += the product: the residual add of wo and w_down
//   SwiGLU       W's rows come gate/up interleaved in groups of kGluGroup (a
//                16-row tile is 8 gate rows then their 8 up rows), so one
//                lane holds gate and up of the same (row, token):
//                y (T, n_out / 2) = silu(bf16(gate)) * bf16(up), the same
//                roundings as the unfused GEMM + swiglu_forward.
//
// With an RmsnormInput the projection's input is rmsnorm(x) * w of the fp32
// residual stream: the lanes read x in fp32, form bf16(w * x) as the B
// operand and accumulate sum(x^2) on the side (each block reads all of x for
// its tokens anyway); the epilogue scales the dot products by rsqrt(mean +
// eps). The same function as rmsnorm_forward then the GEMM, with the scale
// applied after the product instead of before the bf16 rounding: the
// difference is within one rounding of the input. It removes the norm kernel
// and its launch from the critical path (the norm kernel took 11.8 us, 73
// calls per token, H100, 2026-11-23). Up to kGemvNormMaxT tokens only (see
// kernels.h).
#include "engine/kernels.h"

#include <cstdint>

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

__device__ __forceinline__ void mma_bf16_16816(float* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                               uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// A weight vector, read once: non-coherent, no L1 allocation, a 256-byte L2
// prefetch (the rest of those 256 bytes is the same row's next columns,
// which this block's warps read next).
// On an H100 (2026-11-23, T = 1, the forward's shapes in a graph) it beat
// __ldcs (evict-first) by 3 to 9 % per shape.
__device__ __forceinline__ uint4 load_weight(const uint4* p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }
__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

template <int MT, int NT, int NW, int U, bool NORM, Epilogue EPI>
__global__ void __launch_bounds__(32 * NW) gemv_kernel2(void* yv, const void* xv, const bf16* W, int T, int n_in,
                                                        int n_out, const bf16* norm_w, float eps) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane >> 2, q = lane & 3;
    const int row0 = blockIdx.x * 16 * MT;
    const int nvec = n_in / 8;
    const int nchunk = (nvec + 3) / 4;  // 32-column chunks
    // rows past the end re-read the last row; their sums are not written
    const uint4* wp[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int h = 0; h < 2; h++)
            wp[m][h] = reinterpret_cast<const uint4*>(
                W + static_cast<size_t>(min(row0 + 16 * m + 8 * h + g, n_out - 1)) * n_in);

    uint4 wv[U][MT][2];
    auto load_w = [&](int c0) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int v = (c0 + u) * 4 + q;
#pragma unroll
            for (int m = 0; m < MT; m++)
#pragma unroll
                for (int h = 0; h < 2; h++)
                    wv[u][m][h] = v < nvec ? load_weight(wp[m][h] + v) : make_uint4(0, 0, 0, 0);
        }
    };
    int c0 = warp * U;
    if (c0 < nchunk) load_w(c0);  // before the wait: the weights do not depend on the previous kernel
    pdl_wait();

    bool x_live[NT];
    size_t x_row[NT];
#pragma unroll
    for (int n = 0; n < NT; n++) {
        const int t = 8 * n + g;
        x_live[n] = t < T;
        x_row[n] = static_cast<size_t>(min(t, T - 1)) * n_in;
    }
    float acc[MT][NT][4], ss[NT];
#pragma unroll
    for (int n = 0; n < NT; n++) {
        ss[n] = 0.0f;
#pragma unroll
        for (int m = 0; m < MT; m++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[m][n][i] = 0.0f;
    }

    for (; c0 < nchunk; c0 += NW * U) {
        uint4 xb[U][NT];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int v = (c0 + u) * 4 + q;
            if constexpr (NORM) {
                const uint4 wn = v < nvec ? __ldg(reinterpret_cast<const uint4*>(norm_w) + v) : make_uint4(0, 0, 0, 0);
                const __nv_bfloat162* wn2 = reinterpret_cast<const __nv_bfloat162*>(&wn);
#pragma unroll
                for (int n = 0; n < NT; n++) {
                    float4 a = make_float4(0, 0, 0, 0), b = a;
                    if (v < nvec && x_live[n]) {
                        const float4* xp = reinterpret_cast<const float4*>(static_cast<const float*>(xv) + x_row[n]);
                        a = __ldg(xp + 2 * v);
                        b = __ldg(xp + 2 * v + 1);
                    }
                    ss[n] += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w + b.x * b.x + b.y * b.y + b.z * b.z +
                             b.w * b.w;
                    const float2 w0 = __bfloat1622float2(wn2[0]), w1 = __bfloat1622float2(wn2[1]),
                                 w2 = __bfloat1622float2(wn2[2]), w3 = __bfloat1622float2(wn2[3]);
                    __nv_bfloat162 o[4] = {__floats2bfloat162_rn(w0.x * a.x, w0.y * a.y),
                                           __floats2bfloat162_rn(w1.x * a.z, w1.y * a.w),
                                           __floats2bfloat162_rn(w2.x * b.x, w2.y * b.y),
                                           __floats2bfloat162_rn(w3.x * b.z, w3.y * b.w)};
                    xb[u][n] = *reinterpret_cast<const uint4*>(o);
                }
            } else {
#pragma unroll
                for (int n = 0; n < NT; n++)
                    xb[u][n] = v < nvec && x_live[n]
                                   ? __ldg(reinterpret_cast<const uint4*>(static_cast<const bf16*>(xv) + x_row[n]) + v)
                                   : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int m = 0; m < MT; m++)
#pragma unroll
                for (int n = 0; n < NT; n++) {
                    const uint4 a = wv[u][m][0], b = wv[u][m][1], xx = xb[u][n];
                    mma_bf16_16816(acc[m][n], a.x, b.x, a.y, b.y, xx.x, xx.y);
                    mma_bf16_16816(acc[m][n], a.z, b.z, a.w, b.w, xx.z, xx.w);
                }
        if (c0 + NW * U < nchunk) load_w(c0 + NW * U);
    }
    // the next kernel may start now: its blocks land as ours retire, and a
    // projection after us issues its weight loads before its own wait.
    // (Triggering at the start instead, letting kernels cascade further
    // ahead, was 1.3 % slower per decode step on an H100, 2026-11-23.)
    pdl_launch_dependents();

    // acc[m][n][i] of lane (g, q): row 16 m + g + (i >= 2 ? 8 : 0), token 8 n + 2 q + (i & 1)
    constexpr int kVals = MT * NT * 4;
    __shared__ float red[NW][kVals][32];
    __shared__ float ss_s[NW][NT * 8];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) red[warp][(m * NT + n) * 4 + i][lane] = acc[m][n][i];
    if constexpr (NORM) {
#pragma unroll
        for (int n = 0; n < NT; n++) {
            float v = ss[n];
            v += __shfl_xor_sync(0xffffffffu, v, 1);
            v += __shfl_xor_sync(0xffffffffu, v, 2);
            if (q == 0) ss_s[warp][n * 8 + g] = v;  // token 8 n + g, this warp's columns
        }
    }
    __syncthreads();
    // the norm's scale of token t (1 without a norm)
    auto scale = [&](int t) {
        if constexpr (NORM) {
            float v = 0.0f;
#pragma unroll
            for (int w = 0; w < NW; w++) v += ss_s[w][t];
            return rsqrtf(v / static_cast<float>(n_in) + eps);
        } else {
            return 1.0f;
        }
    };
    if constexpr (EPI == Epilogue::SwiGLU) {
        // one thread per (m, n, lane, i < 2): gate at i, up at i + 2
        bf16* y = static_cast<bf16*>(yv);
        const int n_act = n_out / 2;
        for (int e = threadIdx.x; e < MT * NT * 2 * 32; e += 32 * NW) {
            const int l = e % 32, i = (e / 32) % 2, mn = e / 64;
            const int m = mn / NT, n = mn % NT;
            float sg = 0.0f, su = 0.0f;
#pragma unroll
            for (int w = 0; w < NW; w++) {
                sg += red[w][mn * 4 + i][l];
                su += red[w][mn * 4 + i + 2][l];
            }
            const int t = 8 * n + 2 * (l & 3) + i;
            const int col = (row0 + 16 * m) / 2 + (l >> 2);  // the act column of gate row row0 + 16 m + g
            if (t < T && row0 + 16 * m < n_out) {
                const float sc = scale(t);
                y[static_cast<size_t>(t) * n_act + col] =
                    __float2bfloat16(silu(round_bf16(sg * sc)) * round_bf16(su * sc));
            }
        }
    } else {
        for (int e = threadIdx.x; e < kVals * 32; e += 32 * NW) {
            const int l = e % 32, k = e / 32, i = k % 4, mn = k / 4;
            const int m = mn / NT, n = mn % NT;
            float s = 0.0f;
#pragma unroll
            for (int w = 0; w < NW; w++) s += red[w][k][l];
            const int row = row0 + 16 * m + (l >> 2) + (i >= 2 ? 8 : 0);
            const int t = 8 * n + 2 * (l & 3) + (i & 1);
            if (t < T && row < n_out) {
                s *= scale(t);
                const size_t at = static_cast<size_t>(t) * n_out + row;
                if constexpr (EPI == Epilogue::Bf16)
                    static_cast<bf16*>(yv)[at] = __float2bfloat16(s);
                else if constexpr (EPI == Epilogue::Fp32)
                    static_cast<float*>(yv)[at] = s;
                else
                    static_cast<float*>(yv)[at] += s;
            }
        }
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

bool gemv_supported(const void* x, const bf16* W, int T, int n_in, int n_out, Epilogue epi) {
    return T >= 1 && T <= kGemvMaxT && n_in % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
           reinterpret_cast<uintptr_t>(W) % 16 == 0 && (epi != Epilogue::SwiGLU || n_out % (2 * kGluGroup) == 0);
}

namespace {

template <int MT, int NT, int NW, int U, bool NORM>
void launch2(void* y, Epilogue epi, const void* x, const bf16* W, int T, int n_in, int n_out, const bf16* nw,
             float eps, cudaStream_t stream) {
    const dim3 grid(ceil_div(n_out, 16 * MT)), block(32 * NW);
    switch (epi) {
        case Epilogue::Bf16:
            launch_pdl(gemv_kernel2<MT, NT, NW, U, NORM, Epilogue::Bf16>, grid, block, 0, stream, y, x, W, T, n_in,
                       n_out, nw, eps);
            break;
        case Epilogue::Fp32:
            launch_pdl(gemv_kernel2<MT, NT, NW, U, NORM, Epilogue::Fp32>, grid, block, 0, stream, y, x, W, T, n_in,
                       n_out, nw, eps);
            break;
        case Epilogue::AddFp32:
            launch_pdl(gemv_kernel2<MT, NT, NW, U, NORM, Epilogue::AddFp32>, grid, block, 0, stream, y, x, W, T,
                       n_in, n_out, nw, eps);
            break;
        case Epilogue::SwiGLU:
            launch_pdl(gemv_kernel2<MT, NT, NW, U, NORM, Epilogue::SwiGLU>, grid, block, 0, stream, y, x, W, T, n_in,
                       n_out, nw, eps);
            break;
    }
}

}  // namespace

void gemv_forward(void* y, Epilogue epi, const bf16* x, const bf16* W, int T, int n_in, int n_out,
                  cudaStream_t stream, const RmsnormInput* norm) {
    const void* in = norm ? static_cast<const void*>(norm->x) : static_cast<const void*>(x);
    if (!gemv_supported(in, W, T, n_in, n_out, epi))
        cuda_throw("gemv_forward: needs 1 <= T <= " + std::to_string(kGemvMaxT) +
                   ", n_in a multiple of 8, 16-byte aligned x and W, and for SwiGLU n_out a multiple of 16");
    const bf16* nw = norm ? norm->w : nullptr;
    if (norm && (T > kGemvNormMaxT || reinterpret_cast<uintptr_t>(nw) % 16 != 0))
        cuda_throw("gemv_forward: a fused norm needs T <= " + std::to_string(kGemvNormMaxT) +
                   " and 16-byte aligned norm weights");
    if (n_out == 0) return;
    const float eps = norm ? norm->eps : 0.0f;
    // Two shapes, from measurements on an H100 (2026-11-23, qwen3-8b, the
    // whole decode step in a graph): up to 8 tokens, 16 rows x 16 warps of 2
    // vectors in flight per lane (40 to 62 registers, so blocks of the next
    // kernel fit beside ours): 5.66 ms per step against 5.89 ms with 32 rows
    // x 8 warps x 4 vectors everywhere, although alone the two are within 1 %
    // of each other per layer. From 9 tokens (two n-tiles) the 32-row shape,
    // whose block reads x once for 32 rows: verify k = 15 took 1.14x of k = 0
    // with it against 1.28x with the 16-row shape.
    if (T <= 8) {
        if (nw) launch2<1, 1, 16, 2, true>(y, epi, in, W, T, n_in, n_out, nw, eps, stream);
        else launch2<1, 1, 16, 2, false>(y, epi, in, W, T, n_in, n_out, nw, eps, stream);
    } else {
        launch2<2, 2, 8, 4, false>(y, epi, in, W, T, n_in, n_out, nw, eps, stream);
    }
}

}  // namespace sp
