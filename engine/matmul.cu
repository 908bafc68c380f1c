// matmul.cu: the one cuBLAS wrapper (T > kGemvMaxT; gemv.cu below that) and the projection dispatch. Every projection of the forward is
//   y (T, n_out) = x (T, n_in) @ W (n_out, n_in)^T
// with bf16 x and W (HF's nn.Linear layout, row-major) and fp32 accumulation.
//
// cuBLAS is column-major. Row-major W (n_out, n_in) read column-major is W^T
// (n_in, n_out), ld n_in; row-major x (T, n_in) is x^T (n_in, T), ld n_in;
// row-major y (T, n_out) is y^T (n_out, T), ld n_out. So y^T = op_T(W^T) x^T:
// transa = T, transb = N, m = n_out, n = T, k = n_in.
//
// Batched decode and verify are skinny GEMMs (T of 32 .. 2,048 against
// n_out of 4,096 .. 24,576), where the tile shape and split-K decide whether
// the chip fills: cublasGemmEx's default algorithm took 7.2 ms a step for
// qwen3-8b's projections at T = 256, against a 5.0 ms weight floor (H100,
// 2026-12-07). So the first eager call of each shape bucket (gemm_bucket: 4
// buckets per doubling of T, up to kTuneMaxT tokens) times cuBLASLt's
// candidates into a scratch output and keeps the fastest for every T of the
// bucket. (Split-K variants of the heuristic's first 8 candidates, 2 and 4
// pieces reduced in fp32, were timed too and never won in 18 shapes of T =
// 32 .. 512: cuBLASLt's Hopper kernels are best unsplit; H100, 2026-12-07,
// bench/results/engine-batched-h100-2026-12-07-splitk-gemm-log.txt.)
// A shape first met inside a graph capture, or too big for the scratch,
// takes its bucket's choice or else the heuristic's first; matmul_tune
// fills the buckets ahead (CudaModel::gemm_warm), so that a serving loop
// meeting a new T pays neither the timing nor a different algorithm.
#include "engine/kernels.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>
#include <vector>

namespace sp {

namespace {
constexpr size_t kWorkspaceBytes = 32ull << 20;  // cuBLAS's advice for Hopper is 32 MiB
constexpr int kTuneMaxT = 4096;
constexpr int kTuneCandidates = 16;
constexpr int kTuneReps = 5;
constexpr size_t kScratchBytes = 64ull << 20;  // timing output: T * n_out * 4 bytes must fit
}  // namespace

// One GEMM shape's descriptors and chosen algorithm.
struct GemmPlan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool has_algo = false;  // algo set
    bool tuned = false;     // algo timed (here or for the bucket); false: the heuristic's first, timed when eager
};
using GemmKey = std::tuple<int, int, int, bool, bool>;  // T, n_in, n_out, fp32 out, accumulate
struct GemmPlans {
    std::map<GemmKey, GemmPlan> plans;               // per T
    std::map<GemmKey, cublasLtMatmulAlgo_t> chosen;  // per gemm_bucket(T): the timed fastest
    void* scratch = nullptr;                         // kScratchBytes, allocated at the first timing
    bool log = false;                                // SPECPLAN_GEMM_LOG set: each timing to stderr
};

namespace {
GemmPlan gemm_plan_create(int T, int n_in, int n_out, bool out32) {
    GemmPlan p;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, n_in, n_out, n_in));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, n_in, T, n_in));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, out32 ? CUDA_R_32F : CUDA_R_16BF, n_out, T, n_out));
    return p;
}

void gemm_plan_destroy(GemmPlan& p) {  // unchecked: runs from destructors
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.op) cublasLtMatmulDescDestroy(p.op);
    p = GemmPlan{};
}

// cuBLASLt's candidates for the plan's shape, best guess first; at least one.
int gemm_candidates(const Cublas& c, const GemmPlan& p, cublasLtMatmulHeuristicResult_t* out, int n) {
    cublasLtMatmulPreference_t pref = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = c.workspace_bytes;
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                             sizeof(ws));
    int found = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(c.lt, p.op, p.a, p.b, p.c, p.c, pref, n, out, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    CUBLAS_CHECK(st);
    if (found == 0) cuda_throw("matmul_forward: cuBLASLt offers no algorithm for this shape");
    return found;
}

// Whether algo runs the plan's shape within the workspace.
bool gemm_algo_fits(const Cublas& c, const GemmPlan& p, const cublasLtMatmulAlgo_t& algo) {
    cublasLtMatmulHeuristicResult_t r{};
    return cublasLtMatmulAlgoCheck(c.lt, p.op, p.a, p.b, p.c, p.c, &algo, &r) == CUBLAS_STATUS_SUCCESS &&
           r.workspaceSize <= c.workspace_bytes;
}

