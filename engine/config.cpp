// config.cpp: HF config.json -> Config (a target's) or DSparkConfig (a
// DeepSpec drafter's), the presets, and the range checks they share.
//
// config.json is untrusted input: every size in it becomes an allocation or a
// loop bound, so each is checked for type and range here, with bounds far
// above any real model (the largest open dense models: hidden 16384, 126
// layers, vocab 256k) but low enough that no product of them overflows int64.
// Keys that change the forward in ways the engine does not implement (biases,
// sliding windows, rope types other than Llama 3's) are refused, not ignored.
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "engine/dspark.h"
#include "engine/eagle3.h"
#include "traces/json_errors.h"
#include "engine/model.h"
#include "traces/models.h"

namespace sp {
namespace {

using json = nlohmann::json;

constexpr int MAX_VOCAB = 1 << 20;
constexpr int MAX_HIDDEN = 65536;
constexpr int MAX_FFN = 1 << 18;
constexpr int MAX_LAYERS = 512;
constexpr int MAX_HEADS = 1024;
constexpr int MAX_HEAD_DIM = 1024;
constexpr int MAX_POSITION = 1 << 24;
constexpr size_t MAX_CONFIG_BYTES = 16 << 20;  // a config.json is a few kB

std::string got(const json* v) { return v ? json_brief(*v) : "nothing (missing)"; }

struct Reader {
    const json& j;
    const std::string& path;

    [[noreturn]] void fail(const std::string& key, const std::string& expected, const json* v) const {
        throw Error(path + ": " + key + ": expected " + expected + ", got " + got(v));
    }

    // The value of `key`, or nullptr when it is absent or null (HF writes
    // null for "use the default").
    const json* find(const std::string& key) const {
        auto it = j.find(key);
        return it == j.end() || it->is_null() ? nullptr : &*it;
    }

    // An integer that fits an int; integral floats (4096.0) are accepted, as
    // Python writes them that way when a config was edited by hand.
    static bool as_int(const json& v, int* out) {
        if (v.is_number_unsigned()) {
            if (v.get<uint64_t>() > uint64_t(INT_MAX)) return false;
            *out = int(v.get<uint64_t>());
        } else if (v.is_number_integer()) {
            int64_t x = v.get<int64_t>();
            if (x < INT_MIN || x > INT_MAX) return false;
            *out = int(x);
        } else if (v.is_number_float()) {
            double x = v.get<double>();
            if (!(x >= INT_MIN && x <= INT_MAX) || x != std::floor(x)) return false;
            *out = int(x);
        } else {
            return false;
        }
        return true;
    }

    int int_or(const std::string& key, int def) const {
        const json* v = find(key);
        int x = def;
        if (v && !as_int(*v, &x)) fail(key, "an integer", v);
        return x;
    }

    int int_required(const std::string& key) const {
        const json* v = find(key);
        int x = 0;
        if (!v || !as_int(*v, &x)) fail(key, "an integer", v);
        return x;
    }

    double number_or(const std::string& key, double def) const {
        const json* v = find(key);
        if (!v) return def;
        if (!v->is_number() || !std::isfinite(v->get<double>())) fail(key, "a number", v);
        return v->get<double>();
    }

    bool bool_or(const std::string& key, bool def) const {
        const json* v = find(key);
        if (!v) return def;
        if (!v->is_boolean()) fail(key, "true or false", v);
        return v->get<bool>();
    }

