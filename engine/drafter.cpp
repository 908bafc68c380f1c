// drafter.cpp: what every drafter shares: the DraftBatch checks
// (draft_batch_check) and drafter_open, which turns a drafter argument into a
// drafter for a given target (drafter.h lists the forms).
#include "engine/drafter.h"

#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "traces/json_errors.h"

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
        return true;
    }
    throw Error("--drafter " + spec + ": expected ngram, ngram:N or ngram:N:M (suffix lengths N >= M >= 1)");
}

}  // namespace

size_t draft_batch_check(const DraftBatch& b, const std::string& name, int n_slots, int gamma, int vocab,
                         bool needs_hidden) {
    const size_t S = b.slot.size();
    auto fail = [&](const std::string& what) { throw Error("drafter " + name + ": " + what); };
    if (b.n_ctx.size() != S || b.anchor.size() != S || b.n_draft.size() != S || b.temperature.size() != S ||
        b.request.size() != S || (!b.forced.empty() && b.forced.size() != S * size_t(gamma)))
        fail("per-request arrays do not match the batch");
    std::vector<bool> seen(size_t(n_slots), false);
    size_t n_ctx = 0;
    for (size_t s = 0; s < S; s++) {
        if (b.slot[s] < 0 || b.slot[s] >= n_slots || seen[size_t(b.slot[s])])
            fail("slot " + std::to_string(b.slot[s]) + " out of range or repeated");
        seen[size_t(b.slot[s])] = true;
        if (b.n_ctx[s] < 0 || b.n_draft[s] < 0 || b.n_draft[s] > gamma)
            fail("n_ctx must be >= 0 and n_draft in 0.." + std::to_string(gamma));
        if (b.anchor[s] < 0 || b.anchor[s] >= vocab) fail("anchor token out of range");
        if (!(b.temperature[s] >= 0)) fail("temperature must be >= 0");
        n_ctx += size_t(b.n_ctx[s]);
    }
    if (b.ctx_tokens.size() != n_ctx) fail("ctx_tokens must hold sum(n_ctx) tokens");
    for (int t : b.ctx_tokens)
        if (t < 0 || t >= vocab) fail("context token out of range");
    for (int t : b.forced)
        if (t < -1 || t >= vocab) fail("forced token out of range");
    if (needs_hidden) {
        if (b.ctx_row.size() != n_ctx) fail("ctx_row must hold sum(n_ctx) rows");
        if (n_ctx > 0 && !b.hidden) fail("needs the target's hidden states");
        for (int row : b.ctx_row)
            if (row < 0 || row >= b.hidden_T) fail("ctx_row outside the hidden states");
    }
    return n_ctx;
}

std::unique_ptr<Drafter> drafter_open(const std::string& spec, const ModelWeights& target, const DrafterOptions& o,
                                      const DrafterMakers& make) {
    if (spec == "none") return nullptr;
    int max_n = 0, min_n = 0;
    if (ngram_parse(spec, &max_n, &min_n))
        return drafter_ngram(o.n_slots, o.gamma > 0 ? o.gamma : 7, target.cfg.vocab, max_n, min_n);
    if (!is_dir(spec)) throw Error(spec + ": not a drafter: expected none, ngram[:N[:M]] or a checkpoint folder");
    const std::string arch = config_architecture(spec + "/config.json");
    if (arch == "Qwen3DSparkModel") return make.dspark(spec, target, o.n_slots, o.gamma);
    if (arch == "Qwen3Eagle3Model") return make.eagle3(spec, target, o.n_slots, o.gamma);
    if (arch != "Qwen3ForCausalLM" && arch != "LlamaForCausalLM")
        throw Error(spec + "/config.json: architectures: \"" + printable(arch) +
                    "\" is not a drafter this engine runs: expected Qwen3DSparkModel (DSpark, DFlash), "
                    "Qwen3Eagle3Model (EAGLE-3), Qwen3ForCausalLM or LlamaForCausalLM (a draft model)");
    ModelWeights w = weights_load(spec);
    if (w.cfg.vocab != target.cfg.vocab)
        throw Error(spec + "/config.json: vocab_size: the draft model has " + std::to_string(w.cfg.vocab) +
                    ", the target " + std::to_string(target.cfg.vocab) + " (a draft model needs the target's tokenizer)");
    return drafter_model(make.backend(std::move(w), o.n_slots), o.gamma > 0 ? o.gamma : 7);
}

std::unique_ptr<Drafter> drafter_open_cpu(const std::string& spec, const ModelWeights& target,
                                          const DrafterOptions& o) {
    return drafter_open(spec, target, o, DrafterMakers{drafter_dspark_cpu, drafter_eagle3_cpu, backend_cpu});
}

}  // namespace sp
