// bench_spec: the speculative decoder's speed on the GPU machine (issue 9,
// performance). Random bf16 weights made on the device at --model's shape;
// own main, JSON via --out.
//
//  1. Draft cost of each drafter kind at R = --batches requests, gamma =
//     --gamma, each request holding --context context tokens: DSpark
//     (--draft-layers target-shaped layers, Markov rank --markov-rank, the
//     confidence head), DFlash (the same backbone, rank 0, no head),
//     EAGLE-3 (one target-shaped layer over the target's low, mid and high
//     features, a chain of gamma steps), an independent draft model
//     (--draft-model's shape, autoregressive) and n-gram lookup (host). One
//     timed draft() per step after a warm-up, each bringing 1 new context
//     token per request (steady decoding), median of --steps; the call is
//     synchronous (tokens come back to the host).
//     The Markov loop's share of a round = (T_draft(DSpark) -
//     T_draft(DFlash)) / (T_draft(DSpark) + T_verify(R (1 + gamma))): what
//     the sequential head adds to the round, as the paper's Fig 4 measures it
//     (0.2-1.3 % at batch 128). T_verify(B) is one forward of R sequences of
//     1 + gamma tokens at the same context, through the engine's graphs.
//  2. Loop efficiency at batch 1 (measured first): one request of --prompt random tokens
//     generating --tokens tokens, fixed:gamma, the accept decisions forced
//     from --trace's positions (--acceptance replay), the real forward and the
//     DSpark drafter at full shape; then the same request without a drafter.
//     measured speedup = AR s/token / speculative s/token; ideal =
//     tau T_verify(1) / (T_draft(1) + T_verify(1 + gamma)) with tau the run's
//     own tokens per step and the T's timed alone; efficiency = measured /
//     ideal (goal >= 0.95: the loop wastes nothing).
//
//   bench_spec [--model qwen3-8b] [--draft-model qwen3-0.6b] [--draft-layers 5] [--markov-rank 256]
//              [--gamma 7] [--batches 1,2,4,...,256] [--context 512] [--steps 20] [--trace FILE]
//              [--prompt 512] [--tokens 256] [--out PATH]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/cuda_model.h"
#include "engine/drafter_cuda.h"
#include "engine/dspark.h"
#include "engine/eagle3.h"
#include "engine/speculative.h"
#include "traces/trace_db.h"

