// models.h: the model shapes specplan knows by name. The engine's random-weight
// mode, the roofline cost model and the synthetic generator all start here.
#pragma once

#include <string>
#include <vector>

#include "traces/trace_db.h"

namespace sp {

// Fills *out with the preset's shape ("qwen3-0.6b", "qwen3-8b", "qwen3-32b",
// "llama3-8b"; bf16 weights and KV). Returns false for an unknown name.
bool model_preset(const std::string& name, ModelShape* out);
std::vector<std::string> model_preset_names();

// Parameters of a Qwen3/Llama decoder from its shape: embeddings (twice when
// untied), attention, SwiGLU MLP and norms (q/k norms when qk_norm).
int64_t model_count_params(const ModelShape& m, bool tied_embeddings, bool qk_norm);

}  // namespace sp
