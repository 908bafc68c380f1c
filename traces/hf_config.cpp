// hf_config.cpp: config.json -> HfShape; hf_config.h says which families.
//
// Parameters, with d = hidden_size, V = vocab_size, L layers, H heads:
//   embeddings   V d, twice when tie_word_embeddings is false (the default of
//                these model classes), plus the final norm d
//   each layer   attention + its MLP + two norms (2 d)
//   attention    GQA: d H D (q) + 2 d KVH D (k, v) + H D d (o), + 2 D with
//                Qwen3's q/k norms;
//                MLA: q = d qr + qr + qr H (nope + rope) with a q_lora_rank qr
//                (else d H (nope + rope)), kv = d (kr + rope) + kr + kr H (nope + v),
//                o = H v d
//   MLP          dense: 3 d ffn (SwiGLU); MoE: a router d E, E routed experts
//                and the shared ones, 3 d moe_ffn each
// The multi-token-prediction layers DeepSeek-V3 ships are not counted (its
// 671 B does not count them either). DeepSeek-V3's config gives 671.03 B.
#include "traces/hf_config.h"

#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "traces/json_errors.h"
#include "traces/models.h"

namespace sp {
namespace {

using json = nlohmann::json;

struct Reader {
    const json& j;
    const std::string& name;

    [[noreturn]] void fail(const std::string& key, const std::string& expected, const json* v) const {
        throw Error(name + ": " + key + ": expected " + expected + ", got " + (v ? json_brief(*v) : "nothing"));
    }
    const json* find(const char* key) const {
        auto it = j.find(key);
        return it == j.end() || it->is_null() ? nullptr : &*it;
    }
    // An integer in [lo, hi]; integral floats (4096.0) as Python may write them.
    int get(const char* key, int lo, int hi, const int* def = nullptr) const {
        const json* v = find(key);
        const std::string want = "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
        if (!v) {
            if (def) return *def;
            fail(key, want, v);
        }
        if (!v->is_number()) fail(key, want, v);
        const double x = v->get<double>();
        if (!(x >= lo && x <= hi) || x != std::floor(x)) fail(key, want, v);
        return int(x);
    }
    int get_or(const char* key, int def, int lo, int hi) const { return get(key, lo, hi, &def); }
    bool flag(const char* key, bool def) const {
        const json* v = find(key);
        if (v && !v->is_boolean()) fail(key, "true or false", v);
        return v ? v->get<bool>() : def;
    }
};

constexpr int MAX_DIM = 1 << 20, MAX_LAYERS = 4096, MAX_HEADS = 8192, MAX_EXPERTS = 1 << 16;

enum Family { FAMILY_DENSE, FAMILY_QWEN3_MOE, FAMILY_DEEPSEEK };

Family family_of(const Reader& r, bool* qk_norm) {
    std::string type;
    if (const json* t = r.find("model_type"); t && t->is_string()) type = t->get<std::string>();
    if (type.empty())
        if (const json* a = r.find("architectures"); a && a->is_array() && !a->empty() && (*a)[0].is_string()) {
            const std::string arch = (*a)[0].get<std::string>();
            type = arch == "Qwen3ForCausalLM"      ? "qwen3"
                   : arch == "LlamaForCausalLM"    ? "llama"
                   : arch == "Qwen3MoeForCausalLM" ? "qwen3_moe"
                   : arch == "DeepseekV3ForCausalLM" ? "deepseek_v3"
                   : arch == "DeepseekV2ForCausalLM" ? "deepseek_v2"
                                                     : arch;
        }
    *qk_norm = type == "qwen3" || type == "qwen3_moe";
    if (type == "qwen3" || type == "llama") return FAMILY_DENSE;
    if (type == "qwen3_moe") return FAMILY_QWEN3_MOE;
    if (type == "deepseek_v3" || type == "deepseek_v2") return FAMILY_DEEPSEEK;
    r.fail(r.find("model_type") ? "model_type" : "architectures",
           "a model_type of \"qwen3\", \"llama\", \"qwen3_moe\", \"deepseek_v3\" or \"deepseek_v2\" (or their "
           "architectures)",
           r.find("model_type") ? r.find("model_type") : r.find("architectures"));
}

}  // namespace

HfShape hf_config_parse(const std::string& text, const std::string& name) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(name + ": not valid JSON: " + json_error_text(e));
    }
    if (!j.is_object()) throw Error(name + ": expected a JSON object, got " + json_brief(j));
    Reader r{j, name};
    bool qk_norm = false;
    const Family family = family_of(r, &qk_norm);

    HfShape out;
    ModelShape& m = out.model;
    m.name = name;
    m.vocab = r.get("vocab_size", 1, MAX_DIM * 16);
    m.hidden = r.get("hidden_size", 1, MAX_DIM);
    m.n_layers = r.get("num_hidden_layers", 1, MAX_LAYERS);
    m.n_heads = r.get("num_attention_heads", 1, MAX_HEADS);
    m.ffn = r.get("intermediate_size", 1, MAX_DIM);
    const bool tied = r.flag("tie_word_embeddings", false);
    const double d = m.hidden, H = m.n_heads;

    double attn = 0;
    if (family == FAMILY_DEEPSEEK) {
        const int qr = r.get_or("q_lora_rank", 0, 0, MAX_DIM), kr = r.get("kv_lora_rank", 1, MAX_DIM);
        const int nope = r.get("qk_nope_head_dim", 0, MAX_DIM), rope = r.get("qk_rope_head_dim", 0, MAX_DIM);
        const int v = r.get("v_head_dim", 1, MAX_DIM);
        const double q = qr > 0 ? d * qr + qr + double(qr) * H * (nope + rope) : d * H * (nope + rope);
        attn = q + d * (kr + rope) + kr + double(kr) * H * (nope + v) + H * v * d;
        // The latent cache: kr + rope values a token and layer, K and V in one
        // (bytes_per_kv 1 against the roofline's 2 x KVH x D: 2 bf16 bytes a value).
        m.n_kv_heads = 1;
        m.head_dim = kr + rope;
        m.bytes_per_kv = 1;
    } else {
        m.n_kv_heads = r.get_or("num_key_value_heads", m.n_heads, 1, m.n_heads);
        if (!r.find("head_dim") && m.hidden % m.n_heads != 0)
            r.fail("hidden_size", "a multiple of num_attention_heads (" + std::to_string(m.n_heads) +
                                      ") when head_dim is absent", r.find("hidden_size"));
        const int derived = m.hidden / m.n_heads;
        m.head_dim = r.get_or("head_dim", derived, 1, MAX_DIM);
        const double D = m.head_dim, KVH = m.n_kv_heads;
        attn = d * H * D + 2 * d * KVH * D + H * D * d + (qk_norm ? 2 * D : 0);
        m.bytes_per_kv = 2;
    }
    m.bytes_per_weight = 2;

    // Which layers are MoE, and their MLP.
    int experts = 0, shared = 0, moe_ffn = 0, active = 0;
    std::vector<bool> sparse(size_t(m.n_layers), false);
    if (family == FAMILY_QWEN3_MOE) {
        experts = r.get("num_experts", 1, MAX_EXPERTS);
        const int step = r.get_or("decoder_sparse_step", 1, 1, MAX_LAYERS);
        for (int i = 0; i < m.n_layers; i++) sparse[size_t(i)] = (i + 1) % step == 0;
        if (const json* only = r.find("mlp_only_layers")) {
            if (!only->is_array()) r.fail("mlp_only_layers", "a list of layer indices", only);
            for (const json& e : *only) {
                if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= m.n_layers)
                    r.fail("mlp_only_layers", "layer indices in 0.." + std::to_string(m.n_layers - 1), &e);
                sparse[size_t(e.get<int64_t>())] = false;
            }
        }
    } else if (family == FAMILY_DEEPSEEK) {
        experts = r.get("n_routed_experts", 1, MAX_EXPERTS);
        shared = r.get_or("n_shared_experts", 0, 0, MAX_EXPERTS);
        const int first = r.get_or("first_k_dense_replace", 0, 0, m.n_layers);
        const int freq = r.get_or("moe_layer_freq", 1, 1, MAX_LAYERS);
        for (int i = 0; i < m.n_layers; i++) sparse[size_t(i)] = i >= first && i % freq == 0;
    }
    if (experts > 0) {
        moe_ffn = r.get("moe_intermediate_size", 1, MAX_DIM);
        active = r.get("num_experts_per_tok", 1, experts);
    }

    double params = double(m.vocab) * d * (tied ? 1 : 2) + d, routed = 0;
    for (int i = 0; i < m.n_layers; i++) {
        double mlp = 3 * d * m.ffn;
        if (sparse[size_t(i)]) {
            mlp = d * experts + double(experts + shared) * 3 * d * moe_ffn;
            routed += double(experts) * 3 * d * moe_ffn;
        }
        params += attn + mlp + 2 * d;
    }
    if (params > 9e18) throw Error(name + ": expected a model below 9e18 parameters, got " + std::to_string(params));
    m.n_params = int64_t(params);
    if (experts > 0 && routed > 0) {
        out.n_experts = experts;
        out.experts_per_token = active;
        out.expert_param_fraction = routed / params;
        m.ffn = (active + shared) * moe_ffn;  // the SwiGLU width a token passes through in a MoE layer
    }
    return out;
}

