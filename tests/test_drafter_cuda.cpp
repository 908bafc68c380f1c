// test_drafter_cuda.cpp: the CUDA drafters against the CPU reference
// drafters on the GPU machine (ctest -L gpu):
//  - DSpark / DFlash (engine/drafter_dspark_cuda.cpp, gather.cu, markov.cu)
//    against engine/drafter_dspark.cpp, on the fixtures of
//    tests/make_dspark_fixtures.py: the target tiny-qwen3-4l and its
//    drafters tiny-dspark (Markov head rank 16, confidence head, STS
//    temperatures) and tiny-dflash (neither);
//  - EAGLE-3 (engine/drafter_eagle3_cuda.cpp, eagle3.cu, gather.cu's
//    copy_rows, markov.cu as a plain sampler) against
//    engine/drafter_eagle3.cpp, on tests/make_eagle3_fixtures.py's
//    tiny-eagle3 (one layer over [embedding ; fc of layers 0, 1, 2] of the
//    same target, gamma 4).
//
// Both drafters are driven through the same calls: the fixture's token
// sequence, context delivered in pieces up to each of the fixture's anchors
// (8, 13, 19), the target's hidden states from the CPU reference forward
// (uploaded for the CUDA drafter), five requests per call:
//   slot 0  greedy (T = 0)
//   slot 1  sampled at the fixture's T, seed and request
//   slot 2  sampled, teacher-forced on the true continuation (its logits
//           and confidences follow the same path on both sides whatever
//           either draws)
//   slot 3  greedy, 0, 1 or 2 drafts (slots past n_draft must stay -1): a
//           batch of mixed n_draft, with a context-only request in it
//   slot 4  a probe: T = 1, teacher-forced on the fixture's greedy block,
//           so its CPU q gives the greedy path's logits up to a constant,
//           hence the top-2 margin of each greedy slot
// EAGLE-3 also drafts with no new context after a context-only call (the
// speculative loop's flush before a new request), twice in a row, and then
// goes on with context: its draft 1 then comes from the slot's kept state.
//
// Tolerances (u = 2^-8, bf16's unit roundoff; see test_cuda.cpp's header):
//  - logits. The DSpark drafter is a bf16 forward like the target's (2
//    layers, about 8 roundings each, fp32 residual) plus the context path
//    (features, H_ctx and k/v rounded: 3 more) and the Markov bias (W1 and
//    W2 rounded once each, a product no larger than the logits). EAGLE-3's
//    draft k applies its one layer k + 1 times in sequence, the fp32
//    residual carried from step to step: at gamma 4 a forward 4 layers deep
//    (plus the same context path, and x2's two norms per step in place of
//    one). test_cuda holds whole target forwards of 2 to 4 layers to
//    kForwardRtol = 12 u of max |ref| per tensor (observed up to 7.1 u), so
//    we allow tol = 12 u of the block's max |logit| (the fixture's
//    forced_logits). A token must then agree wherever the CPU's margin
//    (top-1 minus top-2 of the logits at T = 0, of the Gumbel-perturbed
//    scores at T > 0) is at least 2 tol: each of the two entries may move
//    by tol. Below that a differing token is a near-tie and allowed; the
//    request's later slots then condition on different tokens and are not
//    compared (the forced slot always is).
//    q = softmax(logits / T): |log q_gpu - log q_cpu| <= 2 tol / T where
//    q_cpu >= 1e-6 (the logit's error plus the normaliser's).
//  - confidence logit z = w_h . h + w_m . W1[prev] + b (w fp32 on both
//    sides). h = g * xhat, g the final norm's weight and xhat = x / rms(x)
//    with |xhat|_2 = sqrt(d) exactly. Rounding to bf16 is elementwise
//    relative, so each rounding of a vector moves it by at most u of its
//    l2 norm; the forward's budget of 12 u, taken in that norm, bounds
//    |dxhat|_2 <= 12 u sqrt(d) (h's own bf16 rounding included). Then by
//    Cauchy-Schwarz |w_h . dh| <= |w_h * g|_2 12 u sqrt(d), and W1's one
//    rounding adds at most u sum_i |w_m,i W1[prev]_i|. Bound: the sum of the
//    two, plus 1e-5 (|z| + 1) of fp32 noise. Sound under that one premise
//    (the same budget test_cuda checks in max-norm), and not loose by more
//    than the ratio of a worst-case to a typical alignment of the errors:
//    the printed share shows how much of it is used.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include "engine/counter_rng.h"
#include "engine/drafter.h"
#include "engine/drafter_cuda.h"
#include "engine/dspark.h"
#include "engine/model.h"
#include "engine/reference.h"
#include "tests/needs_gpu.h"

