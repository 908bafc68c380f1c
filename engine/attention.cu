// attention.cu: attention of a ragged batch over the paged KV cache.
//
// Each new token attends to its own sequence's positions 0..pos: the cached
// prefix and the new tokens up to itself (causal within the new ones), which
// kv_append (or rope_forward with the cache pointers) has already written
// into the cache.
//
// Two versions (llm.c's numbering):
//  - kernel1, the plain reference: one block per (token, query head), each
//    warp an online softmax in fp32 over every 4th key, the warps' partial
//    states merged at the end. Kept for the tests (attention_forward_reference)
//    and for head shapes kernel2 does not take.
//  - kernel2, flash-decoding on tensor cores: one block per (query tile, KV
//    head, key chunk). A query tile is up to QT consecutive tokens of one
//    sequence (a verify block of 1 + k, or QT-aligned pieces of a prefill
//    chunk), and the block serves all G = H / KVH query heads of its KV head
//    for all of them (QT G <= 64 rows, 16 per warp), so each K/V row is read
//    from memory once per (tile, KV head). The context is split into chunks
//    across blocks so that batch-1 decode fills the chip; each block leaves
//    an unnormalised partial (max m, sum l, acc) per query row, and a small
//    second kernel merges the chunks (skipped when there is one chunk: the
//    block then writes the output itself). A prefill chunk is many tiles of
//    one chunk each: the same kernel is the tiled causal prefill attention.
//    The first flash-decoding kernel did the same tiling with fp32 scalar
//    dot products through shared memory; its cost grew by about 4 us per
//    layer per token of a verify block and a 2,048-token prefill took 261 ms
//    (H100, 2026-11-23); with tensor cores, 65 ms (the whole forward).
//
// Tiles are found on the device: token t starts a tile when it is the first
// of its sequence in the batch, when its position does not follow the
// previous token's, or when its position is a multiple of QT; the tile runs
// on while positions follow one another and stay in the same QT-aligned
// group. The grid has one y-slot per token; slots that do not start a tile
// exit at once. The launch shape (chunk count) depends only on T, the
// number of sequences, max_blocks and block_size, so a token's result does
// not depend on its batch-mates' contexts, and a captured graph replays with
// the same split (attention_splits keys the graph).
//
// Batched decode is a stream of K/V bytes with little arithmetic, and its
// speed is the bytes each SM keeps in flight and how fast a block consumes
// them. The first kernel2 gave each warp 16 query rows, so a decode tile (G
// = 4 rows) kept one warp of four busy; at 256 sequences of 512 keys qwen3-8b's
// attention read 1.7 TB/s, 56 % of copy bandwidth, 55 % of the step (H100,
// 2026-12-07). Splits counted from the sequences, 3 stages of 32 keys and 3
// blocks per SM took the step from 20.2 to 16.0 ms, ncu then showed 39 % of
// warp stalls at the barrier: three warps waited while one computed. So
// warps left over by the rows split each stage's keys, 16 a step (a tile of
// <= 16 rows: 4 key groups; <= 32: 2), and merge their (m, l, O) through the
// idle stages at the end. Two stages: of 32 keys for chunks under
// kLongMinKeys, of 64 above. H100, 2026-12-07, the decode step's % of the
// roofline floor at R = 1 / 16 / 64 / 256 (bench_engine --batches):
//   3 stages of 32 keys, one warp computing     88.5 / 77.7 / 75.1 / 70.8
//   64-key stages everywhere (2 or 3 stages)    83.0 / 69.3 / 74.6 / 72.5
//   64-key stages, 2 everywhere                 83.0 / 69.5 / 76.1 / 74.6
//   32-key stages everywhere, 2                 89.9 / 79.6 / 76.6 / 73.8
//   32 below 256-key chunks, 64 above (this)    90.1 / 79.7 / 77.3 / 75.9
// (64-key stages cost small batches 6 to 12 %: 70 KB of shared memory a
// block against the GEMV's carve-out, a likely cause not yet profiled.)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "engine/kernels.h"

