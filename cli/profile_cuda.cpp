// profile_cuda.cpp: `specplan profile` on the GPU (cmd_profile.cpp registers
// the command; this file is part of the GPU module, cli/gpu.h). On
// one GPU, with random bf16 weights of a preset shape made on the device
// (timing does not depend on weight values), it times the engine's own
// forward (engine/cuda_model.h) over a grid and writes one run and its
// profile cells into a trace store (traces/trace_db.h), the table the
// simulator's measured cost model interpolates (simulator/cost.h).
//
// Phases, as cost.cpp reads them (R sequences, B new tokens in all, context c):
//   verify   R sequences x q new tokens at context c: B = R*q; the full target
//            forward, logits for every token.
//   prefill  one sequence, a chunk of B tokens after c cached ones. The forward
//            computes logits for all B tokens (CudaModel has no last-token-only
//            head), an overestimate by one LM-head GEMM over B tokens.
//   draft    the DSpark drafter itself (engine/drafter_cuda.h) with random
//            weights: --draft-layers target-shaped layers, Markov rank
//            --markov-rank, the confidence head (--drafter dflash: rank 0,
//            no head); R requests at context c each
//            draft gamma tokens: B = R*gamma. One whole draft() call (context
//            append of one committed token per request, the block forward, the
//            sequential Markov loop, the copy of the tokens to the host), wall
//            time of the synchronous call, not a graph replay.
//
// Method: the KV cache of each sequence is grown to c tokens directly
// (KvCache::grow reserves the blocks; the cache memory is filled once with
// random bf16, since attention time does not depend on the values), so every
// cell really attends over c cached tokens per sequence without a prefill.
// Each cell is prepared once (metadata upload, cache growth by the new
// tokens), its enqueue() captured into a CUDA graph, replayed --warmup times,
// then --reps times between CUDA events: the latencies are GPU time of the
// whole forward, no host overhead. Replays write the same cache rows again,
// so every replay does the same work. Cells whose KV (R x (c + q) tokens,
// rounded up to whole blocks) does not fit the cache are skipped and said so.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/profile.h"
#include "engine/cuda_model.h"
#include "engine/drafter_cuda.h"
#include "engine/dspark.h"
#include "engine/kernels.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "traces/trace_db.h"

