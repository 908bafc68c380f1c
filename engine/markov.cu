// markov.cu: one step of the DSpark drafter's sequential loop (digest §1.2,
// §2.1), on the device, for every drafting request at once:
//   logits_k = U_k + W2 W1[x_{k-1}]              (the bias comes in from a GEMV)
//   z_k      = conf_w . [h_k ; W1[x_{k-1}]] + b,  c_k = sigma(z_k / sts_k)
//   x_k      = argmax logits_k                   (T = 0)
//            = argmax logits_k / T + g_v         (T > 0, Gumbel-max)
//   q_k      = softmax(logits_k / T)             (T > 0 only)
//   W1[x_k]  -> the next step's input            (x_k, or the forced token)
// The Gumbel noise is counter_rng.h's RNG_DRAFT row of (seed, request,
// anchor position), entry k V + v: the same draws, in the same fp32
// arithmetic, as the CPU reference's sample_row (verify.cpp), so the two
// drafters pick the same token wherever their logits agree to better than
// the top-2 margin. The previous token never leaves the device: the step
// writes its W1 row where the next step's GEMV (and confidence) read it, so
// a block of gamma drafts costs 2 gamma launches (3 when sampling) and no
// host round trip. The draft model's draw (Backend::sample) and the EAGLE-3
// drafter's are the same step without bias, Markov rows or confidence head.
//
// Layout: each (request, slot) row of V logits is split over up to
// kMaxSplits blocks, so that even one request keeps every SM reading (one
// block per request, as sampling.cu does, left 131 of 132 SMs idle: 65 us
// a step at R = 1 on Qwen3's 152k vocabulary, 8 % of a qwen3-8b round, H100,
// 2026-12-07). Each block reads its slice once: the draw and an online
// softmax (running max and rescaled sum) in one pass, into a partial of
// (best score, its index, max, sum). The block that finishes last (an atomic
// ticket per row) combines the partials: the token, q_token, the confidence
// head and the next W1 row. When sampling, a second kernel writes q from
// the combined max and sum, reading the slice again. Without a Markov head
// (DFlash) the steps do not depend on each other and one launch covers them
// all (grid z = steps).
#include <cmath>

#include "engine/counter_rng.h"
#include "engine/kernels.h"

namespace sp {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxSplits = 128;  // at most kThreads: the combine reads one partial per thread

// Logits per block: a multiple of kThreads, as few as make at most kMaxSplits blocks.
int split_chunk(int V) { return kThreads * ceil_div(V, kThreads * kMaxSplits); }

// The scratch: ticket counters (rows), then partials (rows, kMaxSplits) of
// float4 (best score, index bits, max, rescaled sum).
__host__ __device__ size_t scratch_count_bytes(int rows) {
    return (static_cast<size_t>(rows) * sizeof(unsigned) + 15) / 16 * 16;
}
// Row `row`'s partials, of a scratch laid out for `rows` rows.
__device__ float4* scratch_part(void* s, int rows, int row) {
    return reinterpret_cast<float4*>(static_cast<char*>(s) + scratch_count_bytes(rows)) +
           static_cast<size_t>(row) * kMaxSplits;
}

}  // namespace

size_t markov_scratch_bytes(int rows) {
    return scratch_count_bytes(rows) + static_cast<size_t>(rows) * kMaxSplits * sizeof(float4);
}

void markov_scratch_clear(void* scratch, int rows, cudaStream_t stream) {
    if (rows > 0) CUDA_CHECK(cudaMemsetAsync(scratch, 0, scratch_count_bytes(rows), stream));
}

// ----------------------------------------------------------------------------
// CUDA kernels

