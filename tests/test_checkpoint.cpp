// test_checkpoint.cpp: config.json, the safetensors reader and checkpoint
// loading (engine/config.cpp, safetensors.cpp, weights.cpp).
//
// The test writes its own files with a small independent writer, so every
// byte of a bad file is under its control: each refusal must be an sp::Error
// whose message is one line and names the file (and the tensor, where there
// is one). Values are chosen exactly representable in bf16, fp16 and fp32
// (m / 64 with |m| < 256), so a loaded checkpoint must equal them exactly.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "engine/safetensors.h"
#include "scratch.h"
#include "traces/models.h"

using namespace sp;
using ojson = nlohmann::ordered_json;

namespace {

// ---------------------------------------------------------------- writing files

struct T {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::string data;  // raw little-endian bytes
};

std::string u16_bytes(const std::vector<uint16_t>& v) {
    std::string s;
    for (uint16_t x : v) s += {char(x & 0xff), char(x >> 8)};
    return s;
}

std::string f32_bytes(const std::vector<float>& v) {
    std::string s;
    for (float f : v) {
        uint32_t b;
        std::memcpy(&b, &f, 4);
        for (int i = 0; i < 4; i++) s += char((b >> (8 * i)) & 0xff);
    }
    return s;
}

// Encoders for values exactly representable in the target type (asserted).
uint16_t bf16_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    EXPECT_EQ(b & 0xffff, 0u) << f << " is not a bf16 value";
    return uint16_t(b >> 16);
}

uint16_t f16_bits(float f) {
    if (f == 0) return std::signbit(f) ? 0x8000 : 0;
    int e;
    double m = std::frexp(std::fabs(double(f)), &e);  // |f| = m 2^e, m in [0.5, 1)
    EXPECT_TRUE(e - 1 >= -14 && e - 1 <= 15) << f << " is not a normal fp16 value";
    double mant = (m * 2 - 1) * 1024;
    EXPECT_EQ(mant, std::floor(mant)) << f << " is not an fp16 value";
    return uint16_t((f < 0 ? 0x8000 : 0) | (e - 1 + 15) << 10 | int(mant));
}

std::string encode(const std::vector<float>& v, const std::string& dtype) {
    std::vector<uint16_t> h;
    if (dtype == "F32") return f32_bytes(v);
    for (float f : v) h.push_back(dtype == "BF16" ? bf16_bits(f) : f16_bits(f));
    return u16_bytes(h);
}

// 8-byte length, header text, data: for hand-made (bad) headers.
std::string st_raw(const std::string& header, const std::string& data = "") {
    std::string s;
    uint64_t n = header.size();
    for (int i = 0; i < 8; i++) s += char((n >> (8 * i)) & 0xff);
    return s + header + data;
}

// A valid file: tensors laid end to end in the order given.
std::string st_file(const std::vector<T>& ts, const ojson& metadata = nullptr) {
    ojson h = ojson::object();
    if (!metadata.is_null()) h["__metadata__"] = metadata;
    std::string data;
    for (const T& t : ts) {
        h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.data.size()}}};
        data += t.data;
    }
    return st_raw(h.dump(), data);
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    ASSERT_TRUE(f.good()) << path;
}

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// ---------------------------------------------------------------- errors

// Passes when f throws sp::Error with a one-line message containing every part.
testing::AssertionResult fails_with(const std::function<void()>& f, const std::vector<std::string>& parts) {
    try {
        f();
    } catch (const Error& e) {
        std::string msg = e.what();
        if (msg.find('\n') != std::string::npos) return testing::AssertionFailure() << "not one line: " << msg;
        for (const std::string& p : parts)
            if (msg.find(p) == std::string::npos)
                return testing::AssertionFailure() << "\"" << p << "\" not in: " << msg;
        return testing::AssertionSuccess() << msg;
    } catch (const std::exception& e) {
        return testing::AssertionFailure() << "not an sp::Error: " << e.what();
    }
    return testing::AssertionFailure() << "no error";
}

// ---------------------------------------------------------------- checkpoints

