// drafter_eagle3_cuda.cpp: the EAGLE-3 drafter (eagle3.h) on the GPU:
// drafter_eagle3.cpp's computation in the CUDA forward's numerics (bf16
// weights and activations, fp32 residual stream, logits and accumulation),
// from the target's kernels (kernels.h) plus gather.cu, eagle3.cu and
// markov.cu. Host code only, laid out as drafter_dspark_cuda.cpp.
//
// State: in a paged KvCache of the one draft layer, the key (after k_norm
// and RoPE) and value of the step-0 entry of every committed position i
// (the target's features of i with the token at i + 1, RoPE position i);
// and per slot, on the device, last_h: the fc output of its last committed
// position, the residual of draft 1 (the CPU reference's last_h). The CPU
// reference also keeps that entry's query; here it is recomputed from
// (anchor, last_h) at position anchor_pos - 1 as chain step 0, which
// serves a call that brings no new context (the draft after a flush) the
// same way as one that does. That step's key and value are not written
// again (the cache already holds them, from the call that brought the
// position).
//
// A call, all of it enqueued on the drafter's stream, then one copy back:
//   0. one upload of the packed metadata; the outputs cleared (2 memsets)
//   1. context, every new context token of every request (n of them):
//        f  = gather_features(hidden)              (n, m d) bf16
//        h0 = f @ fc^T                             (n, d) fp32
//        x2 = [input_norm(embed(next)) ; hidden_norm(h0)]   (n, 2d) bf16
//             (next: the following context token, or the anchor)
//        kv = x2 @ [wk|wv]^T, then k_norm + RoPE at the token's position
//        and the cache write (rope_forward with H = 0 query heads)
//        last_h[slot] = h0 of each request's last new position
//                                                          6 kernels
//   2. the chain, j = 0 .. max n_draft - 1, one row per request still
//      drafting (requests sorted by n_draft, longest first, so that the
//      rows of step j are a prefix), at position anchor_pos - 1 + j:
//        x  = last_h[slot] (j = 0) or the step before's output (fp32)
//        x2 = [input_norm(embed(tok)) ; hidden_norm(x)]
//             (tok: the anchor at j = 0, then draft j - 1 or its forced token)
//        qkv = x2 @ wqkv^T; QK-norm + RoPE (+ the cache write for j > 0);
//        attention over positions 0 .. anchor_pos - 1 + j (every step-0
//        entry and the chain's own); x += att wo; x += mlp(mlp_norm(x));
//        logits = lm_head(final_norm(x)) (fp32); the draw (markov.cu with
//        no Markov head: token, q when sampling, q_token)
//                                         9-11 kernels a step, 2 before
//      The chain's K/V go into cache rows anchor_pos .. anchor_pos +
//      n_draft - 2 (grown for the call, truncated after: transient).
//   3. tokens and q_token copied back (one copy), synchronise.
// For the tiny fixture (gamma 4): about 50 launches per call.
//
// The embedding and LM head are the target's, in a bf16 copy of this
// drafter's own, as drafter_dspark_cuda.cpp does (see its header).
#include "engine/drafter_cuda.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "engine/counter_rng.h"
#include "engine/cuda_model.h"  // CudaLayer, layer_stage
#include "engine/eagle3.h"
#include "engine/kernels.h"
#include "engine/reference.h"  // rope_inv_freq

namespace sp {

namespace {

class Eagle3Cuda final : public Drafter {
public:
    Eagle3Cuda(std::string dir, const Eagle3Weights& w, const ModelWeights& target, int n_slots, int gamma,
               const KvCacheOptions& kv);
    // Random weights of the shape cfg describes, made on the device (timing).
    Eagle3Cuda(const Eagle3Config& cfg, const Config& target, uint64_t seed, int n_slots, int gamma,
               const KvCacheOptions& kv);
    ~Eagle3Cuda() override { release(); }
    Eagle3Cuda(const Eagle3Cuda&) = delete;
    Eagle3Cuda& operator=(const Eagle3Cuda&) = delete;

