// cuda_common.cpp: the throwing half of CUDA_CHECK and CUBLAS_CHECK.
#include "engine/cuda_common.h"

#include <string>

#include "traces/trace_db.h"  // sp::Error

namespace sp {

void cuda_fail(cudaError_t err, const char* call, const char* file, int line) {
    throw Error(std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") at " + file +
                ":" + std::to_string(line) + ": " + call);
}

void cublas_fail(cublasStatus_t st, const char* call, const char* file, int line) {
    throw Error(std::string("cuBLAS error ") + cublasGetStatusName(st) + " (" + cublasGetStatusString(st) + ") at " +
                file + ":" + std::to_string(line) + ": " + call);
}

void cuda_throw(const std::string& what) { throw Error(what); }

void device_pointer_check(const void* p, const std::string& what) {
    cudaPointerAttributes attr{};
    const cudaError_t err = cudaPointerGetAttributes(&attr, p);
    if (err != cudaSuccess || (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)) {
        cudaGetLastError();  // the query's own error, if any, is not the next CUDA_CHECK's
        throw Error(what + " must be device memory (the CUDA backend's hidden states), got a host pointer");
    }
}

}  // namespace sp