ojson config_json(const Config& c) {
    ojson j;
    j["architectures"] = {c.arch == ARCH_QWEN3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM"};
    j["model_type"] = c.arch == ARCH_QWEN3 ? "qwen3" : "llama";
    j["vocab_size"] = c.vocab;
    j["hidden_size"] = c.hidden;
    j["intermediate_size"] = c.ffn;
    j["num_hidden_layers"] = c.n_layers;
    j["num_attention_heads"] = c.n_heads;
    j["num_key_value_heads"] = c.n_kv_heads;
    j["head_dim"] = c.head_dim;
    j["hidden_act"] = "silu";
    j["rms_norm_eps"] = c.rms_eps;
    j["rope_theta"] = c.rope_theta;
    if (c.rope_scaling.factor == 0) {
        j["rope_scaling"] = nullptr;
    } else {
        j["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", c.rope_scaling.factor},
                             {"low_freq_factor", c.rope_scaling.low_freq_factor},
                             {"high_freq_factor", c.rope_scaling.high_freq_factor},
                             {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
    }
    j["tie_word_embeddings"] = c.tie_embeddings;
    j["max_position_embeddings"] = c.max_position;
    j["bos_token_id"] = c.bos_id;
    j["eos_token_id"] = c.eos_id;
    j["torch_dtype"] = "bfloat16";
    return j;
}

// The HF tensors of a config, in file order, with their shapes: written here
// independently of weights.cpp's list.
std::vector<std::pair<std::string, std::vector<int64_t>>> hf_tensors(const Config& c) {
    int64_t V = c.vocab, d = c.hidden, F = c.ffn, D = c.head_dim, q = c.n_heads * D, kv = c.n_kv_heads * D;
    std::vector<std::pair<std::string, std::vector<int64_t>>> out = {{"model.embed_tokens.weight", {V, d}}};
    for (int i = 0; i < c.n_layers; i++) {
        std::string p = "model.layers." + std::to_string(i) + ".";
        out.push_back({p + "input_layernorm.weight", {d}});
        out.push_back({p + "self_attn.q_proj.weight", {q, d}});
        out.push_back({p + "self_attn.k_proj.weight", {kv, d}});
        out.push_back({p + "self_attn.v_proj.weight", {kv, d}});
        out.push_back({p + "self_attn.o_proj.weight", {d, q}});
        if (c.arch == ARCH_QWEN3) {
            out.push_back({p + "self_attn.q_norm.weight", {D}});
            out.push_back({p + "self_attn.k_norm.weight", {D}});
        }
        out.push_back({p + "post_attention_layernorm.weight", {d}});
        out.push_back({p + "mlp.gate_proj.weight", {F, d}});
        out.push_back({p + "mlp.up_proj.weight", {F, d}});
        out.push_back({p + "mlp.down_proj.weight", {d, F}});
    }
    out.push_back({"model.norm.weight", {d}});
    if (!c.tie_embeddings) out.push_back({"lm_head.weight", {V, d}});
    return out;
}

// Exact in bf16, fp16 and fp32; differs across tensors and elements.
float test_value(size_t tensor, size_t i) { return float(int((tensor * 131 + i * 7) % 511) - 255) / 64.0f; }

struct Written {
    std::map<std::string, std::vector<float>> values;  // what each tensor holds
};

// Writes config.json and the tensors of `c` into dir, cycling through
// `dtypes`; n_shards = 0 writes model.safetensors, otherwise that many shards
// and model.safetensors.index.json. `edit` may change the tensor list first.
Written write_checkpoint(const std::string& dir, const Config& c, int n_shards,
                         const std::vector<std::string>& dtypes = {"BF16", "F16", "F32"},
                         const std::function<void(std::vector<T>&)>& edit = nullptr) {
    Written w;
    std::vector<T> ts;
    auto list = hf_tensors(c);
    for (size_t k = 0; k < list.size(); k++) {
        const auto& [name, shape] = list[k];
        size_t n = 1;
        for (int64_t s : shape) n *= size_t(s);
        std::vector<float> v(n);
        for (size_t i = 0; i < n; i++) v[i] = test_value(k, i);
        std::string dtype = dtypes[k % dtypes.size()];
        ts.push_back({name, dtype, shape, encode(v, dtype)});
        w.values[name] = v;
    }
    if (edit) edit(ts);
    write_bytes(dir + "/config.json", config_json(c).dump(2));
    if (n_shards == 0) {
        write_bytes(dir + "/model.safetensors", st_file(ts, {{"format", "pt"}}));
        return w;
    }
    ojson index = {{"metadata", {{"total_size", 0}}}, {"weight_map", ojson::object()}};
    for (int s = 0; s < n_shards; s++) {
        char file[64];
        std::snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        std::vector<T> part;
        for (size_t k = size_t(s); k < ts.size(); k += size_t(n_shards)) {
            part.push_back(ts[k]);
            index["weight_map"][ts[k].name] = file;
        }
        write_bytes(dir + "/" + file, st_file(part, {{"format", "pt"}}));
    }
    write_bytes(dir + "/model.safetensors.index.json", index.dump(2));
    return w;
}

Config preset(const std::string& name) {
    Config c;
    EXPECT_TRUE(config_preset(name, &c)) << name;
    return c;
}

void expect_same_config(const Config& a, const Config& b) {
    EXPECT_EQ(a.arch, b.arch);
    EXPECT_EQ(a.vocab, b.vocab);
    EXPECT_EQ(a.hidden, b.hidden);
    EXPECT_EQ(a.ffn, b.ffn);
    EXPECT_EQ(a.n_layers, b.n_layers);
    EXPECT_EQ(a.n_heads, b.n_heads);
    EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
    EXPECT_EQ(a.head_dim, b.head_dim);
    EXPECT_EQ(a.rms_eps, b.rms_eps);
    EXPECT_EQ(a.rope_theta, b.rope_theta);
    EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
    EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
    EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
    EXPECT_EQ(a.rope_scaling.original_max_position, b.rope_scaling.original_max_position);
    EXPECT_EQ(a.tie_embeddings, b.tie_embeddings);
    EXPECT_EQ(a.qk_norm, b.qk_norm);
    EXPECT_EQ(a.max_position, b.max_position);
    EXPECT_EQ(a.bos_id, b.bos_id);
    EXPECT_EQ(a.eos_id, b.eos_id);
}

// Every tensor of w, by HF name (the inverse of weights.cpp's mapping).
std::map<std::string, const std::vector<float>*> by_name(const ModelWeights& w) {
    std::map<std::string, const std::vector<float>*> m;
    m["model.embed_tokens.weight"] = &w.embed;
    for (size_t i = 0; i < w.layers.size(); i++) {
        const LayerWeights& l = w.layers[i];
        std::string p = "model.layers." + std::to_string(i) + ".";
        m[p + "input_layernorm.weight"] = &l.attn_norm;
        m[p + "self_attn.q_proj.weight"] = &l.wq;
        m[p + "self_attn.k_proj.weight"] = &l.wk;
        m[p + "self_attn.v_proj.weight"] = &l.wv;
        m[p + "self_attn.o_proj.weight"] = &l.wo;
        if (w.cfg.qk_norm) {
            m[p + "self_attn.q_norm.weight"] = &l.q_norm;
            m[p + "self_attn.k_norm.weight"] = &l.k_norm;
        }
        m[p + "post_attention_layernorm.weight"] = &l.mlp_norm;
        m[p + "mlp.gate_proj.weight"] = &l.w_gate;
        m[p + "mlp.up_proj.weight"] = &l.w_up;
        m[p + "mlp.down_proj.weight"] = &l.w_down;
    }
    m["model.norm.weight"] = &w.final_norm;
    if (!w.cfg.tie_embeddings) m["lm_head.weight"] = &w.lm_head;
    return m;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

}  // namespace

// ================================================================ safetensors

TEST(Safetensors, ParsesNamesDtypesShapesOffsetsAndMetadata) {
    std::string bytes = st_file({{"a", "F32", {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})},
                                 {"scalar", "BF16", {}, u16_bytes({0x3f80})},
                                 {"empty", "F16", {0, 5}, ""},
                                 {"ids", "I64", {2}, std::string(16, '\0')}},
                                {{"format", "pt"}});
    auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    SafeTensorsFile f = safetensors_header_parse(p, bytes.size(), "mem");
    ASSERT_EQ(f.tensors.size(), 4u);
    EXPECT_EQ(f.metadata.at("format"), "pt");
    const TensorView& a = f.tensors.at("a");
    EXPECT_EQ(a.dtype, DTYPE_F32);
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.n_elements, 6);
    EXPECT_EQ(a.nbytes, 24u);
    size_t data_start = bytes.size() - 24 - 2 - 16;
    EXPECT_EQ(a.data, p + data_start);
    EXPECT_EQ(f.tensors.at("scalar").n_elements, 1);
    EXPECT_EQ(f.tensors.at("scalar").shape.size(), 0u);
    EXPECT_EQ(f.tensors.at("empty").nbytes, 0u);
    EXPECT_EQ(f.tensors.at("ids").dtype, DTYPE_I64);
    std::vector<float> out(6);
    tensor_to_f32(a, out.data());
    EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(Safetensors, ConvertsBf16Fp16Fp32ToTheExactFloats) {
    ScratchDir dir;
    float inf = std::numeric_limits<float>::infinity();
    std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x4049, 0x0001, 0x7f80, 0xff80, 0x8000, 0x7fc0};
    std::vector<float> bf16_want = {1.0f, -2.0f, 3.140625f, std::ldexp(1.0f, -133), inf, -inf, -0.0f, NAN};
    std::vector<uint16_t> f16 = {0x3c00, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0xc000, 0x3555, 0x7e00};
    std::vector<float> f16_want = {1.0f,     std::ldexp(1.0f, -24), std::ldexp(1023.0f, -24), std::ldexp(1.0f, -14),
                                   65504.0f, inf,                   -inf,                     -0.0f,
                                   -2.0f,    0.333251953125f,       NAN};
    std::vector<float> f32 = {1.5f, -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()};
    write_bytes(dir.file("x.safetensors"), st_file({{"bf16", "BF16", {8}, u16_bytes(bf16)},
                                                    {"f16", "F16", {11}, u16_bytes(f16)},
                                                    {"f32", "F32", {2, 2}, f32_bytes(f32)}}));
    SafeTensorsFile f = safetensors_open(dir.file("x.safetensors"));
    auto check = [&](const std::string& name, const std::vector<float>& want) {
        const TensorView& t = f.tensors.at(name);
        std::vector<float> got(size_t(t.n_elements));
        tensor_to_f32(t, got.data());
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < want.size(); i++) {
            if (std::isnan(want[i])) EXPECT_TRUE(std::isnan(got[i])) << name << "[" << i << "]";
            else EXPECT_TRUE(same_bits(got[i], want[i])) << name << "[" << i << "] = " << got[i] << ", want " << want[i];
        }
    };
    check("bf16", bf16_want);
    check("f16", f16_want);
    check("f32", f32);
}