using namespace sp;

namespace {

constexpr double kU = 1.0 / 256;          // bf16 unit roundoff, 2^-8
constexpr double kForwardRtol = 12 * kU;  // a whole bf16 forward, relative to the tensor's scale
constexpr int kSlots = 5;

// [SECTION] helpers ------------------------------------------------------------

struct DraftFixture {
    std::string dir, target_dir;
    nlohmann::json ref;   // eagle3_reference.json where the folder has one, else dspark_reference.json
    bool eagle3 = false;  // an EAGLE-3 drafter (the folder has eagle3_reference.json)
};

// tests/fixtures/<name>'s reference dump and its target; false when absent.
bool load_draft_fixture(const std::string& name, DraftFixture* f) {
    const std::string root = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";
    f->dir = root + name;
    f->target_dir = root + "tiny-qwen3-4l";
    f->eagle3 = std::ifstream(f->dir + "/eagle3_reference.json").good();
    std::ifstream in(f->dir + (f->eagle3 ? "/eagle3_reference.json" : "/dspark_reference.json"));
    if (!in) return false;
    f->ref = nlohmann::json::parse(in);
    return std::ifstream(f->target_dir + "/config.json").good();
}

#define LOAD_DRAFT_FIXTURE_OR_SKIP(name, f)                                                          \
    if (load_draft_fixture(name, &f)) {                                                              \
    } else                                                                                           \
        GTEST_SKIP() << "no drafter fixture at tests/fixtures/" << name                                  \
                 << " (or its target tiny-qwen3-4l); make it with /usr/bin/python3 "                     \
                    "tests/make_dspark_fixtures.py or tests/make_eagle3_fixtures.py"

std::unique_ptr<Drafter> open_cpu(const DraftFixture& f, const ModelWeights& target) {
    return f.eagle3 ? drafter_eagle3_cpu(f.dir, target, kSlots, 0) : drafter_dspark_cpu(f.dir, target, kSlots, 0);
}

std::unique_ptr<Drafter> open_cuda(const DraftFixture& f, const ModelWeights& target, const KvCacheOptions& kvo) {
    return f.eagle3 ? drafter_eagle3_cuda(f.dir, target, kSlots, 0, kvo)
                    : drafter_dspark_cuda(f.dir, target, kSlots, 0, kvo);
}

struct DeviceFloats {
    float* p = nullptr;
    explicit DeviceFloats(const std::vector<float>& h) {
        CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(h.size(), 1) * sizeof(float)));
        CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    ~DeviceFloats() { cudaFree(p); }
    DeviceFloats(const DeviceFloats&) = delete;
    DeviceFloats& operator=(const DeviceFloats&) = delete;
};

// The target's hidden states of the whole sequence at the drafter's layers,
// (m, N, d), from the CPU reference forward.
std::vector<float> target_hidden(const ModelWeights& target, const std::vector<int>& tokens,
                                 const std::vector<int>& layers) {
    CpuKvCache kv = kv_cache_init(target.cfg, 1);
    std::vector<float> hidden;
    reference_forward(target, kv, RaggedBatch{{0}, {static_cast<int>(tokens.size())}, tokens}, nullptr, layers,
                      &hidden);
    return hidden;
}

