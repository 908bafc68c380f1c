// test_cuda.cpp: the CUDA backend (engine/*.cu, cuda_model, kv_cache) on the
// GPU machine (ctest -L gpu).
//
// Three layers of evidence, each printed llm.c-style (worst error, bound,
// share of the bound used):
//  - each kernel against a CPU loop on fresh random inputs;
//  - the whole forward against the CPU reference (random weights of the tiny
//    presets) and against the HF fixtures (logits, hidden states, 200 greedy
//    tokens);
//  - properties: a ragged batch (prefill chunk + verify block on a cached
//    prefix + decode token) equals each sequence alone, truncate-then-forward
//    equals never appended, a full cache fails cleanly;
//  - the engine's two ways of running the same forward, against each other:
//    CUDA graphs per shape bucket against eager launches, every projection
//    through cuBLAS against the GEMV path, and the Backend interface
//    (backend_cuda against backend_cpu) through a speculative session;
//  - verification on the device: verify_forward against verify_reference
//    (verify.h) on random logits, equal but where the CPU's decision is
//    within 1e-5 of a tie, and Backend::verify cuda against cpu at greedy.
//
// Tolerances. bf16 keeps 8 significant bits: one rounding to nearest has a
// relative error of at most u = 2^-8 = 3.9e-3 (half an ulp is 2^-9 of the
// leading bit's value, up to 2^-8 of the value near the bottom of a binade;
// we use u = 2^-8). A kernel that reads bf16, computes in fp32 and rounds its
// bf16 output once is held to 1.5 u of the output (one rounding plus fp32
// noise); fp32 outputs of bf16 inputs (logits GEMM, attention before
// rounding) to fp32 noise, 1e-5 of the row's scale. The full forward rounds
// weights once (fp32 fixtures) and activations about 8 times per layer
// (xn, qkv, q/k after RoPE, att, y of wo, gu, act, y of w_down), with the
// residual stream kept fp32. Errors of independent roundings add roughly in
// quadrature, but every rounding of a norm output is amplified by the next
// projections, so we allow kForwardRtol = 12 u = 4.7e-2 of max |ref| per
// tensor and print the observed share. Observed on an H100 (2026-11-23,
// bench/results/cuda-tests-h100-2026-11-23-mma.txt, the tensor-core GEMV
// with the fused norm): HF fixture logits 3.2 u (tiny-qwen3-bf16) to 7.1 u
// (tiny-llama, 59% of the bound), hidden states 1.4 to 4.7 u; against the
// CPU reference on random weights 0.6 to 1.7 u.
#include <gtest/gtest.h>

#include "tests/hf_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/counter_rng.h"
#include "engine/cuda_model.h"
#include "engine/kernels.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/reference.h"
#include "engine/verify.h"
#include "tests/needs_gpu.h"

using namespace sp;

namespace {

constexpr double kU = 1.0 / 256;           // bf16 unit roundoff, 2^-8
constexpr double kKernelRtol = 1.5 * kU;   // one bf16 rounding of the output plus fp32 noise
constexpr double kFp32Rtol = 1e-5;         // fp32 result of exact bf16 inputs, relative to row scale
constexpr double kForwardRtol = 12 * kU;   // whole forward, relative to max |ref| (see the file comment)

// ---------------------------------------------------------------------------
// helpers

template <class T>
struct Dev {
    T* p = nullptr;
    size_t n = 0;
    explicit Dev(size_t count) : n(count) { CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T))); }
    explicit Dev(const std::vector<T>& h) : Dev(h.size()) { upload(h); }
    ~Dev() { cudaFree(p); }
    Dev(const Dev&) = delete;
    Dev& operator=(const Dev&) = delete;
    void upload(const std::vector<T>& h) {
        CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> download() const {
        CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<T> h(n);
        CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
        return h;
    }
    // poison: 0xFF bytes are NaN in bf16 and fp32, so an unwritten element fails
    void poison() { CUDA_CHECK(cudaMemset(p, 0xFF, n * sizeof(T))); }
};

float round_bf16(float x) { return __bfloat162float(__float2bfloat16(x)); }
std::vector<bf16> to_bf16(const std::vector<float>& x) {
    std::vector<bf16> out(x.size());
    for (size_t i = 0; i < x.size(); i++) out[i] = __float2bfloat16(x[i]);
    return out;
}
std::vector<float> to_float(const std::vector<bf16>& x) {
    std::vector<float> out(x.size());
    for (size_t i = 0; i < x.size(); i++) out[i] = __bfloat162float(x[i]);
    return out;
}
// Random values already representable in bf16, so CPU and GPU see the same inputs.
std::vector<float> random_bf16_values(size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = round_bf16(nd(rng));
    return v;
}

// |got - want| <= atol + rtol * |want| elementwise; prints the worst element
// and the share of its bound used.
bool check_close(const std::string& label, const std::vector<float>& got, const std::vector<float>& want, double rtol,
                 double atol) {
    if (got.size() != want.size()) {
        ADD_FAILURE() << label << ": size " << got.size() << " vs " << want.size();
        return false;
    }
    double worst = 0, worst_err = 0;
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); i++) {
        const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
        const double bound = atol + rtol * std::fabs(static_cast<double>(want[i]));
        const double share = std::isnan(err) ? INFINITY : err / bound;
        if (!(err <= bound)) bad++;
        if (share > worst) {
            worst = share;
            worst_err = err;
        }
    }
    std::printf("%s: %zu values, worst |err| %.3e = %.1f%% of its bound (rtol %.1e, atol %.1e): %s\n", label.c_str(),
                got.size(), worst_err, 100 * worst, rtol, atol, bad ? "NOT OK" : "OK");
    EXPECT_EQ(bad, 0u) << label << ": " << bad << " values out of bounds";
    return bad == 0;
}

// Tensor-scale check, as test_reference's: |got - want| <= rtol * max |want|.
double check_scaled(const std::string& label, const float* got, const float* want, size_t n, double rtol) {
    double scale = 0, max_err = 0;
    for (size_t i = 0; i < n; i++) scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    for (size_t i = 0; i < n; i++) {
        const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
        max_err = std::isnan(e) ? INFINITY : std::max(max_err, e);
    }
    const double rel = max_err / scale;
    std::printf("%s: %zu values, max |ref| %.3f, max |err| %.3e = %.2e of scale (%.1f u), %.1f%% of bound %.1e: %s\n",
                label.c_str(), n, scale, max_err, rel, rel / kU, 100 * rel / rtol, rtol, rel <= rtol ? "OK" : "NOT OK");
    EXPECT_LE(rel, rtol) << label;
    return rel;
}

ModelWeights tiny_model(const std::string& preset, uint64_t seed = 7) {
    Config c;
    if (!config_preset(preset, &c)) throw Error("no preset " + preset);
    return weights_random(c, seed);
}

std::vector<int> some_tokens(int n, int vocab, int salt) {
    std::vector<int> t(n);
    for (int i = 0; i < n; i++) t[i] = (i * 37 + salt * 101 + 11) % vocab;
    return t;
}

std::vector<float> rows(const std::vector<float>& m, int first, int count, int width) {
    return {m.begin() + static_cast<ptrdiff_t>(first) * width, m.begin() + static_cast<ptrdiff_t>(first + count) * width};
}

KvCacheOptions small_cache(int64_t tokens = 4096) {
    KvCacheOptions o;
    o.capacity_tokens = tokens;
    return o;
}

std::vector<float> gpu_forward_one(CudaModel& m, KvCache& kv, int seq, const std::vector<int>& tokens) {
    std::vector<float> logits;
    m.forward(kv, RaggedBatch{{seq}, {static_cast<int>(tokens.size())}, tokens}, &logits);
    return logits;
}
std::vector<float> cpu_forward_one(const ModelWeights& w, CpuKvCache& kv, int seq, const std::vector<int>& tokens) {
    std::vector<float> logits;
    reference_forward(w, kv, RaggedBatch{{seq}, {static_cast<int>(tokens.size())}, tokens}, &logits);
    return logits;
}

}  // namespace

// ---------------------------------------------------------------------------
// kernels against CPU loops

TEST(CudaKernels, EmbedGathersRowsExactly) {
    std::mt19937 rng(1);
    const int V = 300, d = 72, T = 9;
    const std::vector<float> table = random_bf16_values(static_cast<size_t>(V) * d, rng);
    std::vector<int> tokens(T);
    for (int& t : tokens) t = static_cast<int>(rng() % V);
    Dev<bf16> d_table(to_bf16(table));
    Dev<int> d_tok(tokens);
    Dev<float> d_x(static_cast<size_t>(T) * d);
    d_x.poison();
    embed_forward(d_x.p, d_tok.p, d_table.p, T, d, nullptr);
    std::vector<float> want;
    for (int t : tokens) want.insert(want.end(), table.begin() + t * d, table.begin() + (t + 1) * d);
    EXPECT_EQ(d_x.download(), want);  // bf16 -> fp32 is exact
}

TEST(CudaKernels, RmsnormWithResidualAdd) {
    std::mt19937 rng(2);
    for (int d : {64, 1000, 4096}) {
        const int T = 5;
        const float eps = 1e-6f;
        std::vector<float> x = random_bf16_values(static_cast<size_t>(T) * d, rng, 3.0f);
        const std::vector<float> y = random_bf16_values(x.size(), rng), w = random_bf16_values(d, rng);
        Dev<float> d_x(x);
        Dev<bf16> d_y(to_bf16(y)), d_w(to_bf16(w)), d_out(x.size());
        d_out.poison();
        rmsnorm_forward(d_out.p, d_x.p, d_y.p, d_w.p, T, d, eps, nullptr);
        std::vector<float> want(x.size());
        for (int t = 0; t < T; t++) {
            double ss = 0;
            for (int i = 0; i < d; i++) {
                x[t * d + i] += y[t * d + i];  // the same fp32 add as the kernel: exact match expected
                ss += static_cast<double>(x[t * d + i]) * x[t * d + i];
            }
            const double scale = 1.0 / std::sqrt(ss / d + eps);
            for (int i = 0; i < d; i++) want[t * d + i] = static_cast<float>(w[i] * (x[t * d + i] * scale));
        }
        EXPECT_EQ(d_x.download(), x) << "residual add, d " << d;
        check_close("rmsnorm d " + std::to_string(d), to_float(d_out.download()), want, kKernelRtol, 1e-6);
    }
}

TEST(CudaKernels, QkNormAndRopeMatchReference) {
    std::mt19937 rng(3);
    for (bool qk_norm : {true, false}) {
        for (int D : {16, 64, 128}) {
            Config c;
            c.head_dim = D;
            c.rope_theta = qk_norm ? 1e6 : 5e5;
            if (!qk_norm) c.rope_scaling = RopeScaling{8, 1, 4, 64};
            const std::vector<double> inv_freq = rope_inv_freq(c);
            const int T = 6, H = 4, KVH = 2, width = (H + 2 * KVH) * D;
            const float eps = 1e-6f;
            const std::vector<float> qkv = random_bf16_values(static_cast<size_t>(T) * width, rng);
            const std::vector<float> qn = random_bf16_values(D, rng), kn = random_bf16_values(D, rng);
            std::vector<int> pos = {0, 1, 7, 100, 511, 4000};
            Dev<bf16> d_qkv(to_bf16(qkv)), d_qn(to_bf16(qn)), d_kn(to_bf16(kn));
            Dev<int> d_pos(pos);
            Dev<float> d_f(std::vector<float>(inv_freq.begin(), inv_freq.end()));
            rope_forward(d_qkv.p, d_pos.p, d_f.p, qk_norm ? d_qn.p : nullptr, qk_norm ? d_kn.p : nullptr, T, H, KVH,
                         D, eps, nullptr);
            std::vector<float> want = qkv;
            for (int t = 0; t < T; t++)
                for (int h = 0; h < H + KVH; h++) {
                    float* x = &want[static_cast<size_t>(t) * width + h * D];
                    if (qk_norm) {
                        const std::vector<float>& nw = h < H ? qn : kn;
                        float ss = 0;
                        for (int i = 0; i < D; i++) ss += x[i] * x[i];
                        const float sc = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
                        for (int i = 0; i < D; i++) x[i] = nw[i] * (x[i] * sc);
                    }
                    rope_rotate(x, D, pos[t], inv_freq);
                }
            // angles up to 4000 rad: cosf on both sides agree to a few ulp of the angle, 2.4e-4 rad here;
            // elements are O(1) (normed, or unit-variance inputs), so atol 1e-3 covers it
            check_close(std::string(qk_norm ? "qk-norm+rope" : "rope (llama3)") + " D " + std::to_string(D),
                        to_float(d_qkv.download()), want, kKernelRtol, 1e-3);
        }
    }
}