TEST(Safetensors, Fp16ConversionMatchesTheDefinitionForEveryBitPattern) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
        double v = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
        if (sign) v = -v;
        float got = f16_to_f32(uint16_t(h));
        if (exp == 0x1f) {
            EXPECT_EQ(std::isnan(got), mant != 0) << std::hex << h;
            if (mant == 0) {
                EXPECT_EQ(got, sign ? -INFINITY : INFINITY) << std::hex << h;
            }
        } else {
            ASSERT_TRUE(same_bits(got, float(v))) << std::hex << h << ": " << got << " vs " << v;
        }
    }
}

TEST(Safetensors, RefusesEveryTruncationOfAValidFile) {
    ScratchDir dir;
    std::string full = st_file({{"w", "BF16", {2, 3}, u16_bytes({1, 2, 3, 4, 5, 6})}, {"b", "F32", {3}, f32_bytes({1, 2, 3})}},
                               {{"format", "pt"}});
    std::string path = dir.file("t.safetensors");
    for (size_t len = 0; len < full.size(); len++) {
        write_bytes(path, full.substr(0, len));
        EXPECT_TRUE(fails_with([&] { safetensors_open(path); }, {path})) << "length " << len;
        // From memory too, with the buffer exactly as long as the prefix (ASan sees any read past it).
        std::vector<uint8_t> buf(full.begin(), full.begin() + std::ptrdiff_t(len));
        EXPECT_TRUE(fails_with([&] { safetensors_header_parse(buf.data(), buf.size(), "mem"); }, {"mem"}))
            << "length " << len;
    }
    write_bytes(path, full);
    EXPECT_EQ(safetensors_open(path).tensors.size(), 2u);
}

