// embed.cu: token embedding gather into the fp32 residual stream.
#include "engine/kernels.h"

namespace sp {

// ----------------------------------------------------------------------------
// CUDA kernels

// One block per token; threads stride over d.
__global__ void embed_forward_kernel1(float* x, const int* tokens, const bf16* embed, int d) {
    const int t = blockIdx.x;
    const bf16* row = embed + static_cast<size_t>(tokens[t]) * d;
    float* out = x + static_cast<size_t>(t) * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) out[i] = __bfloat162float(row[i]);
}

// ----------------------------------------------------------------------------
// kernel launchers

void embed_forward(float* x, const int* tokens, const bf16* embed, int T, int d, cudaStream_t stream) {
    if (T == 0) return;
    embed_forward_kernel1<<<T, 256, 0, stream>>>(x, tokens, embed, d);
    CUDA_CHECK_LAST();
}

}  // namespace sp