// The call of round i: context positions [from, a) (none when from == a),
// the anchor tokens[a]; `greedy` is the fixture's greedy block there (the
// probe's forced path).
DraftBatch round_batch(const std::vector<int>& tokens, const std::vector<int>& greedy, int from, int a, int G,
                       int round, float T, uint64_t request, uint64_t seed) {
    DraftBatch b;
    const int N = static_cast<int>(tokens.size());
    for (int s = 0; s < kSlots; s++) {
        b.slot.push_back(s);
        b.n_ctx.push_back(a - from);
        for (int p = from; p < a; p++) {
            b.ctx_tokens.push_back(tokens[size_t(p)]);
            b.ctx_row.push_back(p);
        }
        b.anchor.push_back(tokens[size_t(a)]);
    }
    b.hidden_T = N;
    b.n_draft = {G, G, G, round % 3, G};
    b.temperature = {0.0f, T, T, 0.0f, 1.0f};
    b.request = {0, request, 3, 5, 9};
    b.seed = seed;
    b.forced.assign(size_t(kSlots) * G, -1);
    for (int k = 0; k + 1 < G && a + 1 + k < N; k++) b.forced[size_t(2 * G + k)] = tokens[size_t(a + 1 + k)];
    for (int k = 0; k + 1 < G && k < static_cast<int>(greedy.size()); k++) b.forced[size_t(4 * G + k)] = greedy[size_t(k)];
    return b;
}

// top-1 minus top-2 of v
double margin_of(const std::vector<double>& v) {
    double a = -INFINITY, b = -INFINITY;
    for (double x : v) {
        if (x > a) {
            b = a;
            a = x;
        } else if (x > b) {
            b = x;
        }
    }
    return a - b;
}

// Worst share of its bound seen by a check, printed at the end.
struct Worst {
    const char* what;
    double err = 0, share = 0;
    size_t n = 0;
    void see(double e, double bound) {
        n++;
        const double s = std::isnan(e) ? INFINITY : e / bound;
        if (s > share) {
            share = s;
            err = e;
        }
    }
    void print(const std::string& name) const {
        std::printf("%s %s: %zu values, worst |err| %.3e = %.1f%% of its bound: %s\n", name.c_str(), what, n, err,
                    100 * share, share <= 1 ? "OK" : "NOT OK");
    }
};

// [SECTION] the comparison -----------------------------------------------------

// A CPU and a CUDA drafter of one fixture, driven through the same calls;
// each call's CUDA outputs are held to the header's bounds, and finish()
// prints the worst share of each bound and checks it.
struct Comparison {
    std::string name;
    std::unique_ptr<DSparkWeights> w;  // for the confidence bound; null for EAGLE-3 (no head)
    std::unique_ptr<Drafter> cpu, gpu;
    std::vector<int> tokens;
    std::vector<float> hidden;
    std::unique_ptr<DeviceFloats> hidden_dev;
    float T = 0;
    uint64_t request = 0, seed = 0;
    int G = 0, V = 0, d = 0;
    double wg2 = 0;  // |w_h * g|_2, the confidence bound's part that does not depend on the previous token
    Worst w_logq{"log q"}, w_conf{"conf_logit"}, w_c{"conf"}, w_sum{"sum q - 1"};
    int compared = 0, near_ties = 0;

    void open(const DraftFixture& f, const std::string& label, const ModelWeights& target) {
        name = label;
        if (!f.eagle3) w = std::make_unique<DSparkWeights>(dspark_load(f.dir, target.cfg));
        cpu = open_cpu(f, target);
        KvCacheOptions kvo;
        kvo.capacity_tokens = 1024;
        gpu = open_cuda(f, target, kvo);
        ASSERT_STREQ(gpu->device(), "cuda");
        ASSERT_STREQ(gpu->kind(), cpu->kind());
        ASSERT_EQ(gpu->has_confidence(), cpu->has_confidence());
        ASSERT_EQ(gpu->has_confidence(), w && w->cfg.confidence);
        ASSERT_EQ(gpu->target_layers(), cpu->target_layers());
        G = cpu->gamma();
        V = target.cfg.vocab;
        d = target.cfg.hidden;
        ASSERT_EQ(gpu->gamma(), G);
        tokens = f.ref.at("tokens").get<std::vector<int>>();
        hidden = target_hidden(target, tokens, cpu->target_layers());
        hidden_dev = std::make_unique<DeviceFloats>(hidden);
        const nlohmann::json& sampled0 = f.ref.at("anchors").at(0).at("sampled");
        T = sampled0.at("temperature").get<float>();
        request = sampled0.at("request").get<uint64_t>();
        seed = sampled0.at("seed").get<uint64_t>();
        ASSERT_GT(T, 0.0f);
        if (cpu->has_confidence())
            for (int i = 0; i < d; i++)
                wg2 += double(w->conf_w[size_t(i)]) * w->final_norm[size_t(i)] * w->conf_w[size_t(i)] *
                       w->final_norm[size_t(i)];
        wg2 = std::sqrt(wg2);
    }