    // A token id, or a list of them (the first is taken); -1 when absent.
    int token_or_none(const std::string& key) const {
        const json* v = find(key);
        if (!v) return -1;
        int x = -1;
        if (v->is_array() && !v->empty() ? !as_int((*v)[0], &x) : !as_int(*v, &x))
            fail(key, "a token id or a non-empty list of them", v);
        return x;
    }
};

// rope_scaling or rope_parameters: absent, null, rope_type "default" (none)
// or "llama3" with its four numbers; any other scaling is refused.
void rope_read(const Reader& r, const std::string& key, RopeScaling* out) {
    *out = RopeScaling{};
    const json* rs = r.find(key);
    if (!rs) return;
    if (!rs->is_object()) r.fail(key, "null or an object", rs);
    Reader s{*rs, r.path};
    const json* type = s.find("rope_type") ? s.find("rope_type") : s.find("type");  // "type": the older name
    if (!type && key == "rope_parameters") return;  // theta only
    if (!type || !type->is_string() || (*type != "llama3" && *type != "default"))
        r.fail(key + ".rope_type", "\"default\" or \"llama3\" (other rope scalings are not supported)", type);
    if (*type == "default") return;
    auto num = [&](const char* k) {
        const json* v = s.find(k);
        if (!v || !v->is_number() || !std::isfinite(v->get<double>())) r.fail(key + "." + k, "a number", v);
        return v->get<double>();
    };
    out->factor = num("factor");
    out->low_freq_factor = num("low_freq_factor");
    out->high_freq_factor = num("high_freq_factor");
    const json* o = s.find("original_max_position_embeddings");
    if (!o || !Reader::as_int(*o, &out->original_max_position))
        r.fail(key + ".original_max_position_embeddings", "an integer", o);
}

std::string read_file(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    std::string s;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        s.append(buf, n);
        if (s.size() > MAX_CONFIG_BYTES) {
            std::fclose(f);
            throw Error(path + ": larger than " + std::to_string(MAX_CONFIG_BYTES) + " bytes: not a config.json");
        }
    }
    bool failed = std::ferror(f);
    std::fclose(f);
    if (failed) throw Error(path + ": read failed");
    return s;
}

void check_range(const std::string& where, const char* key, int v, int lo, int hi) {
    if (v < lo || v > hi)
        throw Error(where + ": " + key + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    "], got " + std::to_string(v));
}

// ---------------------------------------------------------------- presets

Config preset_qwen3(const char* name, int hidden, int ffn, int n_layers, int n_heads, bool tied) {
    Config c;  // values from Qwen/Qwen3-*/config.json
    c.arch = ARCH_QWEN3;
    c.name = name;
    c.vocab = 151936;
    c.hidden = hidden;
    c.ffn = ffn;
    c.n_layers = n_layers;
    c.n_heads = n_heads;
    c.n_kv_heads = 8;
    c.head_dim = 128;
    c.rms_eps = 1e-6;
    c.rope_theta = 1e6;
    c.tie_embeddings = tied;
    c.qk_norm = true;
    c.max_position = 40960;
    c.bos_id = 151643;  // <|endoftext|>
    c.eos_id = 151645;  // <|im_end|>
    return c;
}

// meta-llama/Llama-3.1-8B: the shape of Llama 3 8B (traces/models.h), with
// 3.1's rope scaling and 128k context (Llama 3 8B itself has neither).
Config preset_llama31_8b() {
    Config c;
    c.arch = ARCH_LLAMA;
    c.name = "llama3-8b";
    c.vocab = 128256;
    c.hidden = 4096;
    c.ffn = 14336;
    c.n_layers = 32;
    c.n_heads = 32;
    c.n_kv_heads = 8;
    c.head_dim = 128;
    c.rms_eps = 1e-5;
    c.rope_theta = 500000;
    c.rope_scaling = {8, 1, 4, 8192};
    c.tie_embeddings = false;
    c.qk_norm = false;
    c.max_position = 131072;
    c.bos_id = 128000;  // <|begin_of_text|>
    c.eos_id = 128001;  // <|end_of_text|>
    return c;
}

// Tiny shapes for tests, the configs of tests/make_fixtures.py: every code
// path of the full models (GQA 2:1; Qwen3's q/k norms, untied; Llama 3 rope
// scaling whose original context of 64 puts head_dim 16's frequencies in all
// three bands, tied) at a size an Eigen forward runs in microseconds.
// meta-llama/Llama-3.1-70B: Llama 3 70B's shape with 3.1's rope scaling, as above.
Config preset_llama31_70b() {
    Config c = preset_llama31_8b();
    c.name = "llama3-70b";
    c.hidden = 8192;
    c.ffn = 28672;
    c.n_layers = 80;
    c.n_heads = 64;
    return c;
}

Config preset_tiny(Arch arch) {
    Config c;
    c.arch = arch;
    c.name = arch == ARCH_QWEN3 ? "tiny-qwen3" : "tiny-llama";
    c.vocab = 512;
    c.hidden = 64;
    c.ffn = 128;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.rms_eps = 1e-6;
    c.max_position = 512;
    c.bos_id = 1;
    c.eos_id = 2;
    if (arch == ARCH_QWEN3) {
        c.rope_theta = 1e6;
        c.qk_norm = true;
        c.tie_embeddings = false;
    } else {
        c.rope_theta = 500000;
        c.rope_scaling = {8, 1, 4, 64};
        c.qk_norm = false;
        c.tie_embeddings = true;
    }
    return c;
}

}  // namespace

