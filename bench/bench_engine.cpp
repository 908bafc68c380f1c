// bench_engine: the CUDA engine's speed on the GPU machine (issue: performance
// section, items 1 and 3). Not Google Benchmark: it needs one model of 16 GB
// built once, CUDA events, and figures derived from several measurements.
//
//  1. Copy bandwidth: cudaMemcpy device to device of --copy-gib GiB, best of
//     10 after 2 warm-ups, counting bytes read plus bytes written (2 x size).
//  2. Batch-1 decode at --model's shape (bf16 weights made on the device,
//     CudaModel(Config, seed)) after a prefill of the largest --contexts
//     (one eager forward; its first call, then the median of 3 more, timed),
//     at each context c: the step that appends token c, timed --steps times
//     after --warmup, the cache truncated back to c after each step (so every
//     step does the same work). Three modes: "eager" (forward_device:
//     metadata upload, then every launch from the host), "graph"
//     (forward_graph: metadata upload, then one launch of the engine's CUDA
//     graph for the batch's shape bucket) and "cublas" (graph, with every
//     projection through cuBLAS: the path the GEMV replaces). Per-step time: CUDA
//     events around the step, median; also wall = host time of the whole loop
//     / steps. Bytes read per token: every weight the step reads (all
//     matrices and norms incl. the LM head, one embedding row; not the rest
//     of the embedding table) plus the KV cache of c + 1 positions
//     (2 x L x KVH x D bf16 each). Achieved bandwidth = bytes / median time.
//  3. Verify cost at --context: a forward of 1 + k tokens at batch 1, k = 0
//     .. --max-k, each mode; median time and its ratio to k = 0.
//  4. With --gemv 1: the projections alone. For each of the model's five
//     projection shapes (qkv, wo, gate|up, down, LM head, each with the
//     forward's epilogue) and T in 1, 2, 4, 8, 16: a CUDA graph of R launches,
//     each on its own slice of a 4 GiB weight buffer (no L2 reuse), replayed
//     5 times after one warm-up; time per launch = median replay / R, and
//     the weight bytes over it; gemv_forward (with the forward's fused norm
//     and epilogue), and cuBLAS's GEMM (no norm) for comparison.
//  5. With --batches R,...: decode of R sequences, one token each, at
//     --context (KV rows grown and zeroed, not prefilled), each mode: where
//     graphs help and where they stop mattering; and the graph step's
//     efficiency against the roofline floor max(bytes / copy bandwidth,
//     FLOPs / bf16 rate), with the bf16 rate measured in the same run (a
//     cuBLAS 8192^3 GEMM, median of 10). Bytes: the weights once plus R
//     contexts of KV; FLOPs: 2 per weight per token (all matrices, LM head
//     included) plus attention's 4 x H x D per key per layer. Then the
//     device memory a captured graph holds: cudaMemGetInfo around 16 new
//     graphs (decodes of 1..16 sequences), per graph.
//  With --profile-step 1: one eager decode step at the first --contexts
//  value between cudaProfilerStart and cudaProfilerStop, for
//  `ncu --profile-from-start off` (per-kernel times, serialised). With
//  --profile-batch R instead: one eager step of R sequences at --context.
//
//   bench_engine [--model qwen3-8b] [--contexts 512] [--context 512] [--steps 100]
//                [--warmup 10] [--verify-steps 50] [--max-k 15] [--copy-gib 2] [--gemv 0|1]
//                [--profile-step 0|1] [--profile-batch R] [--batches R,R,...] [--out PATH]
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <numeric>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cuda_model.h"
#include "engine/kernels.h"
#include "engine/kv_cache.h"
#include "engine/model.h"

using namespace sp;
using json = nlohmann::json;

