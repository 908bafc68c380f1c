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
// a block of gamma drafts costs 2 gamma launches and no host round trip.
//
// One block of kThreads per request (sampling.cu's layout): the block reads
// the row of V logits three times (draw, softmax sum, softmax write). 1024
// threads rather than sampling.cu's 256, so that one SM keeps more loads in
// flight on a 152k vocabulary [not measured yet]. Without a Markov head
// (DFlash) the steps do not depend on each other and one launch covers them
// all (grid y = steps).
#include <cmath>

#include "engine/counter_rng.h"
#include "engine/kernels.h"

namespace sp {

namespace {

constexpr int kThreads = 1024;

}  // namespace

// ----------------------------------------------------------------------------
// CUDA kernels

// Grid (R, steps): request j, slot k = k0 + blockIdx.y.
__global__ void __launch_bounds__(kThreads) markov_step_kernel1(MarkovStep m, int k0) {
    pdl_launch_dependents();
    pdl_wait();
    const int j = blockIdx.x, k = k0 + static_cast<int>(blockIdx.y), tid = threadIdx.x;
    if (k >= m.n_draft[j]) return;  // the whole block: this request wants fewer drafts
    const int V = m.V;
    const size_t out = static_cast<size_t>(m.out_row[j]) * m.gamma + k;  // (S, gamma) index of the outputs
    const float* u = m.U + (static_cast<size_t>(j) * m.G + k) * V;
    float* lg = m.bias ? m.bias + static_cast<size_t>(j) * V : nullptr;
    const bf16* w1_prev = m.w1_rows ? m.w1_rows + static_cast<size_t>(j) * m.r : nullptr;

    // 1. the confidence head, on the final-normed h_k and W1[x_{k-1}]
    if (m.conf_w) {
        const bf16* hk = m.h + (static_cast<size_t>(j) * m.G + k) * m.d;
        float z = 0.0f;
        for (int i = tid; i < m.d; i += blockDim.x) z += m.conf_w[i] * __bfloat162float(hk[i]);
        if (m.conf_markov)
            for (int i = tid; i < m.r; i += blockDim.x) z += m.conf_w[m.d + i] * __bfloat162float(w1_prev[i]);
        z = block_sum(z) + m.conf_b[0];  // block_sum syncs: every read of w1_prev is done after it
        if (tid == 0) {
            m.conf_logit[out] = z;
            m.conf[out] = 1.0f / (1.0f + expf(-(z / m.sts[k])));
        }
    }

    // 2. the logits (kept in place of the bias for the softmax), the draw,
    //    and the max of logits / T for the softmax. The same operations as
    //    sample_row and softmax_row: x / T for the draw, x * (1 / T) there.
    const float temp = m.temperature[j];
    const float inv_t = temp > 0.0f ? 1.0f / temp : 1.0f;  // greedy: q_token at temperature 1
    const uint64_t key = m.rng[j];
    float best = -INFINITY, mx = -INFINITY;
    int bi = V;  // loses every comparison against a real entry
    for (int v = tid; v < V; v += blockDim.x) {
        float l = u[v];
        if (lg) {
            l += lg[v];
            lg[v] = l;
        }
        float s = l;
        if (temp > 0.0f) s = l / temp - logf(-logf(counter_uniform(key, k * V + v)));
        mx = fmaxf(mx, l * inv_t);
        if (s > best || bi == V) {
            best = s;
            bi = v;
        }
    }
    int id = block_argmax(best, bi);
    if (id >= V) id = 0;
    if (tid == 0) m.tokens[out] = id;

    // 3. q_k = softmax(logits / T) when sampling, and q_token = its entry at
    //    the draw (at temperature 1 when greedy); each thread reads back the
    //    entries it wrote in 2, and thread 0 reads src[id] after block_sum's sync.
    {
        const float* src = lg ? lg : u;
        mx = block_max(mx);
        float sum = 0.0f;
        for (int v = tid; v < V; v += blockDim.x) sum += expf(src[v] * inv_t - mx);
        sum = block_sum(sum);
        if (temp > 0.0f) {
            float* q = m.q + out * V;
            for (int v = tid; v < V; v += blockDim.x) q[v] = expf(src[v] * inv_t - mx) / sum;
        }
        if (tid == 0 && m.q_token) m.q_token[out] = expf(src[id] * inv_t - mx) / sum;
    }

    // 4. the next step's W1[x_k]: x_k, or the teacher-forced token
    if (m.w1_rows) {
        const int f = m.forced[static_cast<size_t>(j) * m.gamma + k];
        const int next = f >= 0 ? f : id;
        bf16* dst = m.w1_rows + static_cast<size_t>(j) * m.r;
        const bf16* src = m.w1 + static_cast<size_t>(next) * m.r;
        for (int i = tid; i < m.r; i += blockDim.x) dst[i] = src[i];
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
    if (m.R == 0 || n_steps == 0) return;
    launch_pdl(markov_step_kernel1, dim3(m.R, n_steps), kThreads, 0, stream, m, k0);
}

}  // namespace sp