namespace sp {

namespace {
constexpr int kWarps = 4;
constexpr int kMaxD = 256;
constexpr int kDimsPerLane = kMaxD / 32;

// kernel2's shape
constexpr int kThreads2 = 128;      // 4 warps
constexpr int kWarps2 = kThreads2 / 32;
constexpr int kSub = 16;            // keys per warp step (one k-step of P V)
constexpr int kKeysShort = 32;      // keys per shared-memory stage, chunks below kLongMinKeys
constexpr int kKeysLong = 64;       // keys per stage for longer chunks
constexpr int kLongMinKeys = 256;
constexpr int kStages = 2;          // the cp.async pipeline: one stage in flight while one is used
constexpr int kBlocksPerSm2 = 3;    // register cap: 65536 / (3 * 128) = 170 registers a thread
constexpr int kMaxRows = 64;        // query rows per block: QT * G <= this
constexpr int kMaxSplits = 64;      // chunks per context, at most
constexpr int kMinChunk = 32;       // keys per chunk, at least (a multiple of kSub)

struct FlashShape {
    int qt = 0;       // tokens per query tile; 0: kernel2 does not take this head shape
    int splits = 0;   // key chunks
    int chunk = 0;    // keys per chunk
    int keys = 0;     // keys per stage: kKeysShort or kKeysLong
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

// The launch shape of kernel2, or qt = 0 when it does not apply (head_dim
// 16, 32, 64 or 128 are instantiated; at most 64 query heads per KV head).
// Splits make two waves of kBlocksPerSm2 blocks per SM over the tiles there
// are at least: one per sequence, and T / qt. (Counting T / qt alone took a
// decode batch of 16 for one tile and cut its 512 keys into 17 chunks of 32.)
FlashShape flash_shape(int T, int n_seqs, int H, int KVH, int D, int max_blocks, int block_size) {
    FlashShape f;
    const int G = H / KVH;
    if ((D != 16 && D != 32 && D != 64 && D != 128) || G > kMaxRows) return f;
    f.qt = std::min(16, kMaxRows / G);
    const int ctx_max = std::max(1, max_blocks * block_size);
    const int tiles = std::max(std::max(1, n_seqs), ceil_div(T, f.qt));
    const int want = ceil_div(2 * kBlocksPerSm2 * sm_count(), tiles * KVH);
    const int splits = std::max(1, std::min({want, kMaxSplits, ceil_div(ctx_max, kMinChunk)}));
    f.chunk = ceil_div(ceil_div(ctx_max, splits), kMinChunk) * kMinChunk;
    f.splits = ceil_div(ctx_max, f.chunk);
    f.keys = f.chunk >= kLongMinKeys ? kKeysLong : kKeysShort;
    return f;
}
}  // namespace

// ----------------------------------------------------------------------------
// CUDA kernels

__global__ void attention_forward_kernel1(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                                          const int* block_tables, int max_blocks, int block_size,
                                          const int* tok_seq, const int* tok_pos, int H, int KVH, int D) {
    pdl_launch_dependents();
    pdl_wait();
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

__device__ __forceinline__ void mma_16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    const int n = valid ? 16 : 0;  // 0: zero-fill
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(n));
}

// Grid (KVH, T, splits), kThreads2 threads (FlashAttention-2 style). A warp
// owns 16 query rows (row r = token r / G of the tile, head r % G of the
// group; a decode token's 4 rows fill a quarter of the tile, the tensor
// cores do not care) and, when the tile has fewer rows than 4 warps take, a
// share of the keys (rw, kw above); its Q stays in registers as A fragments
// of mma.sync m16n8k16 (bf16 in, fp32 accumulate). Per step of kSub keys of a
// stage (K and V through shared memory, kStages deep with cp.async): S = Q K^T (B
// fragments read straight from K rows), the online softmax on S's
// accumulator fragments in the log2 domain, then O += P V with P re-used
// from S's fragments as the A operand and V's B fragments from
// ldmatrix.trans. P goes in as two bf16 terms, hi = bf16(p) and lo =
// bf16(p - hi) (two mmas): P rounded to bf16 alone put errors of 2^-9 of
// sum p |v| into the output, up to 20x the tests' bound against kernel1's
// fp32 softmax; split, P carries 16 bits and the output only its own bf16
// rounding. Rows past the tile and keys past the chunk or the row's
// position are masked to -inf. Partials: (m, l) with m in log2 units, acc
// (D) unnormalised; work_ml[((t * H + h) * splits + s) * 2 + {0, 1}],
// work_acc[((t * H + h) * splits + s) * D + i].
template <int D>
constexpr int kSmemRow2 = D + 8;  // padded smem row (bf16): rows 16 bytes apart mod 128, no bank conflicts
template <int D, int Keys>
constexpr size_t kSmem2 = 2ull * kStages * Keys * kSmemRow2<D> * sizeof(bf16);  // K and V stages, dynamic

template <int D, int Keys>
__global__ void __launch_bounds__(kThreads2, kBlocksPerSm2) attention_forward_kernel2(
    bf16* out, float* work_ml, float* work_acc, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
    const int* block_tables, int max_blocks, int block_size, const int* tok_seq, const int* tok_pos, int T, int H,
    int KVH, int qt, int chunk, int splits) {
    static_assert(D % 16 == 0 && D <= 256, "head_dim: a multiple of 16, at most 256");
    constexpr int LD = kSmemRow2<D>;
    extern __shared__ __align__(16) unsigned char smem2[];
    constexpr int Stages = kStages;
    auto k_s = reinterpret_cast<bf16(*)[Keys][LD]>(smem2);             // [Stages][Keys][LD]
    auto v_s = reinterpret_cast<bf16(*)[Keys][LD]>(smem2 + kSmem2<D, Keys> / 2);
    pdl_launch_dependents();
    pdl_wait();
    // the longest tiles (prefill's last tokens) first
    const int t0 = T - 1 - static_cast<int>(blockIdx.y), g = blockIdx.x, split = blockIdx.z;
    const int seq = tok_seq[t0], pos0 = tok_pos[t0];
    if (t0 > 0 && tok_seq[t0 - 1] == seq && tok_pos[t0 - 1] + 1 == pos0 && pos0 % qt != 0) return;
    int n_tok = 1;
    while (t0 + n_tok < T && tok_seq[t0 + n_tok] == seq && tok_pos[t0 + n_tok] == pos0 + n_tok &&
           (pos0 + n_tok) % qt != 0)
        n_tok++;
    const int key_begin = split * chunk;
    const int n_ctx_tile = pos0 + n_tok;
    if (key_begin >= n_ctx_tile) return;
    const int key_end = min(key_begin + chunk, n_ctx_tile);

    const int G = H / KVH, rows = n_tok * G, kv_dim = KVH * D, width = (H + 2 * KVH) * D;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, gq = lane >> 2, qq = lane & 3;
    const int* table = block_tables + static_cast<size_t>(seq) * max_blocks;
    const float scale_log2 = rsqrtf(static_cast<float>(D)) * 1.44269504088896340736f;
    // warps of 16 rows, and the warps left over split each stage's keys:
    // warp (rw, kw) takes rows 16 rw.. and the 16-key steps kw, kw + key_groups, ..
    const int row_groups = rows <= 16 ? 1 : rows <= 32 ? 2 : kWarps2;
    const int key_groups = min(kWarps2 / row_groups, Keys / kSub);
    const int rw = warp % row_groups, kw = warp / row_groups;

    // this lane's two rows (gq and gq + 8 of the warp's 16) and their positions; -1: no such row
    int pos_r[2];
    const bf16* q_r[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = rw * 16 + gq + 8 * h;
        const bool live = r < rows;
        pos_r[h] = live ? pos0 + r / G : -1;
        q_r[h] = qkv + static_cast<size_t>(t0 + (live ? r / G : 0)) * width +
                 static_cast<size_t>(g * G + (live ? r % G : 0)) * D;
    }
    const bool warp_live = rw * 16 < rows && kw < key_groups;
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
        for (int j = 0; j < 4; j++) {  // a0: (row lo, k 2qq), a1: (row hi, 2qq), a2: (lo, 2qq + 8), a3: (hi, 2qq + 8)
            const int h = j & 1, col = 16 * kk + 2 * qq + 8 * (j >> 1);
            qf[kk][j] = pos_r[h] >= 0 ? *reinterpret_cast<const uint32_t*>(q_r[h] + col) : 0u;
        }

    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) o[n][i] = 0.0f;
    float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.0f, 0.0f};  // l: this lane's partial sum

    // Stage buf <- keys j0.. (those past key_end zero-filled), then a commit.
    // (Reading the block-table entries for all of a thread's copies first,
    // then copying, made 256 sequences 7 % slower; H100, 2026-12-07.)
    auto issue = [&](int buf, int j0) {
        for (int v = j0 < key_end ? tid : Keys * (D / 8); v < Keys * (D / 8); v += kThreads2) {
            const int j = v / (D / 8), c = v % (D / 8), key = j0 + j;
            const bool ok = key < key_end;
            size_t at = 0;
            if (ok) {
                const size_t row = static_cast<size_t>(table[key / block_size]) * block_size + key % block_size;
                at = row * kv_dim + static_cast<size_t>(g) * D + c * 8;
            }
            cp_async16(&k_s[buf][j][c * 8], k_cache + at, ok);
            cp_async16(&v_s[buf][j][c * 8], v_cache + at, ok);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    };

    // stage i lives in buffer i % Stages; groups are committed even when empty
    // (past key_end), so "stage i has landed" is always wait_group Stages - 1
    const int n_tiles = (key_end - key_begin + Keys - 1) / Keys;
#pragma unroll
    for (int i = 0; i < Stages - 1; i++) issue(i, key_begin + i * Keys);
    for (int i = 0; i < n_tiles; i++) {
        const int j0 = key_begin + i * Keys, buf = i % Stages;
        issue((i + Stages - 1) % Stages, j0 + (Stages - 1) * Keys);
        asm volatile("cp.async.wait_group %0;\n" ::"n"(Stages - 1));
        __syncthreads();
        for (int sub = kw; warp_live && sub < Keys / kSub && j0 + sub * kSub < key_end; sub += key_groups) {
            const int s0 = j0 + sub * kSub;  // this step's first key
            const bf16(*ks)[LD] = &k_s[buf][sub * kSub];
            const bf16(*vs)[LD] = &v_s[buf][sub * kSub];
            // S = Q K^T: 2 n-tiles of 8 keys
            float sc[kSub / 8][4];
#pragma unroll
            for (int n = 0; n < kSub / 8; n++) {
#pragma unroll
                for (int i = 0; i < 4; i++) sc[n][i] = 0.0f;
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++) {
                    const bf16* kr = &ks[8 * n + gq][16 * kk + 2 * qq];
                    mma_16816(sc[n], qf[kk], *reinterpret_cast<const uint32_t*>(kr),
                              *reinterpret_cast<const uint32_t*>(kr + 8));
                }
            }
            // mask, scale, online softmax (rows lo: i = 0, 1; hi: i = 2, 3)
            float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int n = 0; n < kSub / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int key = s0 + 8 * n + 2 * qq + (i & 1), h = i >> 1;
                    sc[n][i] = key < key_end && key <= pos_r[h] ? sc[n][i] * scale_log2 : -INFINITY;
                    mx[h] = fmaxf(mx[h], sc[n][i]);
                }
            float corr[2];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
                const float m_new = fmaxf(m_r[h], mx[h]);
                // m_new = -inf: no key for this row yet; keep everything at zero
                corr[h] = m_new == -INFINITY ? 1.0f : exp2f(m_r[h] - m_new);
                m_r[h] = m_new;
                l_r[h] *= corr[h];
            }