namespace {

struct Args {
    std::string model = "qwen3-8b";
    std::vector<int> contexts = {512};
    int context = 512;
    int steps = 100, warmup = 10, verify_steps = 50, max_k = 15;
    double copy_gib = 2;
    std::string out;
    std::string command;
    bool gemv = false;
    bool profile_step = false;
    int profile_batch = 0;     // > 0: profile one step of this many sequences instead of section 5's timing
    std::vector<int> batches;  // section 5; empty: skipped
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "bench_engine: %s\nusage: bench_engine [--model NAME] [--contexts C,C,...] [--context C] "
                 "[--steps N] [--warmup N] [--verify-steps N] [--max-k K] [--copy-gib G] [--gemv 0|1] "
                 "[--profile-step 0|1] [--profile-batch R] [--batches R,R,...] [--out PATH]\n",
                 why.c_str());
    std::exit(2);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 0; i < argc; i++) {
        if (i) a.command += ' ';
        a.command += argv[i];
    }
    for (int i = 1; i < argc; i++) {
        const std::string k = argv[i];
        if (i + 1 >= argc) usage("missing value for " + k);
        const std::string v = argv[++i];
        try {
            auto list = [&](std::vector<int>* to) {
                to->clear();
                std::stringstream ss(v);
                for (std::string item; std::getline(ss, item, ',');) to->push_back(std::stoi(item));
            };
            if (k == "--model") a.model = v;
            else if (k == "--contexts") list(&a.contexts);
            else if (k == "--batches") list(&a.batches);
            else if (k == "--context") a.context = std::stoi(v);
            else if (k == "--steps") a.steps = std::stoi(v);
            else if (k == "--warmup") a.warmup = std::stoi(v);
            else if (k == "--verify-steps") a.verify_steps = std::stoi(v);
            else if (k == "--max-k") a.max_k = std::stoi(v);
            else if (k == "--copy-gib") a.copy_gib = std::stod(v);
            else if (k == "--out") a.out = v;
            else if (k == "--profile-step") a.profile_step = std::stoi(v) != 0;
            else if (k == "--profile-batch") a.profile_batch = std::stoi(v);
            else if (k == "--gemv") a.gemv = std::stoi(v) != 0;
            else usage("unknown option " + k);
        } catch (const std::logic_error&) {
            usage("bad value for " + k + ": " + v);
        }
    }
    if (a.contexts.empty()) usage("--contexts: expected at least one context");
    if (a.steps < 1) usage("--steps: expected >= 1");
    if (a.warmup < 1) usage("--warmup: expected >= 1 (the first run of a graph mode captures its graph)");
    if (a.verify_steps < 1) usage("--verify-steps: expected >= 1");
    if (a.max_k < 0) usage("--max-k: expected >= 0");
    if (a.copy_gib <= 0) usage("--copy-gib: expected > 0");
    for (int c : a.contexts)
        if (c < 1) usage("contexts must be >= 1");
    for (int r : a.batches)
        if (r < 1) usage("batches must be >= 1");
    if (a.context < 1) usage("--context must be >= 1");
    if (a.profile_batch < 0) usage("--profile-batch must be >= 0");
    if (a.profile_batch > 0) a.batches = {a.profile_batch};
    return a;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Events {
    std::vector<cudaEvent_t> a, b;
    explicit Events(int n) : a(n), b(n) {
        for (int i = 0; i < n; i++) {
            CUDA_CHECK(cudaEventCreate(&a[i]));
            CUDA_CHECK(cudaEventCreate(&b[i]));
        }
    }
    ~Events() {
        for (size_t i = 0; i < a.size(); i++) {
            cudaEventDestroy(a[i]);
            cudaEventDestroy(b[i]);
        }
    }
    Events(const Events&) = delete;
    Events& operator=(const Events&) = delete;
    std::vector<double> ms(int from) const {  // elapsed of pairs from..end
        std::vector<double> out;
        for (size_t i = static_cast<size_t>(from); i < a.size(); i++) {
            float t = 0;
            CUDA_CHECK(cudaEventElapsedTime(&t, a[i], b[i]));
            out.push_back(t);
        }
        return out;
    }
};

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Device-to-device copy bandwidth, bytes read + written per second.
json copy_bandwidth(double gib) {
    const size_t bytes = static_cast<size_t>(gib * (1ull << 30));
    void *src = nullptr, *dst = nullptr;
    CUDA_CHECK(cudaMalloc(&src, bytes));
    CUDA_CHECK(cudaMalloc(&dst, bytes));
    CUDA_CHECK(cudaMemset(src, 1, bytes));
    const int warm = 2, reps = 10;
    Events ev(warm + reps);
    for (int i = 0; i < warm + reps; i++) {
        CUDA_CHECK(cudaEventRecord(ev.a[i]));
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
        CUDA_CHECK(cudaEventRecord(ev.b[i]));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<double> t = ev.ms(warm);
    CUDA_CHECK(cudaFree(src));
    CUDA_CHECK(cudaFree(dst));
    const double best = *std::min_element(t.begin(), t.end()), med = median(t);
    return {{"bytes_copied", bytes},
            {"convention", "2 x bytes copied (read + write) / time"},
            {"best_ms", best},
            {"median_ms", med},
            {"best_GBps", 2.0 * static_cast<double>(bytes) / (best * 1e-3) / 1e9},
            {"median_GBps", 2.0 * static_cast<double>(bytes) / (med * 1e-3) / 1e9}};
}

// Bytes of weights one decode step reads: every matrix and norm, the LM head,
// one embedding row (not the rest of the table).
double weight_bytes_read(const Config& c) {
    const double d = c.hidden, D = c.head_dim, F = c.ffn, H = c.n_heads, KVH = c.n_kv_heads, V = c.vocab;
    const double layer = (H + 2 * KVH) * D * d + d * H * D + 2 * F * d + d * F + 2 * d + (c.qk_norm ? 2 * D : 0);
    return 2.0 * (c.n_layers * layer + d /*final norm*/ + V * d /*LM head*/ + d /*embedding row*/);
}
double kv_bytes_read(const Config& c, int positions) {
    return 2.0 * positions * 2 * c.n_layers * c.n_kv_heads * c.head_dim;
}
// FLOPs of one decode token at `positions` keys: 2 per matrix weight (the
// LM head included), and QK^T plus PV, 2 x 2 x D per key per query head.
double decode_flops(const Config& c, int positions) {
    const double d = c.hidden, D = c.head_dim, F = c.ffn, H = c.n_heads, KVH = c.n_kv_heads, V = c.vocab;
    const double matrices = c.n_layers * ((H + 2 * KVH) * D * d + d * H * D + 3 * F * d) + V * d;
    return 2 * matrices + 4.0 * c.n_layers * H * D * positions;
}

// Dense bf16 rate of this GPU, FLOP/s: cuBLAS bf16 x bf16 -> fp32 accumulate,
// 8192^3, median of 10 after 2 warm-ups; the roofline's compute ceiling.
double bf16_rate() {
    const int n = 8192;
    bf16 *A = nullptr, *B = nullptr, *C = nullptr;
    const size_t bytes = sizeof(bf16) * n * n;
    CUDA_CHECK(cudaMalloc(&A, bytes));
    CUDA_CHECK(cudaMalloc(&B, bytes));
    CUDA_CHECK(cudaMalloc(&C, bytes));
    CUDA_CHECK(cudaMemset(A, 0, bytes));
    CUDA_CHECK(cudaMemset(B, 0, bytes));
    Cublas cb = cublas_create(nullptr);
    const float alpha = 1, beta = 0;
    const int warm = 2, reps = 10;
    Events ev(warm + reps);
    for (int i = 0; i < warm + reps; i++) {
        CUDA_CHECK(cudaEventRecord(ev.a[i]));
        CUBLAS_CHECK(cublasGemmEx(cb.handle, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, A, CUDA_R_16BF, n, B,
                                  CUDA_R_16BF, n, &beta, C, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        CUDA_CHECK(cudaEventRecord(ev.b[i]));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    const double ms = median(ev.ms(warm));
    cublas_destroy(cb);
    CUDA_CHECK(cudaFree(A));
    CUDA_CHECK(cudaFree(B));
    CUDA_CHECK(cudaFree(C));
    return 2.0 * n * n * static_cast<double>(n) / (ms * 1e-3);
}

struct Timing {
    double median_ms = 0, min_ms = 0, wall_ms = 0;
};

// How a step is run: eager (forward_device: metadata upload, then every
// launch from the host), graph (forward_graph: the engine's CUDA graph of the
// batch's shape bucket, captured on first use) or graph with every projection
// through cuBLAS (set_cublas_only: the reference path the GEMV replaces), or
// graph with cublasGemmEx's default algorithms (set_gemm_tuning off: the
// baseline of matmul.cu's timed cuBLASLt choice).
enum class Mode { Eager, Graph, GraphCublas, GraphUntuned };
constexpr Mode kModes[4] = {Mode::Eager, Mode::Graph, Mode::GraphCublas, Mode::GraphUntuned};
const char* mode_name(Mode m) {
    return m == Mode::Eager ? "eager" : m == Mode::Graph ? "graph" : m == Mode::GraphCublas ? "cublas" : "untuned";
}

// Runs `batch` reps + warmup times, truncating its sequences back to their
// lengths before each run (so every step does the same work).
Timing time_step(CudaModel& m, KvCache& kv, const RaggedBatch& batch, Mode mode, int warmup, int reps) {
    cudaStream_t s = m.stream();
    std::vector<int> len0;
    for (int seq : batch.seq) len0.push_back(kv.len(seq));
    m.set_cublas_only(mode == Mode::GraphCublas);
    m.set_gemm_tuning(mode != Mode::GraphUntuned);
    Events ev(warmup + reps);
    double t0 = 0;
    for (int i = 0; i < warmup + reps; i++) {
        if (i == warmup) {
            CUDA_CHECK(cudaStreamSynchronize(s));
            t0 = now_s();
        }
        CUDA_CHECK(cudaEventRecord(ev.a[i], s));
        if (mode == Mode::Eager)
            m.forward_device(kv, batch);
        else
            m.forward_graph(kv, batch);
        CUDA_CHECK(cudaEventRecord(ev.b[i], s));
        for (size_t j = 0; j < batch.seq.size(); j++) kv.truncate(batch.seq[j], len0[j]);
    }
    CUDA_CHECK(cudaStreamSynchronize(s));
    const double wall = now_s() - t0;
    m.set_cublas_only(false);
    m.set_gemm_tuning(true);
    const std::vector<double> t = ev.ms(warmup);
    return {median(t), *std::min_element(t.begin(), t.end()), wall * 1e3 / reps};
}

// 4. The projections alone (see the file comment).
json gemv_bench(const Config& c, double copy_GBps) {
    struct Shape {
        const char* name;
        int n_in, n_out;
        Epilogue epi;
        bool norm;  // input rmsnorm(x) * w of an fp32 x, as in the forward
    };
    const int d = c.hidden, qkv = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim, q = c.n_heads * c.head_dim;
    const std::vector<Shape> shapes = {{"qkv", d, qkv, Epilogue::Bf16, true},
                                       {"wo", q, d, Epilogue::AddFp32, false},
                                       {"gate_up", d, 2 * c.ffn, Epilogue::SwiGLU, true},
                                       {"down", c.ffn, d, Epilogue::AddFp32, false},
                                       {"lm_head", d, c.vocab, Epilogue::Fp32, true}};
    const size_t buf_elems = (4ull << 30) / sizeof(bf16);
    const int max_T = 16;
    int max_in = 0, max_out = 0;
    for (const Shape& s : shapes) {
        max_in = std::max(max_in, s.n_in);
        max_out = std::max(max_out, s.n_out);
    }
    cudaStream_t s = nullptr;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    bf16 *W = nullptr, *x = nullptr;
    float* y = nullptr;
    CUDA_CHECK(cudaMalloc(&W, buf_elems * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&x, static_cast<size_t>(max_T) * max_in * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&y, static_cast<size_t>(max_T) * max_out * sizeof(float)));
    init_uniform(W, buf_elems, 0.0346f, 11, s);
    init_uniform(x, static_cast<size_t>(max_T) * max_in, 1.0f, 12, s);
    float* x32 = nullptr;  // the residual stream of the normed inputs: fp32 copies of x's values
    bf16* nw = nullptr;
    CUDA_CHECK(cudaMalloc(&x32, static_cast<size_t>(max_T) * max_in * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&nw, static_cast<size_t>(max_in) * sizeof(bf16)));
    CUDA_CHECK(cudaMemsetAsync(x32, 0, static_cast<size_t>(max_T) * max_in * sizeof(float), s));
    init_fill(nw, max_in, 1.0f, s);
    const RmsnormInput norm{x32, nw, 1e-6f};
    CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(max_T) * max_out * sizeof(float), s));
    Cublas cb = cublas_create(s);
    bf16* scratch = nullptr;
    CUDA_CHECK(cudaMalloc(&scratch, static_cast<size_t>(max_T) * max_out * sizeof(bf16)));
    json rows = json::array();
    std::printf("projections alone: time per launch in a graph of R launches over distinct weights (median of 5)\n");
    std::printf("%8s %6s %7s %5s %10s %9s %8s\n", "shape", "T", "impl", "R", "us", "GB/s", "of copy");
    for (const Shape& sh : shapes) {
        const size_t elems = static_cast<size_t>(sh.n_in) * sh.n_out;
        const int R = static_cast<int>(std::max<size_t>(2, std::min<size_t>(64, buf_elems / elems)));
        for (int T : {1, 2, 4, 8, 16})
            for (const bool cublas : {false, true}) {
                CUDA_CHECK(cudaStreamSynchronize(s));
                cudaGraph_t g = nullptr;
                cudaGraphExec_t exec = nullptr;
                CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
                for (int r = 0; r < R; r++) {
                    const bf16* Wr = W + static_cast<size_t>(r) * elems;
                    if (cublas) {
                        const float alpha = 1.0f, beta = sh.epi == Epilogue::AddFp32 ? 1.0f : 0.0f;
                        const bool f32 = sh.epi == Epilogue::Fp32 || sh.epi == Epilogue::AddFp32;
                        CUBLAS_CHECK(cublasGemmEx(cb.handle, CUBLAS_OP_T, CUBLAS_OP_N, sh.n_out, T, sh.n_in, &alpha,
                                                  Wr, CUDA_R_16BF, sh.n_in, x, CUDA_R_16BF, sh.n_in, &beta,
                                                  f32 ? static_cast<void*>(y) : static_cast<void*>(scratch),
                                                  f32 ? CUDA_R_32F : CUDA_R_16BF, sh.n_out, CUBLAS_COMPUTE_32F,
                                                  CUBLAS_GEMM_DEFAULT));
                    } else {
                        // the forward fuses the norm up to kGemvNormMaxT tokens (above, a norm kernel runs first)
                        const bool fused = sh.norm && T <= kGemvNormMaxT;
                        gemv_forward(y, sh.epi, x, Wr, T, sh.n_in, sh.n_out, s, fused ? &norm : nullptr);
                    }
                }
                CUDA_CHECK(cudaStreamEndCapture(s, &g));
                CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
                CUDA_CHECK(cudaGraphDestroy(g));
                Events ev(6);
                for (int i = 0; i < 6; i++) {
                    CUDA_CHECK(cudaEventRecord(ev.a[i], s));
                    CUDA_CHECK(cudaGraphLaunch(exec, s));
                    CUDA_CHECK(cudaEventRecord(ev.b[i], s));
                }
                CUDA_CHECK(cudaStreamSynchronize(s));
                CUDA_CHECK(cudaGraphExecDestroy(exec));
                const double us = median(ev.ms(1)) * 1e3 / R;
                const double gbps = 2.0 * static_cast<double>(elems) / (us * 1e-6) / 1e9;
                rows.push_back({{"shape", sh.name},
                                {"n_in", sh.n_in},
                                {"n_out", sh.n_out},
                                {"T", T},
                                {"impl", cublas ? "cublas" : "gemv"},
                                {"launches", R},
                                {"us_per_launch", us},
                                {"weight_GBps", gbps},
                                {"fraction_of_copy_bandwidth", gbps / copy_GBps}});
                std::printf("%8s %6d %7s %5d %10.2f %9.0f %7.1f%%\n", sh.name, T, cublas ? "cublas" : "gemv", R, us, gbps,
                            100 * gbps / copy_GBps);
            }
    }
    std::printf("\n");
    cublas_destroy(cb);
    CUDA_CHECK(cudaFree(W));
    CUDA_CHECK(cudaFree(x));
    CUDA_CHECK(cudaFree(y));
    CUDA_CHECK(cudaFree(scratch));
    CUDA_CHECK(cudaFree(x32));
    CUDA_CHECK(cudaFree(nw));
    CUDA_CHECK(cudaStreamDestroy(s));
    return rows;
}

std::string today_utc() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

}  // namespace

int main(int argc, char** argv) try {
    const Args a = parse(argc, argv);
    const Config cfg = config_resolve(a.model);  // a preset or a config.json

    int dev = 0, driver = 0, runtime = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    CUDA_CHECK(cudaDriverGetVersion(&driver));
    CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    json out;
    out["date_utc"] = today_utc();
    out["command"] = a.command;
    out["device"] = {{"name", prop.name},
                     {"sms", prop.multiProcessorCount},
                     {"memory_bytes", prop.totalGlobalMem},
                     {"l2_bytes", prop.l2CacheSize},
                     {"cuda_driver", driver},
                     {"cuda_runtime", runtime}};
    std::printf("bench_engine on %s (%d SMs, %.1f GiB), CUDA driver %d runtime %d, %s\n", prop.name,
                prop.multiProcessorCount, static_cast<double>(prop.totalGlobalMem) / double(1ull << 30), driver, runtime,
                out["date_utc"].get<std::string>().c_str());
    std::printf("command: %s\n\n", a.command.c_str());

    // 1. copy bandwidth
    const json copy = copy_bandwidth(a.copy_gib);
    out["copy"] = copy;
    const double copy_GBps = copy["best_GBps"];
    std::printf("copy bandwidth (cudaMemcpy D2D, %.1f GiB, read+write bytes): best %.0f GB/s, median %.0f GB/s\n\n",
                a.copy_gib, copy_GBps, copy["median_GBps"].get<double>());

    if (a.gemv) out["gemv"] = gemv_bench(cfg, copy_GBps);

    // 2. the model, on the device
    double t0 = now_s();
    CudaModel m(cfg, /*seed=*/1);
    const double init_s = now_s() - t0;
    const int max_ctx = std::max(*std::max_element(a.contexts.begin(), a.contexts.end()), a.context);
    KvCacheOptions ko;
    ko.capacity_tokens = max_ctx + a.max_k + 64;
    KvCache kv(cfg, 1, ko);
    const double w_read = weight_bytes_read(cfg);
    out["model"] = {{"preset", a.model},
                    {"dtype", "bf16"},
                    {"hidden", cfg.hidden},
                    {"ffn", cfg.ffn},
                    {"layers", cfg.n_layers},
                    {"heads", cfg.n_heads},
                    {"kv_heads", cfg.n_kv_heads},
                    {"head_dim", cfg.head_dim},
                    {"vocab", cfg.vocab},
                    {"weight_bytes_allocated", m.weight_bytes()},
                    {"weight_bytes_read_per_token", w_read},
                    {"device_init_s", init_s}};
    std::printf("model %s bf16: %.2f GB of weights allocated, %.2f GB read per decode token; made on the device in "
                "%.2f s\n",
                a.model.c_str(), static_cast<double>(m.weight_bytes()) / 1e9, w_read / 1e9, init_s);

    std::mt19937 rng(7);
    std::uniform_int_distribution<int> tok(0, cfg.vocab - 1);
    std::vector<int> prompt(max_ctx);
    for (int& t : prompt) t = tok(rng);
    t0 = now_s();
    m.forward_device(kv, RaggedBatch{{0}, {max_ctx}, prompt});
    CUDA_CHECK(cudaStreamSynchronize(m.stream()));
    const double prefill_s = now_s() - t0;
    std::vector<double> pre;
    for (int i = 0; i < 3; i++) {
        kv.truncate(0, 0);
        t0 = now_s();
        m.forward_device(kv, RaggedBatch{{0}, {max_ctx}, prompt});
        CUDA_CHECK(cudaStreamSynchronize(m.stream()));
        pre.push_back(now_s() - t0);
    }
    out["prefill"] = {{"tokens", max_ctx}, {"seconds_first_call", prefill_s}, {"seconds_median_of_3", median(pre)}};
    std::printf("prefill of %d tokens (one eager forward): first call %.3f s, then median of 3: %.1f ms\n\n", max_ctx,
                prefill_s, 1e3 * median(pre));

    if (a.profile_step) {  // one eager decode step at the first context between cudaProfilerStart/Stop, for ncu
        kv.truncate(0, a.contexts.front());
        m.forward_device(kv, RaggedBatch{{0}, {1}, {tok(rng)}});
        CUDA_CHECK(cudaStreamSynchronize(m.stream()));
        kv.truncate(0, a.contexts.front());
        CUDA_CHECK(cudaProfilerStart());
        m.forward_device(kv, RaggedBatch{{0}, {1}, {tok(rng)}});
        CUDA_CHECK(cudaStreamSynchronize(m.stream()));
        CUDA_CHECK(cudaProfilerStop());
        kv.truncate(0, a.contexts.front());
        std::printf("profiled one eager decode step at context %d (cudaProfilerStart/Stop)\n\n", a.contexts.front());
    }

    // decode at each context, largest first (truncate keeps a prefix)
    std::vector<int> ctxs = a.contexts;
    std::sort(ctxs.rbegin(), ctxs.rend());
    std::printf("batch-1 decode, median of %d steps after %d warm-up (CUDA events per step; wall = host loop time / "
                "steps)\n",
                a.steps, a.warmup);
    std::printf("%8s %6s %10s %10s %10s %9s %9s %9s %8s\n", "context", "mode", "median ms", "min ms", "wall ms",
                "tok/s", "GB/tok", "GB/s", "of copy");
    json decode = json::array();
    for (int ctx : ctxs) {
        kv.truncate(0, ctx);
        const double bytes = w_read + kv_bytes_read(cfg, ctx + 1);
        const RaggedBatch step{{0}, {1}, {tok(rng)}};
        for (Mode mode : {Mode::Eager, Mode::Graph, Mode::GraphCublas}) {  // untuned = graph: no GEMM at T = 1
            const Timing t = time_step(m, kv, step, mode, a.warmup, a.steps);
            const double gbps = bytes / (t.median_ms * 1e-3) / 1e9;
            decode.push_back({{"context", ctx},
                              {"mode", mode_name(mode)},
                              {"median_ms", t.median_ms},
                              {"min_ms", t.min_ms},
                              {"wall_ms_per_step", t.wall_ms},
                              {"tokens_per_s", 1e3 / t.median_ms},
                              {"bytes_read_per_token", bytes},
                              {"kv_bytes_read_per_token", kv_bytes_read(cfg, ctx + 1)},
                              {"achieved_GBps", gbps},
                              {"fraction_of_copy_bandwidth", gbps / copy_GBps}});
            std::printf("%8d %6s %10.3f %10.3f %10.3f %9.1f %9.3f %9.0f %7.1f%%\n", ctx, mode_name(mode),
                        t.median_ms, t.min_ms, t.wall_ms, 1e3 / t.median_ms, bytes / 1e9, gbps,
                        100 * gbps / copy_GBps);
        }
    }
    out["decode"] = decode;
    std::printf("\n");

    // 3. verify cost at a.context: back to that length (truncate, or extend
    // the cached prompt when the last decode context was shorter)
    if (kv.len(0) >= a.context) {
        kv.truncate(0, a.context);
    } else {
        const int from = kv.len(0);
        m.forward_device(kv, RaggedBatch{{0}, {a.context - from}, std::vector<int>(prompt.begin() + from,
                                                                                 prompt.begin() + a.context)});
    }
    std::printf("verify cost at context %d: forward of 1 + k tokens, batch 1, median of %d after %d warm-up\n",
                a.context, a.verify_steps, a.warmup);
    std::printf("%4s %12s %8s %12s %8s %12s %8s\n", "k", "eager ms", "ratio", "graph ms", "ratio", "cublas ms",
                "ratio");
    json verify = json::array();
    double base[3] = {0, 0, 0};
    for (int k = 0; k <= a.max_k; k++) {
        std::vector<int> toks(1 + k);
        for (int& t : toks) t = tok(rng);
        const RaggedBatch blk{{0}, {1 + k}, toks};
        json row = {{"k", k}, {"tokens", 1 + k}};
        std::printf("%4d", k);
        for (int g = 0; g < 3; g++) {
            const double ms = time_step(m, kv, blk, kModes[g], a.warmup, a.verify_steps).median_ms;
            if (k == 0) base[g] = ms;
            row[std::string(mode_name(kModes[g])) + "_median_ms"] = ms;
            row[std::string(mode_name(kModes[g])) + "_ratio"] = ms / base[g];
            std::printf(" %12.3f %8.3f", ms, ms / base[g]);
        }
        std::printf("\n");
        verify.push_back(row);
    }
    out["verify"] = {{"context", a.context}, {"rows", verify}};

    // 5. decode of R sequences at a.context, eager against graph
    if (!a.batches.empty()) {
        const int R_max = *std::max_element(a.batches.begin(), a.batches.end());
        KvCacheOptions bo;
        bo.capacity_tokens = static_cast<int64_t>(R_max) * (a.context + 1 + bo.block_size);
        KvCache kvb(cfg, R_max, bo);
        const size_t array_bytes = kvb.bytes() / (2 * static_cast<size_t>(cfg.n_layers));
        for (int l = 0; l < cfg.n_layers; l++) {  // the rows are grown, not prefilled: zeros, not garbage
            CUDA_CHECK(cudaMemset(kvb.k(l), 0, array_bytes));
            CUDA_CHECK(cudaMemset(kvb.v(l), 0, array_bytes));
        }
        std::vector<int> all(R_max);
        std::iota(all.begin(), all.end(), 0);
        kvb.grow(all, std::vector<int>(R_max, a.context));
        // one decode token for each of sequences 0..R-1
        auto decode_batch = [&](int R) {
            RaggedBatch b;
            for (int r = 0; r < R; r++) {
                b.seq.push_back(r);
                b.q_len.push_back(1);
                b.tokens.push_back(tok(rng));
            }
            return b;
        };
        if (a.profile_batch > 0) {  // one eager step of R sequences, for ncu
            const RaggedBatch b = decode_batch(a.profile_batch);
            time_step(m, kvb, b, Mode::Eager, 1, 1);
            CUDA_CHECK(cudaProfilerStart());
            time_step(m, kvb, b, Mode::Eager, 0, 1);
            CUDA_CHECK(cudaProfilerStop());
            std::printf("profiled eager decode steps of %d sequences at context %d (cudaProfilerStart/Stop)\n",
                        a.profile_batch, a.context);
            return 0;
        }
        const double rate = bf16_rate();
        out["bf16_rate_flops"] = rate;
        std::printf("\nbf16 rate (cuBLAS 8192^3 GEMM, median of 10): %.0f TFLOP/s\n", rate / 1e12);
        std::printf("decode of R sequences at context %d, one token each, median of %d after %d warm-up; floor = "
                    "max(bytes / copy bandwidth, FLOPs / bf16 rate)\n",
                    a.context, a.verify_steps, a.warmup);
        std::printf("%5s %10s %10s %10s %10s %8s %12s %9s %9s %9s\n", "R", "eager ms", "graph ms", "cublas ms",
                    "untuned ms", "graph", "tok/s graph", "GB", "floor ms", "of floor");
        json rows = json::array();
        for (int R : a.batches) {
            const RaggedBatch b = decode_batch(R);
            const double bytes = w_read + R * kv_bytes_read(cfg, a.context + 1);
            const double flops = R * decode_flops(cfg, a.context + 1);
            const double floor_ms = 1e3 * std::max(bytes / (copy_GBps * 1e9), flops / rate);
            double ms[4];
            for (int g = 0; g < 4; g++) ms[g] = time_step(m, kvb, b, kModes[g], a.warmup, a.verify_steps).median_ms;
            rows.push_back({{"R", R},
                            {"eager_median_ms", ms[0]},
                            {"graph_median_ms", ms[1]},
                            {"cublas_median_ms", ms[2]},
                            {"untuned_median_ms", ms[3]},
                            {"graph_saves", 1 - ms[1] / ms[0]},
                            {"tokens_per_s_graph", 1e3 * R / ms[1]},
                            {"bytes", bytes},
                            {"flops", flops},
                            {"floor_ms", floor_ms},
                            {"graph_of_floor", floor_ms / ms[1]}});
            std::printf("%5d %10.3f %10.3f %10.3f %10.3f %7.1f%% %12.0f %9.2f %9.3f %8.1f%%\n", R, ms[0], ms[1], ms[2],
                        ms[3], 100 * (1 - ms[1] / ms[0]), 1e3 * R / ms[1], bytes / 1e9, floor_ms, 100 * floor_ms / ms[1]);
        }
        out["batches"] = {{"context", a.context}, {"rows", rows}};

        // Device memory a captured graph holds (CudaModel keeps up to
        // kGraphCacheMax): 16 new graphs, decodes of 1..16 sequences, after
        // the buffers were sized by the larger batches above.
        m.graphs_clear();
        size_t free0 = 0, free1 = 0, total = 0;
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemGetInfo(&free0, &total));
        const int n_graphs = std::min(16, R_max);
        for (int R = 1; R <= n_graphs; R++) time_step(m, kvb, decode_batch(R), Mode::Graph, 1, 1);
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemGetInfo(&free1, &total));
        const double took = free0 > free1 ? double(free0 - free1) : 0, per_graph = took / n_graphs;
        out["graph_bytes"] = {{"graphs", n_graphs}, {"bytes_per_graph", per_graph}};
        std::printf("graph memory: %d graphs (decodes of 1..%d sequences) took %.1f MiB of device memory, %.2f MiB each\n",
                    n_graphs, n_graphs, took / (1 << 20), per_graph / (1 << 20));
    }

    if (!a.out.empty()) {
        std::ofstream f(a.out);
        f << out.dump(2) << "\n";
        if (!f) throw Error("bench_engine: cannot write " + a.out);
        std::printf("\nwrote %s\n", a.out.c_str());
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_engine: %s\n", e.what());
    return 1;
}