// rope_forward with the cache pointers: the same qkv as without, and the
// cache rows exactly what kv_append writes from it.
TEST(CudaKernels, RopeWithAppendEqualsRopeThenKvAppend) {
    std::mt19937 rng(31);
    Config c;
    c.head_dim = 128;
    c.rope_theta = 1e6;
    const std::vector<double> inv_freq = rope_inv_freq(c);
    const int T = 5, H = 8, KVH = 2, D = 128, width = (H + 2 * KVH) * D, kv_dim = KVH * D, rows = 64;
    const std::vector<float> qkv = random_bf16_values(static_cast<size_t>(T) * width, rng);
    const std::vector<float> qn = random_bf16_values(D, rng), kn = random_bf16_values(D, rng);
    const std::vector<int> pos = {0, 1, 7, 100, 511}, slot = {3, 17, 18, 40, 63};
    Dev<bf16> a(to_bf16(qkv)), b(to_bf16(qkv)), d_qn(to_bf16(qn)), d_kn(to_bf16(kn));
    Dev<bf16> k1(static_cast<size_t>(rows) * kv_dim), v1(k1.n), k2(k1.n), v2(k1.n);
    for (auto* p : {&k1, &v1, &k2, &v2}) p->poison();
    Dev<int> d_pos(pos), d_slot(slot);
    Dev<float> d_f(std::vector<float>(inv_freq.begin(), inv_freq.end()));
    rope_forward(a.p, d_pos.p, d_f.p, d_qn.p, d_kn.p, T, H, KVH, D, 1e-6f, nullptr);
    kv_append(k1.p, v1.p, a.p, d_slot.p, T, H, KVH, D, nullptr);
    rope_forward(b.p, d_pos.p, d_f.p, d_qn.p, d_kn.p, T, H, KVH, D, 1e-6f, nullptr, k2.p, v2.p, d_slot.p);
    const std::vector<float> qa = to_float(a.download()), qb = to_float(b.download());
    EXPECT_EQ(qa, qb);
    const std::vector<float> ka = to_float(k1.download()), kb = to_float(k2.download()), va = to_float(v1.download()),
                             vb = to_float(v2.download());
    for (int t = 0; t < T; t++)
        for (int i = 0; i < kv_dim; i++) {
            const size_t at = static_cast<size_t>(slot[t]) * kv_dim + i;
            ASSERT_EQ(ka[at], kb[at]) << "k, token " << t << " elem " << i;
            ASSERT_EQ(va[at], vb[at]) << "v, token " << t << " elem " << i;
        }
}

// gu's columns come gate/up interleaved in groups of kGluGroup (kernels.h).
int glu_gate_col(int i) { return i / kGluGroup * 2 * kGluGroup + i % kGluGroup; }

TEST(CudaKernels, SwigluMatchesCpu) {
    std::mt19937 rng(4);
    const int T = 7, F = 336;
    const std::vector<float> gu = random_bf16_values(static_cast<size_t>(T) * 2 * F, rng, 2.0f);
    Dev<bf16> d_gu(to_bf16(gu)), d_out(static_cast<size_t>(T) * F);
    d_out.poison();
    swiglu_forward(d_out.p, d_gu.p, T, F, nullptr);
    std::vector<float> want(static_cast<size_t>(T) * F);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < F; i++) {
            const double g = gu[t * 2 * F + glu_gate_col(i)], u = gu[t * 2 * F + glu_gate_col(i) + kGluGroup];
            want[t * F + i] = static_cast<float>(g / (1 + std::exp(-g)) * u);
        }
    check_close("swiglu", to_float(d_out.download()), want, kKernelRtol, 1e-6);
}

// The product x @ W^T in double, and sum |x_i W_i| over a row (bounds the
// fp32 accumulation error), for the projection tests.
std::vector<double> cpu_product(const std::vector<float>& x, const std::vector<float>& W, int T, int n_in, int n_out,
                                double* row_scale) {
    std::vector<double> p(static_cast<size_t>(T) * n_out);
    *row_scale = 0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < n_out; o++) {
            double s = 0, a = 0;
            for (int i = 0; i < n_in; i++) {
                const double v = static_cast<double>(x[static_cast<size_t>(t) * n_in + i]) *
                                 W[static_cast<size_t>(o) * n_in + i];
                s += v;
                a += std::fabs(v);
            }
            p[static_cast<size_t>(t) * n_out + o] = s;
            *row_scale = std::max(*row_scale, a);
        }
    return p;
}

// Runs one projection with each epilogue through `run` (y, epi, scratch) and
// checks it against the double product: Bf16 and Fp32 outputs, AddFp32 onto
// a random fp32 start, SwiGLU of the interleaved gate/up rows (n_out % 16 == 0).
// atol_extra: more absolute tolerance (the fused norm's different rounding).
template <class Run>
void check_epilogues(const std::string& label, const std::vector<double>& p, double row_scale, int T, int n_out,
                     std::mt19937& rng, Run run, double atol_extra = 0) {
    const size_t n = static_cast<size_t>(T) * n_out;
    const double atol = kFp32Rtol * row_scale + atol_extra;
    std::vector<float> want(p.begin(), p.end());
    Dev<bf16> d_y(n), scratch(n);
    Dev<float> d_y32(n);
    d_y.poison();
    run(d_y.p, Epilogue::Bf16, scratch.p);
    check_close(label + " bf16 out", to_float(d_y.download()), want, kKernelRtol, atol);
    d_y32.poison();
    run(d_y32.p, Epilogue::Fp32, scratch.p);
    check_close(label + " fp32 out", d_y32.download(), want, 0, atol);
    const std::vector<float> start = random_bf16_values(n, rng, 3.0f);
    d_y32.upload(start);
    run(d_y32.p, Epilogue::AddFp32, scratch.p);
    for (size_t i = 0; i < n; i++) want[i] = static_cast<float>(start[i] + p[i]);
    check_close(label + " fp32 add", d_y32.download(), want, 0, atol + 1e-6);
    if (n_out % (2 * kGluGroup) == 0) {
        const int F = n_out / 2;
        Dev<bf16> d_act(static_cast<size_t>(T) * F);
        d_act.poison();
        run(d_act.p, Epilogue::SwiGLU, scratch.p);
        // gate and up are each rounded once before silu * up: a rounding of each on top of the output's
        // (3.5 u), and the products' own tolerance carried through: |d act| <= atol (1.1 |up| + |silu(gate)|)
        const std::vector<float> got = to_float(d_act.download());
        double worst = 0;
        size_t bad = 0;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < F; i++) {
                const size_t at = static_cast<size_t>(t) * n_out + glu_gate_col(i);
                const double g = round_bf16(static_cast<float>(p[at])),
                             u = round_bf16(static_cast<float>(p[at + kGluGroup]));
                const double silu = g / (1 + std::exp(-g)), act = silu * u;
                const double bound = 3.5 * kU * std::fabs(act) + atol * (1.1 * std::fabs(u) + std::fabs(silu)) + 1e-6;
                const double err = std::fabs(got[static_cast<size_t>(t) * F + i] - act);
                worst = std::max(worst, err / bound);
                if (!(err <= bound)) bad++;
            }
        std::printf("%s swiglu: %d values, worst error %.1f%% of its bound: %s\n", label.c_str(), T * F, 100 * worst,
                    bad ? "NOT OK" : "OK");
        EXPECT_EQ(bad, 0u) << label << " swiglu";
    }
}

// matmul_forward: cuBLAS above kGemvMaxT tokens (and for n_in not a
// multiple of 8), gemv.cu below, every epilogue; cuBLASLt's timed algorithm
// (whose timing runs must leave y alone, AddFp32 included) and cublasGemmEx's
// default; a skinny shape where the timing may pick split-K, and a T of
// its bucket that reuses that choice.
TEST(CudaKernels, MatmulMatchesCpu) {
    std::mt19937 rng(5);
    Cublas cb = cublas_create(nullptr);
    struct Shape {
        int T, n_in, n_out;
    };
    const std::vector<Shape> shapes = {{1, 96, 80},  {1, 100, 80},  {5, 96, 80},   {5, 100, 80},
                                       {17, 96, 80}, {17, 100, 80}, {64, 96, 80},  {64, 100, 80},
                                       {256, 2048, 256}, {250, 2048, 256}};
    for (bool tune : {true, false})
        for (const Shape& sh : shapes) {
            const int T = sh.T, n_in = sh.n_in, n_out = sh.n_out;
            cb.tune = tune;
            const std::vector<float> x = random_bf16_values(static_cast<size_t>(T) * n_in, rng),
                                     W = random_bf16_values(static_cast<size_t>(n_out) * n_in, rng);
            Dev<bf16> d_x(to_bf16(x)), d_W(to_bf16(W));
            double row_scale = 0;
            const std::vector<double> p = cpu_product(x, W, T, n_in, n_out, &row_scale);
            check_epilogues(std::string(tune ? "tuned" : "default") + " matmul T " + std::to_string(T) + " n_in " +
                                std::to_string(n_in) + " n_out " + std::to_string(n_out),
                            p, row_scale, T, n_out, rng, [&](void* y, Epilogue epi, bf16* scratch) {
                                matmul_forward(cb, y, epi, d_x.p, d_W.p, T, n_in, n_out, scratch);
                            });
        }
    cublas_destroy(cb);
}

// The T buckets that share a cuBLAS algorithm: T rounded up to a multiple of
// max(8, a quarter of its power-of-two floor).
TEST(CudaKernels, GemmBucketsRoundUpByAQuarterOfTheOctave) {
    const std::vector<std::pair<int, int>> want = {{1, 8},     {8, 8},     {17, 24},   {24, 24},   {25, 32},
                                                   {33, 40},   {63, 64},   {64, 64},   {65, 80},   {129, 160},
                                                   {250, 256}, {257, 320}, {4096, 4096}, {4097, 5120}};
    for (const auto& [T, bucket] : want) EXPECT_EQ(gemm_bucket(T), bucket) << "T " << T;
}