namespace sp {
namespace {

struct Args {
    std::string model = "qwen3-8b", draft_model = "qwen3-0.6b", trace, out;
    std::string batches = "1,2,4,8,16,32,64,128,256";
    int draft_layers = 5, markov_rank = 256, gamma = 7, context = 512, steps = 20, prompt = 512, tokens = 256;
};

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::vector<int> random_tokens(int n, int vocab, uint64_t salt) {
    std::vector<int> t(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) t[size_t(i)] = int((uint64_t(i + 1) * 2654435761u + salt) % uint64_t(vocab));
    return t;
}

// A DraftBatch of R requests in slots 0..R-1, each bringing n_ctx context
// tokens whose hidden rows are 0..n_ctx-1 of `hidden`.
DraftBatch batch_of(int R, int n_ctx, int gamma, const float* hidden, int hidden_T, int vocab, int round) {
    DraftBatch b;
    b.hidden = hidden;
    b.hidden_T = hidden_T;
    b.seed = 1;
    for (int r = 0; r < R; r++) {
        b.slot.push_back(r);
        b.n_ctx.push_back(n_ctx);
        const std::vector<int> t = random_tokens(n_ctx, vocab, uint64_t(r * 7919 + round));
        b.ctx_tokens.insert(b.ctx_tokens.end(), t.begin(), t.end());
        for (int i = 0; i < n_ctx; i++) b.ctx_row.push_back(i % hidden_T);
        b.anchor.push_back(int((r * 31 + round) % vocab));
        b.n_draft.push_back(gamma);
        b.temperature.push_back(0);
        b.request.push_back(uint64_t(r));
    }
    return b;
}

// Median seconds of one draft() of R requests, after `context` tokens of context each.
double time_draft(Drafter& d, int R, const Args& a, const float* hidden, int hidden_T, int vocab) {
    DraftOutput out;
    for (int r = 0; r < R; r++) {  // one request at a time: a draft model's prefill keeps (T, V) logits
        d.reset(r);
        DraftBatch fill = batch_of(1, a.context, a.gamma, hidden, hidden_T, vocab, 0);
        fill.slot = {r};
        fill.n_draft = {0};
        d.draft(fill, &out);
    }
    std::vector<double> s;
    for (int i = 0; i <= a.steps; i++) {
        const DraftBatch b = batch_of(R, 1, a.gamma, hidden, hidden_T, vocab, i + 1);
        const double t0 = now_s();
        d.draft(b, &out);
        if (i > 0) s.push_back(now_s() - t0);
    }
    return median(s);
}

// Median seconds of one target forward of R sequences x q tokens at `context`.
double time_verify(Backend& b, int R, int q, int context, int steps) {
    const int V = b.config().vocab;
    for (int r = 0; r < R; r++) {
        b.truncate(r, 0);
        b.forward(RaggedBatch{{r}, {context}, random_tokens(context, V, uint64_t(r))}, nullptr);
    }
    RaggedBatch rb;
    for (int r = 0; r < R; r++) {
        rb.seq.push_back(r);
        rb.q_len.push_back(q);
        const std::vector<int> t = random_tokens(q, V, uint64_t(1000 + r));
        rb.tokens.insert(rb.tokens.end(), t.begin(), t.end());
    }
    std::vector<double> s;
    for (int i = 0; i <= steps; i++) {
        const double t0 = now_s();
        b.forward(rb, nullptr);
        if (i > 0) s.push_back(now_s() - t0);
        for (int r = 0; r < R; r++) b.truncate(r, context);
    }
    for (int r = 0; r < R; r++) b.truncate(r, 0);
    return median(s);
}

int run(const Args& a) {
    Config c, dm;
    if (!config_preset(a.model, &c) || !config_preset(a.draft_model, &dm))
        throw Error("--model / --draft-model: expected a preset (qwen3-0.6b, qwen3-8b, qwen3-32b, llama3-8b)");
    std::vector<int> batches;
    for (size_t p = 0; p < a.batches.size();) {
        const size_t comma = a.batches.find(',', p);
        batches.push_back(std::stoi(a.batches.substr(p, comma - p)));
        p = comma == std::string::npos ? a.batches.size() : comma + 1;
    }
    const int R_max = *std::max_element(batches.begin(), batches.end());
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    nlohmann::json out;
    {
        char date[32];
        const std::time_t t = std::time(nullptr);
        std::strftime(date, sizeof date, "%F", std::gmtime(&t));
        out["gpu"] = prop.name;
        out["date"] = date;
        out["model"] = a.model;
        out["gamma"] = a.gamma;
        out["context"] = a.context;
    }
    std::printf("# bench_spec on %s: %s, gamma %d, context %d\n", prop.name, a.model.c_str(), a.gamma, a.context);

    // the target: enough cache for R_max sequences of context + a block
    CudaBackendOptions bo;
    bo.kv.capacity_tokens = int64_t(R_max) * (a.context + 2 * a.gamma + 16) + a.prompt + a.tokens + 64;
    auto target = backend_cuda_random(c, 1, R_max, bo);
    const DSparkConfig ds = dspark_config_preset(c, a.gamma, false, a.draft_layers, a.markov_rank),
                       df = dspark_config_preset(c, a.gamma, true, a.draft_layers, a.markov_rank);
    const Eagle3Config e3 = eagle3_config_preset(c, a.gamma);
    // hidden rows for the drafters' context: (m, context, d) random-ish (values do not change the time);
    // EAGLE-3 reads the first 3 of DSpark's 5 layers' rows
    const int m = int(ds.target_layers.size());
    float* hidden = nullptr;
    CUDA_CHECK(cudaMalloc(&hidden, size_t(m) * a.context * c.hidden * sizeof(float)));
    CUDA_CHECK(cudaMemset(hidden, 0, size_t(m) * a.context * c.hidden * sizeof(float)));

    // 1. loop efficiency at batch 1, forced acceptance (first: the headline, and
    //    the draft-cost grid below may be cut short by a time limit)
    if (!a.trace.empty()) {
        KvCacheOptions lkv;  // one sequence at a time, in slots numbered as the target's
        lkv.capacity_tokens = a.prompt + a.tokens + a.steps + 4 * a.gamma + 64;
        auto dspark = drafter_dspark_cuda_random(c, ds, 2, R_max, a.gamma, lkv);
        TraceDb db = trace_db_open(a.trace, TRACE_READ);
        std::vector<Positions> replay;
        for (const sp::Run& run : trace_db_runs(db))
            for (const Request& req : trace_db_requests(db, run.id)) {
                Positions p;
                if (trace_db_positions(db, req.id, &p) && p.gamma >= a.gamma && p.n > 0) replay.push_back(p);
            }
        if (replay.empty()) throw Error(a.trace + ": no positions of gamma >= " + std::to_string(a.gamma));
        const std::vector<int> prompt = random_tokens(a.prompt, c.vocab, 99);
        for (int r = 0; r < R_max; r++) target->truncate(r, 0);
        SpecOptions so;
        std::string err;
        policy_parse("fixed:" + std::to_string(a.gamma), &so.policy, &err);
        so.gamma = a.gamma;
        auto decode = [&](Drafter* d, SpecRequest* r) {
            Speculator spec(*target, d, d ? so : SpecOptions{});
            spec.add(r);
            const double t0 = now_s();
            while (!spec.idle()) spec.step();
            return now_s() - t0;
        };
        SpecRequest sr;
        sr.prompt = prompt;
        sr.max_new = a.tokens;
        sr.replay = &replay[0];
        decode(dspark.get(), &sr);  // warm-up: graphs captured, buffers sized
        sr.output.clear();
        const double t_spec = decode(dspark.get(), &sr);
        SpecRequest ar;
        ar.prompt = prompt;
        ar.max_new = a.tokens;
        decode(nullptr, &ar);
        ar.output.clear();
        const double t_ar = decode(nullptr, &ar);
        const int decoded = int(sr.output.size()) - 1, ar_decoded = int(ar.output.size()) - 1;
        const double tau = double(decoded) / double(sr.steps.size());
        const double t_v1 = time_verify(*target, 1, 1, a.prompt, a.steps),
                     t_vg = time_verify(*target, 1, 1 + a.gamma, a.prompt, a.steps);
        Args a1 = a;
        a1.context = a.prompt;
        const double t_d1 = time_draft(*dspark, 1, a1, hidden, std::min(a.prompt, a.context), c.vocab);
        const double measured = (t_ar / ar_decoded) / (t_spec / decoded);
        const double ideal = tau * t_v1 / (t_d1 + t_vg);
        std::printf("\nbatch 1, fixed:%d, acceptance replayed from %s:\n", a.gamma, a.trace.c_str());
        std::printf("  tau %.3f; AR %.3f ms/token; speculative %.3f ms/token; measured speedup %.3f\n", tau,
                    1e3 * t_ar / ar_decoded, 1e3 * t_spec / decoded, measured);
        std::printf("  T_verify(1) %.3f ms, T_verify(%d) %.3f ms, T_draft(1) %.3f ms: ideal speedup %.3f\n",
                    1e3 * t_v1, 1 + a.gamma, 1e3 * t_vg, 1e3 * t_d1, ideal);
        std::printf("  loop efficiency %.3f (goal >= 0.95)\n", measured / ideal);
        out["loop"] = {{"tau", tau},           {"ar_ms_per_token", 1e3 * t_ar / ar_decoded},
                       {"spec_ms_per_token", 1e3 * t_spec / decoded},
                       {"measured_speedup", measured}, {"t_verify_1_ms", 1e3 * t_v1},
                       {"t_verify_1_gamma_ms", 1e3 * t_vg}, {"t_draft_1_ms", 1e3 * t_d1},
                       {"ideal_speedup", ideal}, {"efficiency", measured / ideal}, {"trace", a.trace}};
    }
    // 2. draft cost per kind: verify first, then one drafter alive at a time
    //    (all four at R = 256 do not fit an 80 GB card beside the target)
    KvCacheOptions dkv;
    dkv.capacity_tokens = int64_t(R_max) * (a.context + a.steps + 2 * a.gamma + 16);
    const size_t nb = batches.size();
    std::vector<double> t_v(nb), t_ds(nb), t_df(nb), t_e3(nb), t_dm(nb), t_ng(nb);
    for (size_t i = 0; i < nb; i++) t_v[i] = time_verify(*target, batches[i], 1 + a.gamma, a.context, a.steps);
    auto each = [&](Drafter& d, std::vector<double>* t) {
        for (size_t i = 0; i < nb; i++) (*t)[i] = time_draft(d, batches[i], a, hidden, a.context, c.vocab);
    };
    each(*drafter_dspark_cuda_random(c, ds, 2, R_max, a.gamma, dkv), &t_ds);
    each(*drafter_dspark_cuda_random(c, df, 3, R_max, a.gamma, dkv), &t_df);
    each(*drafter_eagle3_cuda_random(c, e3, 5, R_max, a.gamma, dkv), &t_e3);
    {
        CudaBackendOptions dmo;
        dmo.kv.capacity_tokens = dkv.capacity_tokens;
        each(*drafter_model(backend_cuda_random(dm, 4, R_max, dmo), a.gamma), &t_dm);
    }
    each(*drafter_ngram(R_max, a.gamma, c.vocab), &t_ng);
    std::printf("%6s %12s %12s %12s %12s %12s %14s %12s\n", "R", "dspark ms", "dflash ms", "eagle3 ms", "model ms",
                "ngram ms", "verify(1+g) ms", "markov share");
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < nb; i++) {
        const double share = (t_ds[i] - t_df[i]) / (t_ds[i] + t_v[i]);
        std::printf("%6d %12.3f %12.3f %12.3f %12.3f %12.3f %14.3f %11.2f%%\n", batches[i], 1e3 * t_ds[i],
                    1e3 * t_df[i], 1e3 * t_e3[i], 1e3 * t_dm[i], 1e3 * t_ng[i], 1e3 * t_v[i], 100 * share);
        rows.push_back({{"R", batches[i]}, {"dspark_ms", 1e3 * t_ds[i]}, {"dflash_ms", 1e3 * t_df[i]},
                        {"eagle3_ms", 1e3 * t_e3[i]}, {"draft_model_ms", 1e3 * t_dm[i]}, {"ngram_ms", 1e3 * t_ng[i]},
                        {"verify_ms", 1e3 * t_v[i]}, {"markov_share", share}});
    }
    std::fflush(stdout);
    out["draft_cost"] = rows;