#pragma unroll
            for (int n = 0; n < kSub / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int h = i >> 1;
                    const float p = m_r[h] == -INFINITY ? 0.0f : exp2f(sc[n][i] - m_r[h]);
                    sc[n][i] = p;
                    l_r[h] += p;
                }
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                o[n][0] *= corr[0];
                o[n][1] *= corr[0];
                o[n][2] *= corr[1];
                o[n][3] *= corr[1];
            }
            // O += P V over the 16 keys; P's A fragment from the two S n-tiles
            uint32_t pa[4], pl[4];  // P's A fragment, hi and lo terms
#pragma unroll
            for (int j = 0; j < 4; j++) {  // j: (row lo, keys +0), (hi, +0), (lo, +8), (hi, +8)
                const float* e = &sc[j >> 1][2 * (j & 1)];
                pa[j] = pack_bf16(e[0], e[1]);
                const __nv_bfloat162 h = *reinterpret_cast<const __nv_bfloat162*>(&pa[j]);
                pl[j] = pack_bf16(e[0] - __low2float(h), e[1] - __high2float(h));
            }
#pragma unroll
            for (int n = 0; n < D / 8; n += 2) {
                // matrices: keys +0..7 / +8..15, dims 8 n / 8 (n + 1)
                const int mat = lane >> 3;
                const bf16* src = &vs[(mat & 1) * 8 + (lane & 7)][8 * (n + (mat >> 1))];
                uint32_t b0, b1, b2, b3;
                asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                             : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3)
                             : "r"(static_cast<unsigned>(__cvta_generic_to_shared(src))));
                mma_16816(o[n], pa, b0, b1);
                mma_16816(o[n], pl, b0, b1);
                mma_16816(o[n + 1], pa, b2, b3);
                mma_16816(o[n + 1], pl, b2, b3);
            }
        }
        __syncthreads();  // the next iteration refills the stage used before this one
    }
    asm volatile("cp.async.wait_group 0;\n" ::);  // the empty trailing groups, before the block exits

    // the rows' sums over the 4 lanes of a row
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l_r[h] += __shfl_xor_sync(0xffffffffu, l_r[h], 1);
        l_r[h] += __shfl_xor_sync(0xffffffffu, l_r[h], 2);
    }
    // Key groups merge into kw = 0 through the (now idle) stages: each lane
    // holds the same fragment positions in every warp, so lane reads lane.
    if (key_groups > 1) {
        constexpr int kSlots = D / 2 + 4;  // per lane: o (D / 8 x 4), m_r, l_r
        static_assert(kWarps2 * kSlots * 32 * sizeof(float) <= kSmem2<D, Keys>, "merge area within the stages");
        float* xs = reinterpret_cast<float*>(smem2);
        auto slot = [&](int w, int s) -> float& { return xs[(w * kSlots + s) * 32 + lane]; };
        if (kw > 0 && warp_live) {  // (a warp past key_groups holds nothing)
#pragma unroll
            for (int n = 0; n < D / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) slot(warp, 4 * n + i) = o[n][i];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                slot(warp, D / 2 + h) = m_r[h];
                slot(warp, D / 2 + 2 + h) = l_r[h];
            }
        }
        __syncthreads();
        if (kw > 0) return;
        for (int k = 1; k < key_groups && warp_live; k++) {
            const int w = warp + k * row_groups;
            float a[2], b[2];  // weights of the state so far and of warp w's
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float m_w = slot(w, D / 2 + h), m_new = fmaxf(m_r[h], m_w);
                a[h] = m_r[h] == -INFINITY ? 0.0f : exp2f(m_r[h] - m_new);
                b[h] = m_w == -INFINITY ? 0.0f : exp2f(m_w - m_new);
                l_r[h] = a[h] * l_r[h] + b[h] * slot(w, D / 2 + 2 + h);
                m_r[h] = m_new;
            }