namespace sp {

// "1,2,4" -> {1, 2, 4}; each a whole number >= lo.
static std::vector<int> parse_int_list(const std::string& text, const char* flag, int lo) {
    std::vector<int> out;
    for (const std::string& item : split_list(text)) {
        double v = parse_number(item, flag, text);
        if (v != std::floor(v) || v < lo || v > 1e7)
            throw Error(std::string(flag) + " '" + text + "': expected whole numbers >= " + std::to_string(lo) +
                        ", got '" + item + "'");
        out.push_back(static_cast<int>(v));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// [SECTION] timing --------------------------------------------------------------

struct Percentiles {
    double p10 = 0, p50 = 0, p90 = 0;
};

// Linear interpolation between order statistics at x * (n - 1).
static Percentiles percentiles(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double x) {
        double pos = x * static_cast<double>(v.size() - 1);
        size_t i = static_cast<size_t>(pos);
        double w = pos - static_cast<double>(i);
        return i + 1 < v.size() ? v[i] + w * (v[i + 1] - v[i]) : v[i];
    };
    return {at(0.1), at(0.5), at(0.9)};
}

// Captures `enqueue` (launches on `s` only) into a graph, replays it warmup
// times, then reps times between events; GPU microseconds per replay.
template <class Enqueue>
static Percentiles time_graph(cudaStream_t s, Enqueue enqueue, int warmup, int reps) {
    CUDA_CHECK(cudaStreamSynchronize(s));
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    enqueue();
    CUDA_CHECK(cudaStreamEndCapture(s, &g));
    CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    CUDA_CHECK(cudaGraphDestroy(g));
    std::vector<cudaEvent_t> ev(2 * static_cast<size_t>(reps));
    for (cudaEvent_t& e : ev) CUDA_CHECK(cudaEventCreate(&e));
    for (int i = 0; i < warmup; i++) CUDA_CHECK(cudaGraphLaunch(exec, s));
    for (int i = 0; i < reps; i++) {
        CUDA_CHECK(cudaEventRecord(ev[2 * i], s));
        CUDA_CHECK(cudaGraphLaunch(exec, s));
        CUDA_CHECK(cudaEventRecord(ev[2 * i + 1], s));
    }
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> us;
    for (int i = 0; i < reps; i++) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
        us.push_back(1e3 * ms);
    }
    for (cudaEvent_t e : ev) CUDA_CHECK(cudaEventDestroy(e));
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    return percentiles(us);
}

// [SECTION] memory --------------------------------------------------------------

static double gib(double bytes) { return bytes / double(1ull << 30); }

// Device bytes one forward of T tokens keeps in activations (cuda_model.h's
// acts_ and meta_), for sizing the KV cache before the first forward.
static double activation_bytes(const Config& c, int T) {
    const double d = c.hidden, F = c.ffn, V = c.vocab, qkv = (c.n_heads + 2.0 * c.n_kv_heads) * c.head_dim;
    const double per_token = 4 * d + 2 * d + 2 * qkv + 2.0 * c.n_heads * c.head_dim + 2 * d + 4 * F + 2 * F + 4 * V;
    return T * per_token + 16.0 * T;
}

// A KV cache for n_seqs slots in what is free now, less the activations of a
// T_max-token forward and `slack` bytes (cuBLAS workspace, graphs, Markov
// buffers), and no larger than `need_tokens`.
static std::unique_ptr<KvCache> kv_make(const Config& c, int n_seqs, int T_max, double slack, int64_t need_tokens) {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const double per_token = 2.0 * c.n_layers * c.n_kv_heads * c.head_dim * sizeof(bf16);
    const double room = static_cast<double>(free_b) - activation_bytes(c, T_max) - slack;
    int64_t tokens = std::min<int64_t>(need_tokens, static_cast<int64_t>(room / per_token));
    if (tokens < 16)
        throw Error("profile: " + c.name + ": no room for a KV cache (" + std::to_string(gib(double(free_b))) +
                    " GiB free after the weights)");
    KvCacheOptions o;
    o.capacity_tokens = tokens;
    auto kv = std::make_unique<KvCache>(c, n_seqs, o);
    // Values do not change attention time; random bf16 keeps them finite and
    // unlike zeros (which would give uniform softmax rows).
    init_uniform(kv->k(0), kv->bytes() / sizeof(bf16), 1.0f, 12345, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::printf("  KV cache: %lld tokens (%.1f GiB, %d blocks of %d) of %.1f GiB free; %.1f KiB per token\n",
                (long long)kv->capacity_tokens(), gib(double(kv->bytes())), kv->n_blocks(), kv->block_size(),
                gib(double(free_b)), per_token / 1024);
    return kv;
}

static int blocks_for(const KvCache& kv, int n_seqs, int len) {
    return n_seqs * ((len + kv.block_size() - 1) / kv.block_size());
}

// [SECTION] one cell ------------------------------------------------------------

struct Grid {
    std::vector<int> r, q, context, prefill_b, prefill_context;
};

struct Writer {
    TraceDb& db;
    int64_t run_id;
    std::string gpu;
    ModelShape shape;
    int written = 0, skipped = 0;
};

static void record(Writer& w, Phase phase, int R, int B, int c, const Percentiles& p, int reps) {
    Profile prof;
    prof.run_id = w.run_id;
    prof.gpu = w.gpu;
    prof.model = w.shape;
    prof.phase = phase;
    prof.n_seqs = R;
    prof.n_tokens = B;
    prof.context = c;
    prof.latency_us_p10 = p.p10;
    prof.latency_us_p50 = p.p50;
    prof.latency_us_p90 = p.p90;
    prof.n_samples = reps;
    trace_db_append_profile(w.db, prof);
    w.written++;
}

// Sequences 0..R-1 at context c, q new random tokens each: prepare (grows the
// cache by q), time the captured forward (plus `extra`, launched after it in
// the same graph), then empty those sequences again. False when skipped.
template <class Extra>
static bool time_cell(CudaModel& m, KvCache& kv, Writer& w, Phase phase, int R, int q, int c, const ProfileArgs& a,
                      std::mt19937& rng, Extra extra) {
    const char* name = phase_name(phase);
    const int need = blocks_for(kv, R, c + q);
    if (need > kv.free_blocks()) {
        std::printf("  %-7s R=%-3d q=%-4d B=%-5d context=%-5d skipped: KV needs %lld tokens (R x (context + q)), "
                    "the cache holds %lld\n",
                    name, R, q, R * q, c, (long long)need * kv.block_size(), (long long)kv.capacity_tokens());
        std::fflush(stdout);
        w.skipped++;
        return false;
    }
    RaggedBatch b;
    std::uniform_int_distribution<int> tok(0, m.config().vocab - 1);
    for (int i = 0; i < R; i++) {
        b.seq.push_back(i);
        b.q_len.push_back(q);
        for (int j = 0; j < q; j++) b.tokens.push_back(tok(rng));
    }
    if (c > 0) kv.grow(b.seq, std::vector<int>(static_cast<size_t>(R), c));
    m.prepare(kv, b);
    Percentiles p = time_graph(
        m.stream(),
        [&] {
            m.enqueue(kv);
            extra();
        },
        a.warmup, a.reps);
    for (int i = 0; i < R; i++) kv.truncate(i, 0);
    record(w, phase, R, R * q, c, p, a.reps);
    std::printf("  %-7s R=%-3d q=%-4d B=%-5d context=%-5d p50 %10.1f us  (p10 %.1f, p90 %.1f)\n", name, R, q, R * q, c,
                p.p50, p.p10, p.p90);
    std::fflush(stdout);
    return true;
}

// [SECTION] the run -------------------------------------------------------------

static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A machine with no GPU, or no driver, is one line saying so, before
// CUDA_CHECK would name a source line and a CUDA error code.
static void require_cuda_device() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0) return;
    (void)cudaGetLastError();  // clear it
    throw Error(std::string("profile: no CUDA device on this machine (") +
                (e == cudaSuccess ? "none found" : cudaGetErrorString(e)) + "); profile times the engine on a GPU");
}

