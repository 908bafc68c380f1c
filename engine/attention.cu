// attention.cu: attention of a ragged batch over the paged KV cache.
//
// Each new token attends to its own sequence's positions 0..pos: the cached
// prefix and the new tokens up to itself (causal within the new ones), which
// kv_append has already written into the cache.
//
// Two versions (llm.c's numbering):
//  - kernel1, the plain reference: one block per (token, query head), each
//    warp an online softmax in fp32 over every 4th key, the warps' partial
//    states merged at the end. Kept for the tests (attention_forward_reference).
//  - kernel2, flash-decoding: one block per (query tile, KV head, key chunk).
//    A query tile is up to QT consecutive tokens of one sequence (a verify
//    block of 1 + k, or QT-aligned pieces of a prefill chunk), and the block
//    serves all H / KVH query heads of its KV head for all of them, so each
//    K/V row is read from memory once per (tile, KV head). The context is
//    split into chunks across blocks so that batch-1 decode fills the chip;
//    each block leaves an unnormalised partial (max m, sum l, acc) per query
//    row, and a small second kernel merges the chunks (skipped when there is
//    one chunk: the block then writes the output itself). K/V rows go through
//    shared memory in tiles of 32 keys with 16-byte loads; all math in fp32.
//
// Tiles are found on the device: token t starts a tile when it is the first
// of its sequence in the batch, when its position does not follow the
// previous token's, or when its position is a multiple of QT; the tile runs
// on while positions follow one another and stay in the same QT-aligned
// group. The grid has one x-slot per token; slots that do not start a tile
// exit at once. The launch shape (chunk count) depends only on T, max_blocks
// and block_size, so a token's result does not depend on its batch-mates'
// contexts, and a captured graph replays with the same split.
#include <algorithm>
#include <cmath>

#include "engine/kernels.h"

namespace sp {

namespace {
constexpr int kWarps = 4;
constexpr int kMaxD = 256;
constexpr int kDimsPerLane = kMaxD / 32;

// kernel2's shape
constexpr int kThreads2 = 128;
constexpr int kKeys = 32;           // keys per shared-memory tile
constexpr int kQElems = 8192;       // bf16 elements of q per block (16 KB): QT * G * D <= this
constexpr int kMaxRows = 64;        // query rows per block: QT * G <= this
constexpr int kMaxSplits = 64;      // chunks per context, at most
constexpr int kMinChunk = 32;       // keys per chunk, at least
constexpr int kGroups = kQElems / 8 / kThreads2;  // 8-dim acc groups per thread, at most (rows * D <= kQElems)
constexpr int kKPad = 8;            // bf16 padding per K/V row in shared memory (16 bytes: no bank conflicts)

struct FlashShape {
    int qt = 0;       // tokens per query tile
    int splits = 0;   // key chunks
    int chunk = 0;    // keys per chunk
};

int sm_count() {
    static int n = 0;
    if (n == 0) {
        int dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    }
    return n;
}

// The launch shape of kernel2, or qt = 0 when it does not apply.
FlashShape flash_shape(int T, int H, int KVH, int D, int max_blocks, int block_size) {
    FlashShape f;
    const int G = H / KVH;
    if (D % 8 != 0 || D > kMaxD || G > kMaxRows) return f;
    f.qt = std::max(1, std::min({16, kQElems / (G * D), kMaxRows / G}));
    const int ctx_max = std::max(1, max_blocks * block_size);
    const int tiles = ceil_div(T, f.qt);
    const int want = ceil_div(2 * sm_count(), tiles * KVH);
    const int splits = std::max(1, std::min({want, kMaxSplits, ceil_div(ctx_max, kMinChunk)}));
    f.chunk = ceil_div(ceil_div(ctx_max, splits), kKeys) * kKeys;
    f.splits = ceil_div(ctx_max, f.chunk);
    return f;
}
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

// 8 bf16 <-> fp32
__device__ __forceinline__ void unpack8(const uint4& u, float* f) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 p = __bfloat1622float2(h[i]);
        f[2 * i] = p.x;
        f[2 * i + 1] = p.y;
    }
}