// The small-T GEMV (decode, verify projections) against a double CPU loop,
// T 1..16 (one and two n-tiles of the mma), every epilogue, on shapes with
// ragged tails: n_in not a multiple of 256 (a lane's last vectors missing),
// n_out not a multiple of 16 (a tile's rows past the end).
TEST(CudaKernels, GemvMatchesCpuForSmallT) {
    std::mt19937 rng(51);
    struct Shape {
        int n_in, n_out;
    };
    for (const Shape sh : {Shape{4096, 37}, Shape{1000, 129}, Shape{8, 5}, Shape{2056, 64}, Shape{104, 48},
                           Shape{12288, 96}})
        for (int T : {1, 2, 3, 4, 8, 9, 13, 16}) {
            const int n_in = sh.n_in, n_out = sh.n_out;
            const std::vector<float> x = random_bf16_values(static_cast<size_t>(T) * n_in, rng),
                                     W = random_bf16_values(static_cast<size_t>(n_out) * n_in, rng);
            Dev<bf16> d_x(to_bf16(x)), d_W(to_bf16(W));
            EXPECT_TRUE(gemv_supported(d_x.p, d_W.p, T, n_in, n_out, Epilogue::Bf16));
            EXPECT_EQ(gemv_supported(d_x.p, d_W.p, T, n_in, n_out, Epilogue::SwiGLU), n_out % 16 == 0);
            double row_scale = 0;
            const std::vector<double> p = cpu_product(x, W, T, n_in, n_out, &row_scale);
            const std::string shape =
                " T " + std::to_string(T) + " n_in " + std::to_string(n_in) + " n_out " + std::to_string(n_out);
            check_epilogues("gemv" + shape, p, row_scale, T, n_out, rng, [&](void* y, Epilogue epi, bf16*) {
                gemv_forward(y, epi, d_x.p, d_W.p, T, n_in, n_out, nullptr);
            });
        }
    EXPECT_FALSE(gemv_supported(nullptr, nullptr, 17, 64, 64, Epilogue::Bf16));
    EXPECT_FALSE(gemv_supported(nullptr, nullptr, 0, 64, 64, Epilogue::Bf16));
    EXPECT_FALSE(gemv_supported(nullptr, nullptr, 1, 100, 64, Epilogue::Bf16));
}

// A projection of rmsnorm(x) * w (RmsnormInput): up to kGemvNormMaxT tokens
// the GEMV folds the norm into its prologue and epilogue, above it (GEMV or
// cuBLAS) rmsnorm_forward runs first; all against the norm then the product
// on the CPU. The GEMV rounds
// bf16(w * x) and scales after the product instead of rounding bf16(w * (x *
// scale)): each term's rounding differs by up to 2^-8 of it, independently,
// so the sum by about 2^-8 sqrt(n_in) of a term; we allow 4 2^-8 row_scale /
// sqrt(n_in) more.
TEST(CudaKernels, ProjectionOfRmsnormInputMatchesCpu) {
    std::mt19937 rng(52);
    Cublas cb = cublas_create(nullptr);
    struct Shape {
        int n_in, n_out;
    };
    for (const Shape sh : {Shape{4096, 48}, Shape{1000, 129}, Shape{64, 32}})
        for (int T : {1, 3, 8, 16, 20}) {
            const int n_in = sh.n_in, n_out = sh.n_out;
            const float eps = 1e-6f;
            const std::vector<float> x = random_bf16_values(static_cast<size_t>(T) * n_in, rng, 5.0f),
                                     w = random_bf16_values(n_in, rng),
                                     W = random_bf16_values(static_cast<size_t>(n_out) * n_in, rng);
            std::vector<float> xn(x.size());
            for (int t = 0; t < T; t++) {
                double ss = 0;
                for (int i = 0; i < n_in; i++) ss += static_cast<double>(x[t * n_in + i]) * x[t * n_in + i];
                const float scale = static_cast<float>(1.0 / std::sqrt(ss / n_in + eps));
                for (int i = 0; i < n_in; i++) xn[t * n_in + i] = round_bf16(w[i] * (x[t * n_in + i] * scale));
            }
            Dev<float> d_x(x);
            Dev<bf16> d_w(to_bf16(w)), d_W(to_bf16(W)), d_xn(x.size());
            double row_scale = 0;
            const std::vector<double> p = cpu_product(xn, W, T, n_in, n_out, &row_scale);
            const RmsnormInput norm{d_x.p, d_w.p, eps};
            const bool gemv = gemv_supported(d_x.p, d_W.p, T, n_in, n_out, Epilogue::Bf16);
            EXPECT_EQ(gemv, T <= kGemvMaxT && n_in % 8 == 0);
            const bool fused = gemv && T <= kGemvNormMaxT;
            const std::string label = std::string(fused  ? "fused norm gemv"
                                                  : gemv ? "rmsnorm + gemv"
                                                         : "rmsnorm + cuBLAS") +
                                      " T " + std::to_string(T) + " n_in " + std::to_string(n_in) + " n_out " +
                                      std::to_string(n_out);
            check_epilogues(
                label, p, row_scale, T, n_out, rng,
                [&](void* y, Epilogue epi, bf16* scratch) {
                    matmul_forward(cb, y, epi, d_xn.p, d_W.p, T, n_in, n_out, scratch, &norm);
                },
                fused ? 4 * kU * row_scale / std::sqrt(static_cast<double>(n_in)) : 0.0);
            EXPECT_EQ(d_x.download(), x) << "the residual stream is read, not written";
            if (T > kGemvNormMaxT && gemv) {  // gemv_forward itself takes a norm only up to kGemvNormMaxT tokens
                EXPECT_ANY_THROW(gemv_forward(d_xn.p, Epilogue::Bf16, nullptr, d_W.p, T, n_in, n_out, nullptr, &norm));
            }
        }
    cublas_destroy(cb);
}

// Paged attention over shuffled blocks: 3 sequences with cached prefixes of
// 0, 17 and 40 tokens bringing 5, 4 and 1 new tokens (prefill, verify,
// decode), GQA 2:1, against a double-precision CPU loop.
TEST(CudaKernels, PagedAttentionMatchesCpu) {
    std::mt19937 rng(6);
    for (int D : {16, 128}) {
        const int H = 4, KVH = 2, bs = 16, width = (H + 2 * KVH) * D, kv_dim = KVH * D;
        const std::vector<int> prefix = {0, 17, 40}, q_len = {5, 4, 1};
        const int S = 3, n_blocks = 16;
        std::vector<int> perm(n_blocks);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        const int max_blocks = 4;
        std::vector<int> tables(S * max_blocks);
        for (int i = 0; i < S * max_blocks; i++) tables[i] = perm[i];
        std::vector<int> tok_seq, tok_pos;
        for (int s = 0; s < S; s++)
            for (int i = 0; i < q_len[s]; i++) {
                tok_seq.push_back(s);
                tok_pos.push_back(prefix[s] + i);
            }
        const int T = static_cast<int>(tok_seq.size());
        const std::vector<float> qkv = random_bf16_values(static_cast<size_t>(T) * width, rng);
        // the cache as the forward would leave it: random rows for every position a sequence has
        const std::vector<float> kc = random_bf16_values(static_cast<size_t>(n_blocks) * bs * kv_dim, rng),
                                 vc = random_bf16_values(kc.size(), rng);
        Dev<bf16> d_qkv(to_bf16(qkv)), d_k(to_bf16(kc)), d_v(to_bf16(vc)), d_out(static_cast<size_t>(T) * H * D);
        Dev<int> d_tables(tables), d_seq(tok_seq), d_pos(tok_pos);
        d_out.poison();
        Dev<char> d_work(attention_workspace_bytes(T, H, KVH, D, max_blocks, bs));
        attention_forward(d_out.p, d_qkv.p, d_k.p, d_v.p, d_tables.p, max_blocks, bs, d_seq.p, d_pos.p, T, S, H, KVH,
                          D, d_work.p, d_work.n, nullptr);
        const std::vector<float> got = to_float(d_out.download());
        d_out.poison();
        attention_forward_reference(d_out.p, d_qkv.p, d_k.p, d_v.p, d_tables.p, max_blocks, bs, d_seq.p, d_pos.p, T,
                                    H, KVH, D, nullptr);
        const std::vector<float> got_ref = to_float(d_out.download());
        std::vector<float> want(static_cast<size_t>(T) * H * D);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const int g = h / (H / KVH), n_ctx = tok_pos[t] + 1;
                std::vector<double> sc(n_ctx);
                double mx = -INFINITY;
                auto row = [&](int j) {
                    return static_cast<size_t>(tables[tok_seq[t] * max_blocks + j / bs]) * bs + j % bs;
                };
                for (int j = 0; j < n_ctx; j++) {
                    double dot = 0;
                    for (int i = 0; i < D; i++)
                        dot += static_cast<double>(qkv[static_cast<size_t>(t) * width + h * D + i]) *
                               kc[row(j) * kv_dim + g * D + i];
                    sc[j] = dot / std::sqrt(static_cast<double>(D));
                    mx = std::max(mx, sc[j]);
                }
                double sum = 0;
                for (double& e : sc) sum += (e = std::exp(e - mx));
                for (int i = 0; i < D; i++) {
                    double o = 0;
                    for (int j = 0; j < n_ctx; j++) o += sc[j] / sum * vc[row(j) * kv_dim + g * D + i];
                    want[static_cast<size_t>(t) * H * D + h * D + i] = static_cast<float>(o);
                }
            }
        // outputs are convex combinations of |v| <~ 4: fp32 softmax noise 1e-5, then one bf16 rounding
        check_close("paged attention D " + std::to_string(D), got, want, kKernelRtol, 4e-5);
        check_close("paged attention (reference kernel) D " + std::to_string(D), got_ref, want, kKernelRtol, 4e-5);
    }
}