TEST(Safetensors, RefusesHeadersThatLie) {
    const std::string d8(8, '\0');
    struct Case {
        const char* what;
        std::string bytes;
        std::vector<std::string> parts;
    };
    auto entry = [](const std::string& body) { return "{\"w\":{" + body + "}}"; };
    std::string big_n = st_raw("{}");
    big_n[0] = 100;  // header length 100 in a 10-byte file
    std::vector<Case> cases = {
        {"header length past the end", big_n, {"header length 100 runs past the end of the file (10 bytes)"}},
        {"invalid JSON", st_raw("{\"w\": {\"dtype\": "), {"header is not valid JSON"}},
        {"not an object", st_raw("[1, 2]"), {"header is not a JSON object"}},
        {"entry not an object", st_raw("{\"w\": 3}"), {"w: expected an object"}},
        {"unknown dtype", st_raw(entry("\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]"), d8),
         {"w: unsupported dtype \"F17\""}},
        {"dtype not a string", st_raw(entry("\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]"), d8), {"w: dtype"}},
        {"missing shape", st_raw(entry("\"dtype\":\"F32\",\"data_offsets\":[0,8]"), d8), {"w: shape"}},
        {"negative dim", st_raw(entry("\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), d8),
         {"w: shape: expected an array of non-negative integers, got -2"}},
        {"fractional dim", st_raw(entry("\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]"), d8), {"w: shape"}},
        {"shape overflows", st_raw(entry("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]"), d8),
         {"w: shape [4294967296,4294967296] is too large"}},
        {"bytes overflow", st_raw(entry("\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]"), d8),
         {"w: shape", "too large"}},
        {"dim past int64", st_raw(entry("\"dtype\":\"U8\",\"shape\":[18446744073709551615],\"data_offsets\":[0,8]"), d8),
         {"w: shape", "too large"}},
        {"one offset", st_raw(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]"), d8), {"w: data_offsets"}},
        {"negative offset", st_raw(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]"), d8), {"w: data_offsets"}},
        {"end before begin", st_raw(entry("\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]"), d8),
         {"w: data_offsets [8, 0] end before they begin"}},
        {"offsets out of range", st_raw(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]"), d8),
         {"w: data_offsets [8, 16] run past the data buffer (8 bytes)"}},
        {"huge offsets", st_raw(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[18446744073709551608,18446744073709551615]"), d8),
         {"w: data_offsets", "run past the data buffer"}},
        {"size/shape mismatch", st_raw(entry("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), d8),
         {"w: data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12"}},
        {"overlap",
         st_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                d8),
         {"b: data_offsets [4, 8] overlap those of a, which end at 8"}},
        {"hole",
         st_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}",
                d8),
         {"data buffer bytes [4, 6) belong to no tensor"}},
        {"trailing bytes", st_raw(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"), d8),
         {"data buffer is 8 bytes but the tensors cover 4"}},
        {"duplicate name",
         st_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                d8),
         {"w: appears twice in the header"}},
        {"metadata not strings", st_raw("{\"__metadata__\":{\"n\":3}}"), {"__metadata__: n: expected a string"}},
        {"control bytes in a name", st_raw("{\"a\\nb\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}"),
         {"a\\x0ab: unsupported dtype"}},
    };
    ScratchDir dir;
    for (const Case& c : cases) {
        std::string path = dir.file("bad.safetensors");
        write_bytes(path, c.bytes);
        std::vector<std::string> parts = c.parts;
        parts.push_back(path + ": ");
        EXPECT_TRUE(fails_with([&] { safetensors_open(path); }, parts)) << c.what;
    }
}

// nlohmann parses any depth without recursion, but dump() recurses: an error
// that quoted a value nested this deep would overflow the stack.
TEST(Safetensors, RefusesDeeplyNestedJsonWithoutOverflowingTheStack) {
    std::string deep = std::string(500000, '[') + std::string(500000, ']');
    std::string bytes = st_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[" + deep + "],\"data_offsets\":[0,0]}}");
    auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    EXPECT_TRUE(fails_with([&] { safetensors_header_parse(p, bytes.size(), "mem"); },
                           {"mem: w: shape: expected an array of non-negative integers, got a nested array"}));
    bytes = st_raw(deep);
    p = reinterpret_cast<const uint8_t*>(bytes.data());
    EXPECT_TRUE(fails_with([&] { safetensors_header_parse(p, bytes.size(), "mem"); }, {"mem: header is not a JSON object"}));
    ScratchDir dir;
    ojson j = config_json(preset("tiny-qwen3"));
    j["hidden_size"] = "DEEP";
    std::string text = j.dump();
    text.replace(text.find("\"DEEP\""), 6, deep);
    write_bytes(dir.file("config.json"), text);
    EXPECT_TRUE(fails_with([&] { config_load(dir.file("config.json")); },
                           {dir.file("config.json") + ": hidden_size: expected an integer, got a nested array"}));
}

// The fuzzer's seeds (and any crash input saved beside them), in the normal
// build: each parses or is refused with sp::Error, nothing else.
TEST(Safetensors, ReplaysTheFuzzCorpus) {
    std::string dir = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fuzz/corpus/safetensors";
    int parsed = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::string bytes = read_bytes(e.path().string());
        try {
            safetensors_header_parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), e.path().string());
            parsed++;
        } catch (const Error&) {
        }
    }
    EXPECT_GE(parsed, 4);  // the seeds are valid files
}

TEST(Safetensors, RefusesAHeaderLengthAboveTheCap) {
    // A sparse file just past the cap: the length fits the file, not the limit.
    ScratchDir dir;
    std::string path = dir.file("huge.safetensors");
    uint64_t n = SAFETENSORS_MAX_HEADER + 1;
    std::string head;
    for (int i = 0; i < 8; i++) head += char((n >> (8 * i)) & 0xff);
    write_bytes(path, head);
    ASSERT_EQ(::truncate(path.c_str(), off_t(8 + n)), 0);
    EXPECT_TRUE(fails_with([&] { safetensors_open(path); }, {path, "header length 100000001 exceeds the 100000000-byte limit"}));
}

TEST(Safetensors, NamesTheFileWhenItIsMissingOrNotAFile) {
    ScratchDir dir;
    EXPECT_TRUE(fails_with([&] { safetensors_open(dir.file("nope.safetensors")); },
                           {dir.file("nope.safetensors") + ": cannot open: No such file or directory"}));
    EXPECT_TRUE(fails_with([&] { safetensors_open(dir.path()); }, {dir.path() + ": not a regular file"}));
}

