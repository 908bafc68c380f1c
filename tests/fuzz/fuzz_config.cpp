// fuzz_config.cpp: libFuzzer target for the loaders of a checkpoint's
// config.json (engine/model.h: config_load, config_architecture) and of the
// drafters' (engine/dspark.h, engine/eagle3.h). The input is the whole file,
// written to a scratch file since the loaders read a path. sp::Error is the
// expected outcome of bad bytes; anything else (a crash, a sanitizer report,
// another exception) is a bug. A config that loads must also pass
// config_check, which config_load applies: a failure there is a bug too.
// Build and run: README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "engine/dspark.h"
#include "engine/eagle3.h"
#include "engine/model.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static sp_fuzz::ScratchFile file("specplan-fuzz-config");
    const std::string& path = file.write(data, size);
    try {
        (void)sp::config_architecture(path);
    } catch (const sp::Error&) {
    }
    try {
        sp::Config c = sp::config_load(path);
        (void)sp::config_shape(c);
        try {
            sp::config_check(c, "fuzz");
        } catch (const sp::Error&) {
            std::abort();  // config_load returned a config its own checks refuse
        }
    } catch (const sp::Error&) {
    }
    try {
        (void)sp::dspark_config_load(path);
    } catch (const sp::Error&) {
    }
    try {
        (void)sp::eagle3_config_load(path);
    } catch (const sp::Error&) {
    }
    return 0;
}