void gemm_run(const Cublas& c, const GemmPlan& p, const cublasLtMatmulAlgo_t& algo, const bf16* W, const bf16* x,
              void* y, float beta) {
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasLtMatmul(c.lt, p.op, &alpha, W, p.a, x, p.b, &beta, y, p.c, y, p.c, &algo, c.workspace,
                                c.workspace_bytes, c.stream));
}

// The fastest of the candidates, each run kTuneReps times into the scratch
// after one untimed run (the plan's output and accumulate flag, so the same
// kernels run as in use).
cublasLtMatmulAlgo_t gemm_time(const Cublas& c, const GemmPlan& p, const cublasLtMatmulHeuristicResult_t* cand,
                               int n, const bf16* W, const bf16* x, float beta, const GemmKey& key) {
    if (!c.plans->scratch) CUDA_CHECK(cudaMalloc(&c.plans->scratch, kScratchBytes));
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    int best = 0;
    float best_ms = 0, first_ms = 0;
    for (int i = 0; i < n; i++) {
        gemm_run(c, p, cand[i].algo, W, x, c.plans->scratch, beta);
        CUDA_CHECK(cudaEventRecord(start, c.stream));
        for (int r = 0; r < kTuneReps; r++) gemm_run(c, p, cand[i].algo, W, x, c.plans->scratch, beta);
        CUDA_CHECK(cudaEventRecord(stop, c.stream));
        CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        if (i == 0) first_ms = ms;
        if (i == 0 || ms < best_ms) best = i, best_ms = ms;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (c.plans->log) {
        int32_t id = 0, tile = 0, splits = 1;
        cublasLtMatmulAlgoConfigGetAttribute(&cand[best].algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id), nullptr);
        cublasLtMatmulAlgoConfigGetAttribute(&cand[best].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile),
                                             nullptr);
        cublasLtMatmulAlgoConfigGetAttribute(&cand[best].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits,
                                             sizeof(splits), nullptr);
        std::fprintf(stderr,
                     "gemm T %d n_in %d n_out %d: %d candidates, best #%d (algo %d tile %d split-K %d) %.1f us; "
                     "the heuristic's first %.1f us\n",
                     std::get<0>(key), std::get<1>(key), std::get<2>(key), n, best, id, tile, splits,
                     1e3 * best_ms / kTuneReps, 1e3 * first_ms / kTuneReps);
    }
    return cand[best].algo;
}

// The plan for this shape, created (and timed, when eager and small enough) at first use.
const GemmPlan& gemm_plan(const Cublas& c, int T, int n_in, int n_out, bool out32, bool accumulate, const bf16* W,
                          const bf16* x) {
    GemmPlan& p = c.plans->plans[GemmKey{T, n_in, n_out, out32, accumulate}];
    if (p.tuned) return p;
    if (!p.op) p = gemm_plan_create(T, n_in, n_out, out32);
    const GemmKey bucket{gemm_bucket(T), n_in, n_out, out32, accumulate};
    const auto chosen = c.plans->chosen.find(bucket);
    if (chosen != c.plans->chosen.end() && gemm_algo_fits(c, p, chosen->second)) {
        p.algo = chosen->second;
        p.has_algo = p.tuned = true;
        return p;
    }
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(c.stream, &capturing));
    const bool timeable = capturing == cudaStreamCaptureStatusNone && T <= kTuneMaxT &&
                          static_cast<size_t>(T) * n_out * 4 <= kScratchBytes;
    if (!timeable) {  // the heuristic's first choice until an eager call can time
        if (!p.has_algo) {
            cublasLtMatmulHeuristicResult_t first;
            gemm_candidates(c, p, &first, 1);
            p.algo = first.algo;
            p.has_algo = true;
        }
        return p;
    }
    cublasLtMatmulHeuristicResult_t cand[kTuneCandidates];
    const int n = gemm_candidates(c, p, cand, kTuneCandidates);
    p.algo = gemm_time(c, p, cand, n, W, x, accumulate ? 1.0f : 0.0f, GemmKey{T, n_in, n_out, out32, accumulate});
    p.has_algo = p.tuned = true;
    c.plans->chosen[bucket] = p.algo;
    return p;
}
}  // namespace

Cublas cublas_create(cudaStream_t stream) {
    Cublas c;
    c.stream = stream;
    CUBLAS_CHECK(cublasCreate(&c.handle));
    CUBLAS_CHECK(cublasSetStream(c.handle, stream));
    CUBLAS_CHECK(cublasLtCreate(&c.lt));
    CUDA_CHECK(cudaMalloc(&c.workspace, kWorkspaceBytes));
    c.workspace_bytes = kWorkspaceBytes;
    CUBLAS_CHECK(cublasSetWorkspace(c.handle, c.workspace, c.workspace_bytes));
    // no TF32 or reduced-precision reductions: the bf16 products accumulate in fp32
    CUBLAS_CHECK(cublasSetMathMode(c.handle, CUBLAS_DEFAULT_MATH));
    c.plans = new GemmPlans;
    c.plans->log = std::getenv("SPECPLAN_GEMM_LOG") != nullptr;
    return c;
}