// The sizes of each model's config.json (other keys left out).
static const struct {
    const char* name;
    const char* config;
} HF_PRESETS[] = {
    {"qwen3-30b-a3b", R"({"model_type": "qwen3_moe", "vocab_size": 151936, "hidden_size": 2048,
        "intermediate_size": 6144, "moe_intermediate_size": 768, "num_hidden_layers": 48,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
        "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
        "tie_word_embeddings": false})"},
    {"deepseek-v3", R"({"model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": 7168,
        "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
        "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "n_routed_experts": 256,
        "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1,
        "tie_word_embeddings": false})"},
};

bool hf_preset(const std::string& name, HfShape* out) {
    for (const auto& p : HF_PRESETS)
        if (preset_key(name) == p.name) {
            *out = hf_config_parse(p.config, p.name);
            return true;
        }
    return false;
}

std::vector<std::string> hf_preset_names() {
    std::vector<std::string> out;
    for (const auto& p : HF_PRESETS) out.push_back(p.name);
    return out;
}

HfShape hf_config_load(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path file = fs::is_directory(path, ec) ? fs::path(path) / "config.json" : fs::path(path);
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot read");
    std::ostringstream text;
    text << in.rdbuf();
    if (text.str().size() > (size_t(16) << 20)) throw Error(file.string() + ": expected a config.json of at most 16 MiB");
    HfShape s = hf_config_parse(text.str(), file.string());
    // Named by its folder ("Qwen3-30B-A3B"), as `specplan profile --model` names it.
    const std::string folder = file.parent_path().lexically_normal().filename().string();
    s.model.name = folder.empty() || folder == "." ? file.stem().string() : folder;
    return s;
}

}  // namespace sp
