// gpu_module.cpp: the GPU module's table (gpu.h): libspecplan_gpu.so, built
// only with CUDA, opened by `specplan` for the commands that use a GPU.
#include "cli/gpu.h"

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/profile.h"
#include "cli/spec_setup.h"
#include "engine/cuda_model.h"
#include "engine/drafter_cuda.h"
#include "engine/dspark.h"
#include "engine/eagle3.h"

namespace sp {

namespace {

bool device_available() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// A DSpark/DFlash or EAGLE-3 folder: its drafter reads the target's embedding and LM head.
bool reads_target_weights(const std::string& drafter) {
    std::ifstream in(drafter + "/config.json");
    if (!in) return false;
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object() || !j.contains("architectures") || !j["architectures"].is_array()) return false;
    for (const auto& a : j["architectures"])
        if (a == "Qwen3DSparkModel" || a == "Qwen3Eagle3Model") return true;
    return false;
}

void spec_setup_cuda(SpecSetup& s, const SpecArgs& a, bool random, bool random_drafter, int n_seqs,
                     const DrafterOptions& dopt) {
    // One line, before the first CUDA call would name a source line and an error code.
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        (void)cudaGetLastError();  // clear it
        throw Error(std::string("--device cuda: no CUDA device on this machine (") +
                    (e == cudaSuccess ? "none found" : cudaGetErrorString(e)) + ")");
    }
    if (random && reads_target_weights(a.drafter))
        throw Error("--drafter " + a.drafter + ": reads the target's weights, which a random --model " + a.model +
                    " keeps on the device only; use ngram, none or a draft model");
    s.backend = random ? backend_cuda_random(s.target.cfg, a.seed, n_seqs) : backend_cuda(s.target, n_seqs);
    const Config& tc = s.target.cfg;
    const int g = a.gamma > 0 ? a.gamma : 7;
    if (a.drafter == "eagle3" && random_drafter)
        s.drafter = drafter_eagle3_cuda_random(tc, eagle3_config_preset(tc, g), a.seed + 1, n_seqs, g);
    else if (random_drafter)
        s.drafter = drafter_dspark_cuda_random(tc, dspark_config_preset(tc, g, a.drafter == "dflash"), a.seed + 1,
                                               n_seqs, g);
    else
        s.drafter = drafter_open_cuda(a.drafter, s.target, dopt);
    cudaDeviceProp prop{};
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) s.gpu = prop.name;
}

const GpuApi API = {GPU_ABI, device_available, spec_setup_cuda, profile_cuda};

}  // namespace

}  // namespace sp

extern "C" __attribute__((visibility("default"))) const sp::GpuApi* specplan_gpu_api() { return &sp::API; }