    CUDA_CHECK(cudaFree(hidden));
    if (!a.out.empty()) std::ofstream(a.out) << out.dump(2) << "\n";
    return 0;
}

}  // namespace
}  // namespace sp

int main(int argc, char** argv) try {
    sp::Args a;
    for (int i = 1; i < argc; i++) {
        const std::string k = argv[i];
        if (i + 1 >= argc) throw sp::Error(k + ": expected a value");
        const std::string v = argv[++i];
        if (k == "--model") a.model = v;
        else if (k == "--draft-model") a.draft_model = v;
        else if (k == "--draft-layers") a.draft_layers = std::stoi(v);
        else if (k == "--markov-rank") a.markov_rank = std::stoi(v);
        else if (k == "--gamma") a.gamma = std::stoi(v);
        else if (k == "--batches") a.batches = v;
        else if (k == "--context") a.context = std::stoi(v);
        else if (k == "--steps") a.steps = std::stoi(v);
        else if (k == "--trace") a.trace = v;
        else if (k == "--prompt") a.prompt = std::stoi(v);
        else if (k == "--tokens") a.tokens = std::stoi(v);
        else if (k == "--out") a.out = v;
        else throw sp::Error(k + ": unknown flag (see the header of bench/bench_spec.cpp)");
    }
    return sp::run(a);
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_spec: %s\n", e.what());
    return 1;
}