// The flash-decoding path against the plain kernel on random ragged batches
// over shuffled pages: decode tokens, verify blocks of up to 16 tokens (two
// query tiles when unaligned), a prefill chunk, contexts up to 4097 and more
// (several key chunks, ragged last chunk), GQA 1, 4 and 8 query heads per KV
// head, D 64 and 128. Both outputs are one bf16 rounding of the same fp32
// softmax (different summation orders): within 2 roundings of each other.
TEST(CudaKernels, FlashAttentionMatchesPlainKernelOnRaggedBatches) {
    std::mt19937 rng(61);
    struct Case {
        int H, KVH, D, bs;
        std::vector<int> prefix, q_len;
    };
    std::vector<Case> cases = {
        {32, 8, 128, 16, {4096}, {1}},                       // batch-1 decode at context 4097
        {32, 8, 128, 16, {512}, {8}},                        // verify 1 + 7, aligned
        {32, 8, 128, 16, {4090}, {16}},                      // verify 1 + 15 across a tile boundary
        {16, 2, 64, 16, {0, 1000, 4096, 33}, {37, 5, 1, 3}}, // prefill chunk + verify + decode + short
        {8, 8, 128, 32, {300, 2047}, {2, 9}},                // MHA, block size 32
        {16, 2, 128, 16, {6000, 100}, {1, 4}},               // 8 heads per group, beyond 4097
        {32, 8, 128, 16, {0}, {300}},                        // prefill from empty: 19 query tiles, causal
        {32, 8, 128, 16, {1000, 7}, {200, 1}},               // prefill chunk on a cached prefix, and a decode
        {4, 2, 16, 16, {0, 50}, {40, 2}},                    // tiny-model shape (D 16)
    };
    // batched decode, where the sequences count the tiles: 16 of them split
    // their contexts (a merge; 32-key stages, 4 warps on the keys), 100 do
    // not (one chunk of 64-key stages, written directly); 64 verify blocks
    // of 1 + 7 (32 rows: 2 warps on the keys, 64-key stages) and 100 prefill
    // pieces of 16 (64 rows: every warp on its rows, 64-key stages)
    for (const auto& [n, q] : std::vector<std::pair<int, int>>{{16, 1}, {100, 1}, {64, 8}, {100, 16}}) {
        Case c{32, 8, 128, 16, {}, {}};
        for (int i = 0; i < n; i++) {
            c.prefix.push_back((i * 157) % 700);
            c.q_len.push_back(q);
        }
        cases.push_back(c);
    }
    for (const Case& cs : cases) {
        const int H = cs.H, KVH = cs.KVH, D = cs.D, bs = cs.bs, S = static_cast<int>(cs.prefix.size());
        const int width = (H + 2 * KVH) * D, kv_dim = KVH * D;
        int max_blocks = 1, n_blocks = 0;
        for (int s = 0; s < S; s++) {
            const int nb = ceil_div(cs.prefix[s] + cs.q_len[s], bs);
            max_blocks = std::max(max_blocks, nb);
            n_blocks += nb;
        }
        n_blocks += 3;  // some pages nobody owns
        std::vector<int> perm(n_blocks);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int> tables(static_cast<size_t>(S) * max_blocks, 0), tok_seq, tok_pos;
        for (int s = 0, next = 0; s < S; s++) {
            const int nb = ceil_div(cs.prefix[s] + cs.q_len[s], bs);
            for (int b = 0; b < nb; b++) tables[static_cast<size_t>(s) * max_blocks + b] = perm[next++];
            for (int i = 0; i < cs.q_len[s]; i++) {
                tok_seq.push_back(s);
                tok_pos.push_back(cs.prefix[s] + i);
            }
        }
        const int T = static_cast<int>(tok_seq.size());
        const std::vector<float> qkv = random_bf16_values(static_cast<size_t>(T) * width, rng, 2.0f);
        const std::vector<float> kc = random_bf16_values(static_cast<size_t>(n_blocks) * bs * kv_dim, rng),
                                 vc = random_bf16_values(kc.size(), rng);
        Dev<bf16> d_qkv(to_bf16(qkv)), d_k(to_bf16(kc)), d_v(to_bf16(vc)), d_out(static_cast<size_t>(T) * H * D);
        Dev<int> d_tables(tables), d_seq(tok_seq), d_pos(tok_pos);
        Dev<char> d_work(attention_workspace_bytes(T, H, KVH, D, max_blocks, bs));
        d_out.poison();
        attention_forward_reference(d_out.p, d_qkv.p, d_k.p, d_v.p, d_tables.p, max_blocks, bs, d_seq.p, d_pos.p, T,
                                    H, KVH, D, nullptr);
        const std::vector<float> want = to_float(d_out.download());
        d_out.poison();
        attention_forward(d_out.p, d_qkv.p, d_k.p, d_v.p, d_tables.p, max_blocks, bs, d_seq.p, d_pos.p, T, S, H, KVH,
                          D, d_work.p, d_work.n, nullptr);
        char label[160];
        std::snprintf(label, sizeof label, "flash vs plain attention H %d KVH %d D %d, T %d, %d seqs, max ctx %d, %d splits",
                      H, KVH, D, T, S, max_blocks * bs, attention_splits(T, S, H, KVH, D, max_blocks, bs));
        check_close(label, to_float(d_out.download()), want, 2 * kKernelRtol, 8e-5);
    }
    // the two decode batches above take the paths they are there for (44 pages of 16 cover 700 keys)
    EXPECT_GT(attention_splits(16, 16, 32, 8, 128, 44, 16), 1);
    EXPECT_EQ(attention_splits(100, 100, 32, 8, 128, 44, 16), 1);
}

TEST(CudaKernels, KvAppendWritesRowsAtSlots) {
    std::mt19937 rng(7);
    const int H = 4, KVH = 2, D = 16, T = 5, kv_dim = KVH * D, rows = 64, width = (H + 2 * KVH) * D;
    const std::vector<float> qkv = random_bf16_values(static_cast<size_t>(T) * width, rng);
    const std::vector<int> slot = {3, 17, 18, 40, 63};
    Dev<bf16> d_qkv(to_bf16(qkv)), d_k(static_cast<size_t>(rows) * kv_dim), d_v(static_cast<size_t>(rows) * kv_dim);
    Dev<int> d_slot(slot);
    kv_append(d_k.p, d_v.p, d_qkv.p, d_slot.p, T, H, KVH, D, nullptr);
    const std::vector<float> k = to_float(d_k.download()), v = to_float(d_v.download());
    for (int t = 0; t < T; t++)
        for (int i = 0; i < kv_dim; i++) {
            EXPECT_EQ(k[static_cast<size_t>(slot[t]) * kv_dim + i], qkv[static_cast<size_t>(t) * width + H * D + i]);
            EXPECT_EQ(v[static_cast<size_t>(slot[t]) * kv_dim + i],
                      qkv[static_cast<size_t>(t) * width + H * D + kv_dim + i]);
        }
}

TEST(CudaKernels, ArgmaxAndSoftmaxMatchCpu) {
    std::mt19937 rng(8);
    const int T = 6, V = 5003;
    std::vector<float> logits = random_bf16_values(static_cast<size_t>(T) * V, rng, 3.0f);
    logits[2 * V + 17] = logits[2 * V + 4000] = 100.0f;  // a tie: the lower index wins
    std::vector<float> temp = {1.0f, 0.5f, 2.0f, 1.0f, 0.7f, 1.3f};
    Dev<float> d_logits(logits), d_temp(temp), d_probs(static_cast<size_t>(T) * V);
    Dev<int> d_ids(static_cast<size_t>(T));
    d_probs.poison();
    argmax_forward(d_ids.p, d_logits.p, T, V, nullptr);
    softmax_forward(d_probs.p, d_logits.p, d_temp.p, T, V, nullptr);
    const std::vector<int> ids = d_ids.download();
    std::vector<float> want(logits.size());
    for (int t = 0; t < T; t++) {
        const float* r = &logits[static_cast<size_t>(t) * V];
        EXPECT_EQ(ids[t], std::max_element(r, r + V) - r) << "row " << t;
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < V; i++) mx = std::max(mx, static_cast<double>(r[i]) / temp[t]);
        for (int i = 0; i < V; i++) sum += std::exp(r[i] / temp[t] - mx);
        for (int i = 0; i < V; i++) want[static_cast<size_t>(t) * V + i] = static_cast<float>(std::exp(r[i] / temp[t] - mx) / sum);
    }
    EXPECT_EQ(ids[2], 2 * 0 + 17);
    check_close("softmax", d_probs.download(), want, 1e-4, 1e-9);  // fp32 exp and sum over 5k terms
}

// Sampling draws from softmax(logits / T): 40,000 rows of the same 8 logits,
// each at its own position, so each row has fresh Gumbel noise. Each
// token's frequency must be within 5 standard deviations of its probability.
// The device hash must equal the host copy (sample_uniform), and T = 0 must
// give the argmax.
TEST(CudaKernels, SamplingFollowsTemperatureSoftmax) {
    const int V = 8, T = 40000;
    const std::vector<float> base = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f, 1.5f, -3.0f, 0.2f};
    for (float temperature : {0.7f, 1.0f, 1.8f}) {
        std::vector<float> logits;
        std::vector<uint64_t> req(T);
        std::vector<int> pos(T);
        for (int t = 0; t < T; t++) {
            logits.insert(logits.end(), base.begin(), base.end());
            req[t] = static_cast<uint64_t>(t % 7);
            pos[t] = t;
        }
        Dev<float> d_logits(logits), d_temp(std::vector<float>(T, temperature));
        Dev<uint64_t> d_req(req);
        Dev<int> d_pos(pos), d_ids(static_cast<size_t>(T));
        sample_forward(d_ids.p, d_logits.p, d_temp.p, d_req.p, d_pos.p, 1234, T, V, nullptr);
        const std::vector<int> ids = d_ids.download();
        std::vector<double> p(V);
        double sum = 0;
        for (int i = 0; i < V; i++) sum += (p[i] = std::exp(base[i] / temperature));
        std::vector<int> count(V, 0);
        int host_agree = 0;
        for (int t = 0; t < T; t++) {
            count[ids[t]]++;
            int best = 0;
            double bv = -INFINITY;
            for (int i = 0; i < V; i++) {
                const double v = base[i] / temperature - std::log(-std::log(sample_uniform(1234, req[t], pos[t], i)));
                if (v > bv) {
                    bv = v;
                    best = i;
                }
            }
            host_agree += best == ids[t];
        }
        for (int i = 0; i < V; i++) {
            const double pi = p[i] / sum, sd = std::sqrt(pi * (1 - pi) / T);
            EXPECT_NEAR(static_cast<double>(count[i]) / T, pi, 5 * sd + 1e-4) << "token " << i << " temp " << temperature;
        }
        EXPECT_GE(host_agree, T - 2) << "device draws differ from the host hash";  // logf vs log: a rare near-tie
        std::printf("sampling temp %.1f: %d of %d draws equal the host replay\n", temperature, host_agree, T);
    }
    // temperature 0: the argmax, whatever the noise
    Dev<float> d_logits(base), d_temp(std::vector<float>{0.0f});
    Dev<uint64_t> d_req(std::vector<uint64_t>{3});
    Dev<int> d_pos(std::vector<int>{5}), d_ids(1);
    sample_forward(d_ids.p, d_logits.p, d_temp.p, d_req.p, d_pos.p, 99, 1, V, nullptr);
    EXPECT_EQ(d_ids.download()[0], 2);
}

// ---------------------------------------------------------------------------
// verification on the device: verify_forward against verify_reference

