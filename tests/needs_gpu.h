// needs_gpu.h: the GPU suites' global environment. A build with nvcc can run
// on a machine without a GPU (this project's CPU machines have nvcc): every
// test of a binary that includes this then skips, printing "no CUDA device"
// (tests/CMakeLists.txt counts that as a skip), instead of failing.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime.h>

struct NeedsGpu : ::testing::Environment {
    void SetUp() override {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) GTEST_SKIP() << "no CUDA device";
    }
};
inline ::testing::Environment* const needs_gpu = ::testing::AddGlobalTestEnvironment(new NeedsGpu);
