// drafter.cpp: drafter_open_cpu, which turns a drafter argument into a
// drafter for a given target (drafter.h lists the forms).
#include "engine/drafter.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/json_errors.h"

namespace sp {

namespace {

bool is_dir(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// "ngram", "ngram:N" or "ngram:N:M"; false when spec is not an n-gram spec.
bool ngram_parse(const std::string& spec, int* max_n, int* min_n) {
    if (spec.rfind("ngram", 0) != 0) return false;
    *max_n = 3;
    *min_n = 1;
    if (spec == "ngram") return true;
    int n = 0, m = 0;
    char tail = 0;
    if (std::sscanf(spec.c_str(), "ngram:%d:%d%c", &n, &m, &tail) == 2) {
        *max_n = n;
        *min_n = m;
        return true;
    }
    if (std::sscanf(spec.c_str(), "ngram:%d%c", &n, &tail) == 1) {
        *max_n = n;
        *min_n = std::min(1, n);
        return true;
    }
    throw Error("--drafter " + spec + ": expected ngram, ngram:N or ngram:N:M (suffix lengths N >= M >= 1)");
}

// The first architecture named by dir/config.json ("" when it names none).
std::string architecture_of(const std::string& config) {
    FILE* f = std::fopen(config.c_str(), "rb");
    if (!f) throw Error(config + ": cannot open: " + std::strerror(errno) + " (a drafter folder holds a config.json)");
    std::string text;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (16u << 20)) text.append(buf, n);
    std::fclose(f);
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(config + ": not a JSON object");
    auto a = j.find("architectures");
    if (a == j.end() || !a->is_array() || a->empty() || !(*a)[0].is_string()) return "";
    return (*a)[0].get<std::string>();
}

}  // namespace

std::unique_ptr<Drafter> drafter_open(const std::string& spec, const ModelWeights& target, const DrafterOptions& o,
                                      const DrafterMakers& make) {
    if (spec == "none") return nullptr;
    int max_n = 0, min_n = 0;
    if (ngram_parse(spec, &max_n, &min_n))
        return drafter_ngram(o.n_slots, o.gamma > 0 ? o.gamma : 7, target.cfg.vocab, max_n, min_n);
    if (!is_dir(spec)) throw Error(spec + ": not a drafter: expected none, ngram[:N[:M]] or a checkpoint folder");
    const std::string arch = architecture_of(spec + "/config.json");
    if (arch == "Qwen3DSparkModel") return make.dspark(spec, target, o.n_slots, o.gamma);
    if (arch != "Qwen3ForCausalLM" && arch != "LlamaForCausalLM")
        throw Error(spec + "/config.json: architectures: \"" + printable(arch) +
                    "\" is not a drafter this engine runs: expected Qwen3DSparkModel (DSpark, DFlash), "
                    "Qwen3ForCausalLM or LlamaForCausalLM (a draft model)");
    ModelWeights w = weights_load(spec);
    if (w.cfg.vocab != target.cfg.vocab)
        throw Error(spec + "/config.json: vocab_size: the draft model has " + std::to_string(w.cfg.vocab) +
                    ", the target " + std::to_string(target.cfg.vocab) + " (a draft model needs the target's tokenizer)");
    return drafter_model(make.backend(std::move(w), o.n_slots), o.gamma > 0 ? o.gamma : 7);
}

std::unique_ptr<Drafter> drafter_open_cpu(const std::string& spec, const ModelWeights& target,
                                          const DrafterOptions& o) {
    return drafter_open(spec, target, o, DrafterMakers{drafter_dspark_cpu, backend_cpu});
}

}  // namespace sp