namespace {

// Where the device may decide otherwise than verify_reference: within this
// of a tie (p(d) / q(d) against the coin u, or the two largest keys of an
// argmax). The device sums over V in another order and its expf/logf differ
// from libm in the last bits, a few 1e-7 of the values compared.
constexpr double kVerifyTie = 1e-5;

// A ragged verify batch on random logits: sequence 0 has no drafts,
// sequence 1 gamma, the rest 0..gamma. Each row (V) is standard normal noise
// with one peak raised by 6 to 12; the draft it decides is, with `with_q` at
// T > 0, a draw from q = softmax((row + noise) / T) (a drafter that sees the
// target blurred), otherwise the peak 80% of the time and a random token
// else. mode 0: greedy, 1: T = 1, 2: T cycling 0, 1, 0.6. Sequence 2
// drafts [x, eos] with both rows peaked by 30, so it must accept both and
// stop (n 2, next -1); sequence 3, when greedy, has a two-way tie in row 0
// and drafts the higher index (n 0, next the lower). q rows that must not be
// read (greedy sequences, past a sequence's drafts) are NaN.
struct VerifyCase {
    int V = 0, gamma = 0;
    bool with_q = false;
    RaggedBatch b;
    VerifyBatch v;                 // v.q set by the caller (host or device copy of q)
    std::vector<float> logits, q;  // (T, V); (S gamma, V) when with_q
};

constexpr int kTieLow = 7;  // sequence 3's tie: kTieLow and V / 2

VerifyCase make_verify_case(int S, int V, int gamma, int mode, bool with_q, std::mt19937& rng) {
    VerifyCase c;
    c.V = V;
    c.gamma = gamma;
    c.with_q = with_q;
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    std::uniform_int_distribution<int> tok(0, V - 2);  // V - 1 is eos
    const float temps[3] = {0.0f, 1.0f, 0.6f};
    c.v.eos = V - 1;
    c.v.seed = (static_cast<uint64_t>(rng()) << 32) | rng();
    if (with_q) {
        c.v.q_gamma = gamma;
        c.q.assign(static_cast<size_t>(S) * gamma * V, NAN);
    }
    for (int s = 0; s < S; s++) {
        const int ell = s == 0 ? 0 : s <= 2 ? gamma : std::max(s == 3 ? 1 : 0, static_cast<int>(rng() % (gamma + 1)));
        const float T = mode == 2 ? temps[s % 3] : temps[mode];
        c.b.seq.push_back(s);
        c.b.q_len.push_back(1 + ell);
        c.v.temperature.push_back(T);
        c.v.request.push_back((static_cast<uint64_t>(rng()) << 32) | rng());
        c.v.anchor_pos.push_back(static_cast<int>(rng() % 4096));
        if (with_q) c.v.q_row.push_back(S - 1 - s);  // not the batch order
        c.b.tokens.push_back(tok(rng));              // the anchor
        for (int k = 0; k <= ell; k++) {             // row k decides draft k (0-based)
            std::vector<float> z(V);
            for (float& x : z) x = nd(rng);
            const bool forced = s == 2 && k < 2;
            int peak = k == 1 && s == 2 ? c.v.eos : tok(rng);
            z[peak] += forced ? 30.0f : 6.0f + 6.0f * uni(rng);
            const bool tie = s == 3 && k == 0 && T <= 0.0f;
            if (tie) z[kTieLow] = z[V / 2] = 100.0f;
            c.logits.insert(c.logits.end(), z.begin(), z.end());
            if (k == ell) break;  // the last row decides no draft
            int d = uni(rng) < 0.8f ? peak : tok(rng);
            if (with_q && T > 0.0f) {
                float* qr = &c.q[(static_cast<size_t>(c.v.q_row[s]) * gamma + k) * V];
                double mx = -INFINITY, sum = 0;
                std::vector<double> e(V);
                for (int i = 0; i < V; i++) mx = std::max(mx, e[i] = (z[i] + 0.7 * nd(rng)) / T);
                for (int i = 0; i < V; i++) sum += (e[i] = std::exp(e[i] - mx));
                double u = uni(rng) * sum, acc = 0;
                d = V - 2;
                for (int i = 0; i < V; i++) {
                    qr[i] = static_cast<float>(e[i] / sum);
                    if (acc <= u && u < acc + e[i]) d = i;
                    acc += e[i];
                }
            }
            if (forced) d = peak;
            if (tie) d = V / 2;
            c.b.tokens.push_back(d);
        }
    }
    return c;
}

// The smallest margin of the decisions verify_reference takes for sequence
// s (rows from t0): |p(d) / q(d) - u| of each accept test it evaluates, and the
// gap between the two largest keys of each argmax (greedy tests, the final
// draw), recomputed on the host as verify.cpp does.
double verify_margin(const VerifyCase& c, const VerifyResult& ref, int s, int t0) {
    const int V = c.V, ell = c.b.q_len[s] - 1, n = ref.n_accepted[s];
    const VerifyBatch& v = c.v;
    const float T = v.temperature[s];
    const float* rows = c.logits.data() + static_cast<size_t>(t0) * V;
    const int* drafts = c.b.tokens.data() + t0 + 1;
    auto q_of = [&](int k) -> const float* {
        return c.with_q ? c.q.data() + (static_cast<size_t>(v.q_row[s]) * c.gamma + k) * V : nullptr;
    };
    auto top2_gap = [](const std::vector<double>& x) {
        double a = -INFINITY, b = -INFINITY;
        for (double e : x) {
            if (e > a) {
                b = a;
                a = e;
            } else if (e > b) {
                b = e;
            }
        }
        return b == -INFINITY ? INFINITY : a - b;
    };
    const uint64_t coins = counter_row(v.seed, RNG_ACCEPT, v.request[s], v.anchor_pos[s]);
    std::vector<float> p(V);
    std::vector<double> x(V);
    double margin = INFINITY;
    const bool stopped = ref.next[s] < 0;
    const int tests = stopped ? n : std::min(n + 1, ell);  // the accepts, and the rejection if any
    for (int k = 0; k < tests; k++) {
        const float* row = rows + static_cast<size_t>(k) * V;
        if (T <= 0.0f) {
            x.assign(row, row + V);
            margin = std::min(margin, top2_gap(x));
        } else {
            softmax_row(p.data(), row, V, T);
            const double qd = q_of(k) ? q_of(k)[drafts[k]] : 1.0;
            margin = std::min(margin, std::fabs(p[drafts[k]] / qd - counter_uniform(coins, k)));
        }
    }
    if (!stopped) {
        const float* row = rows + static_cast<size_t>(n) * V;
        const uint64_t target = counter_row(v.seed, RNG_TARGET, v.request[s], v.anchor_pos[s] + n + 1);
        auto g = [&](int i) { return -std::log(-std::log(static_cast<double>(counter_uniform(target, i)))); };
        if (T <= 0.0f) {
            x.assign(row, row + V);
        } else if (n == ell) {
            for (int i = 0; i < V; i++) x[i] = static_cast<double>(row[i]) / T + g(i);
        } else {
            softmax_row(p.data(), row, V, T);
            const float* qn = q_of(n);
            double mass = 0;
            for (int i = 0; i < V; i++) {
                const double r = std::max(0.0, static_cast<double>(p[i]) - (qn ? qn[i] : (i == drafts[n] ? 1.0 : 0.0)));
                mass += r;
                x[i] = r > 0 ? std::log(r) + g(i) : -INFINITY;
            }
            if (!(mass > 1e-8))
                for (int i = 0; i < V; i++) x[i] = p[i] > 0 ? std::log(static_cast<double>(p[i])) + g(i) : -INFINITY;
        }
        margin = std::min(margin, top2_gap(x));
    }
    return margin;
}

}  // namespace

// verify_forward against verify_reference on random ragged batches: greedy,
// T = 1 with the drafter's q and with one-hot drafts (q null), and a batch
// mixing greedy, T = 1 and T = 0.6, at V 5003 (not a multiple of the block)
// and 151936 (qwen3's vocabulary). Each sequence's n_accepted and next must
// be the reference's, except where one of the reference's decisions lies
// within kVerifyTie of a tie (counted and printed; expect none or very few).
// The forced cases hold exactly: an accepted eos ends a sequence (n 2, next
// -1), and a greedy tie goes to the lower index.
TEST(CudaKernels, VerifyForwardMatchesVerifyReference) {
    struct Kind {
        const char* name;
        int mode;
        bool with_q;
    };
    const Kind kinds[] = {{"greedy", 0, false}, {"greedy, q given", 0, true}, {"T 1, q null", 1, false},
                          {"T 1, q", 1, true},   {"mixed T, q", 2, true}};
    std::mt19937 rng(31);
    for (const int V : {5003, 151936}) {
        const int S = V < 10000 ? 12 : 5, gamma = 6, trials = V < 10000 ? 10 : 1;
        for (const Kind& kind : kinds) {
            int seqs = 0, drafts = 0, accepted = 0, full = 0, near = 0;
            for (int trial = 0; trial < trials; trial++) {
                SCOPED_TRACE(std::string(kind.name) + " V " + std::to_string(V) + " trial " + std::to_string(trial));
                VerifyCase c = make_verify_case(S, V, gamma, kind.mode, kind.with_q, rng);
                c.v.q = kind.with_q ? c.q.data() : nullptr;
                VerifyResult ref;
                verify_reference(c.logits.data(), V, c.b, c.v, &ref);

                std::vector<VerifySeq> seq(S);
                for (int s = 0, row = 0; s < S; row += c.b.q_len[s], s++)
                    seq[s] = VerifySeq{c.v.request[s], c.v.temperature[s], c.b.q_len[s], row, c.v.anchor_pos[s],
                                       kind.with_q ? c.v.q_row[s] : 0};
                Dev<float> d_logits(c.logits), d_q(kind.with_q ? c.q : std::vector<float>(1, 0.0f));
                Dev<int> d_tokens(c.b.tokens), d_n(std::vector<int>(S, -7)), d_next(std::vector<int>(S, -7));
                Dev<VerifySeq> d_seq(seq);
                verify_forward(d_n.p, d_next.p, d_logits.p, d_tokens.p, d_seq.p, kind.with_q ? d_q.p : nullptr,
                               c.v.q_gamma, c.v.eos, c.v.seed, S, V, nullptr);
                const std::vector<int> n = d_n.download(), next = d_next.download();

                EXPECT_EQ(ref.n_accepted[2], 2) << "reference: the accepted eos";
                EXPECT_EQ(ref.next[2], -1) << "reference: the accepted eos";
                if (kind.mode != 1) {  // sequence 3 greedy: the tie
                    EXPECT_EQ(ref.n_accepted[3], 0);
                    EXPECT_EQ(ref.next[3], kTieLow);
                    EXPECT_EQ(n[3], 0);
                    EXPECT_EQ(next[3], kTieLow);
                }
                EXPECT_EQ(n[2], 2) << "device: the accepted eos";
                EXPECT_EQ(next[2], -1) << "device: the accepted eos";
                for (int s = 0, t0 = 0; s < S; t0 += c.b.q_len[s], s++) {
                    seqs++;
                    drafts += c.b.q_len[s] - 1;
                    accepted += ref.n_accepted[s];
                    full += ref.n_accepted[s] == c.b.q_len[s] - 1 && ref.next[s] >= 0;
                    if (n[s] == ref.n_accepted[s] && next[s] == ref.next[s]) continue;
                    const double margin = verify_margin(c, ref, s, t0);
                    if (margin <= kVerifyTie) {
                        near++;
                        std::printf("  near tie (margin %.1e): sequence %d device n %d next %d, reference n %d "
                                    "next %d\n",
                                    margin, s, n[s], next[s], ref.n_accepted[s], ref.next[s]);
                    } else {
                        ADD_FAILURE() << "sequence " << s << ": device n " << n[s] << " next " << next[s]
                                      << ", reference n " << ref.n_accepted[s] << " next " << ref.next[s]
                                      << " (smallest decision margin " << margin << ")";
                    }
                }
            }
            std::printf("verify_forward %-15s V %6d: %3d sequences, %3d of %3d drafts accepted, %2d full accepts, %d "
                        "differ from the reference, all within %.0e of a tie\n",
                        kind.name, V, seqs, accepted, drafts, full, near, kVerifyTie);
            EXPECT_GT(accepted, 0) << kind.name << ": nothing accepted, the test exercises too little";
            EXPECT_LT(accepted, drafts) << kind.name << ": nothing rejected, the test exercises too little";
            EXPECT_LE(near, 2) << kind.name << ": more near ties than expected";
        }
    }
}

