// safetensors.h: a reader for HF's safetensors files, which are untrusted input.
//
// Format: an 8-byte little-endian u64 N, N bytes of JSON header
//   {"<name>": {"dtype": "BF16", "shape": [a, b], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>", ...}}
// then the data buffer; offsets are relative to the buffer's start. As the
// format's own specification asks, the tensors must tile the buffer exactly
// (no overlap, no hole, nothing after the last one), so a file whose header
// and data disagree in any way is refused before a byte of data is read.
//
// The file is mmapped read-only: a 16 GB checkpoint costs no copy, and only
// the pages converted are ever read. Views stay valid while any copy of the
// SafeTensorsFile lives. (A file truncated by another process while mapped
// raises SIGBUS on access; checkpoints are not expected to change under us.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "traces/trace_db.h"  // sp::Error

namespace sp {

// Every dtype the format defines with a whole-byte size. Only the first three
// can be converted to float; the others are parsed (their sizes check the
// offsets) and refused when a tensor of that dtype is read.
enum Dtype {
    DTYPE_BF16, DTYPE_F16, DTYPE_F32,
    DTYPE_F64, DTYPE_BOOL, DTYPE_U8, DTYPE_I8, DTYPE_U16, DTYPE_I16,
    DTYPE_U32, DTYPE_I32, DTYPE_U64, DTYPE_I64, DTYPE_F8_E4M3, DTYPE_F8_E5M2,
    DTYPE_COUNT
};

const char* dtype_name(Dtype d);             // "BF16", "F16", ... as in the header
size_t dtype_size(Dtype d);                  // bytes per element
bool dtype_parse(const std::string& s, Dtype* out);
inline bool dtype_is_float_convertible(Dtype d) { return d == DTYPE_BF16 || d == DTYPE_F16 || d == DTYPE_F32; }

inline constexpr uint64_t SAFETENSORS_MAX_HEADER = 100'000'000;  // bytes; the reference implementation's cap

struct TensorView {
    Dtype dtype = DTYPE_F32;
    std::vector<int64_t> shape;     // row-major; [] is a scalar (one element)
    int64_t n_elements = 0;         // product of shape
    const uint8_t* data = nullptr;  // little-endian elements, no alignment promised
    size_t nbytes = 0;              // n_elements * dtype_size(dtype)
};

struct SafeTensorsFile {
    std::string path;                            // named in every error
    std::map<std::string, TensorView> tensors;   // views into the mapping
    std::map<std::string, std::string> metadata; // "__metadata__"
    std::shared_ptr<const uint8_t> mapping;      // the whole file; unmapped with the last copy
    size_t size = 0;                             // file size, bytes
};

// Parses and checks a whole file held in memory, data[0, size): the header
// length, the JSON, every entry's dtype, shape and offsets, the tiling of the
// data buffer. Views point into `data` (the result's mapping stays empty; the
// caller keeps the bytes alive). Throws sp::Error "<name>: <problem>" or
// "<name>: <tensor>: <problem>", one line. Never reads outside data[0, size).
SafeTensorsFile safetensors_header_parse(const uint8_t* data, size_t size, const std::string& name);

// Maps `path` and parses it as above. Throws sp::Error naming the path for a
// missing or unreadable file as for a malformed one.
SafeTensorsFile safetensors_open(const std::string& path);

// "[a, b]": a shape as errors print it.
std::string shape_str(const std::vector<int64_t>& shape);

// Exact conversions. bf16 is the high half of an fp32; fp16 widens exactly
// (subnormals, infinities and NaN payloads included).
inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);  // inf, NaN (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
    } else if (mant == 0) {
        bits = sign;  // +-0
    } else {
        // Subnormal mant * 2^-24: shift the leading 1 up to the implicit bit;
        // each shift lowers the exponent by one from 2^-14's 113.
        uint32_t e = 113;
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Writes t's n_elements values to out as float. t.dtype must be BF16, F16 or
// F32 (dtype_is_float_convertible; asserted).
void tensor_to_f32(const TensorView& t, float* out);

}  // namespace sp
