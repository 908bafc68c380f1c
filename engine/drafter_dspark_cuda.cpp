// drafter_dspark_cuda.cpp: the DSpark / DFlash drafter (dspark.h) on the
// GPU: drafter_dspark.cpp's computation in the CUDA forward's numerics (bf16
// weights and activations, fp32 residual stream, logits and accumulation),
// from the target's kernels (kernels.h) plus gather.cu and markov.cu.
// Host code only, like cuda_model.cpp.
//
// State: the context K/V of every slot in a paged KvCache of the draft
// layers (after k_norm and RoPE, as rope_forward writes them). A call, all
// of it enqueued on the drafter's stream, then one copy back:
//   0. one upload of the packed metadata; the outputs cleared (2 memsets)
//   1. context, every new context token of every request (n of them):
//        f  = gather_features(hidden)              (n, m d) bf16
//        H  = hidden_norm(f @ fc^T)                (n, d): matmul + rmsnorm
//        per layer: kv = H @ [wk|wv]^T, then k_norm + RoPE at the token's
//        position and the cache write (rope_forward with H = 0 query heads)
//      H_ctx skips input_layernorm (digest §1.4).          2 + 2 L kernels
//   2. block, G slots [anchor, MASK x (G-1)] per drafting request at
//      positions anchor_pos + k, as CudaModel::enqueue's layer:
//        x = embed; per layer qkv (norm fused), QK-norm + RoPE + cache
//        write, attention, x += att wo, act = swiglu(gu), x += act w_down;
//        h = final_norm(x) (bf16, the LM head's and the confidence head's
//        input); U = h @ lm_head^T (fp32)                  3 + 6-8 L kernels
//      The block's K/V go into the slot's cache rows anchor_pos ..
//      anchor_pos + G - 1 (grown for the call, truncated after: transient,
//      digest §1.4). Every block query attends to all of them: attention
//      masks token t to positions 0..tok_pos[t], so the attention call gets
//      tok_pos = anchor_pos + G - 1 for all G slots while RoPE got the true
//      positions. attention.cu's fast path groups consecutive positions of a
//      sequence into a query tile; equal positions make each slot a tile of
//      its own (a token starts a tile when its position does not follow the
//      previous token's), which is correct, only not shared.
//   3. the sequential loop, k = 0 .. max n_draft - 1 (markov.cu):
//        bias = W1[prev] @ W2^T (R, V) through matmul_forward, then one
//        markov_step_forward (logits, confidence, draw, softmax, next
//        W1[prev]): 2 kernels per step (3 when sampling: q), 1 gather
//        before; DFlash (rank 0):
//        one launch for all steps
//   4. tokens, conf_logit, conf, q_token copied back (one copy), synchronise.
// For the tiny fixtures (L = 2, G = 4): about 40 launches per call.
//
// The embedding and LM head are the target's. This drafter uploads its own
// bf16 copy of them (one allocation with its other weights); a later change
// will share the target's device copy (CudaModel's embed_ / lm_head_), which
// halves this drafter's memory on a real model (2 V d of its 2 V d + ...).
#include "engine/drafter_cuda.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "engine/counter_rng.h"
#include "engine/cuda_model.h"  // CudaLayer
#include "engine/dspark.h"
#include "engine/kernels.h"
#include "engine/reference.h"  // rope_inv_freq

namespace sp {

namespace {

class DSparkCuda final : public Drafter {
public:
    DSparkCuda(std::string dir, const DSparkWeights& w, const ModelWeights& target, int n_slots, int gamma,
               const KvCacheOptions& kv);
    // Random weights of the shape cfg describes, made on the device (timing).
    DSparkCuda(const DSparkConfig& cfg, const Config& target, uint64_t seed, int n_slots, int gamma,
               const KvCacheOptions& kv);
    ~DSparkCuda() override { release(); }
    DSparkCuda(const DSparkCuda&) = delete;
    DSparkCuda& operator=(const DSparkCuda&) = delete;