    double conf_bound(int prev, double z) const {
        double markov = 0;
        const int r = w->cfg.markov_rank;
        if (w->cfg.confidence_with_markov)
            for (int i = 0; i < r; i++)
                markov += std::fabs(double(w->conf_w[size_t(d + i)]) * w->markov_w1[size_t(prev) * r + i]);
        return kForwardRtol * wg2 * std::sqrt(double(d)) + kU * markov + 1e-5 * (std::fabs(z) + 1);
    }

    // round_batch at anchor A: context [from, A's position), the round's n_draft.
    DraftBatch round(int from, const nlohmann::json& A, int round_no) const {
        return round_batch(tokens, A.at("greedy_block").get<std::vector<int>>(), from, A.at("anchor_pos").get<int>(),
                           G, round_no, T, request, seed);
    }

    // Drafts b on both drafters (b must leave every slot at A's anchor
    // position, its slot 4 the probe on A's greedy block) and compares; the
    // CUDA output goes to *og_out when given.
    void call(DraftBatch b, const nlohmann::json& A, DraftOutput* og_out = nullptr) {
        const int a = A.at("anchor_pos").get<int>();
        // the block's logit scale, and the tolerance of one logit
        double scale = 0;
        for (const auto& row : A.at("forced_logits"))
            for (const auto& x : row) scale = std::max(scale, std::fabs(x.get<double>()));
        const double tol = kForwardRtol * scale;
        std::printf("%s anchor %d: max |logit| %.3f, tol %.3f (a token must agree where its margin is >= %.3f)\n",
                    name.c_str(), a, scale, tol, 2 * tol);
        const std::vector<int> greedy = A.at("greedy_block").get<std::vector<int>>();

        DraftOutput oc, og;
        b.hidden = hidden.data();
        cpu->draft(b, &oc);
        b.hidden = hidden_dev->p;
        gpu->draft(b, &og);
        std::vector<float> q_gpu(size_t(kSlots) * G * V);
        CUDA_CHECK(cudaMemcpy(q_gpu.data(), og.q, q_gpu.size() * sizeof(float), cudaMemcpyDeviceToHost));
        ASSERT_EQ(og.tokens.size(), size_t(kSlots) * G);
        ASSERT_EQ(og.q_token.size(), size_t(kSlots) * G);
        ASSERT_EQ(og.conf_logit.size(), oc.conf_logit.size());
        ASSERT_EQ(og.conf.size(), oc.conf.size());
        // the greedy path's margins, from the probe's CPU q (T = 1: log q = logit - log Z)
        EXPECT_EQ(std::vector<int>(oc.tokens.begin(), oc.tokens.begin() + G), greedy)
            << name << " anchor " << a << ": the CPU drafter's greedy block is not the fixture's (test_drafter)";
        std::vector<double> greedy_margin(static_cast<size_t>(G));
        for (int k = 0; k < G; k++) {
            const float* qp = oc.q + (size_t(4) * G + k) * V;
            std::vector<double> logit(static_cast<size_t>(V));
            for (int v = 0; v < V; v++) logit[size_t(v)] = std::log(double(qp[v]));
            greedy_margin[size_t(k)] = margin_of(logit);
        }
        EXPECT_NEAR(*std::min_element(greedy_margin.begin(), greedy_margin.end()),
                    A.at("greedy_margin").get<double>(), 1e-3)
            << name << " anchor " << a << ": the probe does not see the fixture's greedy margins";

        for (int s = 0; s < kSlots; s++) {
            EXPECT_EQ(gpu->len(s), a) << name << " slot " << s;
            const bool forced = s == 2 || s == 4;
            const float Ts = b.temperature[size_t(s)];
            const uint64_t rng = counter_row(seed, RNG_DRAFT, b.request[size_t(s)], a);
            int prev = tokens[size_t(a)];
            for (int k = 0; k < G; k++) {
                const size_t i = size_t(s) * G + k;
                if (k >= b.n_draft[size_t(s)]) {
                    EXPECT_EQ(og.tokens[i], -1) << name << " slot " << s << " draft " << k << ": past n_draft";
                    EXPECT_EQ(oc.tokens[i], -1);
                    continue;
                }
                // q and z depend on the path so far, which agrees (or is forced)
                const float* qc = oc.q + i * V;
                const float* qg = q_gpu.data() + i * V;
                double margin = greedy_margin[size_t(k)];
                if (Ts > 0) {
                    double sum = 0;
                    std::vector<double> score(static_cast<size_t>(V));
                    for (int v = 0; v < V; v++) {
                        sum += qg[v];
                        if (qc[v] >= 1e-6f)
                            w_logq.see(std::fabs(std::log(double(qg[v])) - std::log(double(qc[v]))), 2 * tol / Ts + 1e-5);
                        // the Gumbel-perturbed score of the draw, up to a constant: log q = logit / T - log Z
                        score[size_t(v)] = std::log(double(qc[v])) -
                                           std::log(-std::log(double(counter_uniform(rng, k * V + v))));
                    }
                    w_sum.see(std::fabs(sum - 1), 1e-4);
                    margin = margin_of(score) * Ts;  // back in logit units
                }
                if (cpu->has_confidence()) {
                    const double z = oc.conf_logit[i], bound = conf_bound(prev, z);
                    w_conf.see(std::fabs(double(og.conf_logit[i]) - z), bound);
                    // c = sigma(z / T_k), sigma' <= 1/4
                    w_c.see(std::fabs(double(og.conf[i]) - double(oc.conf[i])), bound / w->sts[size_t(k)] / 4 + 1e-6);
                }
                compared++;
                if (og.tokens[i] != oc.tokens[i]) {
                    EXPECT_LT(margin, 2 * tol) << name << " anchor " << a << " slot " << s << " draft " << k
                                               << ": tokens " << og.tokens[i] << " (cuda) vs " << oc.tokens[i]
                                               << " (cpu) with a margin of " << margin << " >= 2 tol = " << 2 * tol;
                    near_ties++;
                    if (!forced) break;  // later slots condition on different tokens
                }
                const int f_tok = b.forced[i];
                prev = f_tok >= 0 ? f_tok : oc.tokens[i];
            }
        }
        if (og_out) *og_out = og;
    }