// Grid (T, KVH, splits), kThreads2 threads. Partials: for query row
// (t, h) and chunk s, work_ml[((t * H + h) * splits + s) * 2 + {0, 1}] = (m, l)
// and work_acc[((t * H + h) * splits + s) * D + i] = acc_i (unnormalised).
// Dynamic shared memory: q (rows, D) bf16, K and V (kKeys, D + kKPad) bf16,
// p (rows, kKeys) fp32.
__global__ void __launch_bounds__(kThreads2) attention_forward_kernel2(
    bf16* out, float* work_ml, float* work_acc, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
    const int* block_tables, int max_blocks, int block_size, const int* tok_seq, const int* tok_pos, int T, int H,
    int KVH, int D, int qt, int chunk, int splits) {
    const int t0 = blockIdx.x, g = blockIdx.y, split = blockIdx.z;
    const int seq = tok_seq[t0], pos0 = tok_pos[t0];
    // does t0 start a tile? (see the file comment)
    if (t0 > 0 && tok_seq[t0 - 1] == seq && tok_pos[t0 - 1] + 1 == pos0 && pos0 % qt != 0) return;
    int n_tok = 1;
    while (t0 + n_tok < T && tok_seq[t0 + n_tok] == seq && tok_pos[t0 + n_tok] == pos0 + n_tok &&
           (pos0 + n_tok) % qt != 0)
        n_tok++;
    const int key_begin = split * chunk;
    const int n_ctx_tile = pos0 + n_tok;  // keys the tile's last token sees
    if (key_begin >= n_ctx_tile) return;  // the merge does not read this chunk for these tokens
    const int key_end = min(key_begin + chunk, n_ctx_tile);

    const int G = H / KVH, rows = n_tok * G, kv_dim = KVH * D, width = (H + 2 * KVH) * D;
    const int D8 = D / 8, ld = D + kKPad;  // 16-byte vectors per row; padded row stride in bf16
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int* table = block_tables + static_cast<size_t>(seq) * max_blocks;
    const float scale = rsqrtf(static_cast<float>(D));

    extern __shared__ __align__(16) unsigned char smem[];
    bf16* q_s = reinterpret_cast<bf16*>(smem);                  // (rows, D); row r = (token r / G, head r % G)
    bf16* k_s = q_s + static_cast<size_t>(qt) * G * D;    // (kKeys, ld)
    bf16* v_s = k_s + kKeys * ld;                               // (kKeys, ld)
    float* p_s = reinterpret_cast<float*>(v_s + kKeys * ld);    // (rows, kKeys)
    __shared__ float m_s[kMaxRows], l_s[kMaxRows], corr_s[kMaxRows];

    for (int v = tid; v < rows * D8; v += kThreads2) {
        const int r = v / D8, c = v % D8;
        const int t = t0 + r / G, h = g * G + r % G;
        reinterpret_cast<uint4*>(q_s)[v] =
            *reinterpret_cast<const uint4*>(qkv + static_cast<size_t>(t) * width + static_cast<size_t>(h) * D + c * 8);
    }
    for (int r = tid; r < rows; r += kThreads2) {
        m_s[r] = -INFINITY;
        l_s[r] = 0.0f;
    }

    // this thread's accumulators: 8-dim groups e = tid + kThreads2 * i of (rows, D8)
    float acc[kGroups][8];
#pragma unroll
    for (int i = 0; i < kGroups; i++)
#pragma unroll
        for (int k = 0; k < 8; k++) acc[i][k] = 0.0f;

    for (int j0 = key_begin; j0 < key_end; j0 += kKeys) {
        const int n_keys = min(kKeys, key_end - j0);
        __syncthreads();  // the previous tile's readers are done (and q_s, m_s are written)
        for (int v = tid; v < n_keys * D8; v += kThreads2) {
            const int j = v / D8, c = v % D8, key = j0 + j;
            const size_t row = static_cast<size_t>(table[key / block_size]) * block_size + key % block_size;
            const size_t at = row * kv_dim + static_cast<size_t>(g) * D + c * 8;
            *reinterpret_cast<uint4*>(k_s + j * ld + c * 8) = *reinterpret_cast<const uint4*>(k_cache + at);
            *reinterpret_cast<uint4*>(v_s + j * ld + c * 8) = *reinterpret_cast<const uint4*>(v_cache + at);
        }
        __syncthreads();
        // scores: pair (r, j) = (p / kKeys, p % kKeys); masked keys get -inf
        for (int p = tid; p < rows * kKeys; p += kThreads2) {
            const int r = p / kKeys, j = p % kKeys, key = j0 + j;
            float s = -INFINITY;
            if (j < n_keys && key <= pos0 + r / G) {
                const uint4* qr = reinterpret_cast<const uint4*>(q_s + r * D);
                const uint4* kr = reinterpret_cast<const uint4*>(k_s + j * ld);
                float dot = 0.0f;
                for (int c = 0; c < D8; c++) {
                    float qf[8], kf[8];
                    unpack8(qr[c], qf);
                    unpack8(kr[c], kf);
#pragma unroll
                    for (int k = 0; k < 8; k++) dot += qf[k] * kf[k];
                }
                s = dot * scale;
            }
            p_s[p] = s;
        }
        __syncthreads();
        // online softmax per row: one warp per row, a lane per key
        for (int r = warp; r < rows; r += kThreads2 / 32) {
            const float s = p_s[r * kKeys + lane];
            const float m_old = m_s[r];
            const float m_new = fmaxf(m_old, warp_max(s));
            // m_new = -inf: no key of this tile for this row yet; keep everything at zero
            const float e = m_new == -INFINITY ? 0.0f : expf(s - m_new);
            const float corr = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
            const float sum = warp_sum(e);
            p_s[r * kKeys + lane] = e;
            __syncwarp();
            if (lane == 0) {
                m_s[r] = m_new;
                l_s[r] = l_s[r] * corr + sum;
                corr_s[r] = corr;
            }
        }
        __syncthreads();
        // acc (rows, D) = acc * corr + p (rows, keys) @ V (keys, D)
#pragma unroll
        for (int i = 0; i < kGroups; i++) {
            const int e = tid + kThreads2 * i;
            if (e < rows * D8) {
                const int r = e / D8, c = e % D8;
                const float corr = corr_s[r];
#pragma unroll
                for (int k = 0; k < 8; k++) acc[i][k] *= corr;
                const float* pr = p_s + r * kKeys;
                for (int j = 0; j < n_keys; j++) {
                    const float pj = pr[j];
                    float vf[8];
                    unpack8(*reinterpret_cast<const uint4*>(v_s + j * ld + c * 8), vf);
#pragma unroll
                    for (int k = 0; k < 8; k++) acc[i][k] += pj * vf[k];
                }
            }
        }
    }
    __syncthreads();  // l_s final

    // write: the output itself when there is one chunk, else the partials
#pragma unroll
    for (int i = 0; i < kGroups; i++) {
        const int e = tid + kThreads2 * i;
        if (e < rows * D8) {
            const int r = e / D8, c = e % D8;
            const int t = t0 + r / G, h = g * G + r % G;
            if (splits == 1) {
                const float inv = 1.0f / l_s[r];  // l > 0: key 0 is always in range
                alignas(16) bf16 o[8];
#pragma unroll
                for (int k = 0; k < 8; k++) o[k] = __float2bfloat16(acc[i][k] * inv);
                *reinterpret_cast<uint4*>(out + static_cast<size_t>(t) * H * D + static_cast<size_t>(h) * D + c * 8) =
                    *reinterpret_cast<const uint4*>(o);
            } else {
                float* a = work_acc + (static_cast<size_t>(t * H + h) * splits + split) * D + c * 8;
                *reinterpret_cast<float4*>(a) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
                *reinterpret_cast<float4*>(a + 4) = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
                if (c == 0) {
                    float* ml = work_ml + (static_cast<size_t>(t * H + h) * splits + split) * 2;
                    ml[0] = m_s[r];
                    ml[1] = l_s[r];
                }
            }
        }
    }
}