    const char* kind() const override { return cfg_.markov_rank > 0 || cfg_.confidence ? "dspark" : "dflash"; }
    const std::string& name() const override { return name_; }
    const char* device() const override { return "cuda"; }
    int gamma() const override { return gamma_; }
    int n_slots() const override { return kv_.n_seqs(); }
    int len(int slot) const override { return kv_.len(slot); }
    bool has_confidence() const override { return cfg_.confidence; }
    const std::vector<int>& target_layers() const override { return cfg_.target_layers; }
    void reset(int slot) override { kv_.truncate(slot, 0); }
    void draft(const DraftBatch& b, DraftOutput* out) override;
    void warm(int max_ctx) override;

private:
    // Where this call's requests sit: computed on the host before anything is enqueued.
    struct Plan {
        std::vector<int> drafting;  // (R) indices s of the requests with n_draft > 0
        std::vector<int> old_len;   // (S) each slot's context length before the call
        int n_ctx = 0, max_draft = 0, max_blocks = 1;
    };
    void check(const DraftBatch& b) const;
    size_t lay_out(char* base, const Config& target);  // weight pointers into base (sizes only when null)
    void upload(const DSparkWeights& w, const ModelWeights& target);
    void init_random(const Config& target, uint64_t seed);
    void enqueue(const DraftBatch& b, const Plan& p);
    void release();