TEST(Safetensors, ViewsOutliveTheFileObjectTheyCameFromWhileACopyLives) {
    ScratchDir dir;
    write_bytes(dir.file("a.safetensors"), st_file({{"w", "F32", {2}, f32_bytes({7, 8})}}));
    TensorView v;
    SafeTensorsFile keep;
    {
        SafeTensorsFile f = safetensors_open(dir.file("a.safetensors"));
        keep = f;
        v = f.tensors.at("w");
    }
    std::vector<float> out(2);
    tensor_to_f32(v, out.data());
    EXPECT_EQ(out, (std::vector<float>{7, 8}));
}

// ================================================================ config.json

TEST(Config, PresetsMatchTheTraceStoreShapes) {
    for (const std::string& name : model_preset_names()) {
        Config c = preset(name);
        ModelShape want;
        ASSERT_TRUE(model_preset(name, &want));
        EXPECT_EQ(config_shape(c), want) << name;
    }
    Config c;
    EXPECT_FALSE(config_preset("qwen3-9b", &c));
}

TEST(Config, Qwen3_8bHas8_19BillionParameters) {
    ModelShape m = config_shape(preset("qwen3-8b"));
    EXPECT_NEAR(double(m.n_params), 8.19e9, 0.01e9);
    // Tied embeddings count once: Qwen3-0.6B is 0.6B with them, 0.75B without.
    EXPECT_NEAR(double(config_shape(preset("qwen3-0.6b")).n_params), 0.596e9, 0.005e9);
}

TEST(Config, EveryPresetIsValidAndRoundTripsThroughConfigJson) {
    ScratchDir dir;
    for (const char* name : {"qwen3-0.6b", "qwen3-8b", "qwen3-32b", "llama3-8b", "tiny-qwen3", "tiny-llama"}) {
        Config c = preset(name);
        EXPECT_NO_THROW(config_check(c, name)) << name;
        write_bytes(dir.file("config.json"), config_json(c).dump(2));
        Config back = config_load(dir.file("config.json"));
        SCOPED_TRACE(name);
        expect_same_config(back, c);
        EXPECT_EQ(back.name, dir.path());
    }
    Config t = preset("tiny-qwen3");
    EXPECT_EQ(t.vocab, 512);
    EXPECT_EQ(t.head_dim, 16);
    EXPECT_TRUE(t.qk_norm);
    EXPECT_FALSE(preset("tiny-llama").qk_norm);
}

// Random-weight shapes by name or by explicit dimensions: a preset, a
// config.json, a folder holding one; anything else names itself in the error.
TEST(Config, ResolveTakesAPresetAConfigJsonOrAFolder) {
    expect_same_config(config_resolve("qwen3-8b"), preset("qwen3-8b"));
    EXPECT_EQ(config_resolve("qwen3-8b").name, "qwen3-8b");
    ScratchDir dir;
    const std::string folder = dir.file("Qwen3-4B");
    std::filesystem::create_directories(folder);
    Config want = preset("qwen3-0.6b");
    want.hidden = 2560;
    want.ffn = 9728;
    want.n_layers = 36;
    want.n_heads = 32;
    write_bytes(folder + "/config.json", config_json(want).dump(2));
    for (const std::string& arg : {folder, folder + "/", folder + "/config.json"}) {
        SCOPED_TRACE(arg);
        const Config c = config_resolve(arg);
        expect_same_config(c, want);
        EXPECT_EQ(c.name, "Qwen3-4B");
    }
    try {
        config_resolve("qwen3-9b");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "qwen3-9b: not a model preset (qwen3-0.6b, qwen3-4b, qwen3-8b, qwen3-14b, qwen3-32b, llama3-8b, "
                  "llama3-70b), nor a config.json or a folder holding one");
    }
    EXPECT_THROW(config_resolve(dir.path()), Error);  // a folder without config.json: config_load's missing-file error
}

// The real files, abridged of keys that do not matter, as HF ships them.
TEST(Config, LoadsTheRealQwen3AndLlama31Configs) {
    ScratchDir dir;
    write_bytes(dir.file("config.json"), R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 12288,
  "max_position_embeddings": 40960, "max_window_layers": 36, "model_type": "qwen3",
  "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
  "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})");
    expect_same_config(config_load(dir.file("config.json")), preset("qwen3-8b"));
    write_bytes(dir.file("config.json"), R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})");
    expect_same_config(config_load(dir.file("config.json")), preset("llama3-8b"));
    // Instruct models list several EOS ids; the first is taken.
    write_bytes(dir.file("config.json"), R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 128256,
  "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
  "eos_token_id": [128001, 128008, 128009], "bos_token_id": null})");
    Config c = config_load(dir.file("config.json"));
    EXPECT_EQ(c.eos_id, 128001);
    EXPECT_EQ(c.bos_id, -1);
    EXPECT_EQ(c.n_kv_heads, 32);  // defaults to the query heads
    EXPECT_EQ(c.head_dim, 128);   // hidden / heads
    EXPECT_EQ(c.rope_theta, 10000);
    EXPECT_EQ(c.rope_scaling.factor, 0);
}