#pragma unroll
            for (int n = 0; n < D / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) o[n][i] = a[i >> 1] * o[n][i] + b[i >> 1] * slot(w, 4 * n + i);
        }
    }
    if (!warp_live) return;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        if (pos_r[h] < 0) continue;
        const int r = rw * 16 + gq + 8 * h;
        const int t = t0 + r / G, head = g * G + r % G;
        if (splits == 1) {
            const float inv = 1.0f / l_r[h];  // l > 0: key 0 is always in range
            bf16* dst = out + static_cast<size_t>(t) * H * D + static_cast<size_t>(head) * D;
#pragma unroll
            for (int n = 0; n < D / 8; n++)
                *reinterpret_cast<uint32_t*>(dst + 8 * n + 2 * qq) = pack_bf16(o[n][2 * h] * inv, o[n][2 * h + 1] * inv);
        } else {
            const size_t base = static_cast<size_t>(t * H + head) * splits + split;
            float* a = work_acc + base * D;
#pragma unroll
            for (int n = 0; n < D / 8; n++)
                *reinterpret_cast<float2*>(a + 8 * n + 2 * qq) = make_float2(o[n][2 * h], o[n][2 * h + 1]);
            if (qq == 0) {
                work_ml[base * 2] = m_r[h];
                work_ml[base * 2 + 1] = l_r[h];
            }
        }
    }
}