    void finish() const {
        std::printf("%s: %d drafted slots compared, %d near-tie token differences allowed\n", name.c_str(), compared,
                    near_ties);
        for (const Worst* x : {&w_logq, &w_sum, &w_conf, &w_c}) {
            if (x->n == 0) continue;
            x->print(name);
            EXPECT_LE(x->share, 1.0) << name << " " << x->what;
        }
        EXPECT_GT(w_logq.n, 0u);
        if (cpu->has_confidence()) {
            EXPECT_GT(w_conf.n, 0u);
        }
    }
};

// The fixture's anchors in order, each call bringing the context since the last.
void cuda_drafter_matches_cpu(const DraftFixture& f, const std::string& name) {
    const ModelWeights target = weights_load(f.target_dir);
    Comparison c;
    ASSERT_NO_FATAL_FAILURE(c.open(f, name, target));
    int from = 0, round = 0;
    for (const nlohmann::json& A : f.ref.at("anchors")) {
        ASSERT_NO_FATAL_FAILURE(c.call(c.round(from, A, round), A));
        from = A.at("anchor_pos").get<int>();
        round++;
    }
    c.finish();
}

// A bad batch throws and changes nothing: afterwards the drafter drafts
// exactly (bitwise) what a twin that never saw the bad batches drafts.
void a_bad_batch_changes_nothing(const DraftFixture& f) {
    const ModelWeights target = weights_load(f.target_dir);
    KvCacheOptions kvo;
    kvo.block_size = 16;
    kvo.capacity_tokens = 256;  // 16 blocks: room for the calls below (10), not for 200 more tokens
    std::unique_ptr<Drafter> a = open_cuda(f, target, kvo);
    std::unique_ptr<Drafter> twin = open_cuda(f, target, kvo);
    const int G = a->gamma();
    const std::vector<int> tokens = f.ref.at("tokens").get<std::vector<int>>();
    const std::vector<float> hidden = target_hidden(target, tokens, a->target_layers());
    const DeviceFloats hidden_dev(hidden);

    const nlohmann::json& anchors = f.ref.at("anchors");
    const int a0 = anchors.at(0).at("anchor_pos").get<int>(), a1 = anchors.at(1).at("anchor_pos").get<int>();
    DraftBatch b = round_batch(tokens, anchors.at(0).at("greedy_block").get<std::vector<int>>(), 0, a0, G, 1, 1.0f, 7,
                               42);
    b.hidden = hidden_dev.p;
    DraftOutput oa, ot;
    a->draft(b, &oa);
    twin->draft(b, &ot);

    auto expect_refused = [&](DraftBatch bad, const char* why) {
        DraftOutput o;
        EXPECT_THROW(a->draft(bad, &o), Error) << why;
        for (int s = 0; s < kSlots; s++) EXPECT_EQ(a->len(s), a0) << why;
    };
    DraftBatch next = round_batch(tokens, anchors.at(1).at("greedy_block").get<std::vector<int>>(), a0, a1, G, 2, 1.0f,
                                  7, 42);
    next.hidden = hidden_dev.p;
    {
        DraftBatch bad = next;
        bad.slot[3] = kSlots;
        expect_refused(bad, "slot out of range");
    }
    {
        DraftBatch bad = next;
        bad.slot[3] = 0;
        expect_refused(bad, "slot repeated");
    }
    {
        DraftBatch bad = next;
        bad.n_draft[1] = G + 1;
        expect_refused(bad, "n_draft past gamma");
    }
    {
        DraftBatch bad = next;
        bad.forced[0] = target.cfg.vocab;
        expect_refused(bad, "forced token out of range");
    }
    {
        DraftBatch bad = next;
        bad.ctx_row[0] = bad.hidden_T;
        expect_refused(bad, "ctx_row outside the hidden states");
    }
    {
        DraftBatch bad = next;
        bad.hidden = hidden.data();
        expect_refused(bad, "hidden states in host memory");
    }
    {
        DraftBatch bad = next;  // 200 more context tokens in slot 0: more blocks than the cache has
        bad.n_ctx[0] += 200;
        bad.ctx_tokens.insert(bad.ctx_tokens.begin(), 200, tokens[0]);
        bad.ctx_row.insert(bad.ctx_row.begin(), 200, 0);
        expect_refused(bad, "KV cache full");
    }
    if (f.eagle3) {
        // slot 0 without its new context, for an anchor its last entry was not made with
        DraftBatch bad = next;
        const int n0 = bad.n_ctx[0];
        bad.n_ctx[0] = 0;
        bad.ctx_tokens.erase(bad.ctx_tokens.begin(), bad.ctx_tokens.begin() + n0);
        bad.ctx_row.erase(bad.ctx_row.begin(), bad.ctx_row.begin() + n0);
        bad.anchor[0] = (tokens[size_t(a0)] + 1) % target.cfg.vocab;
        expect_refused(bad, "an EAGLE-3 draft without the features of the position before its anchor");
    }

    a->draft(next, &oa);
    twin->draft(next, &ot);
    EXPECT_EQ(oa.tokens, ot.tokens);
    EXPECT_EQ(oa.q_token, ot.q_token);
    EXPECT_EQ(oa.conf_logit, ot.conf_logit);
    EXPECT_EQ(oa.conf, ot.conf);
    for (int s = 0; s < kSlots; s++) EXPECT_EQ(a->len(s), a1);
    a->reset(1);
    EXPECT_EQ(a->len(1), 0);
}

}  // namespace