// PretrainedConfig.save_pretrained writes no "architectures"; transformers
// then reads model_type, and so does config_load.
TEST(Config, WithoutArchitecturesModelTypeDecides) {
    ScratchDir dir;
    const std::string path = dir.file("config.json");
    for (const char* name : {"tiny-qwen3", "tiny-llama"}) {
        ojson j = config_json(preset(name));
        j.erase("architectures");
        write_bytes(path, j.dump());
        expect_same_config(config_load(path), preset(name));
    }
    ojson j = config_json(preset("tiny-qwen3"));
    j.erase("architectures");
    j["model_type"] = "mistral";
    write_bytes(path, j.dump());
    EXPECT_TRUE(fails_with([&] { config_load(path); },
                           {path + ": architectures: expected [\"Qwen3ForCausalLM\"] or [\"LlamaForCausalLM\"] (or, "
                                   "without them, model_type \"qwen3\" or \"llama\"), got \"mistral\""}));
    j.erase("model_type");
    write_bytes(path, j.dump());
    EXPECT_TRUE(fails_with([&] { config_load(path); }, {path + ": architectures: expected", "got nothing (missing)"}));
}

TEST(Config, PresetsInAnyCase) {
    Config a, b;
    ASSERT_TRUE(config_preset("Qwen3-4B", &a));
    ASSERT_TRUE(config_preset("qwen3-4b", &b));
    expect_same_config(a, b);
    EXPECT_EQ(a.hidden, 2560);  // Qwen/Qwen3-4B's config.json
    EXPECT_TRUE(a.tie_embeddings);
}

TEST(Config, ReadsTransformers5RopeParameters) {
    ScratchDir dir;
    ojson j = config_json(preset("tiny-llama"));
    j.erase("rope_theta");
    j.erase("rope_scaling");
    j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
    write_bytes(dir.file("config.json"), j.dump());
    expect_same_config(config_load(dir.file("config.json")), preset("tiny-llama"));
    j["rope_theta"] = 10000.0;  // both spellings, disagreeing
    write_bytes(dir.file("config.json"), j.dump());
    EXPECT_TRUE(fails_with([&] { config_load(dir.file("config.json")); },
                           {dir.file("config.json") + ": rope_parameters.rope_theta: expected the value of rope_theta"}));
}

TEST(Config, RefusesBadTypesValuesAndArchitectures) {
    struct Case {
        const char* key;
        ojson value;  // null erases the key
        std::string want;
    };
    std::vector<Case> cases = {
        {"architectures", {"MistralForCausalLM"}, "architectures: unsupported architecture \"MistralForCausalLM\""},
        {"architectures", "Qwen3ForCausalLM", "architectures: expected"},
        {"hidden_size", "64", "hidden_size: expected an integer, got \"64\""},
        {"hidden_size", 0, "hidden_size: expected an integer in [1, 65536], got 0"},
        {"hidden_size", 64.5, "hidden_size: expected an integer, got 64.5"},
        {"hidden_size", nullptr, "hidden_size: expected an integer, got nothing (missing)"},
        {"vocab_size", 1 << 21, "vocab_size: expected an integer in [1, 1048576], got 2097152"},
        {"vocab_size", 1e12, "vocab_size: expected an integer, got 1000000000000.0"},
        {"num_hidden_layers", 513, "num_hidden_layers: expected an integer in [1, 512], got 513"},
        {"num_hidden_layers", -1, "num_hidden_layers: expected an integer in [1, 512], got -1"},
        {"intermediate_size", true, "intermediate_size: expected an integer, got true"},
        {"num_key_value_heads", 3, "num_key_value_heads: expected a divisor of num_attention_heads (4), got 3"},
        {"num_key_value_heads", 8, "num_key_value_heads: expected an integer in [1, 4], got 8"},
        {"head_dim", 15, "head_dim: expected an even integer, got 15"},
        {"rms_norm_eps", -1, "rms_norm_eps: expected a number in (0, 1)"},
        {"rms_norm_eps", "small", "rms_norm_eps: expected a number, got \"small\""},
        {"rope_theta", 0, "rope_theta: expected a positive number"},
        {"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}, "rope_scaling.rope_type: expected \"default\" or \"llama3\""},
        {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}, "rope_scaling.low_freq_factor: expected a number"},
        {"rope_scaling",
         {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0}, {"high_freq_factor", 1.0},
          {"original_max_position_embeddings", 8192}},
         "rope_scaling.high_freq_factor: expected a number above low_freq_factor"},
        {"rope_scaling", 3, "rope_scaling: expected null or an object"},
        {"tie_word_embeddings", "yes", "tie_word_embeddings: expected true or false, got \"yes\""},
        {"eos_token_id", ojson::array(), "eos_token_id: expected a token id or a non-empty list of them, got []"},
        {"eos_token_id", 512, "eos_token_id: expected an integer in [-1, 511], got 512"},
        {"max_position_embeddings", 0, "max_position_embeddings: expected an integer in [1, 16777216], got 0"},
        {"attention_bias", true, "attention_bias: expected false (not supported), got true"},
        {"use_sliding_window", true, "use_sliding_window: expected false"},
        {"hidden_act", "gelu", "hidden_act: expected \"silu\" (SwiGLU), got \"gelu\""},
        {"layer_types", {"full_attention", "sliding_attention"}, "layer_types: expected only \"full_attention\""},
    };
    ScratchDir dir;
    std::string path = dir.file("config.json");
    for (const Case& c : cases) {
        ojson j = config_json(preset("tiny-qwen3"));
        if (c.value.is_null()) j.erase(c.key);
        else j[c.key] = c.value;
        write_bytes(path, j.dump());
        EXPECT_TRUE(fails_with([&] { config_load(path); }, {path + ": " + c.want})) << c.key << " = " << c.value.dump();
    }
    write_bytes(path, "{\"architectures\": [\"Qwen3ForCausalLM\"],");
    EXPECT_TRUE(fails_with([&] { config_load(path); }, {path + ": not valid JSON"}));
    write_bytes(path, "[1]");
    EXPECT_TRUE(fails_with([&] { config_load(path); }, {path + ": expected a JSON object"}));
    EXPECT_TRUE(fails_with([&] { config_load(dir.file("none.json")); }, {dir.file("none.json") + ": cannot open"}));
    Config bad = preset("tiny-qwen3");
    bad.n_kv_heads = 3;
    EXPECT_TRUE(fails_with([&] { config_check(bad, "mine"); }, {"mine: num_key_value_heads"}));
}

