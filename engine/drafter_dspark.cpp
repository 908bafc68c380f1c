// drafter_dspark.cpp: the CPU reference of the DSpark / DFlash drafter
// (dspark.h): fp32, one token at a time, written to be read top to bottom
// like reference_forward. tests/test_drafter.cpp holds it to our PyTorch
// implementation (tests/make_dspark_fixtures.py).
//
// Per slot it keeps, for every draft layer, the context keys (after k_norm
// and RoPE) and values of the committed positions; the block's own keys and
// values live only for the call (digest §1.4: the cache is cropped back to
// the context after each block).
#include <cmath>
#include <string>
#include <utility>

#include "engine/counter_rng.h"
#include "engine/cpu_math.h"
#include "engine/drafter.h"
#include "engine/dspark.h"
#include "engine/verify.h"

namespace sp {

namespace {

using namespace cpu;
float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

class DSparkCpu final : public Drafter {
public:
    DSparkCpu(std::string dir, DSparkWeights w, const ModelWeights& target, int n_slots, int gamma)
        : name_(std::move(dir)), w_(std::move(w)), target_(target), gamma_(gamma),
          inv_freq_(rope_inv_freq(w_.cfg.layers)), slots_(n_slots) {
        for (Slot& s : slots_) {
            s.k.assign(w_.layers.size(), {});
            s.v.assign(w_.layers.size(), {});
        }
    }
    const char* kind() const override { return w_.cfg.markov_rank > 0 || w_.cfg.confidence ? "dspark" : "dflash"; }
    const std::string& name() const override { return name_; }
    const char* device() const override { return "cpu"; }
    int gamma() const override { return gamma_; }
    int n_slots() const override { return static_cast<int>(slots_.size()); }
    int len(int slot) const override { return slots_.at(slot).len; }
    bool has_confidence() const override { return w_.cfg.confidence; }
    const std::vector<int>& target_layers() const override { return w_.cfg.target_layers; }
    void reset(int slot) override {
        Slot& s = slots_.at(slot);
        for (auto& k : s.k) k.clear();
        for (auto& v : s.v) v.clear();
        s.len = 0;
    }
    void draft(const DraftBatch& b, DraftOutput* out) override;

private:
    struct Slot {
        std::vector<std::vector<float>> k, v;  // [layer] (len, KVH D)
        int len = 0;
    };
    void check(const DraftBatch& b) const;
    void append_context(Slot& s, const Vec& feature);
    // The block's final-normed hidden states h (G, d) for an anchor at anchor_pos.
    std::vector<Vec> block_forward(const Slot& s, int anchor, int anchor_pos) const;

