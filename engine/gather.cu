// gather.cu: row gathers by index on the device, for the DSpark and EAGLE-3
// drafters (drafter_dspark_cuda.cpp, drafter_eagle3_cuda.cpp), where the
// rows to read are known only as indices (host metadata, or tokens the
// device drew a step earlier):
//  - the context features: the target's hidden states of each new context
//    token, its m layers concatenated into one row, rounded to bf16 for the
//    fc projection (digest §1.1: H_ctx = hidden_norm(fc [h_l1; ...; h_lm]));
//  - rows of a bf16 table: the Markov embedding W1[x] of the anchors, the
//    first step's previous tokens (markov.cu gathers the later ones itself);
//  - fp32 rows from one index list to another: the EAGLE-3 drafter's last
//    fc output of each slot, kept across calls (drafter_eagle3_cuda.cpp).
#include "engine/kernels.h"

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

// One block per context token; threads stride over its m d features.
__global__ void gather_features_kernel1(bf16* f, const float* hidden, const int* rows, int m, int hidden_T,
                                        int d) {
    pdl_launch_dependents();
    pdl_wait();
    const int j = blockIdx.x;
    const size_t row = static_cast<size_t>(rows[j]);
    bf16* out = f + static_cast<size_t>(j) * m * d;
    for (int c = threadIdx.x; c < m * d; c += blockDim.x) {
        const int i = c / d, col = c - i * d;  // layer i, feature col
        out[c] = __float2bfloat16(hidden[(static_cast<size_t>(i) * hidden_T + row) * d + col]);
    }
}

// One block per output row.
__global__ void gather_rows_kernel1(bf16* out, const bf16* table, const int* ids, int width) {
    pdl_launch_dependents();
    pdl_wait();
    const int j = blockIdx.x;
    const bf16* src = table + static_cast<size_t>(ids[j]) * width;
    bf16* dst = out + static_cast<size_t>(j) * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) dst[i] = src[i];
}

// One block per row j: dst[dst_rows[j]] = src[src_rows[j]] (null lists: row j).
__global__ void copy_rows_kernel1(float* dst, const int* dst_rows, const float* src, const int* src_rows,
                                  int width) {
    pdl_launch_dependents();
    pdl_wait();
    const int j = blockIdx.x;
    const float* from = src + static_cast<size_t>(src_rows ? src_rows[j] : j) * width;
    float* to = dst + static_cast<size_t>(dst_rows ? dst_rows[j] : j) * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) to[i] = from[i];
}

// ----------------------------------------------------------------------------
// kernel launchers

void gather_features(bf16* f, const float* hidden, const int* rows, int n, int m, int hidden_T, int d,
                     cudaStream_t stream) {
    if (n == 0) return;
    launch_pdl(gather_features_kernel1, n, 256, 0, stream, f, hidden, rows, m, hidden_T, d);
}

void gather_rows(bf16* out, const bf16* table, const int* ids, int n, int width, cudaStream_t stream) {
    if (n == 0 || width == 0) return;
    launch_pdl(gather_rows_kernel1, n, 128, 0, stream, out, table, ids, width);
}

void copy_rows(float* dst, const int* dst_rows, const float* src, const int* src_rows, int n, int width,
               cudaStream_t stream) {
    if (n == 0 || width == 0) return;
    launch_pdl(copy_rows_kernel1, n, 256, 0, stream, dst, dst_rows, src, src_rows, width);
}

}  // namespace sp