    const char* kind() const override { return "eagle3"; }
    const std::string& name() const override { return name_; }
    const char* device() const override { return "cuda"; }
    int gamma() const override { return gamma_; }
    int n_slots() const override { return kv_.n_seqs(); }
    int len(int slot) const override { return kv_.len(slot); }
    const std::vector<int>& target_layers() const override { return cfg_.target_layers; }
    void reset(int slot) override {
        kv_.truncate(slot, 0);
        last_token_.at(size_t(slot)) = -1;
    }
    void draft(const DraftBatch& b, DraftOutput* out) override;

private:
    // Where this call's requests sit: computed on the host before anything is enqueued.
    struct Plan {
        std::vector<int> drafting;  // (R) indices s of the requests with n_draft > 0, most drafts first
        std::vector<int> active;    // (max_draft) rows of chain step j: requests with n_draft > j
        std::vector<int> old_len;   // (S) each slot's context length before the call
        int n_ctx = 0, n_last = 0, max_draft = 0, max_blocks = 1;
    };
    void check(const DraftBatch& b) const;
    size_t lay_out(char* base, const Config& target);  // weight pointers into base (sizes only when null)
    void upload(const Eagle3Weights& w, const ModelWeights& target);
    void init_random(const Config& target, uint64_t seed);
    void init_state();  // stream, cuBLAS, last_h_
    void enqueue(const DraftBatch& b, const Plan& p);
    void release();