// ================================================================ weights

TEST(Weights, LoadsAShardedTinyQwen3CheckpointInMixedDtypes) {
    ScratchDir dir;
    Config c = preset("tiny-qwen3");
    Written w = write_checkpoint(dir.path(), c, 3);
    ModelWeights m = weights_load(dir.path());
    expect_same_config(m.cfg, c);
    EXPECT_EQ(m.cfg.name, dir.path());
    auto got = by_name(m);
    ASSERT_EQ(got.size(), w.values.size());
    for (const auto& [name, want] : w.values) {
        ASSERT_TRUE(got.count(name)) << name;
        EXPECT_EQ(*got[name], want) << name;
    }
}

TEST(Weights, LoadsASingleFileTiedTinyLlamaInEachDtype) {
    for (const char* dtype : {"BF16", "F16", "F32"}) {
        ScratchDir dir;
        Config c = preset("tiny-llama");
        Written w = write_checkpoint(dir.path(), c, 0, {dtype});
        ModelWeights m = weights_load(dir.path());
        EXPECT_TRUE(m.lm_head.empty());
        EXPECT_TRUE(m.layers[0].q_norm.empty());
        for (const auto& [name, v] : by_name(m)) EXPECT_EQ(*v, w.values.at(name)) << dtype << " " << name;
    }
}

TEST(Weights, IgnoresTensorsTheModelDoesNotUse) {
    ScratchDir dir;
    Config c = preset("tiny-llama");  // tied: an lm_head.weight in the file is not read
    write_checkpoint(dir.path(), c, 0, {"BF16"}, [](std::vector<T>& ts) {
        ts.push_back({"lm_head.weight", "F32", {3}, f32_bytes({1, 2, 3})});
        ts.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", "I64", {1}, std::string(8, '\0')});
    });
    EXPECT_NO_THROW(weights_load(dir.path()));
}

TEST(Weights, RefusesMissingFiles) {
    ScratchDir dir;
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); }, {dir.path() + "/config.json: cannot open"}));
    write_bytes(dir.file("config.json"), config_json(preset("tiny-qwen3")).dump());
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                           {dir.path() + ": no model.safetensors or model.safetensors.index.json"}));
    write_checkpoint(dir.path(), preset("tiny-qwen3"), 2);
    std::filesystem::remove(dir.file("model-00002-of-00002.safetensors"));
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                           {dir.path() + "/model-00002-of-00002.safetensors: cannot open: No such file"}));
}

TEST(Weights, RefusesShapesThatContradictConfigJson) {
    ScratchDir dir;
    Config c = preset("tiny-qwen3");
    write_checkpoint(dir.path(), c, 0, {"F32"});
    ojson j = config_json(c);
    j["num_key_value_heads"] = 4;  // k_proj should then be (64, 64); the file has (32, 64)
    write_bytes(dir.file("config.json"), j.dump());
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                           {dir.file("model.safetensors") +
                            ": model.layers.0.self_attn.k_proj.weight: shape [32, 64], expected [64, 64] from config.json"}));
    j = config_json(c);
    j["vocab_size"] = 1024;
    write_bytes(dir.file("config.json"), j.dump());
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                           {dir.file("model.safetensors") +
                            ": model.embed_tokens.weight: shape [512, 64], expected [1024, 64] from config.json"}));
    j = config_json(c);
    j["tie_word_embeddings"] = true;  // tied: fine, the file's lm_head is ignored
    write_bytes(dir.file("config.json"), j.dump());
    EXPECT_NO_THROW(weights_load(dir.path()));
}

TEST(Weights, NamesAMissingTensorAndTheFilesSearched) {
    Config c = preset("tiny-qwen3");
    auto drop = [](const std::string& name) {
        return [name](std::vector<T>& ts) {
            std::erase_if(ts, [&](const T& t) { return t.name == name; });
        };
    };
    {
        ScratchDir dir;
        write_checkpoint(dir.path(), c, 0, {"BF16"}, drop("model.layers.1.self_attn.k_norm.weight"));
        EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                               {dir.file("model.safetensors") + ": missing tensor model.layers.1.self_attn.k_norm.weight"}));
    }
    {
        ScratchDir dir;  // untied, but no lm_head anywhere
        write_checkpoint(dir.path(), c, 2, {"BF16"}, drop("lm_head.weight"));
        EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                               {dir.file("model.safetensors.index.json") + ": missing tensor lm_head.weight"}));
    }
    {
        ScratchDir dir;  // the index maps a tensor to a shard that lacks it
        write_checkpoint(dir.path(), c, 2, {"BF16"});
        ojson index = ojson::parse(read_bytes(dir.file("model.safetensors.index.json")));
        index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
        index["weight_map"]["model.layers.0.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";
        write_bytes(dir.file("model.safetensors.index.json"), index.dump());
        std::string a = dir.file("model-00001-of-00002.safetensors") + ": missing tensor ";
        bool up_in_1 = safetensors_open(dir.file("model-00001-of-00002.safetensors"))
                           .tensors.count("model.layers.0.mlp.up_proj.weight");
        EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                               {a + (up_in_1 ? "model.norm.weight" : "model.layers.0.mlp.up_proj.weight"),
                                "(model.safetensors.index.json maps it to this file)"}));
    }
}

TEST(Weights, RefusesAnUnsupportedDtype) {
    ScratchDir dir;
    Config c = preset("tiny-qwen3");
    write_checkpoint(dir.path(), c, 0, {"BF16"}, [](std::vector<T>& ts) {
        for (T& t : ts)
            if (t.name == "model.norm.weight") t = {t.name, "F64", {64}, std::string(64 * 8, '\0')};
    });
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                           {dir.file("model.safetensors") + ": model.norm.weight: unsupported dtype F64, expected BF16, F16 or F32"}));
}

