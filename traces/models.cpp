// models.cpp: preset shapes, copied from each model's HF config.json.
#include "traces/models.h"

namespace sp {

struct Preset {
    const char* name;
    int n_layers, hidden, n_heads, n_kv_heads, head_dim, ffn, vocab;
    bool tied, qk_norm;
};

// Qwen/Qwen3-{0.6B,4B,8B,14B,32B}, meta-llama/Meta-Llama-3-{8B,70B}.
static const Preset PRESETS[] = {
    {"qwen3-0.6b", 28, 1024, 16, 8, 128, 3072, 151936, true, true},
    {"qwen3-4b", 36, 2560, 32, 8, 128, 9728, 151936, true, true},
    {"qwen3-8b", 36, 4096, 32, 8, 128, 12288, 151936, false, true},
    {"qwen3-14b", 40, 5120, 40, 8, 128, 17408, 151936, false, true},
    {"qwen3-32b", 64, 5120, 64, 8, 128, 25600, 151936, false, true},
    {"llama3-8b", 32, 4096, 32, 8, 128, 14336, 128256, false, false},
    {"llama3-70b", 80, 8192, 64, 8, 128, 28672, 128256, false, false},
};

int64_t model_count_params(const ModelShape& m, bool tied_embeddings, bool qk_norm) {
    int64_t d = m.hidden, q = int64_t(m.n_heads) * m.head_dim, kv = int64_t(m.n_kv_heads) * m.head_dim;
    int64_t attn = d * q + 2 * d * kv + q * d + (qk_norm ? 2 * m.head_dim : 0);
    int64_t mlp = 3 * d * m.ffn;
    int64_t norms = 2 * d;
    int64_t embed = int64_t(m.vocab) * d * (tied_embeddings ? 1 : 2);
    return embed + m.n_layers * (attn + mlp + norms) + d;
}

bool model_preset(const std::string& name, ModelShape* out) {
    for (const Preset& p : PRESETS) {
        if (preset_key(name) != p.name) continue;
        ModelShape m;
        m.name = p.name;
        m.n_layers = p.n_layers;
        m.hidden = p.hidden;
        m.n_heads = p.n_heads;
        m.n_kv_heads = p.n_kv_heads;
        m.head_dim = p.head_dim;
        m.ffn = p.ffn;
        m.vocab = p.vocab;
        m.bytes_per_weight = 2;
        m.bytes_per_kv = 2;
        m.n_params = model_count_params(m, p.tied, p.qk_norm);
        *out = m;
        return true;
    }
    return false;
}

std::vector<std::string> model_preset_names() {
    std::vector<std::string> out;
    for (const Preset& p : PRESETS) out.push_back(p.name);
    return out;
}

}  // namespace sp
