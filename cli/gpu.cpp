// gpu.cpp: opens the GPU module (gpu.h). Linked into the executable.
#include "cli/gpu.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <mutex>

#include "traces/trace_db.h"  // Error

namespace sp {

namespace {

#ifdef SPECPLAN_HAVE_CUDA
// The folder of this executable (/proc/self/exe), with its trailing slash.
std::string exe_dir() {
    char buf[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "";
    std::string p(buf, size_t(n));
    return p.substr(0, p.rfind('/') + 1);
}
#endif

struct Loaded {
    const GpuApi* api = nullptr;
    std::string why;
};

Loaded load() {
    Loaded l;
#ifndef SPECPLAN_HAVE_CUDA
    l.why = "built without CUDA (configure with SPECPLAN_CUDA=ON where nvcc is found)";
#else
    const std::string path = exe_dir() + "libspecplan_gpu.so";
    // RTLD_LOCAL: the module's copies of the engine's symbols stay its own.
    void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* e = ::dlerror();
        l.why = "cannot load the GPU module: " + std::string(e ? e : path);
        return l;
    }
    auto entry = reinterpret_cast<const GpuApi* (*)()>(::dlsym(h, "specplan_gpu_api"));
    const GpuApi* api = entry ? entry() : nullptr;
    if (!api || api->abi != GPU_ABI) {
        l.why = path + ": not this build's GPU module (rebuild specplan)";
        return l;
    }
    l.api = api;  // never closed: the module's objects live until exit
#endif
    return l;
}

}  // namespace

const GpuApi* gpu_load(std::string* why) {
    static std::once_flag once;
    static Loaded l;
    std::call_once(once, [] { l = load(); });
    if (why) *why = l.why;
    return l.api;
}

const GpuApi& gpu_require(const std::string& what) {
    std::string why;
    const GpuApi* api = gpu_load(&why);
    if (!api) throw Error(what + ": " + why);
    return *api;
}

}  // namespace sp
