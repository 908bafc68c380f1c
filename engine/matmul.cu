// matmul.cu: the one cuBLAS wrapper (T > kGemvMaxT; gemv.cu below that). Every projection of the forward is
//   y (T, n_out) = x (T, n_in) @ W (n_out, n_in)^T
// with bf16 x and W (HF's nn.Linear layout, row-major) and fp32 accumulation.
//
// cuBLAS is column-major. Row-major W (n_out, n_in) read column-major is W^T
// (n_in, n_out), ld n_in; row-major x (T, n_in) is x^T (n_in, T), ld n_in;
// row-major y (T, n_out) is y^T (n_out, T), ld n_out. So y^T = op_T(W^T) x^T:
// transa = T, transb = N, m = n_out, n = T, k = n_in.
#include "engine/kernels.h"

namespace sp {

namespace {
constexpr size_t kWorkspaceBytes = 32ull << 20;  // cuBLAS's advice for Hopper is 32 MiB
}

Cublas cublas_create(cudaStream_t stream) {
    Cublas c;
    c.stream = stream;
    CUBLAS_CHECK(cublasCreate(&c.handle));
    CUBLAS_CHECK(cublasSetStream(c.handle, stream));
    CUDA_CHECK(cudaMalloc(&c.workspace, kWorkspaceBytes));
    c.workspace_bytes = kWorkspaceBytes;
    CUBLAS_CHECK(cublasSetWorkspace(c.handle, c.workspace, c.workspace_bytes));
    // no TF32 or reduced-precision reductions: the bf16 products accumulate in fp32
    CUBLAS_CHECK(cublasSetMathMode(c.handle, CUBLAS_DEFAULT_MATH));
    return c;
}

void cublas_destroy(Cublas& c) {
    if (c.handle) cublasDestroy(c.handle);  // unchecked: runs from destructors
    if (c.workspace) cudaFree(c.workspace);
    c = Cublas{};
}

void matmul_forward(const Cublas& c, void* y, bool y_fp32, const bf16* x, const bf16* W, int T, int n_in,
                    int n_out) {
    if (T == 0) return;
    if (gemv_supported(x, W, T, n_in)) {  // decode and verify: a weight stream, not a GEMM
        gemv_forward(y, y_fp32, x, W, T, n_in, n_out, c.stream);
        return;
    }
    const float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(cublasGemmEx(c.handle, CUBLAS_OP_T, CUBLAS_OP_N, n_out, T, n_in, &alpha, W, CUDA_R_16BF, n_in, x,
                              CUDA_R_16BF, n_in, &beta, y, y_fp32 ? CUDA_R_32F : CUDA_R_16BF, n_out,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace sp