void cublas_destroy(Cublas& c) {  // unchecked: runs from destructors
    if (c.plans) {
        for (auto& [key, p] : c.plans->plans) gemm_plan_destroy(p);
        if (c.plans->scratch) cudaFree(c.plans->scratch);
        delete c.plans;
    }
    if (c.lt) cublasLtDestroy(c.lt);
    if (c.handle) cublasDestroy(c.handle);
    if (c.workspace) cudaFree(c.workspace);
    c = Cublas{};
}

void matmul_forward(const Cublas& c, void* y, Epilogue epi, bf16* x, const bf16* W, int T, int n_in, int n_out,
                    bf16* scratch, const RmsnormInput* norm) {
    if (T == 0) return;
    // decode and verify: a weight stream, not a GEMM. The norm is fused up to kGemvNormMaxT tokens.
    const bool fuse = c.gemv && norm && T <= kGemvNormMaxT && reinterpret_cast<uintptr_t>(norm->w) % 16 == 0;
    const void* in = fuse ? static_cast<const void*>(norm->x) : static_cast<const void*>(x);
    const bool gemv = c.gemv && gemv_supported(in, W, T, n_in, n_out, epi);
    if (norm && !(gemv && fuse))
        rmsnorm_forward(x, const_cast<float*>(norm->x), nullptr, norm->w, T, n_in, norm->eps, c.stream);
    if (gemv) {
        gemv_forward(y, epi, x, W, T, n_in, n_out, c.stream, fuse ? norm : nullptr);
        return;
    }
    if (epi == Epilogue::SwiGLU && !scratch) cuda_throw("matmul_forward: SwiGLU through cuBLAS needs scratch");
    const bool accumulate = epi == Epilogue::AddFp32;
    const bool out32 = epi == Epilogue::Fp32 || epi == Epilogue::AddFp32;
    void* out = epi == Epilogue::SwiGLU ? static_cast<void*>(scratch) : y;
    if (c.tune) {
        const GemmPlan& p = gemm_plan(c, T, n_in, n_out, out32, accumulate, W, x);
        gemm_run(c, p, p.algo, W, x, out, accumulate ? 1.0f : 0.0f);
    } else {
        const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
        CUBLAS_CHECK(cublasGemmEx(c.handle, CUBLAS_OP_T, CUBLAS_OP_N, n_out, T, n_in, &alpha, W, CUDA_R_16BF, n_in,
                                  x, CUDA_R_16BF, n_in, &beta, out, out32 ? CUDA_R_32F : CUDA_R_16BF, n_out,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    if (epi == Epilogue::SwiGLU) swiglu_forward(static_cast<bf16*>(y), scratch, T, n_out / 2, c.stream);
}

void matmul_tune(const Cublas& c, Epilogue epi, const bf16* x, const bf16* W, int T, int n_in, int n_out) {
    if (T == 0 || !c.tune || (c.gemv && gemv_supported(x, W, T, n_in, n_out, epi))) return;
    const bool out32 = epi == Epilogue::Fp32 || epi == Epilogue::AddFp32;
    gemm_plan(c, T, n_in, n_out, out32, epi == Epilogue::AddFp32, W, x);
}

void matmul_warm(const Cublas& c, const std::vector<GemmShape>& shapes) {
    int top = 0;
    size_t cols = 0;
    for (const GemmShape& s : shapes) {
        top = std::max(top, std::min(gemm_bucket(std::max(1, s.max_T)), kTuneMaxT));
        cols = std::max(cols, static_cast<size_t>(s.n_in));
    }
    if (!c.tune || top == 0) return;
    // the inputs: zeros (their values only steer the timing), rows for the largest bucket timed;
    // no room for them on a full GPU: no warming, the shapes are timed at their first eager call
    bf16* x = nullptr;
    const cudaError_t got = cudaMalloc(&x, static_cast<size_t>(top) * cols * sizeof(bf16));
    if (got == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();  // clear it
        return;
    }
    CUDA_CHECK(got);
    try {
        CUDA_CHECK(cudaMemsetAsync(x, 0, static_cast<size_t>(top) * cols * sizeof(bf16), c.stream));
        for (int t = gemm_bucket(1); t <= top; t = gemm_bucket(t + 1))
            for (const GemmShape& s : shapes)
                if (t <= gemm_bucket(s.max_T)) matmul_tune(c, s.epi, x, s.W, t, s.n_in, s.n_out);
    } catch (...) {
        cudaFree(x);  // unchecked: the error in flight is the one to report
        throw;
    }
    CUDA_CHECK(cudaFree(x));
}

}  // namespace sp