void config_check(const Config& c, const std::string& where) {
    check_range(where, "vocab_size", c.vocab, 1, MAX_VOCAB);
    check_range(where, "hidden_size", c.hidden, 1, MAX_HIDDEN);
    check_range(where, "intermediate_size", c.ffn, 1, MAX_FFN);
    check_range(where, "num_hidden_layers", c.n_layers, 1, MAX_LAYERS);
    check_range(where, "num_attention_heads", c.n_heads, 1, MAX_HEADS);
    check_range(where, "num_key_value_heads", c.n_kv_heads, 1, c.n_heads);
    if (c.n_heads % c.n_kv_heads != 0)
        throw Error(where + ": num_key_value_heads: expected a divisor of num_attention_heads (" +
                    std::to_string(c.n_heads) + "), got " + std::to_string(c.n_kv_heads));
    check_range(where, "head_dim", c.head_dim, 2, MAX_HEAD_DIM);
    if (c.head_dim % 2 != 0)  // RoPE rotates pairs of dimensions
        throw Error(where + ": head_dim: expected an even integer, got " + std::to_string(c.head_dim));
    if (!(c.rms_eps > 0 && c.rms_eps < 1))
        throw Error(where + ": rms_norm_eps: expected a number in (0, 1), got " + std::to_string(c.rms_eps));
    if (!(c.rope_theta > 0 && std::isfinite(c.rope_theta)))
        throw Error(where + ": rope_theta: expected a positive number, got " + std::to_string(c.rope_theta));
    const RopeScaling& r = c.rope_scaling;
    if (r.factor != 0) {
        if (!(r.factor >= 1 && std::isfinite(r.factor)))
            throw Error(where + ": rope_scaling.factor: expected a number >= 1, got " + std::to_string(r.factor));
        if (!(r.low_freq_factor > 0 && std::isfinite(r.low_freq_factor)))
            throw Error(where + ": rope_scaling.low_freq_factor: expected a positive number, got " +
                        std::to_string(r.low_freq_factor));
        if (!(r.high_freq_factor > r.low_freq_factor && std::isfinite(r.high_freq_factor)))
            throw Error(where + ": rope_scaling.high_freq_factor: expected a number above low_freq_factor (" +
                        std::to_string(r.low_freq_factor) + "), got " + std::to_string(r.high_freq_factor));
        check_range(where, "rope_scaling.original_max_position_embeddings", r.original_max_position, 1, MAX_POSITION);
    }
    check_range(where, "max_position_embeddings", c.max_position, 1, MAX_POSITION);
    check_range(where, "bos_token_id", c.bos_id, -1, c.vocab - 1);
    check_range(where, "eos_token_id", c.eos_id, -1, c.vocab - 1);
    if (c.qk_norm != (c.arch == ARCH_QWEN3))
        throw Error(where + ": qk_norm: Qwen3 has q/k norms and Llama has none");
}

namespace {

json config_json(const std::string& path) {
    std::string text = read_file(path);
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(path + ": not valid JSON: " + json_error_text(e));
    }
    if (!j.is_object()) throw Error(path + ": expected a JSON object, got " + got(&j));
    return j;
}