namespace {

struct Row {
    int j, k, row;     // request, slot, and the scratch row j G + k
    const float* u;    // (V) base logits
    const float* lg;   // (V) Markov bias or null
    float temp, inv_t;
    size_t out;        // (S, gamma) index of the outputs
};

__device__ Row row_of(const MarkovStep& m, int k0) {
    Row r;
    r.j = blockIdx.y;
    r.k = k0 + static_cast<int>(blockIdx.z);
    r.row = r.j * m.G + r.k;
    r.u = m.U + static_cast<size_t>(m.u_row ? m.u_row[r.j] : r.row) * m.V;
    r.lg = m.bias ? m.bias + static_cast<size_t>(r.j) * m.V : nullptr;
    r.temp = m.temperature[r.j];
    r.inv_t = r.temp > 0.0f ? 1.0f / r.temp : 1.0f;  // greedy: q_token at temperature 1
    r.out = static_cast<size_t>(m.out_row[r.j]) * m.gamma + r.k;
    return r;
}

// The row's totals from its n partials (the block's threads, n <= blockDim.x):
// the lowest index of the largest score, the max and the sum of exp(x - max).
__device__ void split_total(const float4* part, int n, int* id, float* mx, float* sum) {
    const int tid = threadIdx.x;
    float4 p = make_float4(-INFINITY, __int_as_float(0x7fffffff), -INFINITY, 0.0f);
    if (tid < n) p = __ldcg(part + tid);  // L2: written by other blocks
    *id = block_argmax(p.x, __float_as_int(p.y));
    *mx = block_max(p.z);
    *sum = block_sum(p.z == -INFINITY ? 0.0f : p.w * expf(p.z - *mx));
}

}  // namespace

// Grid (splits, R, steps): request j, slot k = k0 + blockIdx.z, logits
// [blockIdx.x chunk, + chunk).
__global__ void __launch_bounds__(kThreads) markov_step_kernel1(MarkovStep m, int k0, int chunk) {
    pdl_launch_dependents();
    pdl_wait();
    const Row r = row_of(m, k0);
    if (r.k >= m.n_draft[r.j]) return;  // the whole block: this request wants fewer drafts
    const int V = m.V, tid = threadIdx.x, splits = gridDim.x;
    const int v0 = blockIdx.x * chunk, v1 = min(V, v0 + chunk);
    unsigned* count = static_cast<unsigned*>(m.scratch) + r.row;
    float4* part = scratch_part(m.scratch, m.G * m.R, r.row);

    // 1. the slice: the draw (the same operations as sample_row: x / T) and
    //    the online softmax of x * (1 / T) (softmax_row's)
    const uint64_t key = m.rng[r.j];
    float best = -INFINITY, mx = -INFINITY, sum = 0.0f;
    int bi = V;  // loses every comparison against a real entry
    for (int v = v0 + tid; v < v1; v += kThreads) {
        const float l = r.lg ? r.u[v] + r.lg[v] : r.u[v];
        float s = l;
        if (r.temp > 0.0f) s = l / r.temp - logf(-logf(counter_uniform(key, r.k * V + v)));
        if (s > best || bi == V) {
            best = s;
            bi = v;
        }
        const float x = l * r.inv_t;
        if (x > mx) {
            sum = sum * expf(mx - x) + 1.0f;
            mx = x;
        } else {
            sum += expf(x - mx);
        }
    }
    __shared__ float best_score;
    __shared__ bool last;
    const int id = block_argmax(best, bi);
    if (bi == id) best_score = best;  // slices are disjoint: one thread holds it (none when the slice is empty)
    const float bmx = block_max(mx);
    const float bsum = block_sum(mx == -INFINITY ? 0.0f : sum * expf(mx - bmx));  // syncs: best_score is set
    if (tid == 0) {
        part[blockIdx.x] = make_float4(id < V ? best_score : -INFINITY, __int_as_float(id), bmx, bsum);
        __threadfence();  // the partial is visible before the ticket
        last = atomicAdd(count, 1u) == static_cast<unsigned>(splits - 1);
    }
    __syncthreads();
    if (!last) return;

    // 2. the last block of the row: the totals, the token and q_token
    __threadfence();
    int tok;
    float tmx, tsum;
    split_total(part, splits, &tok, &tmx, &tsum);
    if (tok >= V) tok = 0;
    if (tid == 0) {
        m.tokens[r.out] = tok;
        if (m.q_token) {
            const float l = r.lg ? r.u[tok] + r.lg[tok] : r.u[tok];
            m.q_token[r.out] = expf(l * r.inv_t - tmx) / tsum;
        }
    }

    // 3. the confidence head, on the final-normed h_k and W1[x_{k-1}]
    const bf16* w1_prev = m.w1_rows ? m.w1_rows + static_cast<size_t>(r.j) * m.r : nullptr;
    if (m.conf_w) {
        const bf16* hk = m.h + static_cast<size_t>(r.row) * m.d;
        float z = 0.0f;
        for (int i = tid; i < m.d; i += kThreads) z += m.conf_w[i] * __bfloat162float(hk[i]);
        if (m.conf_markov)
            for (int i = tid; i < m.r; i += kThreads) z += m.conf_w[m.d + i] * __bfloat162float(w1_prev[i]);
        z = block_sum(z) + m.conf_b[0];  // block_sum syncs: every read of w1_prev is done after it
        if (tid == 0) {
            m.conf_logit[r.out] = z;
            m.conf[r.out] = 1.0f / (1.0f + expf(-(z / m.sts[r.k])));
        }
    }

    // 4. the next step's W1[x_k]: x_k, or the teacher-forced token
    if (m.w1_rows) {
        const int f = m.forced[static_cast<size_t>(r.j) * m.gamma + r.k];
        const int next = f >= 0 ? f : tok;
        bf16* dst = m.w1_rows + static_cast<size_t>(r.j) * m.r;
        const bf16* src = m.w1 + static_cast<size_t>(next) * m.r;
        for (int i = tid; i < m.r; i += kThreads) dst[i] = src[i];
    }
}

