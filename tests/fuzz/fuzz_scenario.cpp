// fuzz_scenario.cpp: libFuzzer target for the scenario loader
// (simulator/scenario.h: scenario_parse, the TOML text of a scenario file).
// The file's name is fuzz/scenario.toml, a folder that does not exist, so a
// relative trace or profile path in the input fails to open instead of
// reading the working tree. sp::Error is the expected outcome of bad bytes;
// anything else (a crash, a sanitizer report, another exception, toml++'s
// own parse_error escaping) is a bug. Build and run: README.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include "simulator/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        (void)sp::scenario_parse(text, "fuzz/scenario.toml");
    } catch (const sp::Error&) {
    }
    return 0;
}
