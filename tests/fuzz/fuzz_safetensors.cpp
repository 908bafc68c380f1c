// fuzz_safetensors.cpp: libFuzzer target for the safetensors parser. The input
// is a whole file; sp::Error is the expected outcome of bad bytes, anything
// else (a crash, a sanitizer report, another exception) is a bug. Every
// accepted tensor is converted, so a view that points outside the input is
// caught by AddressSanitizer. How to build and run: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        sp::SafeTensorsFile f = sp::safetensors_header_parse(data, size, "fuzz");
        std::vector<float> out;
        for (const auto& [name, t] : f.tensors) {
            if (!sp::dtype_is_float_convertible(t.dtype)) continue;
            out.resize(size_t(t.n_elements));
            sp::tensor_to_f32(t, out.data());
        }
    } catch (const sp::Error&) {
    }
    return 0;
}
