// safetensors.cpp: the safetensors parser (format and contract in
// safetensors.h). Every number in a header is checked before it is used as a
// size or an offset: the header length against the file and a 100 MB cap,
// each shape's product for overflow, each byte range against the data buffer
// and against its shape, then all ranges together for an exact tiling.
// tests/fuzz/fuzz_safetensors.cpp drives safetensors_header_parse.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <limits>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "traces/json_errors.h"

namespace sp {
namespace {

using json = nlohmann::json;

// Indexed by Dtype; the names are the header's spelling.
struct DtypeInfo {
    const char* name;
    size_t size;
};
constexpr DtypeInfo DTYPES[] = {
    {"BF16", 2}, {"F16", 2}, {"F32", 4}, {"F64", 8}, {"BOOL", 1}, {"U8", 1},       {"I8", 1},       {"U16", 2},
    {"I16", 2},  {"U32", 4}, {"I32", 4}, {"U64", 8}, {"I64", 8},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
};
static_assert(sizeof DTYPES / sizeof DTYPES[0] == DTYPE_COUNT, "one DTYPES row per Dtype");

// A non-negative JSON integer, or false (negative, fractional, not a number).
bool json_u64(const json& j, uint64_t* out) {
    if (!j.is_number_unsigned()) return false;  // nlohmann stores non-negative integers as unsigned
    *out = j.get<uint64_t>();
    return true;
}

struct Range {
    uint64_t begin, end;
    const std::string* name;
};

}  // namespace

const char* dtype_name(Dtype d) {
    assert(d >= 0 && d < DTYPE_COUNT && "dtype_name: not a Dtype");
    return DTYPES[d].name;
}

size_t dtype_size(Dtype d) {
    assert(d >= 0 && d < DTYPE_COUNT && "dtype_size: not a Dtype");
    return DTYPES[d].size;
}

bool dtype_parse(const std::string& s, Dtype* out) {
    for (int i = 0; i < DTYPE_COUNT; i++) {
        if (s == DTYPES[i].name) {
            *out = Dtype(i);
            return true;
        }
    }
    return false;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

SafeTensorsFile safetensors_header_parse(const uint8_t* data, size_t size, const std::string& name) {
    auto fail = [&](const std::string& what) -> Error { return Error(name + ": " + what); };
    SafeTensorsFile f;
    f.path = name;
    f.size = size;

    if (size < 8)
        throw fail("truncated: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | data[i];
    if (n > size - 8)
        throw fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
                   " bytes): truncated or not a safetensors file");
    if (n > SAFETENSORS_MAX_HEADER)
        throw fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(SAFETENSORS_MAX_HEADER) +
                   "-byte limit");
    const uint8_t* buf = data + 8 + n;  // the data buffer
    uint64_t buf_size = size - 8 - n;

    // JSON keeps the last of two equal keys; the format forbids them, so the
    // top-level keys are watched as they are read.
    std::set<std::string> seen;
    std::string duplicate;
    auto watch = [&](int depth, json::parse_event_t event, json& parsed) {
        if (depth == 1 && event == json::parse_event_t::key && duplicate.empty()) {
            const std::string& key = parsed.get_ref<const std::string&>();
            if (!seen.insert(key).second) duplicate = key;
        }
        return true;
    };
    json header;
    try {
        const char* text = reinterpret_cast<const char*>(data + 8);
        header = json::parse(text, text + n, watch);
    } catch (const json::exception& e) {
        throw fail("header is not valid JSON: " + json_error_text(e));
    }
    if (!duplicate.empty()) throw fail(printable(duplicate) + ": appears twice in the header");
    if (!header.is_object()) throw fail("header is not a JSON object");

    std::vector<Range> ranges;
    for (auto item = header.begin(); item != header.end(); ++item) {
        const std::string& key = item.key();
        const json& entry = item.value();
        if (key == "__metadata__") {
            if (!entry.is_object()) throw fail("__metadata__: expected an object of strings");
            for (auto& [mk, mv] : entry.items()) {
                if (!mv.is_string())
                    throw fail("__metadata__: " + printable(mk) + ": expected a string, got " + mv.type_name());
                f.metadata[mk] = mv.get<std::string>();
            }
            continue;
        }
        auto tfail = [&](const std::string& what) { return fail(printable(key) + ": " + what); };
        if (!entry.is_object()) throw tfail("expected an object with dtype, shape and data_offsets");

        auto dt = entry.find("dtype");
        if (dt == entry.end() || !dt->is_string()) throw tfail("dtype: expected a string");
        TensorView t;
        if (!dtype_parse(dt->get<std::string>(), &t.dtype))
            throw tfail("unsupported dtype \"" + printable(dt->get<std::string>()) + "\"");

        auto sh = entry.find("shape");
        if (sh == entry.end() || !sh->is_array()) throw tfail("shape: expected an array of non-negative integers");
        uint64_t count = 1;
        bool overflow = false;
        for (const json& d : *sh) {
            uint64_t v;
            if (!json_u64(d, &v)) throw tfail("shape: expected an array of non-negative integers, got " + json_brief(d));
            if (v > uint64_t(std::numeric_limits<int64_t>::max())) overflow = true;
            else t.shape.push_back(int64_t(v));
            if (__builtin_mul_overflow(count, v, &count)) overflow = true;
        }
        uint64_t nbytes = 0;
        if (overflow || count > uint64_t(std::numeric_limits<int64_t>::max()) ||
            __builtin_mul_overflow(count, uint64_t(dtype_size(t.dtype)), &nbytes))
            throw tfail("shape " + json_brief(*sh) + " is too large");

        auto off = entry.find("data_offsets");
        uint64_t begin = 0, end = 0;
        if (off == entry.end() || !off->is_array() || off->size() != 2 || !json_u64((*off)[0], &begin) ||
            !json_u64((*off)[1], &end))
            throw tfail("data_offsets: expected [begin, end], two non-negative integers");
        if (begin > end)
            throw tfail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] end before they begin");
        if (end > buf_size)
            throw tfail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        "] run past the data buffer (" + std::to_string(buf_size) + " bytes)");
        if (end - begin != nbytes)
            throw tfail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
                        std::to_string(end - begin) + " bytes, but shape " + shape_str(t.shape) + " of " +
                        dtype_name(t.dtype) + " needs " + std::to_string(nbytes));
        t.n_elements = int64_t(count);
        t.nbytes = size_t(nbytes);
        t.data = buf + begin;
        auto it = f.tensors.emplace(key, std::move(t)).first;
        ranges.push_back({begin, end, &it->first});
    }

    // The tensors must tile the buffer: sorted by offset, each starts where
    // the previous one ended, and the last ends at the end of the file.
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    uint64_t at = 0;
    const std::string* prev = nullptr;
    for (const Range& r : ranges) {
        if (r.begin < at)
            throw fail(printable(*r.name) + ": data_offsets [" + std::to_string(r.begin) + ", " + std::to_string(r.end) +
                       "] overlap those of " + printable(*prev) + ", which end at " + std::to_string(at));
        if (r.begin > at)
            throw fail("data buffer bytes [" + std::to_string(at) + ", " + std::to_string(r.begin) +
                       ") belong to no tensor (a hole before " + printable(*r.name) + ")");
        at = r.end;
        prev = r.name;
    }
    if (at != buf_size)
        throw fail("data buffer is " + std::to_string(buf_size) + " bytes but the tensors cover " + std::to_string(at) +
                   ": trailing bytes");
    return f;
}

