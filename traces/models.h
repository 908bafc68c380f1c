// models.h: the model shapes specplan knows by name. The engine's random-weight
// mode, the roofline cost model and the synthetic generator all start here.
#pragma once

#include <string>
#include <vector>

#include "traces/trace_db.h"

namespace sp {

// Fills *out with the preset's shape ("qwen3-0.6b", "qwen3-4b", "qwen3-8b",
// "qwen3-14b", "qwen3-32b", "llama3-8b", "llama3-70b"; bf16 weights and KV).
// Names are case-insensitive ("Qwen3-8B"). Returns false for an unknown name.
// The MoE presets (qwen3-30b-a3b, deepseek-v3) are in traces/hf_config.h.
bool model_preset(const std::string& name, ModelShape* out);
std::vector<std::string> model_preset_names();

// Parameters of a Qwen3/Llama decoder from its shape: embeddings (twice when
// untied), attention, SwiGLU MLP and norms (q/k norms when qk_norm).
int64_t model_count_params(const ModelShape& m, bool tied_embeddings, bool qk_norm);

// ASCII lower case: preset names (models, GPUs) match regardless of case.
inline std::string preset_key(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
}

}  // namespace sp