// The decoder's shape, RoPE and refused features, once the architecture is
// known: a target's config.json and a DSpark drafter's (a deep copy of its
// target's) share all of it.
Config config_parse(const Reader& r, const std::string& path, Arch arch) {
    Config c;
    c.arch = arch;
    std::filesystem::path folder = std::filesystem::path(path).parent_path();
    c.name = folder.empty() ? "." : folder.string();
    c.vocab = r.int_required("vocab_size");
    c.hidden = r.int_required("hidden_size");
    c.ffn = r.int_required("intermediate_size");
    c.n_layers = r.int_required("num_hidden_layers");
    c.n_heads = r.int_required("num_attention_heads");
    c.n_kv_heads = r.int_or("num_key_value_heads", c.n_heads);
    // Qwen3 states head_dim (128 even where hidden / heads = 64); Llama
    // derives it, and hidden must then split evenly across the heads.
    if (r.find("head_dim")) {
        c.head_dim = r.int_required("head_dim");
    } else {
        check_range(path, "num_attention_heads", c.n_heads, 1, MAX_HEADS);
        if (c.hidden % c.n_heads != 0)
            throw Error(path + ": hidden_size: expected a multiple of num_attention_heads (" +
                        std::to_string(c.n_heads) + ") when head_dim is absent, got " + std::to_string(c.hidden));
        c.head_dim = c.hidden / c.n_heads;
    }
    c.rms_eps = r.number_or("rms_norm_eps", 1e-6);
    c.tie_embeddings = r.bool_or("tie_word_embeddings", false);
    c.qk_norm = c.arch == ARCH_QWEN3;
    c.max_position = r.int_or("max_position_embeddings", c.arch == ARCH_QWEN3 ? 32768 : 2048);
    c.bos_id = r.token_or_none("bos_token_id");
    c.eos_id = r.token_or_none("eos_token_id");

    // RoPE: transformers 4 writes rope_theta and rope_scaling; transformers 5
    // writes rope_parameters (theta inside) and usually both. Where both are
    // present they must agree.
    c.rope_theta = r.number_or("rope_theta", 10000);
    rope_read(r, "rope_scaling", &c.rope_scaling);
    if (const json* rp = r.find("rope_parameters")) {
        if (!rp->is_object()) r.fail("rope_parameters", "null or an object", rp);
        Reader p{*rp, path};
        double theta = p.number_or("rope_theta", c.rope_theta);
        RopeScaling scaling;
        rope_read(r, "rope_parameters", &scaling);
        if (r.find("rope_theta") && theta != c.rope_theta)
            r.fail("rope_parameters.rope_theta", "the value of rope_theta (" + json_brief(*r.find("rope_theta")) + ")",
                   p.find("rope_theta"));
        if (r.find("rope_scaling") && (scaling.factor != c.rope_scaling.factor ||
                                       scaling.low_freq_factor != c.rope_scaling.low_freq_factor ||
                                       scaling.high_freq_factor != c.rope_scaling.high_freq_factor ||
                                       scaling.original_max_position != c.rope_scaling.original_max_position))
            r.fail("rope_parameters", "the same scaling as rope_scaling", rp);
        c.rope_theta = theta;
        c.rope_scaling = scaling;
    }

    // Features that would silently change the forward.
    if (const json* act = r.find("hidden_act"); act && *act != "silu")
        r.fail("hidden_act", "\"silu\" (SwiGLU)", act);
    for (const char* key : {"attention_bias", "mlp_bias", "use_sliding_window"})
        if (r.bool_or(key, false)) r.fail(key, "false (not supported)", r.find(key));
    if (const json* lt = r.find("layer_types")) {  // transformers 5: per-layer attention kind
        if (!lt->is_array()) r.fail("layer_types", "a list of \"full_attention\"", lt);
        for (const json& t : *lt)
            if (t != "full_attention") r.fail("layer_types", "only \"full_attention\" (sliding windows are not supported)", &t);
    }

    config_check(c, path);
    return c;
}

}  // namespace

std::string config_architecture(const std::string& path) {
    const json j = config_json(path);
    const json* a = Reader{j, path}.find("architectures");
    return a && a->is_array() && !a->empty() && (*a)[0].is_string() ? (*a)[0].get<std::string>() : "";
}

