// cuda_common.h: the CUDA plumbing every CUDA file of engine/ shares.
//
// defines: CUDA_CHECK, CUBLAS_CHECK, CUDA_CHECK_LAST, bf16, ceil_div;
// in device code also warp_sum, warp_max, block_sum, block_max, block_argmax
// (reductions over a block of at most 1024 threads).
//
// Errors throw sp::Error ("CUDA error cudaErrorX (text) at engine/foo.cu:42:
// call") rather than abort as llm.c and calm do. The engine is a library:
// the CLI turns sp::Error into one line on stderr and exit 1 like every other
// failure, and tests can assert on the errors a caller can cause (the KV
// capacity error goes through the same type). An asynchronous kernel fault
// (illegal address) leaves the context unusable; it still surfaces here, at
// the next checked call, and the process should then exit, which throwing
// up to main does. This header is plain C++ apart from the __CUDACC__ part,
// so .cpp files of the CUDA backend include it too.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

namespace sp {

using bf16 = __nv_bfloat16;

// Throws sp::Error naming the error, the call and file:line (cuda_common.cpp).
[[noreturn]] void cuda_fail(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void cublas_fail(cublasStatus_t st, const char* call, const char* file, int line);
// Throws sp::Error(what): for launchers' argument checks. The .cu files
// never see sp::Error's header (traces/trace_db.h is C++20; nvcc builds C++17).
[[noreturn]] void cuda_throw(const std::string& what);

inline void cuda_check(cudaError_t err, const char* call, const char* file, int line) {
    if (err != cudaSuccess) cuda_fail(err, call, file, line);
}
inline void cublas_check(cublasStatus_t st, const char* call, const char* file, int line) {
    if (st != CUBLAS_STATUS_SUCCESS) cublas_fail(st, call, file, line);
}

#define CUDA_CHECK(call) ::sp::cuda_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::sp::cublas_check((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors show at once.
#define CUDA_CHECK_LAST() ::sp::cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

// --- host-side memory of the CUDA backend and drafters

// Bytes rounded up so every piece of a shared allocation starts 256-aligned
// (gemv.cu's 16-byte loads, rmsnorm's float4s).
inline size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Consecutive aligned pieces of one allocation: run once with base null to
// size it, then on the allocation to get the pointers.
struct Carve {
    char* base = nullptr;
    size_t off = 0;
    template <class T>
    T* take(size_t n) {
        T* p = base ? reinterpret_cast<T*>(base + off) : nullptr;
        off += aligned(n * sizeof(T));
        return p;
    }
};

// A device allocation that only grows; its contents are not kept.
struct DeviceBuffer {
    char* p = nullptr;
    size_t bytes = 0;
    void reserve(size_t n, cudaStream_t stream) {
        if (n <= bytes) return;
        cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize", __FILE__, __LINE__);  // the old one may still be read
        cuda_check(cudaFree(p), "cudaFree", __FILE__, __LINE__);
        p = nullptr;
        bytes = 0;
        cuda_check(cudaMalloc(&p, n), "cudaMalloc", __FILE__, __LINE__);
        bytes = n;
    }
    void release() {
        cudaFree(p);  // unchecked: runs from destructors
        p = nullptr;
        bytes = 0;
    }
};

// Throws sp::Error "<what> must be device memory ..." unless p is device
// (or managed) memory: a host pointer handed to a kernel would fault there,
// far from the cause (cuda_common.cpp).
void device_pointer_check(const void* p, const std::string& what);

#ifdef __CUDACC__
// Programmatic dependent launch (sm_90). The forward's kernels are launched
// with launch_pdl, so kernel n + 1 may start while kernel n still runs: each
// kernel calls pdl_launch_dependents() early (its successor may then be
// scheduled) and pdl_wait() before it touches anything a predecessor writes
// or reads (activations, the KV cache, metadata). pdl_wait returns once the
// previous kernel has completed and its writes are visible; since every
// kernel waits before it exits, completion is transitive down the stream.
// Only weights (constant during a forward) may be read before the wait: the
// projections issue their first weight loads there, which hides the launch
// and ramp-up of each kernel behind the tail of the one before. Both are
// no-ops when the kernel was launched without the attribute. Measured on an
// H100 (qwen3-8b decode step in a graph, 2026-11-23): 5.83 ms with, 5.91
// without; with the projections triggering after their main loop rather
// than at their start, 5.75.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// kernel<<<grid, block, smem, stream>>>(args...) with the programmatic
// stream serialization attribute, then CUDA_CHECK_LAST. On the legacy
// default stream (the kernel tests pass nullptr) it launches plainly.
template <typename... KArgs, typename... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = stream != nullptr ? 1 : 0;
    cuda_check(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...), "cudaLaunchKernelEx", __FILE__,
               __LINE__);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Sum over the whole block (blockDim.x a multiple of 32, <= 1024); every
// thread gets the result. Uses 33 floats of shared memory; safe to call
// repeatedly (it syncs before reusing them).
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    __shared__ float total;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();  // a previous call may still be reading `total`
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < n_warps ? partial[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}
// Max over the whole block, as block_sum.
__device__ __forceinline__ float block_max(float v) {
    __shared__ float partial[32];
    __shared__ float result;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();  // a previous call may still be reading `result`
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float m = lane < n_warps ? partial[lane] : -INFINITY;
        m = warp_max(m);
        if (lane == 0) result = m;
    }
    __syncthreads();
    return result;
}
// Argmax over the whole block of (v, i) pairs: the largest v, the lowest i
// among equals, so a strict > per thread over increasing i gives the CPU's
// first-maximum scan (sample_row's, verify_reference's). Every thread gets
// the index; NaN values give an unspecified one. As block_sum otherwise.
__device__ __forceinline__ int block_argmax(float v, int i) {
    __shared__ float sv[32];
    __shared__ int si[32];
    __shared__ int result;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (ov > v || (ov == v && oi < i)) {
            v = ov;
            i = oi;
        }
    }
    __syncthreads();  // a previous call may still be reading `result`
    if (lane == 0) {
        sv[warp] = v;
        si[warp] = i;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float bv = sv[0];
        int bi = si[0];
        for (int w = 1; w < n_warps; w++)
            if (sv[w] > bv || (sv[w] == bv && si[w] < bi)) {
                bv = sv[w];
                bi = si[w];
            }
        result = bi;
    }
    __syncthreads();
    return result;
}
#endif

}  // namespace sp