    std::string name_;
    Eagle3Config cfg_;
    int gamma_;
    KvCache kv_;
    cudaStream_t stream_ = nullptr;
    Cublas cublas_;
    // weights, one allocation: bf16 matrices and norms, then the fp32 RoPE constants
    char* params_ = nullptr;
    size_t param_bytes_ = 0;
    const bf16* embed_ = nullptr;        // (V, d) the target's
    const bf16* lm_head_ = nullptr;      // (V, d) the target's; embed_ when tied
    const bf16* fc_ = nullptr;           // (d, m d)
    const bf16* hidden_norm_ = nullptr;  // (d)
    CudaLayer layer_{};                  // wqkv ((H + 2 KVH) D, 2d); attn_norm is input_layernorm; wgu interleaved
    const bf16* final_norm_ = nullptr;   // (d)
    const float* inv_freq_ = nullptr;    // (D/2)
    // per slot: the fc output of its last committed position (device), and
    // the token that entry was made with (host; -1: none), which a call
    // without new context must bring as its anchor
    float* last_h_ = nullptr;  // (n_slots, d)
    std::vector<int> last_token_;
    // per-call memory, grown on demand
    DeviceBuffer meta_, ctx_, chain_, outs_, attn_work_;
    std::vector<int> meta_host_;
    void* result_host_ = nullptr;  // pinned: tokens, q_token (2 S gamma words)
    size_t result_host_bytes_ = 0;
};

Eagle3Cuda::Eagle3Cuda(std::string dir, const Eagle3Weights& w, const ModelWeights& target, int n_slots, int gamma,
                       const KvCacheOptions& kv)
    : name_(std::move(dir)), cfg_(w.cfg), gamma_(gamma), kv_(w.cfg.layers, n_slots, kv),
      last_token_(size_t(n_slots), -1) {
    try {
        init_state();
        upload(w, target);
    } catch (...) {
        release();
        throw;
    }
}

Eagle3Cuda::Eagle3Cuda(const Eagle3Config& cfg, const Config& target, uint64_t seed, int n_slots, int gamma,
                       const KvCacheOptions& kv)
    : name_("random:" + target.name), cfg_(cfg), gamma_(gamma), kv_(cfg.layers, n_slots, kv),
      last_token_(size_t(n_slots), -1) {
    try {
        init_state();
        init_random(target, seed);
    } catch (...) {
        release();
        throw;
    }
}

void Eagle3Cuda::init_state() {
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    cublas_ = cublas_create(stream_);
    CUDA_CHECK(cudaMalloc(&last_h_, size_t(n_slots()) * cfg_.layers.hidden * sizeof(float)));
}

void Eagle3Cuda::release() {
    // unchecked: runs from the destructor
    if (stream_) cudaStreamSynchronize(stream_);
    cublas_destroy(cublas_);
    cudaFree(params_);
    params_ = nullptr;
    cudaFree(last_h_);
    last_h_ = nullptr;
    for (DeviceBuffer* buf : {&meta_, &ctx_, &chain_, &outs_, &attn_work_}) buf->release();
    cudaFreeHost(result_host_);
    result_host_ = nullptr;
    if (stream_) cudaStreamDestroy(stream_);
    stream_ = nullptr;
}

size_t Eagle3Cuda::lay_out(char* base, const Config& target) {
    const Config& c = cfg_.layers;
    const size_t V = c.vocab, d = c.hidden, D = c.head_dim, F = c.ffn, H = c.n_heads, KVH = c.n_kv_heads;
    const size_t m = cfg_.target_layers.size();
    Carve cv{base};
    embed_ = cv.take<bf16>(V * d);
    lm_head_ = target.tie_embeddings ? embed_ : cv.take<bf16>(V * d);
    fc_ = cv.take<bf16>(d * m * d);
    hidden_norm_ = cv.take<bf16>(d);
    CudaLayer& L = layer_;
    L.attn_norm = cv.take<bf16>(d);
    L.wqkv = cv.take<bf16>((H + 2 * KVH) * D * 2 * d);  // the attention reads [embedding ; h]: 2d wide
    L.q_norm = c.qk_norm ? cv.take<bf16>(D) : nullptr;
    L.k_norm = c.qk_norm ? cv.take<bf16>(D) : nullptr;
    L.wo = cv.take<bf16>(d * H * D);
    L.mlp_norm = cv.take<bf16>(d);
    L.wgu = cv.take<bf16>(2 * F * d);
    L.w_down = cv.take<bf16>(d * F);
    final_norm_ = cv.take<bf16>(d);
    inv_freq_ = cv.take<float>(D / 2);
    return cv.off;
}

void Eagle3Cuda::upload(const Eagle3Weights& w, const ModelWeights& target) {
    const Config& c = cfg_.layers;
    const size_t V = c.vocab, d = c.hidden;
    // eagle3_load checked the drafter's own tensors; the target's are checked here
    if (target.embed.size() != V * d || (!target.cfg.tie_embeddings && target.lm_head.size() != V * d))
        throw Error("drafter " + name_ + ": the target's embedding or LM head is not (" + std::to_string(V) + ", " +
                    std::to_string(d) + ")");
    if (c.ffn % kGluGroup != 0)
        throw Error("drafter " + name_ + ": intermediate_size " + std::to_string(c.ffn) + " must be a multiple of " +
                    std::to_string(kGluGroup));

    param_bytes_ = lay_out(nullptr, target.cfg);
    CUDA_CHECK(cudaMalloc(&params_, param_bytes_));
    lay_out(params_, target.cfg);
    std::vector<char> host(param_bytes_, 0);
    auto at = [&](const void* p) { return host.data() + (static_cast<const char*>(p) - params_); };
    auto put = [&](const bf16* to, const std::vector<float>& v) {
        bf16* dst = reinterpret_cast<bf16*>(at(to));
        for (float x : v) *dst++ = __float2bfloat16(x);
    };
    put(embed_, target.embed);
    if (!target.cfg.tie_embeddings) put(lm_head_, target.lm_head);
    put(fc_, w.fc);
    put(hidden_norm_, w.hidden_norm);
    // wq|wk|wv are (rows, 2d): layer_stage concatenates them as they are
    layer_stage(reinterpret_cast<bf16*>(host.data()), reinterpret_cast<const bf16*>(params_), layer_, w.layer, c);
    put(final_norm_, w.final_norm);
    const std::vector<double> inv_freq = rope_inv_freq(c);
    for (size_t i = 0; i < inv_freq.size(); i++)  // fp32, as the reference's angles
        reinterpret_cast<float*>(at(inv_freq_))[i] = float(inv_freq[i]);
    CUDA_CHECK(cudaMemcpy(params_, host.data(), param_bytes_, cudaMemcpyHostToDevice));
}

// As CudaModel(Config, seed): every bf16 matrix uniform on (-0.0346,
// 0.0346) (std 0.02) from init_uniform's hash, norms at 1. Values do not
// change a forward's time.
void Eagle3Cuda::init_random(const Config& target, uint64_t seed) {
    const Config& c = cfg_.layers;
    param_bytes_ = lay_out(nullptr, target);
    CUDA_CHECK(cudaMalloc(&params_, param_bytes_));
    lay_out(params_, target);
    // the bf16 weights are everything before the fp32 tail (inv_freq_)
    const char* fp32_start = reinterpret_cast<const char*>(inv_freq_);
    init_uniform(reinterpret_cast<bf16*>(params_), size_t(fp32_start - params_) / sizeof(bf16), 0.0346f, seed,
                 stream_);
    const size_t d = c.hidden, D = c.head_dim;
    auto ones = [&](const bf16* p, size_t n) { init_fill(const_cast<bf16*>(p), n, 1.0f, stream_); };
    ones(hidden_norm_, d);
    ones(final_norm_, d);
    ones(layer_.attn_norm, d);
    ones(layer_.mlp_norm, d);
    if (layer_.q_norm) ones(layer_.q_norm, D);
    if (layer_.k_norm) ones(layer_.k_norm, D);
    const std::vector<double> inv_freq = rope_inv_freq(c);
    const std::vector<float> f32(inv_freq.begin(), inv_freq.end());
    CUDA_CHECK(cudaMemcpyAsync(const_cast<float*>(inv_freq_), f32.data(), f32.size() * sizeof(float),
                               cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// The CPU drafter's checks, word for word, plus: `hidden` must be device memory.
void Eagle3Cuda::check(const DraftBatch& b) const {
    const size_t n_ctx = draft_batch_check(b, name_, n_slots(), gamma_, cfg_.layers.vocab, true);
    // Draft 1 comes from the entry of the position before the anchor, made
    // with the anchor as its token: without new context, the slot's last
    // entry must have been made with this anchor (a context-only call, such
    // as the flush before a new request, leaves it so).
    for (size_t s = 0; s < b.slot.size(); s++) {
        const int slot = b.slot[s];
        if (b.n_draft[s] > 0 && b.n_ctx[s] == 0 && (kv_.len(slot) == 0 || last_token_[size_t(slot)] != b.anchor[s]))
            throw Error("drafter " + name_ + ": slot " + std::to_string(slot) +
                        ": an EAGLE-3 draft needs the features of the position before its anchor");
    }
    if (n_ctx > 0) device_pointer_check(b.hidden, "drafter " + name_ + ": hidden");
}

void Eagle3Cuda::draft(const DraftBatch& b, DraftOutput* out) {
    check(b);
    const int S = static_cast<int>(b.slot.size());

    // --- the plan: each slot grows by its new context and, when it drafts
    //     n >= 2 tokens, by the n - 1 chain entries after the anchor's
    //     predecessor (transient: truncated below)
    Plan p;
    p.old_len.resize(size_t(S));
    std::vector<int> add(static_cast<size_t>(S));
    for (int s = 0; s < S; s++) {
        const int n_ctx = b.n_ctx[size_t(s)], n_draft = b.n_draft[size_t(s)];
        p.old_len[size_t(s)] = kv_.len(b.slot[size_t(s)]);
        add[size_t(s)] = n_ctx + std::max(n_draft - 1, 0);
        p.n_ctx += n_ctx;
        if (n_ctx > 0) p.n_last++;
        if (n_draft > 0) p.drafting.push_back(s);
        p.max_draft = std::max(p.max_draft, n_draft);
    }
    std::stable_sort(p.drafting.begin(), p.drafting.end(),
                     [&](int x, int y) { return b.n_draft[size_t(x)] > b.n_draft[size_t(y)]; });
    p.active.assign(size_t(p.max_draft), 0);
    for (int s : p.drafting)
        for (int j = 0; j < b.n_draft[size_t(s)]; j++) p.active[size_t(j)]++;
    kv_.grow(b.slot, add);  // all or nothing: "KV cache full" leaves every slot as it was
    const size_t SG = size_t(S) * gamma_;
    bool launched = false;
    try {
        for (int s : p.drafting)
            p.max_blocks = std::max(p.max_blocks, static_cast<int>(kv_.blocks(b.slot[size_t(s)]).size()));
        if (SG > 0 && result_host_bytes_ < 2 * SG * 4) {
            CUDA_CHECK(cudaFreeHost(result_host_));
            result_host_ = nullptr;
            result_host_bytes_ = 0;
            CUDA_CHECK(cudaMallocHost(&result_host_, 2 * SG * 4));
            result_host_bytes_ = 2 * SG * 4;
        }
        launched = true;
        enqueue(b, p);
        for (int s = 0; s < S; s++) kv_.truncate(b.slot[size_t(s)], p.old_len[size_t(s)] + b.n_ctx[size_t(s)]);
        // --- 3. the host's share, in one copy: tokens then q_token
        if (SG > 0) {
            const size_t q_bytes = aligned(SG * size_t(cfg_.layers.vocab) * sizeof(float));
            CUDA_CHECK(cudaMemcpyAsync(result_host_, outs_.p + q_bytes, 2 * SG * 4, cudaMemcpyDeviceToHost, stream_));
        }
        CUDA_CHECK(cudaStreamSynchronize(stream_));
    } catch (...) {
        // back to the lengths before the call (the rows written since are past them)
        for (int s = 0; s < S; s++) {
            const int slot = b.slot[size_t(s)];
            if (kv_.len(slot) > p.old_len[size_t(s)]) kv_.truncate(slot, p.old_len[size_t(s)]);
            // last_h of a slot that brought context may have been overwritten: a
            // later call must bring context again before it drafts
            if (launched && b.n_ctx[size_t(s)] > 0) last_token_[size_t(slot)] = -1;
        }
        throw;
    }
    // every slot that brought context now ends with the entry of (the position before the anchor, the anchor)
    for (int s = 0; s < S; s++)
        if (b.n_ctx[size_t(s)] > 0) last_token_[size_t(b.slot[size_t(s)])] = b.anchor[size_t(s)];
    out->gamma = gamma_;
    out->vocab = cfg_.layers.vocab;
    out->q = reinterpret_cast<const float*>(outs_.p);
    const int* tokens = static_cast<const int*>(result_host_);
    const float* q_token = reinterpret_cast<const float*>(tokens + SG);
    out->tokens.assign(tokens, tokens + SG);
    out->q_token.assign(q_token, q_token + SG);
    out->conf_logit.clear();
    out->conf.clear();
}

void Eagle3Cuda::enqueue(const DraftBatch& b, const Plan& p) {
    const Config& c = cfg_.layers;
    const int S = static_cast<int>(b.slot.size()), V = c.vocab, d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads;
    const int D = c.head_dim, F = c.ffn, gamma = gamma_;
    const int m = static_cast<int>(cfg_.target_layers.size()), R = static_cast<int>(p.drafting.size());
    const int n = p.n_ctx, J = p.max_draft, bs = kv_.block_size(), max_blocks = p.max_blocks;
    const float eps = static_cast<float>(c.rms_eps);
    const size_t SG = size_t(S) * gamma;
    const CudaLayer& L = layer_;
    auto cache_row = [&](int slot, int pos) {
        const std::vector<int>& blocks = kv_.blocks(slot);
        return blocks[size_t(pos / bs)] * bs + pos % bs;
    };

    // --- per-call memory, all of it sized before anything is enqueued:
    //     outputs (q, then tokens | q_token), context and chain activations
    auto lay_outs = [&](char* base, float** q, int** res) {
        Carve cv{base};
        *q = cv.take<float>(SG * V);
        *res = cv.take<int>(2 * SG);
        return cv.off;
    };
    struct {
        bf16 *f, *x2, *kv;
        float* h0;
    } ac{};
    auto lay_ctx = [&](char* base) {
        Carve cv{base};
        ac.f = cv.take<bf16>(size_t(n) * m * d);
        ac.h0 = cv.take<float>(size_t(n) * d);
        ac.x2 = cv.take<bf16>(size_t(n) * 2 * d);
        ac.kv = cv.take<bf16>(size_t(n) * 2 * KVH * D);
        return cv.off;
    };
    struct {
        float *x, *logits;
        bf16 *x2, *xn, *qkv, *att, *gu, *act;
        char* markov;
    } a{};
    auto lay_chain = [&](char* base) {
        Carve cv{base};
        const size_t t = size_t(R);
        a.x = cv.take<float>(t * d);
        a.x2 = cv.take<bf16>(t * 2 * d);
        a.xn = cv.take<bf16>(t * d);
        a.qkv = cv.take<bf16>(t * (H + 2 * KVH) * D);
        a.att = cv.take<bf16>(t * H * D);
        a.gu = cv.take<bf16>(t * 2 * F);
        a.act = cv.take<bf16>(t * F);
        a.logits = cv.take<float>(t * V);
        a.markov = cv.take<char>(markov_scratch_bytes(R * gamma));
        return cv.off;
    };
    float* q = nullptr;
    int* res = nullptr;
    outs_.reserve(lay_outs(nullptr, &q, &res), stream_);
    lay_outs(outs_.p, &q, &res);
    if (n > 0) {
        ctx_.reserve(lay_ctx(nullptr), stream_);
        lay_ctx(ctx_.p);
    }
    if (R > 0) {
        chain_.reserve(lay_chain(nullptr), stream_);
        lay_chain(chain_.p);
        size_t work_bytes = 0;
        for (int j = 0; j < J; j++) {
            const int T = p.active[size_t(j)];
            work_bytes = std::max(work_bytes, attention_workspace_bytes(T, H, KVH, D, max_blocks, bs));
        }
        attn_work_.reserve(work_bytes, stream_);
    }

    // --- 0. metadata: one packed upload (u64 RNG rows first, 8-byte aligned)
    size_t words = 0;
    auto take = [&](size_t count) {
        const size_t at = words;
        words += count;
        return at;
    };
    const size_t o_rng = take(2 * size_t(R)), o_temp = take(R);
    const size_t o_ctx_row = take(n), o_ctx_pos = take(n), o_ctx_slot = take(n), o_ctx_next = take(n);
    const size_t o_last_src = take(p.n_last), o_last_dst = take(p.n_last);
    const size_t o_anchor = take(R), o_ndraft = take(R), o_row = take(R), o_iota = take(R), o_lh = take(R);
    const size_t o_tables = take(size_t(R) * max_blocks), o_forced = take(size_t(R) * gamma);
    const size_t o_pos = take(size_t(J) * R), o_slot = take(size_t(J) * R);
    meta_host_.assign(std::max<size_t>(words, 1), 0);
    int* mh = meta_host_.data();
    for (int s = 0, i = 0, last = 0; s < S; s++) {  // the new context: positions old_len .. old_len + n_ctx - 1
        const int n_ctx = b.n_ctx[size_t(s)];
        for (int j = 0; j < n_ctx; j++, i++) {
            const int pos = p.old_len[size_t(s)] + j;
            mh[o_ctx_row + i] = b.ctx_row[size_t(i)];
            mh[o_ctx_pos + i] = pos;
            mh[o_ctx_slot + i] = cache_row(b.slot[size_t(s)], pos);
            // the entry of position pos pairs its features with the token at pos + 1
            mh[o_ctx_next + i] = j + 1 < n_ctx ? b.ctx_tokens[size_t(i) + 1] : b.anchor[size_t(s)];
        }
        if (n_ctx > 0) {
            mh[o_last_src + last] = i - 1;
            mh[o_last_dst + last] = b.slot[size_t(s)];
            last++;
        }
    }
    for (int i = 0; i < R; i++) {  // the chain: row i is request drafting[i] at every step
        const int s = p.drafting[size_t(i)], slot = b.slot[size_t(s)];
        const int anchor_pos = p.old_len[size_t(s)] + b.n_ctx[size_t(s)];
        const uint64_t row = counter_row(b.seed, RNG_DRAFT, b.request[size_t(s)], anchor_pos);
        std::memcpy(mh + o_rng + 2 * size_t(i), &row, sizeof row);
        std::memcpy(mh + o_temp + i, &b.temperature[size_t(s)], sizeof(float));
        mh[o_anchor + i] = b.anchor[size_t(s)];
        mh[o_ndraft + i] = b.n_draft[size_t(s)];
        mh[o_row + i] = s;
        mh[o_iota + i] = i;
        mh[o_lh + i] = slot;
        const std::vector<int>& blocks = kv_.blocks(slot);
        std::copy(blocks.begin(), blocks.end(), mh + o_tables + size_t(i) * max_blocks);
        for (int k = 0; k < gamma; k++)
            mh[o_forced + size_t(i) * gamma + k] = b.forced.empty() ? -1 : b.forced[size_t(s) * gamma + k];
        for (int j = 0; j < b.n_draft[size_t(s)]; j++) {  // step j sits at anchor_pos - 1 + j
            const int pos = anchor_pos - 1 + j;
            mh[o_pos + size_t(j) * R + i] = pos;
            mh[o_slot + size_t(j) * R + i] = j > 0 ? cache_row(slot, pos) : -1;  // step 0's entry is in the cache
        }
    }
    meta_.reserve(meta_host_.size() * sizeof(int), stream_);
    // pageable source: the call returns once the data is staged, so meta_host_ may change after
    CUDA_CHECK(cudaMemcpyAsync(meta_.p, mh, meta_host_.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
    const int* md = reinterpret_cast<const int*>(meta_.p);
    if (SG > 0) {
        CUDA_CHECK(cudaMemsetAsync(res, 0xFF, SG * sizeof(int), stream_));  // tokens: -1 where nothing is drafted
        CUDA_CHECK(cudaMemsetAsync(res + SG, 0, SG * sizeof(float), stream_));
    }

    // --- 1. the context: step-0 entries into the cache, each slot's last h0 kept
    if (n > 0) {
        gather_features(ac.f, b.hidden, md + o_ctx_row, n, m, b.hidden_T, d, stream_);
        matmul_forward(cublas_, ac.h0, Epilogue::Fp32, ac.f, fc_, n, m * d, d);
        eagle3_input_forward(ac.x2, embed_, ac.h0, L.attn_norm, hidden_norm_, n, d, eps, stream_, md + o_ctx_next);
        // the k|v rows of the fused projection (the context's queries are not needed)
        const bf16* wkv = L.wqkv + size_t(H) * D * 2 * d;
        matmul_forward(cublas_, ac.kv, Epilogue::Bf16, ac.x2, wkv, n, 2 * d, 2 * KVH * D);
        // H = 0 query heads: k_norm + RoPE on the k heads, then k and v into the cache
        rope_forward(ac.kv, md + o_ctx_pos, inv_freq_, nullptr, L.k_norm, n, 0, KVH, D, eps, stream_, kv_.k(0),
                     kv_.v(0), md + o_ctx_slot);
        copy_rows(last_h_, md + o_last_dst, ac.h0, md + o_last_src, p.n_last, d, stream_);
    }
    if (R == 0) return;

    // --- 2. the chain
    MarkovStep ms;  // the draw of markov.cu without a Markov or confidence head
    ms.U = a.logits;
    ms.u_row = md + o_iota;
    ms.n_draft = md + o_ndraft;
    ms.temperature = reinterpret_cast<const float*>(md + o_temp);
    ms.rng = reinterpret_cast<const uint64_t*>(md + o_rng);
    ms.out_row = md + o_row;
    ms.forced = md + o_forced;
    ms.tokens = res;
    ms.q_token = reinterpret_cast<float*>(res + SG);
    bool sampling = false;
    for (int s : p.drafting) sampling = sampling || b.temperature[size_t(s)] > 0.0f;
    ms.q = sampling ? q : nullptr;
    ms.scratch = a.markov;
    ms.R = R;
    ms.G = gamma;
    ms.gamma = gamma;
    ms.V = V;
    ms.d = d;
    markov_scratch_clear(a.markov, R * gamma, stream_);

    const RmsnormInput mlp_in{a.x, L.mlp_norm, eps}, final_in{a.x, final_norm_, eps};
    copy_rows(a.x, nullptr, last_h_, md + o_lh, R, d, stream_);  // draft 1's residual: h of anchor_pos - 1
    for (int j = 0; j < J; j++) {
        const int T = p.active[size_t(j)];  // rows 0..T-1: the requests wanting more than j drafts
        const int *pos = md + o_pos + size_t(j) * R, *slot = md + o_slot + size_t(j) * R;
        if (j == 0)
            eagle3_input_forward(a.x2, embed_, a.x, L.attn_norm, hidden_norm_, T, d, eps, stream_, md + o_anchor);
        else  // draft j - 1, or its forced token, straight from the step before
            eagle3_input_forward(a.x2, embed_, a.x, L.attn_norm, hidden_norm_, T, d, eps, stream_, nullptr,
                                 md + o_forced, res, md + o_row, j - 1, gamma);
        matmul_forward(cublas_, a.qkv, Epilogue::Bf16, a.x2, L.wqkv, T, 2 * d, (H + 2 * KVH) * D);
        if (j == 0)  // the anchor's predecessor: its k and v are already in the cache
            rope_forward(a.qkv, pos, inv_freq_, L.q_norm, L.k_norm, T, H, KVH, D, eps, stream_);
        else
            rope_forward(a.qkv, pos, inv_freq_, L.q_norm, L.k_norm, T, H, KVH, D, eps, stream_, kv_.k(0), kv_.v(0),
                         slot);
        attention_forward(a.att, a.qkv, kv_.k(0), kv_.v(0), md + o_tables, max_blocks, bs, md + o_iota, pos, T, T,
                          H, KVH, D, attn_work_.p, attn_work_.bytes, stream_);
        matmul_forward(cublas_, a.x, Epilogue::AddFp32, a.att, L.wo, T, H * D, d);
        matmul_forward(cublas_, a.act, Epilogue::SwiGLU, a.xn, L.wgu, T, d, 2 * F, a.gu, &mlp_in);
        matmul_forward(cublas_, a.x, Epilogue::AddFp32, a.act, L.w_down, T, F, d);
        // x stays the layer's output (the next step's h); the head reads its final norm
        matmul_forward(cublas_, a.logits, Epilogue::Fp32, a.xn, lm_head_, T, d, V, nullptr, &final_in);
        markov_step_forward(ms, j, 1, stream_);
    }
}

}  // namespace

std::unique_ptr<Drafter> drafter_eagle3_cuda(const std::string& dir, const ModelWeights& target, int n_slots,
                                             int gamma, const KvCacheOptions& kv) {
    Eagle3Weights w = eagle3_load(dir, target.cfg);
    if (gamma <= 0) gamma = w.cfg.ttt_length;
    if (gamma > 64) throw Error("drafter " + dir + ": gamma must be in 1..64, got " + std::to_string(gamma));
    if (n_slots < 1) throw Error("drafter_eagle3_cuda: n_slots must be >= 1, got " + std::to_string(n_slots));
    return std::make_unique<Eagle3Cuda>(dir, w, target, n_slots, gamma, kv);
}

std::unique_ptr<Drafter> drafter_eagle3_cuda_random(const Config& target, const Eagle3Config& cfg, uint64_t seed,
                                                    int n_slots, int gamma, const KvCacheOptions& kv) {
    config_check(cfg.layers, "drafter_eagle3_cuda_random");
    if (gamma < 1 || gamma > 64 || n_slots < 1 || cfg.layers.n_layers != 1 || cfg.layers.hidden != target.hidden ||
        cfg.layers.vocab != target.vocab || cfg.layers.ffn % kGluGroup != 0 || cfg.target_layers.empty())
        throw Error("drafter_eagle3_cuda_random: gamma 1..64, n_slots >= 1, one draft layer of the target's hidden "
                    "size and vocabulary, an intermediate size that is a multiple of 8, and target layers expected");
    for (int l : cfg.target_layers)
        if (l < 0 || l >= target.n_layers - 1)
            throw Error("drafter_eagle3_cuda_random: target layer " + std::to_string(l) + " outside 0.." +
                        std::to_string(target.n_layers - 2));
    return std::make_unique<Eagle3Cuda>(cfg, target, seed, n_slots, gamma, kv);
}

}  // namespace sp
