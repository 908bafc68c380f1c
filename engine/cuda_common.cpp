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

}  // namespace sp
