// sampling.cu: picking tokens from logits on the device: argmax, temperature
// softmax, and sampling with a counter-based RNG.
//
// Sampling uses the Gumbel-max trick: argmax_i (logit_i / temp + g_i), g_i =
// -log(-log u_i) with u_i uniform, draws i with probability
// softmax(logit / temp)_i exactly, in one pass, with no normalisation and no
// sort. u_i is counter_rng.h's draw i of the row (seed, RNG_TARGET, request,
// position): the same for a request whatever batch it runs in, reproducible,
// stateless, with no host round trip per token.
#include <cmath>

#include "engine/counter_rng.h"
#include "engine/kernels.h"

namespace sp {

namespace {

constexpr int kThreads = 256;

}  // namespace

// ----------------------------------------------------------------------------
// CUDA kernels

// One block per row for all three.
__global__ void argmax_forward_kernel1(int* ids, const float* logits, int V) {
    const float* row = logits + static_cast<size_t>(blockIdx.x) * V;
    float best = -INFINITY;
    int bi = V;  // loses every comparison against a real entry
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (row[i] > best || bi == V) {
            best = row[i];
            bi = i;
        }
    const int id = block_argmax(best, bi);
    if (threadIdx.x == 0) ids[blockIdx.x] = id < V ? id : 0;
}

__global__ void softmax_forward_kernel1(float* probs, const float* logits, const float* temperature, int V) {
    const size_t off = static_cast<size_t>(blockIdx.x) * V;
    const float inv_t = 1.0f / temperature[blockIdx.x];
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, logits[off + i] * inv_t);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(logits[off + i] * inv_t - mx);
    sum = block_sum(sum);
    for (int i = threadIdx.x; i < V; i += blockDim.x) probs[off + i] = expf(logits[off + i] * inv_t - mx) / sum;
}

__global__ void sample_forward_kernel1(int* ids, const float* logits, const float* temperature,
                                       const uint64_t* request, const int* position, uint64_t seed, int V) {
    const int t = blockIdx.x;
    const float* row = logits + static_cast<size_t>(t) * V;
    const float temp = temperature[t];
    const uint64_t key = counter_row(seed, RNG_TARGET, request[t], position[t]);
    float best = -INFINITY;
    int bi = V;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float v = row[i];
        if (temp > 0.0f) v = v / temp - logf(-logf(counter_uniform(key, i)));
        if (v > best || bi == V) {
            best = v;
            bi = i;
        }
    }
    const int id = block_argmax(best, bi);
    if (threadIdx.x == 0) ids[t] = id < V ? id : 0;
}

// ----------------------------------------------------------------------------
// kernel launchers

void argmax_forward(int* ids, const float* logits, int T, int V, cudaStream_t stream) {
    if (T == 0) return;
    argmax_forward_kernel1<<<T, kThreads, 0, stream>>>(ids, logits, V);
    CUDA_CHECK_LAST();
}

void softmax_forward(float* probs, const float* logits, const float* temperature, int T, int V,
                     cudaStream_t stream) {
    if (T == 0) return;
    softmax_forward_kernel1<<<T, kThreads, 0, stream>>>(probs, logits, temperature, V);
    CUDA_CHECK_LAST();
}

void sample_forward(int* ids, const float* logits, const float* temperature, const uint64_t* request,
                    const int* position, uint64_t seed, int T, int V, cudaStream_t stream) {
    if (T == 0) return;
    sample_forward_kernel1<<<T, kThreads, 0, stream>>>(ids, logits, temperature, request, position, seed, V);
    CUDA_CHECK_LAST();
}

double sample_uniform(uint64_t seed, uint64_t request, int position, int i) {
    return counter_uniform(counter_row(seed, RNG_TARGET, request, position), i);
}

}  // namespace sp