TEST(Weights, RefusesAnUnsupportedArchitecture) {
    ScratchDir dir;
    write_checkpoint(dir.path(), preset("tiny-llama"), 0);
    ojson j = config_json(preset("tiny-llama"));
    j["architectures"] = {"GPT2LMHeadModel"};
    write_bytes(dir.file("config.json"), j.dump());
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                           {dir.file("config.json") + ": architectures: unsupported architecture \"GPT2LMHeadModel\""}));
}

TEST(Weights, RefusesAnIndexThatPointsOutsideTheFolder) {
    ScratchDir dir;
    write_checkpoint(dir.path(), preset("tiny-qwen3"), 2);
    std::string index_path = dir.file("model.safetensors.index.json");
    ojson index = ojson::parse(read_bytes(index_path));
    for (const char* shard : {"../model-00001-of-00002.safetensors", "/etc/passwd", "sub/x.safetensors", "..", ""}) {
        ojson bad = index;
        bad["weight_map"]["model.norm.weight"] = shard;
        write_bytes(index_path, bad.dump());
        EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); },
                               {index_path + ": weight_map: model.norm.weight: shard \"" + shard +
                                "\" is not a file name inside the checkpoint folder"}))
            << shard;
    }
    write_bytes(index_path, "{\"weight_map\": [1]}");
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); }, {index_path + ": weight_map: expected an object"}));
    write_bytes(index_path, "{\"weight_map\": {\"model.norm.weight\": 7}}");
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); }, {index_path + ": weight_map: model.norm.weight: expected a shard"}));
    write_bytes(index_path, "{\"weight_map\": ");
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); }, {index_path + ": not valid JSON"}));
}

TEST(Weights, RefusesEveryTruncationOfACheckpointFile) {
    ScratchDir dir;
    write_checkpoint(dir.path(), preset("tiny-llama"), 0, {"BF16"});
    std::string path = dir.file("model.safetensors");
    std::string full = read_bytes(path);
    size_t header_end = 8 + size_t(uint8_t(full[0])) + (size_t(uint8_t(full[1])) << 8);
    // Every length through the header, then a stride through the data.
    for (size_t len = 0; len < full.size(); len += len < header_end + 16 ? 1 : 997) {
        write_bytes(path, full.substr(0, len));
        EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); }, {path + ": "})) << "length " << len;
    }
    write_bytes(path, full.substr(0, full.size() - 1));
    EXPECT_TRUE(fails_with([&] { weights_load(dir.path()); }, {path + ": model.norm.weight: data_offsets", "run past the data buffer"}));
    write_bytes(path, full);
    EXPECT_NO_THROW(weights_load(dir.path()));
}

// The checkpoints tests/make_fixtures.py wrote with HF transformers (its own
// safetensors writer, transformers 5 config keys): they must load, with the
// tiny presets' configs, and the bf16 copy must be the fp32 one rounded.
TEST(Weights, LoadsTheHfWrittenFixtures) {
    std::string root = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";
    if (!std::filesystem::exists(root + "tiny-qwen3/model.safetensors")) GTEST_SKIP() << "no " << root;
    ModelWeights q = weights_load(root + "tiny-qwen3");
    expect_same_config(q.cfg, preset("tiny-qwen3"));
    ModelWeights l = weights_load(root + "tiny-llama");
    expect_same_config(l.cfg, preset("tiny-llama"));
    EXPECT_TRUE(l.lm_head.empty());
    ModelWeights b = weights_load(root + "tiny-qwen3-bf16");
    auto fp32 = by_name(q), bf16 = by_name(b);
    for (const auto& [name, v] : fp32) {
        ASSERT_EQ(v->size(), bf16[name]->size()) << name;
        for (size_t i = 0; i < v->size(); i++) {
            float x = (*v)[i], y = (*bf16[name])[i];
            ASSERT_LE(std::fabs(x - y), std::ldexp(std::fabs(x), -8)) << name << "[" << i << "]";
        }
    }
}

TEST(Weights, RandomWeightsAreSeededNormalsWithUnitNorms) {
    Config c = preset("tiny-qwen3");
    ModelWeights a = weights_random(c, 7), b = weights_random(c, 7), other = weights_random(c, 8);
    EXPECT_EQ(a.embed, b.embed);
    EXPECT_EQ(a.layers[1].w_down, b.layers[1].w_down);
    EXPECT_NE(a.embed, other.embed);
    EXPECT_NE(a.layers[0].wq, a.layers[1].wq);
    double sum = 0, sum2 = 0;
    for (float x : a.embed) {
        sum += x;
        sum2 += double(x) * x;
    }
    double n = double(a.embed.size()), mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
    EXPECT_NEAR(mean, 0, 0.001);  // 32768 draws: the mean's sd is 1.1e-4
    EXPECT_NEAR(sd, 0.02, 0.0005);
    EXPECT_EQ(a.final_norm, std::vector<float>(64, 1.0f));
    EXPECT_EQ(a.layers[0].q_norm, std::vector<float>(16, 1.0f));
    EXPECT_EQ(a.lm_head.size(), size_t(512 * 64));
    // Shapes as weights_load gives them.
    for (const auto& [name, shape] : hf_tensors(c)) {
        size_t want = 1;
        for (int64_t s : shape) want *= size_t(s);
        EXPECT_EQ(by_name(a).at(name)->size(), want) << name;
    }
    EXPECT_TRUE(weights_random(preset("tiny-llama"), 1).lm_head.empty());
    c.head_dim = 0;
    EXPECT_TRUE(fails_with([&] { weights_random(c, 1); }, {"tiny-qwen3: head_dim"}));
}