// Grid (T, H), D threads rounded up to a warp: merges the chunks token t
// reached, ceil((pos + 1) / chunk), each with l > 0 (its first key is <= pos).
__global__ void attention_merge_kernel(bf16* out, const float* work_ml, const float* work_acc, const int* tok_pos,
                                       int H, int D, int chunk, int splits) {
    const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x;
    const int n = min(splits, (tok_pos[t] + chunk) / chunk);
    const size_t base = static_cast<size_t>(t * H + h) * splits;
    float M = -INFINITY;
    for (int s = 0; s < n; s++) M = fmaxf(M, work_ml[(base + s) * 2]);
    float L = 0.0f, sum = 0.0f;
    for (int s = 0; s < n; s++) {
        const float w = expf(work_ml[(base + s) * 2] - M);
        L += w * work_ml[(base + s) * 2 + 1];
        if (i < D) sum += w * work_acc[(base + s) * D + i];
    }
    if (i < D) out[static_cast<size_t>(t) * H * D + static_cast<size_t>(h) * D + i] = __float2bfloat16(sum / L);
}

// ----------------------------------------------------------------------------
// kernel launchers

void attention_forward_reference(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                                 const int* block_tables, int max_blocks, int block_size, const int* tok_seq,
                                 const int* tok_pos, int T, int H, int KVH, int D, cudaStream_t stream) {
    if (D > kMaxD || KVH <= 0 || H % KVH != 0)
        cuda_throw("attention_forward: needs head_dim <= " + std::to_string(kMaxD) + " and KVH dividing H");
    if (T == 0) return;
    attention_forward_kernel1<<<dim3(T, H), 32 * kWarps, 0, stream>>>(
        out, qkv, k_cache, v_cache, block_tables, max_blocks, block_size, tok_seq, tok_pos, H, KVH, D);
    CUDA_CHECK_LAST();
}