void profile_cuda(const ProfileArgs& a) {
    const Config cfg = config_resolve(a.model);
    Grid g;
    g.r = parse_int_list(a.r, "--r", 1);
    g.q = parse_int_list(a.q, "--q", 1);
    g.context = parse_int_list(a.context, "--context", 0);
    g.prefill_b = parse_int_list(a.prefill_b, "--prefill-b", 1);
    g.prefill_context = g.context;
    if (g.prefill_context.front() != 0) g.prefill_context.insert(g.prefill_context.begin(), 0);
    if (a.reps < 1 || a.warmup < 0) throw Error("--reps must be >= 1 and --warmup >= 0");
    if (g.q.back() > TRACE_MAX_GAMMA) throw Error("--q: at most " + std::to_string(TRACE_MAX_GAMMA) + " per sequence");
    if (a.draft_layers < 0 || a.draft_layers > cfg.n_layers)
        throw Error("--draft-layers: expected 0.." + std::to_string(cfg.n_layers));
    if (a.markov_rank < 1) throw Error("--markov-rank: expected >= 1");
    if (a.drafter != "dspark" && a.drafter != "dflash") throw Error("--drafter " + a.drafter + ": expected dspark or dflash");
    const bool dflash = a.drafter == "dflash";

    require_cuda_device();
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    const double t_start = now_s();

    TraceDb db = trace_db_open(a.out, TRACE_CREATE);
    Run run;
    run.producer = PRODUCER_ENGINE;
    run.target = config_shape(cfg);
    run.drafter_kind = a.draft_layers > 0 ? a.drafter : "none";
    run.drafter_name = a.draft_layers > 0
                           ? "random weights: " + std::to_string(a.draft_layers) + " target-shaped layers" +
                                 (dflash ? std::string(", no Markov or confidence head")
                                         : ", rank-" + std::to_string(a.markov_rank) + " Markov head, confidence head")
                           : "none";
    run.gpu = prop.name;
    run.temperature = 0;
    run.gamma = g.q.back();
    run.notes = "cost profile: " + a.command +
                ". Random bf16 weights; KV grown directly (random values), not prefilled; each cell one CUDA graph "
                "of the forward, GPU time between events; verify = full target forward of R x q tokens with logits "
                "for all; prefill logits for all B tokens (overestimate); draft = " +
                (a.draft_layers > 0 ? "the DSpark drafter's whole draft() call (" + std::to_string(a.draft_layers) +
                                          " layers), wall time"
                                    : std::string("not measured")) +
                "; cells whose KV does not fit are skipped (see the output)";
    trace_db_begin_run(db, run);
    Writer w{db, run.id, prop.name, config_shape(cfg)};
    std::mt19937 rng(static_cast<uint32_t>(a.seed));

    std::printf("profile %s on %s (%.1f GiB): run %lld in %s; %d reps after %d warm-up per cell\n", a.model.c_str(),
                prop.name, gib(double(prop.totalGlobalMem)), (long long)run.id, a.out.c_str(), a.reps, a.warmup);
    const int T_max = std::max(g.r.back() * g.q.back(), g.prefill_b.back());
    const int64_t need_tokens =
        std::max<int64_t>(int64_t(g.r.back()) * (g.context.back() + g.q.back() + 16),
                          int64_t(g.prefill_context.back()) + g.prefill_b.back() + 16);

    {  // the target: verify and prefill
        double t0 = now_s();
        CudaModel m(cfg, a.seed);
        CUDA_CHECK(cudaStreamSynchronize(m.stream()));
        std::printf("  target %s: %.2f GB of weights, made in %.2f s\n", cfg.name.c_str(),
                    double(m.weight_bytes()) / 1e9, now_s() - t0);
        std::unique_ptr<KvCache> kv = kv_make(cfg, g.r.back(), T_max, 1.5 * double(1ull << 30), need_tokens);
        for (int c : g.context)
            for (int R : g.r)
                for (int q : g.q) time_cell(m, *kv, w, PHASE_VERIFY, R, q, c, a, rng, [] {});
        for (int c : g.prefill_context)
            for (int B : g.prefill_b) time_cell(m, *kv, w, PHASE_PREFILL, 1, B, c, a, rng, [] {});
    }

    if (a.draft_layers > 0) {  // the DSpark drafter itself (drafter_dspark_cuda), random weights
        const int R_max = g.r.back(), G = g.q.back();
        DSparkConfig dc;
        dc.layers = cfg;
        dc.layers.n_layers = a.draft_layers;
        dc.n_target_layers = cfg.n_layers;
        dc.block_size = G;
        dc.mask_token = cfg.vocab - 1;
        const int m = std::min(5, cfg.n_layers - 1);  // DeepSpec's five layers spread over the target
        for (int i = 0; i < m; i++) dc.target_layers.push_back(m > 1 ? 1 + i * (cfg.n_layers - 3) / (m - 1) : 0);
        dc.markov_rank = dflash ? 0 : a.markov_rank;
        dc.confidence = dc.confidence_with_markov = !dflash;
        size_t free_b = 0, total_b = 0;
        CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        KvCacheOptions kvo;  // room for the largest cell, or what fits in 60 % of what is free
        const double per_token = 2.0 * a.draft_layers * cfg.n_kv_heads * cfg.head_dim * sizeof(bf16);
        kvo.capacity_tokens = std::min<int64_t>(int64_t(R_max) * (g.context.back() + a.warmup + a.reps + G + 32),
                                                int64_t(0.6 * double(free_b) / per_token));
        auto drafter = drafter_dspark_cuda_random(cfg, dc, a.seed + 1, R_max, G, kvo);
        std::printf("  drafter: %s, %d target-shaped layers, Markov rank %d%s; context K/V for %lld tokens\n",
                    a.drafter.c_str(), a.draft_layers, dc.markov_rank, dflash ? "" : ", confidence head",
                    (long long)kvo.capacity_tokens);
        float* hidden = nullptr;  // context features: (m, context, d) zeros (values do not change the time)
        const size_t hidden_n = size_t(m) * size_t(std::max(1, g.context.back())) * size_t(cfg.hidden);
        CUDA_CHECK(cudaMalloc(&hidden, hidden_n * sizeof(float)));
        CUDA_CHECK(cudaMemset(hidden, 0, hidden_n * sizeof(float)));
        auto batch = [&](int R, int n_ctx, int n_draft) {
            DraftBatch b;
            b.hidden = hidden;
            b.hidden_T = std::max(1, g.context.back());
            for (int r = 0; r < R; r++) {
                b.slot.push_back(r);
                b.n_ctx.push_back(n_ctx);
                for (int i = 0; i < n_ctx; i++) {
                    b.ctx_tokens.push_back(int(rng() % uint32_t(cfg.vocab)));
                    b.ctx_row.push_back(i % b.hidden_T);
                }
                b.anchor.push_back(int(rng() % uint32_t(cfg.vocab)));
                b.n_draft.push_back(n_draft);
                b.temperature.push_back(0);
                b.request.push_back(uint64_t(r));
            }
            return b;
        };
        try {
            for (int c : g.context)
                for (int R : g.r)
                    for (int gamma : g.q) {
                        // each request at context c, then warm-up and timed calls that each
                        // bring one committed token (steady decoding) and draft gamma
                        if (int64_t(R) * (c + a.warmup + a.reps + G + 16) > kvo.capacity_tokens) {
                            std::printf("  draft   R=%-3d gamma=%-2d context=%-5d skipped: the drafter's context K/V "
                                        "holds %lld tokens\n", R, gamma, c, (long long)kvo.capacity_tokens);
                            w.skipped++;
                            continue;
                        }
                        DraftOutput out;
                        for (int r = 0; r < R_max; r++) drafter->reset(r);
                        if (c > 0) drafter->draft(batch(R, c, 0), &out);
                        std::vector<double> us;
                        for (int i = 0; i < a.warmup + a.reps; i++) {
                            const DraftBatch b = batch(R, 1, gamma);
                            const double t0 = now_s();
                            drafter->draft(b, &out);  // synchronous: its tokens are on the host
                            if (i >= a.warmup) us.push_back(1e6 * (now_s() - t0));
                        }
                        const Percentiles p = percentiles(us);
                        record(w, PHASE_DRAFT, R, R * gamma, c, p, a.reps);
                        std::printf("  draft   R=%-3d gamma=%-2d B=%-5d context=%-5d p50 %10.1f us  (p10 %.1f, p90 %.1f)\n",
                                    R, gamma, R * gamma, c, p.p50, p.p10, p.p90);
                        std::fflush(stdout);
                    }
        } catch (...) {
            cudaFree(hidden);
            throw;
        }
        CUDA_CHECK(cudaFree(hidden));
    }

    trace_db_finish_run(db, run.id);
    std::printf("%s: run %lld complete: %d cells written, %d skipped (KV does not fit), %.1f s\n", a.out.c_str(),
                (long long)run.id, w.written, w.skipped, now_s() - t_start);
}

}  // namespace sp
