// gpu.h: the CUDA half of the command line, a separate shared module
// (libspecplan_gpu.so, beside the executable) that `specplan` opens with
// dlopen only when a command needs a GPU: profile, and generate / capture /
// live on --device cuda (or with no --device, to ask whether a GPU answers).
// Every other command (sim, sweep, plan, traces, calibrate, --version) never
// maps cudart or cuBLAS: the executable itself links no CUDA library
// (test_cli checks this). Builds without CUDA have no module; the same
// calls then say "built without CUDA".
//
// The module links its own copy of the engine's CPU libraries (compiled as
// position-independent code); what crosses the boundary is this table, the
// engine's abstract Backend / Drafter objects (virtual calls into the module)
// and sp::Error, which the module throws as the CLI does.
#pragma once

#include <string>

namespace sp {

struct SpecArgs;
struct SpecSetup;
struct DrafterOptions;
struct ProfileArgs;

inline constexpr int GPU_ABI = 1;  // bump when GpuApi or the types it passes change

struct GpuApi {
    int abi;  // GPU_ABI of the module
    // A CUDA device answers (the driver loads and counts at least one).
    bool (*device_available)();
    // spec_setup's --device cuda half: s.backend, s.drafter and s.gpu, for the
    // target s.target (its weights, or only its shape when random_target).
    void (*spec_setup)(SpecSetup& s, const SpecArgs& a, bool random_target, bool random_drafter, int n_seqs,
                       const DrafterOptions& dopt);
    void (*profile)(const ProfileArgs& a);  // `specplan profile` (profile_cuda.cpp)
};

// The module, opened on the first call (later calls return the same); null
// when this build has no CUDA or the module cannot be loaded, with the reason
// in *why ("built without CUDA ...", or the loader's own message).
const GpuApi* gpu_load(std::string* why = nullptr);

// gpu_load, or sp::Error "<what>: <why>".
const GpuApi& gpu_require(const std::string& what);

}  // namespace sp

// The module's one exported symbol.
extern "C" const sp::GpuApi* specplan_gpu_api();