    std::string name_;
    DSparkConfig cfg_;
    int gamma_;
    KvCache kv_;
    cudaStream_t stream_ = nullptr;
    Cublas cublas_;
    // weights, one allocation: bf16 matrices and norms, then the fp32 confidence head, STS and RoPE constants
    char* params_ = nullptr;
    size_t param_bytes_ = 0;
    const bf16* embed_ = nullptr;        // (V, d) the target's
    const bf16* lm_head_ = nullptr;      // (V, d) the target's; embed_ when tied
    const bf16* fc_ = nullptr;           // (d, m d)
    const bf16* hidden_norm_ = nullptr;  // (d)
    std::vector<CudaLayer> layers_;      // (draft layers) wgu interleaved as CudaModel's
    const bf16* final_norm_ = nullptr;   // (d)
    const bf16* w1_ = nullptr;           // (V, r)
    const bf16* w2_ = nullptr;           // (V, r)
    const float* conf_w_ = nullptr;      // (d + r) or (d); null without a head
    const float* conf_b_ = nullptr;      // (1)
    const float* sts_ = nullptr;         // (G)
    const float* inv_freq_ = nullptr;    // (D/2)
    // per-call memory, grown on demand
    DeviceBuffer meta_, ctx_, block_, outs_, attn_work_;
    std::vector<int> meta_host_;
    void* result_host_ = nullptr;  // pinned: tokens, conf_logit, conf, q_token (4 S gamma words)
    size_t result_host_bytes_ = 0;
};

DSparkCuda::DSparkCuda(std::string dir, const DSparkWeights& w, const ModelWeights& target, int n_slots,
                       int gamma, const KvCacheOptions& kv)
    : name_(std::move(dir)), cfg_(w.cfg), gamma_(gamma), kv_(w.cfg.layers, n_slots, kv) {
    try {
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        cublas_ = cublas_create(stream_);
        upload(w, target);
    } catch (...) {
        release();
        throw;
    }
}

DSparkCuda::DSparkCuda(const DSparkConfig& cfg, const Config& target, uint64_t seed, int n_slots, int gamma,
                       const KvCacheOptions& kv)
    : name_("random:" + target.name), cfg_(cfg), gamma_(gamma), kv_(cfg.layers, n_slots, kv) {
    try {
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        cublas_ = cublas_create(stream_);
        init_random(target, seed);
    } catch (...) {
        release();
        throw;
    }
}

void DSparkCuda::release() {
    // unchecked: runs from the destructor
    if (stream_) cudaStreamSynchronize(stream_);
    cublas_destroy(cublas_);
    cudaFree(params_);
    params_ = nullptr;
    for (DeviceBuffer* buf : {&meta_, &ctx_, &block_, &outs_, &attn_work_}) buf->release();
    cudaFreeHost(result_host_);
    result_host_ = nullptr;
    if (stream_) cudaStreamDestroy(stream_);
    stream_ = nullptr;
}

size_t DSparkCuda::lay_out(char* base, const Config& target) {
    const Config& c = cfg_.layers;
    const size_t V = c.vocab, d = c.hidden, D = c.head_dim, F = c.ffn, H = c.n_heads, KVH = c.n_kv_heads;
    const size_t m = cfg_.target_layers.size(), r = cfg_.markov_rank;
    Carve cv{base};
    embed_ = cv.take<bf16>(V * d);
    lm_head_ = target.tie_embeddings ? embed_ : cv.take<bf16>(V * d);
    fc_ = cv.take<bf16>(d * m * d);
    hidden_norm_ = cv.take<bf16>(d);
    layers_.assign(size_t(c.n_layers), CudaLayer{});
    for (CudaLayer& L : layers_) {
        L.attn_norm = cv.take<bf16>(d);
        L.wqkv = cv.take<bf16>((H + 2 * KVH) * D * d);
        L.q_norm = c.qk_norm ? cv.take<bf16>(D) : nullptr;
        L.k_norm = c.qk_norm ? cv.take<bf16>(D) : nullptr;
        L.wo = cv.take<bf16>(d * H * D);
        L.mlp_norm = cv.take<bf16>(d);
        L.wgu = cv.take<bf16>(2 * F * d);
        L.w_down = cv.take<bf16>(d * F);
    }
    final_norm_ = cv.take<bf16>(d);
    w1_ = r > 0 ? cv.take<bf16>(V * r) : nullptr;
    w2_ = r > 0 ? cv.take<bf16>(V * r) : nullptr;
    // the confidence head stays fp32: one dot product per draft, and z is compared against thresholds
    conf_w_ = cfg_.confidence ? cv.take<float>(d + (cfg_.confidence_with_markov ? r : 0)) : nullptr;
    conf_b_ = cv.take<float>(1);
    sts_ = cv.take<float>(size_t(cfg_.block_size));
    inv_freq_ = cv.take<float>(D / 2);
    return cv.off;
}

void DSparkCuda::upload(const DSparkWeights& w, const ModelWeights& target) {
    const Config& c = cfg_.layers;
    const size_t V = c.vocab, d = c.hidden;
    // dspark_load checked the drafter's own tensors; the target's are checked here
    if (target.embed.size() != V * d || (!target.cfg.tie_embeddings && target.lm_head.size() != V * d))
        throw Error("drafter " + name_ + ": the target's embedding or LM head is not (" + std::to_string(V) + ", " +
                    std::to_string(d) + ")");
    if (c.ffn % kGluGroup != 0)
        throw Error("drafter " + name_ + ": intermediate_size " + std::to_string(c.ffn) + " must be a multiple of " +
                    std::to_string(kGluGroup));
    if (int(w.sts.size()) != cfg_.block_size) throw Error("drafter " + name_ + ": STS temperatures missing");

    param_bytes_ = lay_out(nullptr, target.cfg);
    CUDA_CHECK(cudaMalloc(&params_, param_bytes_));
    lay_out(params_, target.cfg);
    std::vector<char> host(param_bytes_, 0);
    auto at = [&](const void* p) { return host.data() + (static_cast<const char*>(p) - params_); };
    auto put = [&](const bf16* to, std::initializer_list<const std::vector<float>*> parts) {
        bf16* dst = reinterpret_cast<bf16*>(at(to));
        for (const auto* part : parts)
            for (float v : *part) *dst++ = __float2bfloat16(v);
    };
    auto put_f32 = [&](const float* to, const std::vector<float>& v) {
        std::memcpy(at(to), v.data(), v.size() * sizeof(float));
    };
    put(embed_, {&target.embed});
    if (!target.cfg.tie_embeddings) put(lm_head_, {&target.lm_head});
    put(fc_, {&w.fc});
    put(hidden_norm_, {&w.hidden_norm});
    for (size_t l = 0; l < layers_.size(); l++)  // params_ and every tensor in it are 256-byte aligned
        layer_stage(reinterpret_cast<bf16*>(host.data()), reinterpret_cast<const bf16*>(params_), layers_[l],
                    w.layers[l], c);
    put(final_norm_, {&w.final_norm});
    if (w1_) {
        put(w1_, {&w.markov_w1});
        put(w2_, {&w.markov_w2});
    }
    if (conf_w_) put_f32(conf_w_, w.conf_w);
    put_f32(conf_b_, {w.conf_b});
    put_f32(sts_, w.sts);
    const std::vector<double> inv_freq = rope_inv_freq(c);
    put_f32(inv_freq_, std::vector<float>(inv_freq.begin(), inv_freq.end()));  // fp32, as the reference's angles
    CUDA_CHECK(cudaMemcpy(params_, host.data(), param_bytes_, cudaMemcpyHostToDevice));
}

// As CudaModel(Config, seed): every bf16 matrix uniform on (-0.0346,
// 0.0346) (std 0.02) from init_uniform's hash, norms at 1; the fp32 head
// small, STS temperatures 1. Values do not change a forward's time.
void DSparkCuda::init_random(const Config& target, uint64_t seed) {
    const Config& c = cfg_.layers;
    param_bytes_ = lay_out(nullptr, target);
    CUDA_CHECK(cudaMalloc(&params_, param_bytes_));
    lay_out(params_, target);
    // the bf16 weights are everything before the fp32 tail (conf_w_ or conf_b_)
    const char* fp32_start = reinterpret_cast<const char*>(conf_w_ ? conf_w_ : conf_b_);
    init_uniform(reinterpret_cast<bf16*>(params_), size_t(fp32_start - params_) / sizeof(bf16), 0.0346f, seed,
                 stream_);
    const size_t d = c.hidden, D = c.head_dim;
    auto ones = [&](const bf16* p, size_t n) { init_fill(const_cast<bf16*>(p), n, 1.0f, stream_); };
    ones(hidden_norm_, d);
    ones(final_norm_, d);
    for (const CudaLayer& L : layers_) {
        ones(L.attn_norm, d);
        ones(L.mlp_norm, d);
        if (L.q_norm) ones(L.q_norm, D);
        if (L.k_norm) ones(L.k_norm, D);
    }
    std::vector<float> tail((param_bytes_ - size_t(fp32_start - params_)) / sizeof(float), 0.0f);
    auto at = [&](const float* p) { return tail.data() + (reinterpret_cast<const char*>(p) - fp32_start) / 4; };
    if (conf_w_) {
        const size_t n = d + (cfg_.confidence_with_markov ? size_t(cfg_.markov_rank) : 0);
        for (size_t i = 0; i < n; i++) at(conf_w_)[i] = 0.01f * float(int(i % 7) - 3);
    }
    for (int k = 0; k < cfg_.block_size; k++) at(sts_)[k] = 1.0f;
    const std::vector<double> inv_freq = rope_inv_freq(c);
    for (size_t i = 0; i < inv_freq.size(); i++) at(inv_freq_)[i] = float(inv_freq[i]);
    CUDA_CHECK(cudaMemcpyAsync(const_cast<char*>(fp32_start), tail.data(), tail.size() * sizeof(float),
                               cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// The CPU drafter's checks, word for word, plus: `hidden` must be device memory.
void DSparkCuda::check(const DraftBatch& b) const {
    const size_t n_ctx = draft_batch_check(b, name_, n_slots(), gamma_, cfg_.layers.vocab, true);
    if (n_ctx > 0) device_pointer_check(b.hidden, "drafter " + name_ + ": hidden");
}

void DSparkCuda::draft(const DraftBatch& b, DraftOutput* out) {
    check(b);
    const int S = static_cast<int>(b.slot.size()), G = cfg_.block_size;

    // --- the plan: each slot grows by its new context and, when it drafts,
    //     by the G rows of its block (transient: truncated below)
    Plan p;
    p.old_len.resize(size_t(S));
    std::vector<int> add(static_cast<size_t>(S));
    for (int s = 0; s < S; s++) {
        p.old_len[size_t(s)] = kv_.len(b.slot[size_t(s)]);
        add[size_t(s)] = b.n_ctx[size_t(s)] + (b.n_draft[size_t(s)] > 0 ? G : 0);
        p.n_ctx += b.n_ctx[size_t(s)];
        if (b.n_draft[size_t(s)] > 0) p.drafting.push_back(s);
        p.max_draft = std::max(p.max_draft, b.n_draft[size_t(s)]);
    }
    kv_.grow(b.slot, add);  // all or nothing: "KV cache full" leaves every slot as it was
    const size_t SG = size_t(S) * gamma_;
    try {
        for (int s : p.drafting)
            p.max_blocks = std::max(p.max_blocks, static_cast<int>(kv_.blocks(b.slot[size_t(s)]).size()));
        enqueue(b, p);
        for (int s = 0; s < S; s++) kv_.truncate(b.slot[size_t(s)], p.old_len[size_t(s)] + b.n_ctx[size_t(s)]);
        // --- 4. the host's share, in one copy
        if (SG > 0) {
            if (result_host_bytes_ < 4 * SG * 4) {
                CUDA_CHECK(cudaFreeHost(result_host_));
                result_host_ = nullptr;
                result_host_bytes_ = 0;
                CUDA_CHECK(cudaMallocHost(&result_host_, 4 * SG * 4));
                result_host_bytes_ = 4 * SG * 4;
            }
            const size_t q_bytes = aligned(SG * size_t(cfg_.layers.vocab) * sizeof(float));
            CUDA_CHECK(cudaMemcpyAsync(result_host_, outs_.p + q_bytes, 4 * SG * 4, cudaMemcpyDeviceToHost, stream_));
        }
        CUDA_CHECK(cudaStreamSynchronize(stream_));
    } catch (...) {
        // back to the lengths before the call (the rows written since are past them)
        for (int s = 0; s < S; s++)
            if (kv_.len(b.slot[size_t(s)]) > p.old_len[size_t(s)]) kv_.truncate(b.slot[size_t(s)], p.old_len[size_t(s)]);
        throw;
    }
    out->gamma = gamma_;
    out->vocab = cfg_.layers.vocab;
    out->q = reinterpret_cast<const float*>(outs_.p);
    const int* tokens = static_cast<const int*>(result_host_);
    const float* conf = reinterpret_cast<const float*>(tokens + SG);
    out->tokens.assign(tokens, tokens + SG);
    out->q_token.assign(conf + 2 * SG, conf + 3 * SG);
    if (has_confidence()) {
        out->conf_logit.assign(conf, conf + SG);
        out->conf.assign(conf + SG, conf + 2 * SG);
    } else {
        out->conf_logit.clear();
        out->conf.clear();
    }
}

void DSparkCuda::enqueue(const DraftBatch& b, const Plan& p) {
    const Config& c = cfg_.layers;
    const int S = static_cast<int>(b.slot.size()), V = c.vocab, d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads;
    const int D = c.head_dim, F = c.ffn, G = cfg_.block_size, r = cfg_.markov_rank, gamma = gamma_;
    const int m = static_cast<int>(cfg_.target_layers.size()), R = static_cast<int>(p.drafting.size());
    const int n = p.n_ctx, TB = R * G, bs = kv_.block_size(), max_blocks = p.max_blocks;
    const float eps = static_cast<float>(c.rms_eps);
    const size_t SG = size_t(S) * gamma;
    auto cache_row = [&](int slot, int pos) {
        const std::vector<int>& blocks = kv_.blocks(slot);
        return blocks[size_t(pos / bs)] * bs + pos % bs;
    };

    // --- 0. metadata: one packed upload (u64 RNG rows first, 8-byte aligned)
    size_t words = 0;
    auto take = [&](size_t count) {
        const size_t at = words;
        words += count;
        return at;
    };
    const size_t o_rng = take(2 * size_t(R)), o_temp = take(R);
    const size_t o_ctx_row = take(n), o_ctx_pos = take(n), o_ctx_slot = take(n);
    const size_t o_tok = take(TB), o_pos = take(TB), o_mask = take(TB), o_seq = take(TB), o_slot = take(TB);
    const size_t o_tables = take(size_t(R) * max_blocks), o_anchor = take(R), o_ndraft = take(R), o_row = take(R);
    const size_t o_forced = take(size_t(R) * gamma);
    meta_host_.assign(std::max<size_t>(words, 1), 0);
    int* mh = meta_host_.data();
    for (int s = 0, i = 0; s < S; s++) {  // the new context: positions old_len .. old_len + n_ctx - 1
        for (int j = 0; j < b.n_ctx[size_t(s)]; j++, i++) {
            const int pos = p.old_len[size_t(s)] + j;
            mh[o_ctx_row + i] = b.ctx_row[size_t(i)];
            mh[o_ctx_pos + i] = pos;
            mh[o_ctx_slot + i] = cache_row(b.slot[size_t(s)], pos);
        }
    }
    for (int j = 0; j < R; j++) {  // the blocks: [anchor, MASK x (G-1)] at anchor_pos + k
        const int s = p.drafting[size_t(j)], slot = b.slot[size_t(s)];
        const int anchor_pos = p.old_len[size_t(s)] + b.n_ctx[size_t(s)];
        const uint64_t row = counter_row(b.seed, RNG_DRAFT, b.request[size_t(s)], anchor_pos);
        std::memcpy(mh + o_rng + 2 * size_t(j), &row, sizeof row);
        std::memcpy(mh + o_temp + j, &b.temperature[size_t(s)], sizeof(float));
        for (int k = 0; k < G; k++) {
            const int t = j * G + k;
            mh[o_tok + t] = k == 0 ? b.anchor[size_t(s)] : cfg_.mask_token;
            mh[o_pos + t] = anchor_pos + k;
            mh[o_mask + t] = anchor_pos + G - 1;  // bidirectional inside the block
            mh[o_seq + t] = j;
            mh[o_slot + t] = cache_row(slot, anchor_pos + k);
        }
        const std::vector<int>& blocks = kv_.blocks(slot);
        std::copy(blocks.begin(), blocks.end(), mh + o_tables + size_t(j) * max_blocks);
        mh[o_anchor + j] = b.anchor[size_t(s)];
        mh[o_ndraft + j] = b.n_draft[size_t(s)];
        mh[o_row + j] = s;
        for (int k = 0; k < gamma; k++)
            mh[o_forced + size_t(j) * gamma + k] = b.forced.empty() ? -1 : b.forced[size_t(s) * gamma + k];
    }
    meta_.reserve(meta_host_.size() * sizeof(int), stream_);
    // pageable source: the call returns once the data is staged, so meta_host_ may change after
    CUDA_CHECK(cudaMemcpyAsync(meta_.p, mh, meta_host_.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
    const int* md = reinterpret_cast<const int*>(meta_.p);

    // --- per-call memory: outputs (q, then tokens | conf_logit | conf | q_token), context and block activations
    auto lay_outs = [&](char* base, float** q, int** res) {
        Carve cv{base};
        *q = cv.take<float>(SG * V);
        *res = cv.take<int>(4 * SG);
        return cv.off;
    };
    float* q = nullptr;
    int* res = nullptr;
    outs_.reserve(lay_outs(nullptr, &q, &res), stream_);
    lay_outs(outs_.p, &q, &res);
    if (SG > 0) {
        CUDA_CHECK(cudaMemsetAsync(res, 0xFF, SG * sizeof(int), stream_));  // tokens: -1 where nothing is drafted
        CUDA_CHECK(cudaMemsetAsync(res + SG, 0, 3 * SG * sizeof(float), stream_));
    }

    // --- 1. the context: features, H_ctx, every layer's K/V into the cache
    if (n > 0) {
        struct {
            bf16 *f, *hc, *kvc;
            float* xc;
        } a{};
        auto lay_ctx = [&](char* base) {
            Carve cv{base};
            a.f = cv.take<bf16>(size_t(n) * m * d);
            a.xc = cv.take<float>(size_t(n) * d);
            a.hc = cv.take<bf16>(size_t(n) * d);
            a.kvc = cv.take<bf16>(size_t(n) * 2 * KVH * D);
            return cv.off;
        };
        ctx_.reserve(lay_ctx(nullptr), stream_);
        lay_ctx(ctx_.p);
        gather_features(a.f, b.hidden, md + o_ctx_row, n, m, b.hidden_T, d, stream_);
        matmul_forward(cublas_, a.xc, Epilogue::Fp32, a.f, fc_, n, m * d, d);
        rmsnorm_forward(a.hc, a.xc, nullptr, hidden_norm_, n, d, eps, stream_);
        for (size_t l = 0; l < layers_.size(); l++) {
            const CudaLayer& L = layers_[l];
            // the k|v rows of the fused projection (q is not needed for the context)
            const bf16* wkv = L.wqkv + size_t(H) * D * d;
            matmul_forward(cublas_, a.kvc, Epilogue::Bf16, a.hc, wkv, n, d, 2 * KVH * D);
            // H = 0 query heads: k_norm + RoPE on the k heads, then k and v into the cache
            rope_forward(a.kvc, md + o_ctx_pos, inv_freq_, nullptr, L.k_norm, n, 0, KVH, D, eps, stream_,
                         kv_.k(int(l)), kv_.v(int(l)), md + o_ctx_slot);
        }
    }
    if (R == 0) return;

    // --- 2. the block
    struct {
        float *x, *U, *bias;
        bf16 *xn, *qkv, *att, *gu, *act, *h, *w1_rows;
        char* markov;
    } a{};
    auto lay_block = [&](char* base) {
        Carve cv{base};
        const size_t t = size_t(TB);
        a.x = cv.take<float>(t * d);
        a.xn = cv.take<bf16>(t * d);
        a.qkv = cv.take<bf16>(t * (H + 2 * KVH) * D);
        a.att = cv.take<bf16>(t * H * D);
        a.gu = cv.take<bf16>(t * 2 * F);
        a.act = cv.take<bf16>(t * F);
        a.h = cv.take<bf16>(t * d);
        a.U = cv.take<float>(t * V);
        a.w1_rows = cv.take<bf16>(size_t(R) * std::max(r, 1));
        a.bias = cv.take<float>(r > 0 ? size_t(R) * V : 1);
        a.markov = cv.take<char>(markov_scratch_bytes(TB));
        return cv.off;
    };
    block_.reserve(lay_block(nullptr), stream_);
    lay_block(block_.p);
    const size_t work_bytes = attention_workspace_bytes(TB, H, KVH, D, max_blocks, bs);
    attn_work_.reserve(work_bytes, stream_);
    const int *d_tok = md + o_tok, *d_pos = md + o_pos, *d_mask = md + o_mask, *d_seq = md + o_seq;
    const int *d_slot = md + o_slot, *d_tables = md + o_tables;

    embed_forward(a.x, d_tok, embed_, TB, d, stream_);
    for (size_t l = 0; l < layers_.size(); l++) {
        const CudaLayer& L = layers_[l];
        const RmsnormInput attn_in{a.x, L.attn_norm, eps}, mlp_in{a.x, L.mlp_norm, eps};
        matmul_forward(cublas_, a.qkv, Epilogue::Bf16, a.xn, L.wqkv, TB, d, (H + 2 * KVH) * D, nullptr, &attn_in);
        rope_forward(a.qkv, d_pos, inv_freq_, L.q_norm, L.k_norm, TB, H, KVH, D, eps, stream_, kv_.k(int(l)),
                     kv_.v(int(l)), d_slot);
        attention_forward(a.att, a.qkv, kv_.k(int(l)), kv_.v(int(l)), d_tables, max_blocks, bs, d_seq, d_mask, TB, R,
                          H, KVH, D, attn_work_.p, attn_work_.bytes, stream_);
        matmul_forward(cublas_, a.x, Epilogue::AddFp32, a.att, L.wo, TB, H * D, d);
        matmul_forward(cublas_, a.act, Epilogue::SwiGLU, a.xn, L.wgu, TB, d, 2 * F, a.gu, &mlp_in);
        matmul_forward(cublas_, a.x, Epilogue::AddFp32, a.act, L.w_down, TB, F, d);
    }
    // h is kept (not fused into the LM head's GEMV): the confidence head reads it too
    rmsnorm_forward(a.h, a.x, nullptr, final_norm_, TB, d, eps, stream_);
    matmul_forward(cublas_, a.U, Epilogue::Fp32, a.h, lm_head_, TB, d, V);

    // --- 3. the sequential loop
    MarkovStep ms;
    ms.U = a.U;
    ms.bias = r > 0 ? a.bias : nullptr;
    ms.h = a.h;
    ms.w1_rows = r > 0 ? a.w1_rows : nullptr;
    ms.w1 = w1_;
    ms.conf_w = conf_w_;
    ms.conf_b = conf_b_;
    ms.sts = sts_;
    ms.conf_markov = cfg_.confidence_with_markov ? 1 : 0;
    ms.n_draft = md + o_ndraft;
    ms.temperature = reinterpret_cast<const float*>(md + o_temp);
    ms.rng = reinterpret_cast<const uint64_t*>(md + o_rng);
    ms.out_row = md + o_row;
    ms.forced = md + o_forced;
    ms.tokens = res;
    ms.conf_logit = reinterpret_cast<float*>(res + SG);
    ms.conf = reinterpret_cast<float*>(res + 2 * SG);
    ms.q_token = reinterpret_cast<float*>(res + 3 * SG);
    bool sampling = false;
    for (int s : p.drafting) sampling = sampling || b.temperature[size_t(s)] > 0.0f;
    ms.q = sampling ? q : nullptr;
    ms.scratch = a.markov;
    ms.R = R;
    ms.G = G;
    ms.gamma = gamma;
    ms.V = V;
    ms.d = d;
    ms.r = r;
    markov_scratch_clear(a.markov, TB, stream_);
    if (r > 0) {
        gather_rows(a.w1_rows, w1_, md + o_anchor, R, r, stream_);  // x_{-1} = the anchor
        for (int k = 0; k < p.max_draft; k++) {
            matmul_forward(cublas_, a.bias, Epilogue::Fp32, a.w1_rows, w2_, R, r, V);
            markov_step_forward(ms, k, 1, stream_);
        }
    } else {
        markov_step_forward(ms, 0, p.max_draft, stream_);  // DFlash: the slots are independent
    }
}

// The shapes of enqueue's projections: the context's (n tokens), the
// block's (R G tokens) and the Markov bias (R rows).
void DSparkCuda::warm(int max_ctx) {
    const Config& c = cfg_.layers;
    const int d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads, D = c.head_dim, V = c.vocab;
    const int m = static_cast<int>(cfg_.target_layers.size()), R = n_slots(), TB = R * cfg_.block_size;
    const CudaLayer& L = layers_.front();  // every layer has the same shapes
    std::vector<GemmShape> shapes = layer_gemm_shapes(L, c, TB);
    shapes.push_back({Epilogue::Fp32, lm_head_, d, V, TB});
    shapes.push_back({Epilogue::Fp32, fc_, m * d, d, max_ctx});
    shapes.push_back({Epilogue::Bf16, L.wqkv + size_t(H) * D * d, d, 2 * KVH * D, max_ctx});  // the context's k|v
    if (cfg_.markov_rank > 0) shapes.push_back({Epilogue::Fp32, w2_, cfg_.markov_rank, V, R});
    matmul_warm(cublas_, shapes);
}

}  // namespace

std::unique_ptr<Drafter> drafter_dspark_cuda(const std::string& dir, const ModelWeights& target, int n_slots,
                                             int gamma, const KvCacheOptions& kv) {
    DSparkWeights w = dspark_load(dir, target.cfg);
    if (gamma <= 0) gamma = w.cfg.block_size;
    if (gamma > w.cfg.block_size)
        throw Error(dir + "/config.json: block_size: the drafter drafts " + std::to_string(w.cfg.block_size) +
                    " tokens per block, fewer than the " + std::to_string(gamma) + " asked for");
    if (n_slots < 1) throw Error("drafter_dspark_cuda: n_slots must be >= 1, got " + std::to_string(n_slots));
    return std::make_unique<DSparkCuda>(dir, w, target, n_slots, gamma, kv);
}

std::unique_ptr<Drafter> drafter_dspark_cuda_random(const Config& target, const DSparkConfig& cfg, uint64_t seed,
                                                    int n_slots, int gamma, const KvCacheOptions& kv) {
    config_check(cfg.layers, "drafter_dspark_cuda_random");
    if (gamma < 1 || gamma > cfg.block_size || n_slots < 1 || cfg.layers.hidden != target.hidden ||
        cfg.layers.vocab != target.vocab || cfg.layers.ffn % kGluGroup != 0)
        throw Error("drafter_dspark_cuda_random: gamma 1..block_size, n_slots >= 1, the target's hidden size and "
                    "vocabulary, and an intermediate size that is a multiple of 8 expected");
    return std::make_unique<DSparkCuda>(cfg, target, seed, n_slots, gamma, kv);
}

}  // namespace sp