SafeTensorsFile safetensors_open(const std::string& path) {
    auto fail = [&](const std::string& what) { return Error(path + ": " + what); };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw fail(std::string("cannot open: ") + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw fail("not a regular file");
    }
    size_t size = size_t(st.st_size);
    if (size < 8) {  // mmap refuses a length of 0; the parser words the error
        ::close(fd);
        return safetensors_header_parse(nullptr, 0, path);
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);  // the mapping keeps the file
    if (p == MAP_FAILED) throw fail(std::string("cannot map: ") + std::strerror(err));
    std::shared_ptr<const uint8_t> mapping(static_cast<const uint8_t*>(p),
                                           [size](const uint8_t* q) { ::munmap(const_cast<uint8_t*>(q), size); });
    SafeTensorsFile f = safetensors_header_parse(mapping.get(), size, path);
    f.mapping = std::move(mapping);
    return f;
}

void tensor_to_f32(const TensorView& t, float* out) {
    assert(dtype_is_float_convertible(t.dtype) && "tensor_to_f32: check the dtype first");
    const uint8_t* p = t.data;
    size_t n = size_t(t.n_elements);
    // Bytes are assembled explicitly: the file is little-endian whatever the
    // host, and its data need not be aligned. Compilers turn these into loads.
    switch (t.dtype) {
    case DTYPE_BF16:
        for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(uint16_t(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case DTYPE_F16:
        for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(uint16_t(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case DTYPE_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = uint32_t(p[4 * i]) | uint32_t(p[4 * i + 1]) << 8 | uint32_t(p[4 * i + 2]) << 16 |
                            uint32_t(p[4 * i + 3]) << 24;
            std::memcpy(&out[i], &bits, 4);
        }
        break;
    default:
        break;
    }
}

}  // namespace sp