size_t attention_workspace_bytes(int T, int H, int KVH, int D, int max_blocks, int block_size) {
    if (KVH <= 0 || H % KVH != 0) return 0;
    const FlashShape f = flash_shape(T, H, KVH, D, max_blocks, block_size);
    if (f.qt == 0 || f.splits == 1) return 0;
    return static_cast<size_t>(T) * H * f.splits * (D + 2) * sizeof(float) + 256;
}

void attention_forward(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                       const int* block_tables, int max_blocks, int block_size, const int* tok_seq,
                       const int* tok_pos, int T, int H, int KVH, int D, void* work, size_t work_bytes,
                       cudaStream_t stream) {
    if (D > kMaxD || KVH <= 0 || H % KVH != 0)
        cuda_throw("attention_forward: needs head_dim <= " + std::to_string(kMaxD) + " and KVH dividing H");
    if (T == 0) return;
    const FlashShape f = flash_shape(T, H, KVH, D, max_blocks, block_size);
    if (f.qt == 0) {  // a head shape kernel2 does not take (D not a multiple of 8, or > 64 heads per group)
        attention_forward_reference(out, qkv, k_cache, v_cache, block_tables, max_blocks, block_size, tok_seq,
                                    tok_pos, T, H, KVH, D, stream);
        return;
    }
    const size_t need = attention_workspace_bytes(T, H, KVH, D, max_blocks, block_size);
    if (work_bytes < need)
        cuda_throw("attention_forward: workspace of " + std::to_string(work_bytes) + " bytes, needs " +
                   std::to_string(need));
    float* work_ml = static_cast<float*>(work);
    float* work_acc = need ? work_ml + static_cast<size_t>(T) * H * f.splits * 2 : nullptr;
    const int G = H / KVH;
    const size_t smem = static_cast<size_t>(f.qt) * G * D * sizeof(bf16) + 2 * kKeys * (D + kKPad) * sizeof(bf16) +
                        static_cast<size_t>(f.qt) * G * kKeys * sizeof(float);
    static size_t smem_set = 0;
    if (smem > 48 * 1024 && smem > smem_set) {
        CUDA_CHECK(cudaFuncSetAttribute(attention_forward_kernel2, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
        smem_set = smem;
    }
    attention_forward_kernel2<<<dim3(T, KVH, f.splits), kThreads2, smem, stream>>>(
        out, work_ml, work_acc, qkv, k_cache, v_cache, block_tables, max_blocks, block_size, tok_seq, tok_pos, T, H,
        KVH, D, f.qt, f.chunk, f.splits);
    CUDA_CHECK_LAST();
    if (f.splits > 1) {
        attention_merge_kernel<<<dim3(T, H), ceil_div(D, 32) * 32, 0, stream>>>(out, work_ml, work_acc, tok_pos, H,
                                                                              D, f.chunk, f.splits);
        CUDA_CHECK_LAST();
    }
}

}  // namespace sp