// markov.cu's draw (a draft model's step, Backend::sample on CUDA) against
// sample_reference: a ragged batch of random rows (standard normal noise
// with one peak raised by 2 to 6, so that sampling at T = 1 has real
// spread), temperatures cycling 0, 1, 0.6, draft slot k = 3 of 5, q rows not
// in batch order. V 512 (2 blocks per row), 5003 (20) and 151936 (119: the
// split and combine at Qwen3's vocabulary). The token must be the
// reference's except within kVerifyTie of a tie between the two largest
// Gumbel keys (counted; expect none); q_token and the q rows of the
// sampling sequences within `rtol` relative: the reference sums the row in
// one float accumulator, whose rounding grows like sqrt(V) 3e-8 (about 1e-5
// at 152k; rtol allows 4 times that), the device in per-thread partials
// and a tree; greedy
// sequences' q rows are not written.
TEST(CudaKernels, MarkovDrawMatchesSampleReference) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    const float temps[3] = {0.0f, 1.0f, 0.6f};
    for (const int V : {512, 5003, 151936}) {
        SCOPED_TRACE("V " + std::to_string(V));
        const int S = V < 10000 ? 9 : 4, G = 5;
        // 4 x sqrt(V) 3e-8, + 1e-6 for expf: 3.7e-6 at V 512, 9.5e-6 at 5003 (H100 run 2026-12-07:
        // 2.76e-6 there, over the 2e-6 this bound first had), 4.8e-5 at 151936
        const double rtol = 1.2e-7 * std::sqrt(double(V)) + 1e-6;
        RaggedBatch b;
        SampleBatch sb;
        sb.k = 3;
        sb.q_gamma = G;
        std::vector<float> logits;
        for (int s = 0; s < S; s++) {
            const int q_len = 1 + static_cast<int>(rng() % 3);
            b.seq.push_back(s);
            b.q_len.push_back(q_len);
            for (int t = 0; t < q_len; t++) {
                b.tokens.push_back(0);
                std::vector<float> z(V);
                for (float& x : z) x = nd(rng);
                z[rng() % V] += 2.0f + 4.0f * uni(rng);
                logits.insert(logits.end(), z.begin(), z.end());
            }
            sb.temperature.push_back(temps[s % 3]);
            sb.rng.push_back((static_cast<uint64_t>(rng()) << 32) | rng());
            sb.q_row.push_back(S - 1 - s);
        }
        std::vector<float> q_ref(static_cast<size_t>(S) * G * V, NAN);
        sb.q = q_ref.data();
        SampleResult ref;
        sample_reference(logits.data(), V, b, sb, &ref);

        std::vector<int> n_draft(S, sb.k + 1), u_row(S), out_row(sb.q_row);
        for (int s = 0, row = -1; s < S; s++) u_row[s] = row += b.q_len[s];
        Dev<float> d_logits(logits), d_temp(sb.temperature), d_q(q_ref.size()), d_qtok(static_cast<size_t>(S) * G);
        Dev<uint64_t> d_rng(sb.rng);
        Dev<int> d_ndraft(n_draft), d_urow(u_row), d_outrow(out_row), d_tok(static_cast<size_t>(S) * G);
        Dev<char> d_scratch(markov_scratch_bytes(S * G));
        d_q.poison();
        MarkovStep m;
        m.U = d_logits.p;
        m.u_row = d_urow.p;
        m.temperature = d_temp.p;
        m.rng = d_rng.p;
        m.n_draft = d_ndraft.p;
        m.out_row = d_outrow.p;
        m.tokens = d_tok.p;
        m.q_token = d_qtok.p;
        m.q = d_q.p;
        m.scratch = d_scratch.p;
        m.R = S;
        m.G = G;
        m.gamma = G;
        m.V = V;
        markov_scratch_clear(m.scratch, S * G, nullptr);
        markov_step_forward(m, sb.k, 1, nullptr);
        const std::vector<int> tok = d_tok.download();
        const std::vector<float> qtok = d_qtok.download(), q = d_q.download();

        int near = 0;
        for (int s = 0, row = -1; s < S; s++) {
            row += b.q_len[s];
            const size_t at = static_cast<size_t>(sb.q_row[s]) * G + sb.k;
            const float T = sb.temperature[s];
            EXPECT_NEAR(qtok[at], ref.q_token[s], rtol * ref.q_token[s] + 1e-12) << "sequence " << s;
            if (tok[at] != ref.token[s]) {  // the reference's two largest keys, recomputed in double
                const float* lg = logits.data() + static_cast<size_t>(row) * V;
                double a = -INFINITY, c = -INFINITY;
                for (int v = 0; v < V; v++) {
                    double key = lg[v];
                    if (T > 0)
                        key = key / T - std::log(-std::log(static_cast<double>(counter_uniform(sb.rng[s], sb.k * V + v))));
                    if (key > a) {
                        c = a;
                        a = key;
                    } else if (key > c) {
                        c = key;
                    }
                }
                if (a - c <= kVerifyTie) {
                    near++;
                } else {
                    ADD_FAILURE() << "sequence " << s << ": device token " << tok[at] << ", reference "
                                  << ref.token[s] << " (top-2 key gap " << a - c << ")";
                }
            }
            if (T <= 0) continue;
            const float* qr = q.data() + at * V;
            const float* qw = q_ref.data() + at * V;
            double worst = 0, sum = 0;
            for (int v = 0; v < V; v++) {
                worst = std::max(worst, std::fabs(double(qr[v]) - qw[v]) / (qw[v] + 1e-12));
                sum += qr[v];
            }
            EXPECT_LT(worst, rtol) << "sequence " << s << ": q row, worst relative difference";
            EXPECT_NEAR(sum, 1.0, 1e-4) << "sequence " << s;
        }
        std::printf("markov draw V %6d: %d sequences, %d tokens differ within %.0e of a tie\n", V, S, near,
                    kVerifyTie);
        EXPECT_LE(near, 1);
    }
}

// ---------------------------------------------------------------------------
// the whole forward

namespace {


void check_fixture_logits_and_hidden(const std::string& name) {
    Fixture f;
    LOAD_FIXTURE_OR_SKIP(name, f);
    const ModelWeights w = weights_load(f.model);
    const int V = w.cfg.vocab, d = w.cfg.hidden;
    const auto tokens = f.ref.at("tokens").get<std::vector<int>>();
    const int T = static_cast<int>(tokens.size());
    const auto layers = f.ref.at("hidden_layers").get<std::vector<int>>();
    CudaModel m(w);
    KvCache kv(w.cfg, 1, small_cache());
    std::vector<float> logits, hidden;
    m.forward(kv, RaggedBatch{{0}, {T}, tokens}, &logits, layers, &hidden);
    std::vector<float> want;
    for (const auto& row : f.ref.at("logits"))
        for (float v : row) want.push_back(v);
    ASSERT_EQ(want.size(), static_cast<size_t>(T) * V);
    check_scaled(name + " logits (GPU bf16 vs HF fp32)", logits.data(), want.data(), want.size(), kForwardRtol);
    for (size_t k = 0; k < layers.size(); k++) {
        std::vector<float> want_h;
        for (const auto& row : f.ref.at("hidden").at(std::to_string(layers[k])))
            for (float v : row) want_h.push_back(v);
        ASSERT_EQ(want_h.size(), static_cast<size_t>(T) * d);
        check_scaled(name + " hidden layer " + std::to_string(layers[k]), hidden.data() + k * want_h.size(),
                     want_h.data(), want_h.size(), kForwardRtol);
    }
}

float top2_gap(const float* x, int n, int masked) {
    float a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (i == masked) continue;
        if (x[i] > a) {
            b = a;
            a = x[i];
        } else if (x[i] > b) {
            b = x[i];
        }
    }
    return a - b;
}

// 200 greedy tokens against HF's generate, as test_reference does it:
// teacher-forced (each step fed HF's token), a mismatch counted only when the
// GPU's top-2 gap exceeds what the bf16 error can flip: twice the forward
// tolerance times the logits' scale. Then the free-running greedy helper
// (argmax on the device), which must equal HF up to the first near-tie.
void check_fixture_greedy(const std::string& name) {
    Fixture f;
    LOAD_FIXTURE_OR_SKIP(name, f);
    const ModelWeights w = weights_load(f.model);
    const int V = w.cfg.vocab;
    const auto prompt = f.ref.at("greedy_prompt").get<std::vector<int>>();
    const auto want = f.ref.at("greedy").get<std::vector<int>>();
    const int eos = f.ref.at("eos_suppressed").get<int>();
    CudaModel m(w);
    KvCache kv(w.cfg, 2, small_cache());
    std::vector<float> logits = gpu_forward_one(m, kv, 0, prompt);
    const float* last = logits.data() + (prompt.size() - 1) * static_cast<size_t>(V);
    float scale = 0;
    for (int i = 0; i < V; i++) scale = std::max(scale, std::fabs(last[i]));
    const float tie_gap = static_cast<float>(2 * kForwardRtol * scale);
    int n_match = 0, n_tie = 0, n_fail = 0, first_tie = -1;
    float min_gap = INFINITY;
    for (size_t i = 0; i < want.size(); i++) {
        int got = -1;
        for (int j = 0; j < V; j++)
            if (j != eos && (got < 0 || last[j] > last[got])) got = j;
        const float gap = top2_gap(last, V, eos);
        min_gap = std::min(min_gap, gap);
        if (got == want[i]) {
            n_match++;
        } else if (gap <= tie_gap) {
            n_tie++;
            std::printf("  step %zu: GPU %d vs HF %d, a near-tie (gap %.3e), allowed\n", i, got, want[i], gap);
        } else {
            n_fail++;
            ADD_FAILURE() << name << " greedy step " << i << ": GPU " << got << ", HF " << want[i] << ", gap " << gap;
        }
        if (gap <= tie_gap && first_tie < 0) first_tie = static_cast<int>(i);
        if (i + 1 < want.size()) {
            logits = gpu_forward_one(m, kv, 0, {want[i]});
            last = logits.data();
        }
    }
    std::printf("%s greedy (teacher-forced): %d/%zu equal HF, %d near-ties, %d failures; smallest gap %.3e "
                "(near-tie below %.2e): %s\n",
                name.c_str(), n_match, want.size(), n_tie, n_fail, min_gap, tie_gap, n_fail ? "NOT OK" : "OK");
    // free-running, on slot 1
    const std::vector<int> free_run = m.greedy(kv, 1, prompt, static_cast<int>(want.size()), eos);
    int same = 0;
    while (same < static_cast<int>(want.size()) && free_run[same] == want[same]) same++;
    std::printf("%s greedy (free-running, device argmax): first %d of %zu tokens equal HF (first step whose top-2 gap is under the near-tie bound: %d)\n",
                name.c_str(), same, want.size(), first_tie);
    if (first_tie < 0) EXPECT_EQ(free_run, want);
    else EXPECT_GE(same, first_tie);
}

class CudaForwardProps : public ::testing::TestWithParam<const char*> {};

}  // namespace

TEST(CudaHf, LogitsAndHiddenMatchTinyQwen3) { check_fixture_logits_and_hidden("tiny-qwen3"); }
TEST(CudaHf, LogitsAndHiddenMatchTinyQwen3Bf16) { check_fixture_logits_and_hidden("tiny-qwen3-bf16"); }
TEST(CudaHf, LogitsAndHiddenMatchTinyLlama) { check_fixture_logits_and_hidden("tiny-llama"); }
TEST(CudaHf, GreedyTokensMatchTinyQwen3) { check_fixture_greedy("tiny-qwen3"); }
TEST(CudaHf, GreedyTokensMatchTinyQwen3Bf16) { check_fixture_greedy("tiny-qwen3-bf16"); }
TEST(CudaHf, GreedyTokensMatchTinyLlama) { check_fixture_greedy("tiny-llama"); }

// The GPU forward against the CPU reference on random weights, one ragged
// batch over cached prefixes, logits and every layer's hidden state.
TEST_P(CudaForwardProps, MatchesCpuReference) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab;
    CudaModel m(w);
    KvCache kv(w.cfg, 3, small_cache());
    CpuKvCache ckv = kv_cache_init(w.cfg, 3);
    for (int s : {1, 2}) {
        const std::vector<float> g = gpu_forward_one(m, kv, s, some_tokens(9 + 10 * s, V, s));
        const std::vector<float> c = cpu_forward_one(w, ckv, s, some_tokens(9 + 10 * s, V, s));
        check_scaled(std::string(GetParam()) + " prefix of seq " + std::to_string(s), g.data(), c.data(), c.size(),
                     kForwardRtol);
    }
    const RaggedBatch b{{0, 1, 2}, {6, 4, 1}, some_tokens(11, V, 9)};
    std::vector<float> g, c, gh, ch;
    const std::vector<int> layers = {0, w.cfg.n_layers - 1};
    m.forward(kv, b, &g, layers, &gh);
    reference_forward(w, ckv, b, &c, layers, &ch);
    check_scaled(std::string(GetParam()) + " ragged logits", g.data(), c.data(), c.size(), kForwardRtol);
    check_scaled(std::string(GetParam()) + " ragged hidden", gh.data(), ch.data(), ch.size(), kForwardRtol);
    EXPECT_EQ(kv.len(0), 6);
    EXPECT_EQ(kv.len(1), 23);
    EXPECT_EQ(kv.len(2), 30);
}

