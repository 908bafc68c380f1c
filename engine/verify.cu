// verify.cu: lossless verification of draft blocks on the device (verify.h's
// rule), so that a verify step copies back 2 ints per sequence instead of its
// logits (T V fp32: 4.9 MB per verify block of 8 at qwen3's 152k vocabulary).
//
// One block per sequence, walking its drafts in order: row k decides draft
// k + 1 (greedy: is it the argmax; sampling: u_k q(d) < p_k(d)), and the
// walk stops at the first rejection, so the rows after it are never read.
// Then one draw: the argmax (greedy), the bonus from p_l after a full accept,
// or the residual max(0, p_n - q_n) after a rejection, all by Gumbel-max with
// the same counter_rng keys as verify_reference. The arithmetic is the CPU's
// expression for expression (p = exp(x / T - max) / sum, x / T by a separate
// fp32 multiply: no FMA contraction the CPU does not do); only the order of
// the sums over V and the last bits of expf/logf differ, so decisions can
// differ from the CPU's only where it is within a few ulps of a tie.
#include <cmath>

#include "engine/counter_rng.h"
#include "engine/kernels.h"

namespace sp {

namespace {

// Enough loads in flight for one SM to stream a 152k-entry row: the batch
// has only S blocks, so each must be wide.
constexpr int kThreads = 1024;

// Per-thread candidate update of a first-index-wins argmax scan; bi == V
// (no candidate yet) loses to anything, -inf included, as the CPU's `v == 0`.
__device__ __forceinline__ void argmax_update(float x, int v, float& best, int& bi, int V) {
    if (x > best || bi == V) {
        best = x;
        bi = v;
    }
}

// argmax of row (V) over the block, lowest index on ties.
__device__ int row_argmax(const float* row, int V) {
    float best = -INFINITY;
    int bi = V;
    for (int v = threadIdx.x; v < V; v += blockDim.x) argmax_update(row[v], v, best, bi, V);
    return block_argmax(best, bi);
}

// softmax_row's max and sum of logits / T: p_v = expf(x_v - mx) / sum with
// x_v = row[v] * inv_t. __fmul_rn keeps the product rounded on its own, as
// the CPU computes it (nvcc would otherwise fuse it into the subtraction).
__device__ void row_softmax_stats(const float* row, int V, float inv_t, float& mx, float& sum) {
    float m = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, __fmul_rn(row[v], inv_t));
    mx = block_max(m);
    float s = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(__fmul_rn(row[v], inv_t) - mx);
    sum = block_sum(s);
}

__device__ __forceinline__ float gumbel(uint64_t key, int v) { return -logf(-logf(counter_uniform(key, v))); }

}  // namespace

// ----------------------------------------------------------------------------
// CUDA kernels

// One block per sequence. Every thread walks the drafts in step: each
// decision comes out of a block-wide reduction that all threads receive, so
// control flow stays uniform and the __syncthreads inside the reductions are
// reached by the whole block.
__global__ void __launch_bounds__(kThreads)
    verify_forward_kernel1(int* n_accepted, int* next, const float* logits, const int* tokens,
                           const VerifySeq* seqs, const float* q, int q_gamma, int eos, uint64_t seed, int V) {
    const VerifySeq sq = seqs[blockIdx.x];
    const int ell = sq.q_len - 1;
    const float T = sq.temperature;
    const float inv_t = 1.0f / T;  // only read when T > 0
    const float* rows = logits + static_cast<size_t>(sq.first_row) * V;  // (q_len, V)
    const int* drafts = tokens + sq.first_row + 1;                         // (ell)
    // draft k's q row (V), or null for one-hot drafts
    auto q_of = [&](int k) -> const float* {
        return q ? q + (static_cast<size_t>(sq.q_row) * q_gamma + k) * V : nullptr;
    };
    const uint64_t coins = counter_row(seed, RNG_ACCEPT, sq.request, sq.anchor_pos);

    // --- accept drafts while the rule says so
    int n = 0;
    bool stopped = false;  // an accepted eos
    for (; n < ell; n++) {
        const float* row = rows + static_cast<size_t>(n) * V;
        const int d = drafts[n];
        bool accept;
        if (T <= 0.0f) {
            accept = d == row_argmax(row, V);
        } else {
            float mx, sum;
            row_softmax_stats(row, V, inv_t, mx, sum);
            const float pd = expf(__fmul_rn(row[d], inv_t) - mx) / sum;
            const float qd = q ? q_of(n)[d] : 1.0f;
            accept = counter_uniform(coins, n) * qd < pd;
        }
        if (!accept) break;
        if (d == eos) {
            n++;
            stopped = true;
            break;
        }
    }

    // --- the correction or the bonus, at the position after the accepted ones
    int tok = -1;
    if (!stopped) {
        const float* row = rows + static_cast<size_t>(n) * V;
        const uint64_t target = counter_row(seed, RNG_TARGET, sq.request, sq.anchor_pos + n + 1);
        if (T <= 0.0f) {
            tok = row_argmax(row, V);
        } else if (n == ell) {  // bonus: Gumbel-max over logits / T (a division, as sample_row)
            float best = -INFINITY;
            int bi = V;
            for (int v = threadIdx.x; v < V; v += blockDim.x)
                argmax_update(row[v] / T + gumbel(target, v), v, best, bi, V);
            tok = block_argmax(best, bi);
        } else {
            // Residual max(0, p - q) of the rejected draft. Both candidate
            // draws (over log r and over log p, for a residual without mass)
            // share the pass and the noise; the mass picks one.
            float mx, sum;
            row_softmax_stats(row, V, inv_t, mx, sum);
            const float* qn = q_of(n);
            const int d = drafts[n];
            float mass = 0.0f, best_r = -INFINITY, best_p = -INFINITY;
            int bi_r = V, bi_p = V;
            for (int v = threadIdx.x; v < V; v += blockDim.x) {
                const float p = expf(__fmul_rn(row[v], inv_t) - mx) / sum;
                const float r = fmaxf(0.0f, p - (qn ? qn[v] : (v == d ? 1.0f : 0.0f)));
                mass += r;
                const float g = gumbel(target, v);
                argmax_update((r > 0.0f ? logf(r) : -INFINITY) + g, v, best_r, bi_r, V);
                argmax_update((p > 0.0f ? logf(p) : -INFINITY) + g, v, best_p, bi_p, V);
            }
            mass = block_sum(mass);
            const int from_r = block_argmax(best_r, bi_r);
            const int from_p = block_argmax(best_p, bi_p);
            tok = mass > 1e-8f ? from_r : from_p;
        }
    }
    if (threadIdx.x == 0) {
        n_accepted[blockIdx.x] = n;
        next[blockIdx.x] = tok;
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

void verify_forward(int* n_accepted, int* next, const float* logits, const int* tokens, const VerifySeq* seqs,
                    const float* q, int q_gamma, int eos, uint64_t seed, int S, int V, cudaStream_t stream) {
    if (S == 0) return;
    verify_forward_kernel1<<<S, kThreads, 0, stream>>>(n_accepted, next, logits, tokens, seqs, q, q_gamma, eos, seed,
                                                      V);
    CUDA_CHECK_LAST();
}

}  // namespace sp
