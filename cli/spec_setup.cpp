// spec_setup.cpp: the shared setup of `generate` and `capture` (spec_setup.h).
#include "cli/spec_setup.h"

#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/gpu.h"
#include "traces/trace_db.h"

namespace sp {

namespace {

bool is_file(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Only asked when --device is not given: that loads the GPU module (gpu.h).
bool cuda_available() {
    const GpuApi* gpu = gpu_load();
    return gpu && gpu->device_available();
}

// Every request's positions of a trace store, for forced acceptance.
std::vector<Positions> replay_load(const std::string& path, int gamma) {
    TraceDb db = trace_db_open(path, TRACE_READ);
    std::vector<Positions> out;
    for (const Run& run : trace_db_runs(db))
        for (const Request& req : trace_db_requests(db, run.id)) {
            Positions p;
            if (trace_db_positions(db, req.id, &p) && p.n > 0 && p.gamma >= gamma) out.push_back(std::move(p));
        }
    if (out.empty())
        throw Error(path + ": positions: expected requests with positions of gamma >= " + std::to_string(gamma) +
                    " for --acceptance replay, found none");
    return out;
}

}  // namespace

void spec_add_flags(CLI::App* cmd, SpecArgs& a, bool drafter_required, bool per_request) {
    cmd->add_option("--model", a.model, "target checkpoint folder (config.json, model.safetensors), or a preset "
                                        "shape with random weights (qwen3-0.6b, qwen3-4b, qwen3-8b, qwen3-14b, qwen3-32b, "
                                        "llama3-8b, llama3-70b; for timing with "
                                        "replayed acceptance)")->required();
    auto* d = cmd->add_option("--drafter", a.drafter,
                              "none, ngram[:N[:M]] (prompt lookup), a drafter folder: DSpark/DFlash "
                              "(Qwen3DSparkModel), EAGLE-3 (Qwen3Eagle3Model) or a Qwen3/Llama draft model; "
                              "or, beside a preset --model on CUDA, dspark, dflash or eagle3: random weights at "
                              "that preset's shape");
    if (drafter_required) d->required();
    if (per_request) {
        cmd->add_option("--gamma", a.gamma, "drafts per step at most (default: the drafter's block size, or 7)");
        cmd->add_option("--policy", a.policy,
                        "verify length per step: ar, mtp1, fixed:K, threshold:T, dspark, dspark-async, goodput, "
                        "draft-prob (default fixed:gamma)");
    }
    cmd->add_option("--temperature", a.temperature, "sampling temperature; 0 = greedy (default)");
    cmd->add_option("--seed", a.seed, "RNG seed (default 1)")->transform(seed_number());
    cmd->add_option("--tokenizer", a.tokenizer, "tokenizer.json (default: the model folder's)");
    cmd->add_option("--device", a.device, "cpu (the fp32 reference) or cuda (default: cuda when there is a GPU)");
    if (per_request)
        cmd->add_option("--acceptance", a.acceptance,
                        "replay:TRACE.specdb: accept decisions from a trace's positions (timing with random weights)");
}

std::unique_ptr<SpecSetup> spec_setup(const SpecArgs& a, int n_seqs) {
    auto s = std::make_unique<SpecSetup>();
    if (!(a.temperature >= 0 && a.temperature <= 100))
        throw Error("--temperature " + std::to_string(a.temperature) + ": expected a number in [0, 100]");
    if (a.gamma < 0 || a.gamma > TRACE_MAX_GAMMA)
        throw Error("--gamma " + std::to_string(a.gamma) + ": expected 1.." + std::to_string(TRACE_MAX_GAMMA));
    std::string device = a.device.empty() ? (cuda_available() ? "cuda" : "cpu") : a.device;
    if (device != "cpu" && device != "cuda") throw Error("--device " + device + ": expected cpu or cuda");
    const GpuApi* gpu = device == "cuda" ? &gpu_require("--device cuda") : nullptr;

    // --model: a checkpoint folder, or a preset shape (config_preset) with
    // random weights, for timing at a production shape with accept
    // decisions replayed from a trace. On CUDA the weights are made on the
    // device and the host keeps only the shape: drafters that read the
    // target's weights (DSpark, DFlash, EAGLE-3) need a checkpoint.
    Config preset;
    const bool random = !is_file(a.model + "/config.json") && config_preset(a.model, &preset);
    if (random && device == "cpu") s->target = weights_random(preset, a.seed);
    else if (random) s->target.cfg = preset;
    else s->target = weights_load(a.model);
    const std::string tok = a.tokenizer.empty() ? a.model + "/tokenizer.json" : a.tokenizer;
    if (!a.tokenizer.empty() || is_file(tok)) {
        s->tok = tokenizer_load(tok);
        if (int(s->tok->id_bytes.size()) > s->target.cfg.vocab)
            throw Error(tok + ": holds " + std::to_string(s->tok->id_bytes.size()) + " tokens, more than the model's " +
                        "vocab_size " + std::to_string(s->target.cfg.vocab));
    }

    // --drafter dspark|dflash|eagle3 beside a preset --model: that drafter at
    // the preset's shape (dspark_config_preset, eagle3_config_preset) with
    // random weights made on the device, so that the draft phase costs what
    // it would at that shape while the accept decisions come from a trace.
    const bool random_drafter = !is_file(a.drafter + "/config.json") &&
                                (a.drafter == "dspark" || a.drafter == "dflash" || a.drafter == "eagle3");
    if (random_drafter && !random)
        throw Error("--drafter " + a.drafter + ": random weights at a preset's shape, so --model must be a preset " +
                    "(qwen3-8b, ...), not the checkpoint " + a.model);
    if (random_drafter && device != "cuda")
        throw Error("--drafter " + a.drafter + ": random drafter weights are made on the GPU; needs --device cuda");

    DrafterOptions dopt;
    dopt.gamma = a.gamma;
    dopt.n_slots = n_seqs;
    if (device == "cpu") {
        s->backend = backend_cpu(s->target, n_seqs);
        s->drafter = drafter_open_cpu(a.drafter, s->target, dopt);
    } else {
        gpu->spec_setup(*s, a, random, random_drafter, n_seqs, dopt);
    }

    SpecOptions& o = s->opt;
    o.gamma = s->drafter ? (a.gamma > 0 ? a.gamma : s->drafter->gamma()) : 0;
    o.eos = s->target.cfg.eos_id;
    o.seed = a.seed;
    const std::string policy = !a.policy.empty() ? a.policy : s->drafter ? "fixed:" + std::to_string(o.gamma) : "ar";
    std::string err;
    if (!policy_parse(policy, &o.policy, &err)) throw Error("--policy " + policy + ": expected " + err);
    if (o.policy.kind == POLICY_BATCH_TABLE) throw Error("--policy batch-table: needs a scenario's table; not here");
    if (o.policy.kind == POLICY_FIXED && s->drafter && o.policy.k > o.gamma)  // else run as fixed:gamma, named fixed:K
        throw Error("--policy " + policy + ": expected fixed:K with K <= gamma = " + std::to_string(o.gamma) +
                    " (--gamma, or the drafter's block size)");
    if (policy_needs_step_time(o.policy)) {
        s->step_cost =
            step_cost_measure(*s->backend, n_seqs, o.gamma + 1, std::min(512, s->target.cfg.max_position / 2), 3);
        o.step_time = step_cost_fn(s->step_cost);
    }
    if (!a.acceptance.empty()) {
        if (a.acceptance.rfind("replay:", 0) != 0)
            throw Error("--acceptance " + a.acceptance + ": expected replay:TRACE.specdb");
        if (!s->drafter) throw Error("--acceptance replay: needs a drafter");
        s->replay = replay_load(a.acceptance.substr(7), o.gamma);
        if (o.policy.kind == POLICY_DRAFT_PROB)
            for (const Positions& p : s->replay)
                if (p.draft_prob.empty())
                    throw Error(a.acceptance.substr(7) + ": positions.draft_prob: --policy draft-prob with " +
                                "--acceptance replay reads the trace's draft probabilities; request " +
                                std::to_string(p.request_id) + " has none (captured before schema 3?)");
    }
    return s;
}

std::vector<PromptLine> prompts_load(const std::string& path, int vocab) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot open");
    std::vector<PromptLine> out;
    std::string line;
    int no = 0;
    while (std::getline(in, line)) {
        no++;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string at = path + ":" + std::to_string(no) + ": ";
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            throw Error(at + "expected a JSON object {\"prompt\": ..., \"domain\": ...}");
        PromptLine p;
        auto t = j.find("prompt"), ids = j.find("prompt_ids"), d = j.find("domain");
        if (t != j.end()) {
            if (!t->is_string() || t->get<std::string>().empty()) throw Error(at + "prompt: expected a non-empty string");
            p.text = t->get<std::string>();
        } else if (ids != j.end()) {
            if (!ids->is_array() || ids->empty()) throw Error(at + "prompt_ids: expected a non-empty list of token ids");
            for (const auto& v : *ids) {
                if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
                    throw Error(at + "prompt_ids: expected token ids in 0.." + std::to_string(vocab - 1));
                p.ids.push_back(v.get<int>());
            }
        } else {
            throw Error(at + "prompt: expected a string (or prompt_ids: a list of token ids)");
        }
        if (d != j.end()) {
            if (!d->is_string() || d->get<std::string>().empty()) throw Error(at + "domain: expected a non-empty string");
            p.domain = d->get<std::string>();
        }
        out.push_back(std::move(p));
    }
    if (out.empty()) throw Error(path + ": no prompts");
    return out;
}

}  // namespace sp