Config config_load(const std::string& path) {
    const json j = config_json(path);
    Reader r{j, path};
    const char* archs = "[\"Qwen3ForCausalLM\"] or [\"LlamaForCausalLM\"]";
    const json* a = r.find("architectures");
    // PretrainedConfig.save_pretrained writes no architectures; transformers
    // then goes by model_type, and so do we.
    if (!a) {
        const json* type = r.find("model_type");
        if (type && *type == "qwen3") return config_parse(r, path, ARCH_QWEN3);
        if (type && *type == "llama") return config_parse(r, path, ARCH_LLAMA);
        r.fail("architectures", std::string(archs) + " (or, without them, model_type \"qwen3\" or \"llama\")", type);
    }
    if (!a->is_array() || a->empty() || !(*a)[0].is_string()) r.fail("architectures", archs, a);
    std::string arch = (*a)[0].get<std::string>();
    if (arch == "Qwen3ForCausalLM") return config_parse(r, path, ARCH_QWEN3);
    if (arch == "LlamaForCausalLM") return config_parse(r, path, ARCH_LLAMA);
    throw Error(path + ": architectures: unsupported architecture \"" + printable(arch) + "\", expected " + archs);
}

namespace {

// target_layer_ids of a drafter reading the target's hidden states (DSpark,
// DFlash, EAGLE-3): strictly increasing layer indices >= 0.
std::vector<int> target_layers_parse(const Reader& r, const std::string& path) {
    const json* ids = r.find("target_layer_ids");
    const char* ids_expected = "a non-empty, strictly increasing list of target layer indices";
    if (!ids || !ids->is_array() || ids->empty() || ids->size() > 64) r.fail("target_layer_ids", ids_expected, ids);
    std::vector<int> out;
    for (const json& v : *ids) {
        int l = 0;
        if (!Reader::as_int(v, &l)) r.fail("target_layer_ids", ids_expected, ids);
        if (l == -1)
            throw Error(path + ": target_layer_ids: the embedding output (-1) is not supported, expected layers >= 0");
        if (l < 0 || (!out.empty() && l <= out.back())) r.fail("target_layer_ids", ids_expected, ids);
        out.push_back(l);
    }
    return out;
}

// The architecture of a drafter's config.json, which must be `want`.
void drafter_arch_check(const Reader& r, const std::string& path, const char* want, const char* what) {
    const json* a = r.find("architectures");
    const std::string expected = std::string("[\"") + want + "\"]";
    if (!a || !a->is_array() || a->empty() || !(*a)[0].is_string()) r.fail("architectures", expected.c_str(), a);
    const std::string arch = (*a)[0].get<std::string>();
    if (arch != want)
        throw Error(path + ": architectures: unsupported drafter \"" + printable(arch) + "\", expected \"" + want +
                    "\" (" + what + ")");
}

}  // namespace

DSparkConfig dspark_config_load(const std::string& path) {
    const json j = config_json(path);
    Reader r{j, path};
    drafter_arch_check(r, path, "Qwen3DSparkModel", "DSpark or DFlash on a Qwen3 target");
    DSparkConfig d;
    d.layers = config_parse(r, path, ARCH_QWEN3);
    d.n_target_layers = r.int_required("num_target_layers");
    check_range(path, "num_target_layers", d.n_target_layers, 1, MAX_LAYERS);
    d.block_size = r.int_required("block_size");
    check_range(path, "block_size", d.block_size, 1, 64);
    d.mask_token = r.int_required("mask_token_id");
    check_range(path, "mask_token_id", d.mask_token, 0, d.layers.vocab - 1);
    d.target_layers = target_layers_parse(r, path);
    d.markov_rank = r.int_or("markov_rank", 0);
    check_range(path, "markov_rank", d.markov_rank, 0, 65536);
    if (d.markov_rank > 0) {
        const json* t = r.find("markov_head_type");
        if (t && !t->is_string()) r.fail("markov_head_type", "\"vanilla\"", t);
        if (t && *t != "vanilla")
            throw Error(path + ": markov_head_type: \"" + printable(t->get<std::string>()) +
                        "\" is not supported, expected \"vanilla\" (W1 embedding, W2 projection)");
    }
    d.confidence = r.bool_or("enable_confidence_head", false);
    d.confidence_with_markov = d.confidence && d.markov_rank > 0 && r.bool_or("confidence_head_with_markov", true);
    return d;
}

