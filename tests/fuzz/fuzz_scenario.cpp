// fuzz_scenario.cpp: libFuzzer target for the scenario loader
// (simulator/scenario.h: scenario_parse, the TOML text of a scenario file).
// The file's name is /nonexistent/fuzz/scenario.toml, so that a relative
// trace or profile path in the input ("../traces/data/demo.specdb" in
// default.toml) fails to open instead of reading the working tree's stores,
// whose loading would slow every input down 30-fold. sp::Error is the expected outcome of bad bytes;
// anything else (a crash, a sanitizer report, another exception, toml++'s
// own parse_error escaping) is a bug. Build and run: README.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include "simulator/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        (void)sp::scenario_parse(text, "/nonexistent/fuzz/scenario.toml");
    } catch (const sp::Error&) {
    }
    return 0;
}