// A prefill chunk from empty, a verify block of 4 on a cached prefix and one
// decode token in one forward equal each sequence run alone. Attention and
// the norms are per-token deterministic; cuBLAS may pick another kernel for
// another T, so the check is the bf16 kernel tolerance, and the test says
// whether it came out bitwise.
TEST_P(CudaForwardProps, RaggedBatchEqualsEachSequenceAlone) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab;
    const std::vector<int> chunk = some_tokens(7, V, 1), prefix1 = some_tokens(5, V, 2), block = some_tokens(4, V, 3),
                           prefix2 = some_tokens(9, V, 4), decode = {V - 1};
    CudaModel m(w);
    KvCache kv(w.cfg, 3, small_cache());
    gpu_forward_one(m, kv, 1, prefix1);
    gpu_forward_one(m, kv, 2, prefix2);
    RaggedBatch b{{0, 1, 2}, {7, 4, 1}, chunk};
    b.tokens.insert(b.tokens.end(), block.begin(), block.end());
    b.tokens.insert(b.tokens.end(), decode.begin(), decode.end());
    std::vector<float> batched;
    m.forward(kv, b, &batched);

    KvCache a(w.cfg, 3, small_cache());
    const std::vector<float> alone0 = gpu_forward_one(m, a, 0, chunk);
    gpu_forward_one(m, a, 1, prefix1);
    const std::vector<float> alone1 = gpu_forward_one(m, a, 1, block);
    gpu_forward_one(m, a, 2, prefix2);
    const std::vector<float> alone2 = gpu_forward_one(m, a, 2, decode);
    std::vector<float> alone = alone0;
    alone.insert(alone.end(), alone1.begin(), alone1.end());
    alone.insert(alone.end(), alone2.begin(), alone2.end());
    std::printf("%s ragged vs alone: %s\n", GetParam(), alone == batched ? "bitwise equal" : "not bitwise equal");
    check_scaled(std::string(GetParam()) + " ragged vs alone", batched.data(), alone.data(), alone.size(),
                 2 * kKernelRtol);
}

// Speculation: verify 4 drafts, keep 1, truncate, go on: equals a cache that
// never held the rejected 3. Also truncating frees blocks.
TEST_P(CudaForwardProps, TruncateThenForwardEqualsNeverAppended) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab;
    const std::vector<int> prefix = some_tokens(14, V, 6), block = some_tokens(4, V, 7), next = some_tokens(3, V, 8);
    CudaModel m(w);
    KvCache spec(w.cfg, 1, small_cache());
    gpu_forward_one(m, spec, 0, prefix);
    gpu_forward_one(m, spec, 0, block);  // 18 tokens: 2 blocks of 16
    EXPECT_EQ(spec.blocks(0).size(), 2u);
    const int free_before = spec.free_blocks();
    spec.truncate(0, 15);
    EXPECT_EQ(spec.len(0), 15);
    EXPECT_EQ(spec.blocks(0).size(), 1u);
    EXPECT_EQ(spec.free_blocks(), free_before + 1);
    const std::vector<float> got = gpu_forward_one(m, spec, 0, next);

    KvCache plain(w.cfg, 1, small_cache());
    std::vector<int> kept = prefix;
    kept.push_back(block[0]);
    gpu_forward_one(m, plain, 0, kept);
    const std::vector<float> want = gpu_forward_one(m, plain, 0, next);
    std::printf("%s truncate: %s\n", GetParam(), got == want ? "bitwise equal" : "not bitwise equal");
    check_scaled(std::string(GetParam()) + " truncate then forward", got.data(), want.data(), want.size(),
                 2 * kKernelRtol);
    EXPECT_THROW(spec.truncate(0, 19), Error);
    EXPECT_THROW(spec.truncate(1, 0), Error);
}

// A full cache throws a clear error before touching anything; truncating
// makes room again.
TEST_P(CudaForwardProps, FullCacheThrowsAndLeavesCacheAlone) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab;
    CudaModel m(w);
    KvCache kv(w.cfg, 2, small_cache(48));  // 3 blocks of 16
    EXPECT_EQ(kv.n_blocks(), 3);
    gpu_forward_one(m, kv, 0, some_tokens(20, V, 1));  // 2 blocks
    std::vector<float> logits;
    try {
        m.forward(kv, RaggedBatch{{0, 1}, {13, 1}, some_tokens(14, V, 2)}, &logits);  // needs 1 + 1
        ADD_FAILURE() << "no error for a full cache";
    } catch (const Error& e) {
        std::printf("full cache: %s\n", e.what());
        EXPECT_NE(std::string(e.what()).find("KV cache full: need 2 blocks, have 1 free"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(kv.len(0), 20);
    EXPECT_EQ(kv.len(1), 0);
    EXPECT_EQ(kv.free_blocks(), 1);
    EXPECT_THROW(m.forward(kv, RaggedBatch{{0}, {1}, {V}}, &logits), Error);  // bad token, also before any change
    EXPECT_EQ(kv.len(0), 20);
    kv.truncate(0, 10);
    m.forward(kv, RaggedBatch{{0, 1}, {13, 1}, some_tokens(14, V, 2)}, &logits);
    EXPECT_EQ(kv.len(0), 23);
    EXPECT_EQ(kv.free_blocks(), 0);
}

// blocks_bucket against hand-worked values: exact to 7 blocks, then
// multiples of a quarter of the power-of-two floor.
TEST(CudaGraphs, BlocksBucketRoundsUpByAQuarterOctave) {
    const int in[] = {1, 2, 7, 8, 9, 15, 16, 17, 18, 19, 31, 32, 33, 36, 37, 64, 65, 100, 513};
    const int want[] = {1, 2, 7, 8, 10, 16, 16, 20, 20, 20, 32, 32, 40, 40, 40, 64, 80, 112, 640};
    for (size_t i = 0; i < std::size(in); i++) EXPECT_EQ(blocks_bucket(in[i]), want[i]) << "n = " << in[i];
    for (int n = 1; n <= 5000; n++) {
        const int b = blocks_bucket(n);
        ASSERT_GE(b, n);
        ASSERT_LE(b, n + n / 4) << "n = " << n;  // at most 25 % wider
    }
}

// forward_graph against forward_device over a decode that crosses block and
// bucket boundaries, two sequences (a decode token and a verify block of 3
// whose last draft is dropped each step): the replayed graphs read each
// step's own metadata (their logits follow the eager ones step by step), one
// graph is captured per (T, bucket) seen and no more, and a larger batch in
// between (buffers move, graphs dropped) changes nothing. Attention splits
// the context for the bucket's width, so equality is to bf16 rounding.
TEST_P(CudaForwardProps, GraphForwardEqualsEagerAcrossBuckets) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab;
    CudaModel m(w);
    KvCache eager(w.cfg, 3, small_cache()), graph(w.cfg, 3, small_cache());
    for (KvCache* kv : {&eager, &graph}) {
        gpu_forward_one(m, *kv, 0, some_tokens(100, V, 1));  // 7 blocks of 16; the widest reaches 11 in 60 steps
        gpu_forward_one(m, *kv, 1, some_tokens(40, V, 2));
    }
    std::set<int> before, after;  // the buckets seen before and after the buffers move
    double worst = 0;
    int steps_bitwise = 0;
    const int n_steps = 60;
    for (int step = 0; step < n_steps; step++) {
        if (step == n_steps / 2) {  // a batch larger than any before moves the activations: every graph goes
            const RaggedBatch big{{2}, {300}, some_tokens(300, V, 99)};
            std::vector<float> a, g;
            m.forward(eager, big, &a);
            m.forward(graph, big, &g, {}, nullptr, true);
            check_scaled(std::string(GetParam()) + " graph vs eager, 300 tokens", g.data(), a.data(), a.size(),
                         2 * kKernelRtol);
            EXPECT_EQ(m.graphs_cached(), 1);
        }
        const RaggedBatch b{{0, 1}, {1, 3}, some_tokens(4, V, 10 + step)};
        const int blocks = std::max(ceil_div(eager.len(0) + 1, 16), ceil_div(eager.len(1) + 3, 16));
        (step < n_steps / 2 ? before : after).insert(blocks_bucket(blocks));
        std::vector<float> want, got;
        m.forward(eager, b, &want);
        m.forward(graph, b, &got, {}, nullptr, true);
        steps_bitwise += got == want;
        worst = std::max(worst, check_scaled("", got.data(), want.data(), want.size(), 2 * kKernelRtol));
        eager.truncate(1, eager.len(1) - 1);
        graph.truncate(1, graph.len(1) - 1);
    }
    std::printf("%s graphs: %d steps over %zu + %zu buckets, %d captures, %d steps bitwise equal to eager, worst "
                "%.2e of scale (bound %.2e)\n",
                GetParam(), n_steps, before.size(), after.size(), m.graphs_captured(), steps_bitwise, worst,
                2 * kKernelRtol);
    EXPECT_EQ(m.graphs_captured(), static_cast<int>(before.size() + 1 + after.size()));
    EXPECT_GE(before.size() + after.size(), 4u);  // the decode did cross buckets
    EXPECT_EQ(graph.len(0), eager.len(0));
    EXPECT_EQ(graph.len(1), eager.len(1));
}

// One graph serves 5 to 8 sequences of the same T and block-table width:
// attention plans its split for the power of two at or above the sequence
// count. The contexts are long enough (2,000 tokens, so up to 64 chunks of
// 32 keys) that the batch's own count would give three split counts (64,
// 64, 57, 50 for tiny's KVH = 2): three captures. Each replay's logits
// follow the eager forward's, which plans for the batch's own count.
TEST_P(CudaForwardProps, GraphServesAPowerOfTwoClassOfSequenceCounts) {
    ModelWeights w = tiny_model(GetParam());
    w.cfg.max_position = 4096;  // the attention workspace is planned for it
    const int V = w.cfg.vocab, S = 8, T = 8;
    CudaModel m(w);
    KvCache eager(w.cfg, S, small_cache(S * 2048)), graph(w.cfg, S, small_cache(S * 2048));
    for (KvCache* kv : {&eager, &graph})
        for (int s = 0; s < S; s++) gpu_forward_one(m, *kv, s, some_tokens(2000, V, 1 + s));
    const int before = m.graphs_captured();
    double worst = 0;
    for (int n = 5; n <= 8; n++) {
        RaggedBatch b;
        for (int s = 0; s < n; s++) {
            b.seq.push_back(s);
            b.q_len.push_back(s == 0 ? T - (n - 1) : 1);
        }
        b.tokens = some_tokens(T, V, 40 + n);
        std::vector<float> want, got;
        m.forward(eager, b, &want);
        m.forward(graph, b, &got, {}, nullptr, true);
        worst = std::max(worst, check_scaled(std::string(GetParam()) + " graph vs eager, " + std::to_string(n) +
                                                 " sequences",
                                             got.data(), want.data(), want.size(), 2 * kKernelRtol));
    }
    std::printf("%s: 4 batches of 5..8 sequences, %d captures, worst %.2e of scale\n", GetParam(),
                m.graphs_captured() - before, worst);
    EXPECT_EQ(m.graphs_captured() - before, 1);
}

// Every projection through cuBLAS (the reference path) against the default
// GEMV path and against the CPU reference: a 39-token prefix and an 18-token
// batch (a verify block, a decode token and a prefill chunk), which take
// cuBLAS on both paths (the switch leaves them alone: bitwise equal), then a
// decode-only batch of 3, which the default path sends to the GEMV. (The GEMV
// alone at every T up to 16 is held to a CPU loop by GemvMatchesCpuForSmallT.)
TEST_P(CudaForwardProps, CublasOnlyMatchesGemvPathAndCpu) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab;
    CudaModel m(w);
    KvCache kv_gemv(w.cfg, 3, small_cache()), kv_cublas(w.cfg, 3, small_cache());
    CpuKvCache ckv = kv_cache_init(w.cfg, 3);
    const RaggedBatch prefix{{0, 1}, {30, 9}, some_tokens(39, V, 3)};
    const RaggedBatch mixed{{0, 1, 2}, {5, 1, 12}, some_tokens(18, V, 4)};
    const RaggedBatch decode{{0, 1, 2}, {1, 1, 1}, some_tokens(3, V, 5)};
    for (const RaggedBatch* b : {&prefix, &mixed, &decode}) {
        std::vector<float> g, cb, c;
        m.set_cublas_only(false);
        m.forward(kv_gemv, *b, &g);
        m.set_cublas_only(true);
        m.forward(kv_cublas, *b, &cb);
        reference_forward(w, ckv, *b, &c);
        const std::string at = std::string(GetParam()) + " T " + std::to_string(b->tokens.size());
        check_scaled(at + " cuBLAS only vs GEMV", cb.data(), g.data(), g.size(), kForwardRtol);
        check_scaled(at + " cuBLAS only vs CPU", cb.data(), c.data(), c.size(), kForwardRtol);
    }
}