// [SECTION] tests ----------------------------------------------------------------

TEST(CudaDrafter, DSparkMatchesTheCpuReference) {
    DraftFixture f;
    LOAD_DRAFT_FIXTURE_OR_SKIP("tiny-dspark", f);
    cuda_drafter_matches_cpu(f, "tiny-dspark");
}

TEST(CudaDrafter, DFlashMatchesTheCpuReference) {
    DraftFixture f;
    LOAD_DRAFT_FIXTURE_OR_SKIP("tiny-dflash", f);
    cuda_drafter_matches_cpu(f, "tiny-dflash");
}

TEST(CudaDrafter, Eagle3MatchesTheCpuReference) {
    DraftFixture f;
    LOAD_DRAFT_FIXTURE_OR_SKIP("tiny-eagle3", f);
    ASSERT_TRUE(f.eagle3);
    cuda_drafter_matches_cpu(f, "tiny-eagle3");
}

// The speculative loop's flush before a new request hands every running
// request its pending context with no drafts; the next call then drafts
// with no new context, draft 1 coming from the slot's kept state (the fc
// output of the position before the anchor). Drafting twice from it gives
// the same block (the chain's cache rows are dropped after each call), an
// anchor the state was not made with is refused, and the call after that
// brings context as usual.
TEST(CudaDrafter, Eagle3DraftsWithoutNewContextAfterAContextOnlyCall) {
    DraftFixture f;
    LOAD_DRAFT_FIXTURE_OR_SKIP("tiny-eagle3", f);
    ASSERT_TRUE(f.eagle3);
    const ModelWeights target = weights_load(f.target_dir);
    Comparison c;
    ASSERT_NO_FATAL_FAILURE(c.open(f, "tiny-eagle3 after a flush", target));
    const nlohmann::json& A0 = f.ref.at("anchors").at(0);
    const nlohmann::json& A1 = f.ref.at("anchors").at(1);
    const int a0 = A0.at("anchor_pos").get<int>(), a1 = A1.at("anchor_pos").get<int>();

    // 1. the flush: every slot's context up to a0, nothing drafted
    DraftBatch flush = c.round(0, A0, 0);
    flush.n_draft.assign(size_t(kSlots), 0);
    DraftOutput oc, og;
    flush.hidden = c.hidden.data();
    c.cpu->draft(flush, &oc);
    flush.hidden = c.hidden_dev->p;
    c.gpu->draft(flush, &og);
    EXPECT_EQ(og.tokens, std::vector<int>(size_t(kSlots) * c.G, -1));
    for (int s = 0; s < kSlots; s++) EXPECT_EQ(c.gpu->len(s), a0);

    // 2. drafts at a0 with no new context (slot 3: 2 drafts), twice
    DraftOutput first, second;
    ASSERT_NO_FATAL_FAILURE(c.call(c.round(a0, A0, 2), A0, &first));
    ASSERT_NO_FATAL_FAILURE(c.call(c.round(a0, A0, 2), A0, &second));
    EXPECT_EQ(first.tokens, second.tokens);
    EXPECT_EQ(first.q_token, second.q_token);

    // 3. no new context and another anchor: refused by both, nothing changed
    {
        DraftBatch bad = c.round(a0, A0, 2);
        bad.anchor[1] = (bad.anchor[1] + 1) % c.V;
        DraftOutput o;
        EXPECT_THROW(c.cpu->draft(bad, &o), Error);
        EXPECT_THROW(c.gpu->draft(bad, &o), Error);
        for (int s = 0; s < kSlots; s++) EXPECT_EQ(c.gpu->len(s), a0);
    }

    // 4. on to a1 with context (slot 3: 1 draft)
    ASSERT_NO_FATAL_FAILURE(c.call(c.round(a0, A1, 1), A1));

    // 5. a reset slot has no entry to draft from without context
    c.gpu->reset(3);
    {
        DraftBatch bad = c.round(a1, A1, 1);
        DraftOutput o;
        EXPECT_THROW(c.gpu->draft(bad, &o), Error);
        for (int s = 0; s < kSlots; s++) EXPECT_EQ(c.gpu->len(s), s == 3 ? 0 : a1);
    }
    c.finish();
}

TEST(CudaDrafter, ABadBatchChangesNothing) {
    DraftFixture f;
    LOAD_DRAFT_FIXTURE_OR_SKIP("tiny-dspark", f);
    a_bad_batch_changes_nothing(f);
}

TEST(CudaDrafter, Eagle3ABadBatchChangesNothing) {
    DraftFixture f;
    LOAD_DRAFT_FIXTURE_OR_SKIP("tiny-eagle3", f);
    ASSERT_TRUE(f.eagle3);
    a_bad_batch_changes_nothing(f);
}