    std::string name_;
    DSparkWeights w_;
    const ModelWeights& target_;  // the embedding and LM head; outlives the drafter
    int gamma_;
    std::vector<double> inv_freq_;
    std::vector<Slot> slots_;
    std::vector<float> q_;  // (S, gamma, V), DraftOutput::q
};

void DSparkCpu::check(const DraftBatch& b) const {
    draft_batch_check(b, name_, n_slots(), gamma_, w_.cfg.layers.vocab, true);
}

// One committed position: its context feature H_ctx = hidden_norm(fc f),
// projected into every layer's keys (k_norm, RoPE at the position) and values.
void DSparkCpu::append_context(Slot& s, const Vec& feature) {
    const Config& c = w_.cfg.layers;
    const int d = c.hidden, D = c.head_dim, KVH = c.n_kv_heads, kv_dim = KVH * D;
    const int m = static_cast<int>(w_.cfg.target_layers.size());
    const Vec h = rmsnorm(mat(w_.fc, d, m * d) * feature, w_.hidden_norm, c.rms_eps);
    for (size_t l = 0; l < w_.layers.size(); l++) {
        const LayerWeights& lw = w_.layers[l];
        Vec k = mat(lw.wk, kv_dim, d) * h;
        const Vec v = mat(lw.wv, kv_dim, d) * h;
        for (int g = 0; g < KVH; g++) {
            if (c.qk_norm) rmsnorm_row(&k[g * D], &k[g * D], lw.k_norm.data(), D, c.rms_eps);
            rope_rotate(&k[g * D], D, s.len, inv_freq_);
        }
        s.k[l].insert(s.k[l].end(), k.data(), k.data() + kv_dim);
        s.v[l].insert(s.v[l].end(), v.data(), v.data() + kv_dim);
    }
    s.len++;
}

std::vector<Vec> DSparkCpu::block_forward(const Slot& s, int anchor, int anchor_pos) const {
    const Config& c = w_.cfg.layers;
    const int d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads, D = c.head_dim, kv_dim = KVH * D;
    const int G = w_.cfg.block_size, n_rep = H / KVH;
    const float att_scale = 1.0f / std::sqrt(static_cast<float>(D));

    // 1. the block [anchor, MASK x (G-1)] from the target's embedding
    std::vector<Vec> x(G);
    for (int k = 0; k < G; k++) {
        const int tok = k == 0 ? anchor : w_.cfg.mask_token;
        x[k] = Eigen::Map<const Vec>(target_.embed.data() + size_t(tok) * d, d);
    }
    for (size_t l = 0; l < w_.layers.size(); l++) {
        const LayerWeights& lw = w_.layers[l];
        // 2. q, k, v of the block, QK-norm, RoPE at anchor_pos + k
        std::vector<Vec> q(G), kb(G), vb(G);
        for (int k = 0; k < G; k++) {
            const Vec xn = rmsnorm(x[k], lw.attn_norm, c.rms_eps);
            q[k] = mat(lw.wq, H * D, d) * xn;
            kb[k] = mat(lw.wk, kv_dim, d) * xn;
            vb[k] = mat(lw.wv, kv_dim, d) * xn;
            for (int h = 0; h < H; h++) {
                if (c.qk_norm) rmsnorm_row(&q[k][h * D], &q[k][h * D], lw.q_norm.data(), D, c.rms_eps);
                rope_rotate(&q[k][h * D], D, anchor_pos + k, inv_freq_);
            }
            for (int g = 0; g < KVH; g++) {
                if (c.qk_norm) rmsnorm_row(&kb[k][g * D], &kb[k][g * D], lw.k_norm.data(), D, c.rms_eps);
                rope_rotate(&kb[k][g * D], D, anchor_pos + k, inv_freq_);
            }
        }
        // 3. attention: every block query over the whole context and the
        //    whole block (no causal mask inside the block)
        const int n_keys = s.len + G;
        auto key = [&](int j, int g) { return j < s.len ? &s.k[l][size_t(j) * kv_dim + g * D] : &kb[j - s.len][g * D]; };
        auto val = [&](int j, int g) { return j < s.len ? &s.v[l][size_t(j) * kv_dim + g * D] : &vb[j - s.len][g * D]; };
        std::vector<float> score(n_keys);
        for (int k = 0; k < G; k++) {
            Vec att = Vec::Zero(H * D);
            for (int h = 0; h < H; h++) {
                const int g = h / n_rep;
                const float* qh = &q[k][h * D];
                float mx = -INFINITY;
                for (int j = 0; j < n_keys; j++) {
                    const float* kj = key(j, g);
                    float dot = 0.0f;
                    for (int i = 0; i < D; i++) dot += qh[i] * kj[i];
                    score[j] = dot * att_scale;
                    mx = std::fmax(mx, score[j]);
                }
                float sum = 0.0f;
                for (int j = 0; j < n_keys; j++) {
                    score[j] = std::exp(score[j] - mx);
                    sum += score[j];
                }
                for (int j = 0; j < n_keys; j++) {
                    const float p = score[j] / sum;
                    const float* vj = val(j, g);
                    for (int i = 0; i < D; i++) att[h * D + i] += p * vj[i];
                }
            }
            x[k] += mat(lw.wo, d, H * D) * att;
        }
        // 4. the SwiGLU MLP
        for (int k = 0; k < G; k++) mlp_add(x[k], lw, c);
    }
    // 5. the final norm: h_k, which feeds the LM head and the confidence head
    for (int k = 0; k < G; k++) x[k] = rmsnorm(x[k], w_.final_norm, c.rms_eps);
    return x;
}

void DSparkCpu::draft(const DraftBatch& b, DraftOutput* out) {
    check(b);
    const Config& c = w_.cfg.layers;
    const int S = static_cast<int>(b.slot.size()), V = c.vocab, d = c.hidden, r = w_.cfg.markov_rank;
    const int m = static_cast<int>(w_.cfg.target_layers.size());
    const ConstMat head = target_.cfg.tie_embeddings ? mat(target_.embed, V, d) : mat(target_.lm_head, V, d);
    out->gamma = gamma_;
    out->vocab = V;
    out->tokens.assign(size_t(S) * gamma_, -1);
    q_.assign(size_t(S) * gamma_ * V, 0.0f);
    out->q = q_.data();
    out->q_token.assign(size_t(S) * gamma_, 0.0f);
    out->conf_logit.assign(has_confidence() ? size_t(S) * gamma_ : 0, 0.0f);
    out->conf.assign(out->conf_logit.size(), 0.0f);

    size_t ctx = 0;
    for (int s = 0; s < S; s++) {
        Slot& slot = slots_[size_t(b.slot[s])];
        // the committed context: each token's features from the target layers, concatenated
        for (int j = 0; j < b.n_ctx[s]; j++, ctx++) {
            Vec f(m * d);
            for (int i = 0; i < m; i++)
                f.segment(i * d, d) =
                    Eigen::Map<const Vec>(b.hidden + (size_t(i) * b.hidden_T + size_t(b.ctx_row[ctx])) * d, d);
            append_context(slot, f);
        }
        if (b.n_draft[s] == 0) continue;
        const int anchor_pos = slot.len;
        const std::vector<Vec> h = block_forward(slot, b.anchor[s], anchor_pos);

        // the sequential loop: Markov bias from the previous token, confidence, draw
        const float T = b.temperature[s];
        const uint64_t rng = counter_row(b.seed, RNG_DRAFT, b.request[s], anchor_pos);
        int prev = b.anchor[s];
        std::vector<float> logits(V);
        for (int k = 0; k < b.n_draft[s]; k++) {
            Eigen::Map<Vec> lg(logits.data(), V);
            lg = head * h[k];
            const float* w1 = r > 0 ? &w_.markov_w1[size_t(prev) * r] : nullptr;
            if (r > 0) lg += mat(w_.markov_w2, V, r) * Eigen::Map<const Vec>(w1, r);
            if (has_confidence()) {
                float z = w_.conf_b;
                for (int i = 0; i < d; i++) z += w_.conf_w[size_t(i)] * h[k][i];
                if (w_.cfg.confidence_with_markov)
                    for (int i = 0; i < r; i++) z += w_.conf_w[size_t(d + i)] * w1[i];
                out->conf_logit[size_t(s) * gamma_ + k] = z;
                out->conf[size_t(s) * gamma_ + k] = sigmoid(z / w_.sts[size_t(k)]);
            }
            const int tok = sample_row(logits.data(), V, T, rng, k * V);
            out->tokens[size_t(s) * gamma_ + k] = tok;
            float* q = &q_[(size_t(s) * gamma_ + k) * V];
            softmax_row(q, logits.data(), V, T > 0 ? T : 1.0f);
            out->q_token[size_t(s) * gamma_ + k] = q[tok];
            const int forced = b.forced.empty() ? -1 : b.forced[size_t(s) * gamma_ + k];
            prev = forced >= 0 ? forced : tok;
        }
    }
}

}  // namespace

std::unique_ptr<Drafter> drafter_dspark_cpu(const std::string& dir, const ModelWeights& target, int n_slots,
                                            int gamma) {
    DSparkWeights w = dspark_load(dir, target.cfg);
    if (gamma <= 0) gamma = w.cfg.block_size;
    if (gamma > w.cfg.block_size)
        throw Error(dir + "/config.json: block_size: the drafter drafts " + std::to_string(w.cfg.block_size) +
                    " tokens per block, fewer than the " + std::to_string(gamma) + " asked for");
    return std::make_unique<DSparkCpu>(dir, std::move(w), target, n_slots, gamma);
}

}  // namespace sp