// The Backend interface: backend_cuda and backend_cpu driven through the same
// speculative session (prefills, then verify blocks of 1 + 4 and 1 + 2
// drafts with a fixed accept pattern, the rejected drafts truncated, now and
// then a prefill chunk riding along), logits and hidden states compared at
// every step. Steps of up to 16 tokens run through backend_cuda's graphs;
// the larger ones (28 and 25 tokens) take the algorithms warm() timed for
// their bucket of T at 32 tokens.
TEST_P(CudaForwardProps, BackendSessionMatchesCpuBackend) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab, L = w.cfg.n_layers;
    CudaBackendOptions o;
    o.kv = small_cache();
    std::unique_ptr<Backend> gpu = backend_cuda(w, 3, o), cpu = backend_cpu(w, 3);
    EXPECT_STREQ(gpu->name(), "cuda");
    gpu->warm(32);
    double worst = 0;
    auto both = [&](const RaggedBatch& b, const std::string& what) {
        SCOPED_TRACE(what);
        std::vector<float> g, c, gh, ch;
        gpu->forward(b, &g, {0, L - 1}, &gh);
        cpu->forward(b, &c, {0, L - 1}, &ch);
        worst = std::max(worst, check_scaled("", g.data(), c.data(), c.size(), kForwardRtol));
        check_scaled("", gh.data(), ch.data(), ch.size(), kForwardRtol);
    };
    both(RaggedBatch{{0, 1}, {21, 7}, some_tokens(28, V, 1)}, "prefill");
    for (int step = 0; step < 24; step++) {
        RaggedBatch b{{0, 1}, {5, 3}, some_tokens(8, V, 20 + step)};
        if (step % 8 == 3) {  // a prefill chunk of request 2 rides along (T > 16: eager)
            b.seq.push_back(2);
            b.q_len.push_back(17);
            const std::vector<int> chunk = some_tokens(17, V, 50 + step);
            b.tokens.insert(b.tokens.end(), chunk.begin(), chunk.end());
        }
        const int len0 = cpu->len(0), len1 = cpu->len(1);
        both(b, "step " + std::to_string(step));
        const int keep0 = len0 + 1 + step % 5, keep1 = len1 + 1 + (step / 2) % 3;
        for (Backend* be : {gpu.get(), cpu.get()}) {
            be->truncate(0, keep0);
            be->truncate(1, keep1);
        }
    }
    for (int s = 0; s < 3; s++) EXPECT_EQ(gpu->len(s), cpu->len(s));
    std::printf("%s Backend session cuda vs cpu: 25 forwards, worst logits error %.2e of scale (%.1f u, bound %.0f "
                "u)\n",
                GetParam(), worst, worst / kU, kForwardRtol / kU);
}

// Backend::verify, cuda against cpu, at greedy: a short speculative session
// over 3 sequences whose drafts are the greedy continuation (from a CPU
// oracle backend, token by token) with one draft now and then made wrong, so
// that the blocks end in full accepts, early and late rejections and empty
// blocks (l = 0). Each round both backends verify the same batch (through
// backend_cuda's graphs, and once with a block of 15 drafts, eagerly) and
// must return the oracle's n_accepted and next, unless a row that decides
// lies within the bf16 forward's error of a tie: its top-2 gap (CPU logits)
// at most twice the largest |cuda - cpu| difference of that row, with the
// logits of the same batch from two shadow backends (the oracle, and a cuda
// one). Those blocks are counted and printed, and only the CPU is held to
// the oracle there. The hidden states (hidden_data, device memory for cuda)
// are compared too, and a VerifyBatch that does not fit the batch throws
// before anything is appended.
TEST_P(CudaForwardProps, BackendVerifyMatchesCpuBackendAtGreedy) {
    const ModelWeights w = tiny_model(GetParam());
    const int V = w.cfg.vocab, L = w.cfg.n_layers, d = w.cfg.hidden, S = 3;
    CudaBackendOptions o;
    o.kv = small_cache();
    std::unique_ptr<Backend> gpu = backend_cuda(w, S, o), cpu = backend_cpu(w, S);
    std::unique_ptr<Backend> oracle = backend_cpu(w, S), shadow = backend_cuda(w, S, o);
    const std::vector<Backend*> all = {gpu.get(), cpu.get(), oracle.get(), shadow.get()};
    // prompts of 13, 6 and 21 tokens: all but the last cached (logits null:
    // nothing comes back), the last one each sequence's first anchor
    const RaggedBatch prefill{{0, 1, 2}, {12, 5, 20}, some_tokens(37, V, 9)};
    for (Backend* be : all) be->forward(prefill, nullptr);
    std::vector<int> anchor = some_tokens(S, V, 10);

    int blocks = 0, drafts = 0, accepted = 0, near_blocks = 0, near_differ = 0;
    double worst_hidden = 0;
    for (int round = 0; round < 10; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        RaggedBatch b;
        VerifyBatch v;
        v.seed = 5;
        std::vector<int> want_n(S), want_next(S);
        for (int s = 0; s < S; s++) {
            const int ell = s == 0 ? round % 5 : s == 1 ? (round == 6 ? 15 : 4) : round % 3;
            const int wrong = s == 0 ? (round % 2 ? ell / 2 + 1 : 0) : s == 1 ? round % 5 : 0;  // 1-based; 0: none
            // the oracle's greedy path from the anchor: g_1 .. g_{ell + 1}
            const int len = oracle->len(s);
            std::vector<int> path = {anchor[s]};
            for (int k = 0; k <= ell; k++) {
                std::vector<float> row;
                oracle->forward(RaggedBatch{{s}, {1}, {path.back()}}, &row);
                path.push_back(static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin()));
            }
            oracle->truncate(s, len);
            b.seq.push_back(s);
            b.q_len.push_back(1 + ell);
            b.tokens.push_back(anchor[s]);
            for (int k = 1; k <= ell; k++) b.tokens.push_back(k == wrong ? (path[k] + 1) % V : path[k]);
            want_n[s] = wrong > 0 && wrong <= ell ? wrong - 1 : ell;
            want_next[s] = path[want_n[s] + 1];
            v.temperature.push_back(0.0f);
            v.request.push_back(static_cast<uint64_t>(s));
            v.anchor_pos.push_back(cpu->len(s));
            blocks++;
            drafts += ell;
        }
        // the near ties: rows 0..want_n decide, each against the row's own cuda - cpu difference
        std::vector<float> ol, sl;
        oracle->forward(b, &ol);
        shadow->forward(b, &sl);
        std::vector<bool> tie(S, false);
        for (int s = 0, t0 = 0; s < S; t0 += b.q_len[s], s++)
            for (int k = 0; k <= want_n[s]; k++) {
                const float* cr = &ol[static_cast<size_t>(t0 + k) * V];
                const float* gr = &sl[static_cast<size_t>(t0 + k) * V];
                float err = 0, top = -INFINITY, second = -INFINITY;
                for (int i = 0; i < V; i++) {
                    err = std::max(err, std::fabs(gr[i] - cr[i]));
                    if (cr[i] > top) {
                        second = top;
                        top = cr[i];
                    } else if (cr[i] > second) {
                        second = cr[i];
                    }
                }
                if (top - second <= 2 * err) tie[s] = true;
            }
        if (round == 0) {  // a VerifyBatch of the wrong size: throws, nothing appended
            VerifyBatch bad = v;
            bad.temperature.pop_back();
            VerifyResult r;
            EXPECT_THROW(gpu->verify(b, bad, &r), Error);
            for (int s = 0; s < S; s++) EXPECT_EQ(gpu->len(s), cpu->len(s));
        }
        VerifyResult g, c;
        gpu->verify(b, v, &g, {0, L - 1});
        cpu->verify(b, v, &c, {0, L - 1});
        const size_t T = b.tokens.size();
        std::vector<float> gh(2 * T * d);
        CUDA_CHECK(cudaMemcpy(gh.data(), gpu->hidden_data(), gh.size() * sizeof(float), cudaMemcpyDeviceToHost));
        worst_hidden =
            std::max(worst_hidden, check_scaled("hidden", gh.data(), cpu->hidden_data(), gh.size(), kForwardRtol));
        for (int s = 0; s < S; s++) {
            accepted += c.n_accepted[s];
            EXPECT_EQ(c.n_accepted[s], want_n[s]) << "cpu, sequence " << s;
            EXPECT_EQ(c.next[s], want_next[s]) << "cpu, sequence " << s;
            if (tie[s]) {
                near_blocks++;
                near_differ += g.n_accepted[s] != c.n_accepted[s] || g.next[s] != c.next[s];
                continue;
            }
            EXPECT_EQ(g.n_accepted[s], c.n_accepted[s]) << "cuda vs cpu, sequence " << s;
            EXPECT_EQ(g.next[s], c.next[s]) << "cuda vs cpu, sequence " << s;
        }
        // commit the CPU's outcome: the anchor and the accepted drafts stay
        for (int s = 0; s < S; s++) {
            const int keep = cpu->len(s) - b.q_len[s] + 1 + c.n_accepted[s];
            for (Backend* be : all) be->truncate(s, keep);
            anchor[s] = c.next[s];
        }
    }
    for (int s = 0; s < S; s++) EXPECT_EQ(gpu->len(s), cpu->len(s));
    std::printf("%s Backend verify cuda vs cpu, greedy: %d blocks, %d of %d drafts accepted; %d blocks with a row "
                "within the bf16 error of a tie, %d of them decided otherwise; hidden states worst %.1f u\n",
                GetParam(), blocks, accepted, drafts, near_blocks, near_differ, worst_hidden / kU);
}

INSTANTIATE_TEST_SUITE_P(TinyPresets, CudaForwardProps, ::testing::Values("tiny-qwen3", "tiny-llama"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                             return std::string(p.param) == "tiny-qwen3" ? "Qwen3" : "Llama";
                         });