Eagle3Config eagle3_config_load(const std::string& path) {
    const json j = config_json(path);
    Reader r{j, path};
    drafter_arch_check(r, path, "Qwen3Eagle3Model", "EAGLE-3 on a Qwen3 target");
    Eagle3Config e;
    e.layers = config_parse(r, path, ARCH_QWEN3);
    if (e.layers.n_layers != 1)
        throw Error(path + ": num_hidden_layers: " + std::to_string(e.layers.n_layers) +
                    " draft layers are not supported, expected 1 (DeepSpec's EAGLE-3)");
    e.n_target_layers = r.int_required("num_target_layers");
    check_range(path, "num_target_layers", e.n_target_layers, 1, MAX_LAYERS);
    e.ttt_length = r.int_or("ttt_length", 7);
    check_range(path, "ttt_length", e.ttt_length, 1, 64);
    e.target_layers = target_layers_parse(r, path);
    return e;
}

DSparkConfig dspark_config_preset(const Config& target, int gamma, bool dflash, int draft_layers, int markov_rank) {
    DSparkConfig d;
    d.layers = target;
    d.layers.n_layers = draft_layers;
    d.n_target_layers = target.n_layers;
    d.block_size = gamma;
    d.mask_token = target.vocab - 1;
    // five layers spread over the target, as DeepSpec's Qwen3-8B config ([1, 9, 17, 25, 33])
    for (int i = 0; i < 5; i++) d.target_layers.push_back(1 + i * (target.n_layers - 3) / 4);
    d.markov_rank = dflash ? 0 : markov_rank;
    d.confidence = !dflash;
    d.confidence_with_markov = !dflash;
    return d;
}

Eagle3Config eagle3_config_preset(const Config& target, int gamma) {
    Eagle3Config e;
    e.layers = target;
    e.layers.n_layers = 1;
    e.n_target_layers = target.n_layers;
    // low, mid and high, as DeepSpec's Qwen3-8B config ([1, 17, 33] of 36)
    e.target_layers = {1, target.n_layers / 2 - 1, target.n_layers - 3};
    e.ttt_length = gamma;
    return e;
}

bool config_preset(const std::string& name_any_case, Config* out) {
    const std::string name = preset_key(name_any_case);
    Config c;
    if (name == "qwen3-0.6b") c = preset_qwen3("qwen3-0.6b", 1024, 3072, 28, 16, true);
    else if (name == "qwen3-4b") c = preset_qwen3("qwen3-4b", 2560, 9728, 36, 32, true);
    else if (name == "qwen3-14b") c = preset_qwen3("qwen3-14b", 5120, 17408, 40, 40, false);
    else if (name == "qwen3-8b") c = preset_qwen3("qwen3-8b", 4096, 12288, 36, 32, false);
    else if (name == "qwen3-32b") c = preset_qwen3("qwen3-32b", 5120, 25600, 64, 64, false);
    else if (name == "llama3-8b") c = preset_llama31_8b();
    else if (name == "llama3-70b") c = preset_llama31_70b();
    else if (name == "tiny-qwen3") c = preset_tiny(ARCH_QWEN3);
    else if (name == "tiny-llama") c = preset_tiny(ARCH_LLAMA);
    else return false;
    *out = c;
    return true;
}

Config config_resolve(const std::string& model) {
    Config c;
    if (config_preset(model, &c)) return c;
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool dir = fs::is_directory(model, ec);
    if (!dir && !fs::exists(model, ec))
        throw Error(model + ": not a model preset (qwen3-0.6b, qwen3-4b, qwen3-8b, qwen3-14b, qwen3-32b, llama3-8b, "
                    "llama3-70b), "
                    "nor a config.json "
                    "or a folder holding one");
    c = config_load(dir ? (fs::path(model) / "config.json").string() : model);
    const std::string folder = fs::path(c.name).lexically_normal().filename().string();
    if (!folder.empty() && folder != ".") c.name = folder;  // "Qwen3-4B", not its path
    return c;
}

ModelShape config_shape(const Config& c) {
    ModelShape m;
    m.name = c.name;
    m.n_layers = c.n_layers;
    m.hidden = c.hidden;
    m.n_heads = c.n_heads;
    m.n_kv_heads = c.n_kv_heads;
    m.head_dim = c.head_dim;
    m.ffn = c.ffn;
    m.vocab = c.vocab;
    m.bytes_per_weight = 2;  // bf16, as the roofline and the presets assume
    m.bytes_per_kv = 2;
    m.n_params = model_count_params(m, c.tie_embeddings, c.qk_norm);
    return m;
}

}  // namespace sp