// q = softmax(logits / T) of the sampling rows, from the totals of kernel1's
// partials (which the next step's kernel1 overwrites: this runs in between).
// Grid as markov_step_kernel1's.
__global__ void __launch_bounds__(kThreads) markov_q_kernel1(MarkovStep m, int k0, int chunk) {
    pdl_launch_dependents();
    pdl_wait();
    const Row r = row_of(m, k0);
    if (r.k >= m.n_draft[r.j] || r.temp <= 0.0f) return;
    const int V = m.V;
    const float4* part = scratch_part(m.scratch, m.G * m.R, r.row);
    int tok;
    float tmx, tsum;
    split_total(part, gridDim.x, &tok, &tmx, &tsum);
    float* q = m.q + r.out * V;
    const int v0 = blockIdx.x * chunk, v1 = min(V, v0 + chunk);
    for (int v = v0 + static_cast<int>(threadIdx.x); v < v1; v += kThreads) {
        const float l = r.lg ? r.u[v] + r.lg[v] : r.u[v];
        q[v] = expf(l * r.inv_t - tmx) / tsum;
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

void markov_step_forward(const MarkovStep& m, int k0, int n_steps, cudaStream_t stream) {
    if (m.bias && n_steps != 1)
        cuda_throw("markov_step_forward: with a Markov head each step needs the one before (n_steps 1), got " +
                   std::to_string(n_steps));
    if (m.bias && !m.w1_rows) cuda_throw("markov_step_forward: a Markov head needs w1_rows");
    if (m.conf_w && m.conf_markov && !m.w1_rows)
        cuda_throw("markov_step_forward: a confidence head on [h ; W1[prev]] needs w1_rows");
    if (!m.scratch) cuda_throw("markov_step_forward: no scratch (markov_scratch_bytes(R G))");
    if (k0 < 0 || k0 + n_steps > m.G)
        cuda_throw("markov_step_forward: steps " + std::to_string(k0) + ".." + std::to_string(k0 + n_steps - 1) +
                   " outside the G = " + std::to_string(m.G) + " rows of the scratch");
    if (m.R == 0 || n_steps == 0) return;
    const int chunk = split_chunk(m.V);
    const dim3 grid(ceil_div(m.V, chunk), m.R, n_steps);
    launch_pdl(markov_step_kernel1, grid, kThreads, 0, stream, m, k0, chunk);
    if (m.q) launch_pdl(markov_q_kernel1, grid, kThreads, 0, stream, m, k0, chunk);
}

}  // namespace sp