// Grid (T, H), D threads rounded up to a warp: merges the chunks token t
// reached, ceil((pos + 1) / chunk), each with l > 0 (its first key is <= pos).
// Warp 0 turns the (m, l) pairs into weights 2^(m_s - M) / L at once (m in
// log2 units); the accumulator loads are then independent. (A serial loop over the pairs took 5.4 us at 17
// chunks, H100, 2026-11-23.)
__global__ void attention_merge_kernel(bf16* out, const float* work_ml, const float* work_acc, const int* tok_pos,
                                       int H, int D, int chunk, int splits) {
    pdl_launch_dependents();
    pdl_wait();
    const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x;
    const int n = min(splits, (tok_pos[t] + chunk) / chunk);
    const size_t base = static_cast<size_t>(t * H + h) * splits;
    __shared__ float w_s[kMaxSplits];
    if (i < 32) {
        float m[kMaxSplits / 32], l[kMaxSplits / 32], M = -INFINITY;
#pragma unroll
        for (int k = 0; k < kMaxSplits / 32; k++) {
            const int s = i + 32 * k;
            m[k] = s < n ? work_ml[(base + s) * 2] : -INFINITY;
            l[k] = s < n ? work_ml[(base + s) * 2 + 1] : 0.0f;
            M = fmaxf(M, m[k]);
        }
        M = warp_max(M);
        float L = 0.0f;
#pragma unroll
        for (int k = 0; k < kMaxSplits / 32; k++) {
            m[k] = i + 32 * k < n ? exp2f(m[k] - M) : 0.0f;
            L += m[k] * l[k];
        }
        L = warp_sum(L);
#pragma unroll
        for (int k = 0; k < kMaxSplits / 32; k++)
            if (i + 32 * k < n) w_s[i + 32 * k] = m[k] / L;
    }
    __syncthreads();
    if (i < D) {
        float sum = 0.0f;
        for (int s = 0; s < n; s++) sum += w_s[s] * work_acc[(base + s) * D + i];
        out[static_cast<size_t>(t) * H * D + static_cast<size_t>(h) * D + i] = __float2bfloat16(sum);
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

void attention_forward_reference(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                                 const int* block_tables, int max_blocks, int block_size, const int* tok_seq,
                                 const int* tok_pos, int T, int H, int KVH, int D, cudaStream_t stream) {
    if (D > kMaxD || KVH <= 0 || H % KVH != 0)
        cuda_throw("attention_forward: needs head_dim <= " + std::to_string(kMaxD) + " and KVH dividing H");
    if (T == 0) return;
    launch_pdl(attention_forward_kernel1, dim3(T, H), 32 * kWarps, 0, stream, out, qkv, k_cache, v_cache,
               block_tables, max_blocks, block_size, tok_seq, tok_pos, H, KVH, D);
}

int attention_splits(int T, int n_seqs, int H, int KVH, int D, int max_blocks, int block_size) {
    if (KVH <= 0 || H % KVH != 0) return 0;
    return flash_shape(T, n_seqs, H, KVH, D, max_blocks, block_size).splits;
}

size_t attention_workspace_bytes(int T, int H, int KVH, int D, int max_blocks, int block_size) {
    if (KVH <= 0 || H % KVH != 0) return 0;
    // one sequence: the fewest tiles, so the most splits any n_seqs asks for
    const FlashShape f = flash_shape(T, 1, H, KVH, D, max_blocks, block_size);
    if (f.qt == 0 || f.splits == 1) return 0;
    return static_cast<size_t>(T) * H * f.splits * (D + 2) * sizeof(float) + 256;
}

void attention_forward(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                       const int* block_tables, int max_blocks, int block_size, const int* tok_seq,
                       const int* tok_pos, int T, int n_seqs, int H, int KVH, int D, void* work, size_t work_bytes,
                       cudaStream_t stream) {
    if (D > kMaxD || KVH <= 0 || H % KVH != 0)
        cuda_throw("attention_forward: needs head_dim <= " + std::to_string(kMaxD) + " and KVH dividing H");
    if (T == 0) return;
    if (T > 65535) cuda_throw("attention_forward: " + std::to_string(T) + " tokens, the grid's y takes 65535");
    const FlashShape f = flash_shape(T, n_seqs, H, KVH, D, max_blocks, block_size);
    if (f.qt == 0) {  // a head shape kernel2 does not take
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
    const dim3 grid(KVH, T, f.splits);
    using Kernel2 = void (*)(bf16*, float*, float*, const bf16*, const bf16*, const bf16*, const int*, int, int,
                             const int*, const int*, int, int, int, int, int, int);
    Kernel2 k2 = nullptr;
    size_t smem = 0;
    auto pick = [&](auto d, auto keys) {
        constexpr int kD = decltype(d)::value, kS = decltype(keys)::value;
        if (D != kD || f.keys != kS) return;
        k2 = attention_forward_kernel2<kD, kS>;
        smem = kSmem2<kD, kS>;
        static const bool opted_in = [] {  // above 48 KB of dynamic shared memory is opt-in, per kernel
            CUDA_CHECK(cudaFuncSetAttribute(attention_forward_kernel2<kD, kS>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(kSmem2<kD, kS>)));
            return true;
        }();
        (void)opted_in;
    };
    auto per_d = [&](auto d) {
        pick(d, std::integral_constant<int, kKeysShort>{});
        pick(d, std::integral_constant<int, kKeysLong>{});
    };
    per_d(std::integral_constant<int, 16>{});
    per_d(std::integral_constant<int, 32>{});
    per_d(std::integral_constant<int, 64>{});
    per_d(std::integral_constant<int, 128>{});
    launch_pdl(k2, grid, kThreads2, smem, stream, out, work_ml, work_acc, qkv, k_cache, v_cache, block_tables,
               max_blocks, block_size, tok_seq, tok_pos, T, H, KVH, f.qt, f.chunk, f.splits);
    if (f.splits > 1)
        launch_pdl(attention_merge_kernel, dim3(T, H), ceil_div(D, 32) * 32, 0, stream, out, work_ml, work_acc,
                   tok_pos, H, D, f.chunk, f.splits);
}

}  // namespace sp
