// drafter_eagle3.cpp: the CPU reference of the EAGLE-3 drafter (eagle3.h):
// fp32, one token at a time, read top to bottom like drafter_dspark.cpp.
// tests/test_drafter.cpp holds it to our PyTorch implementation
// (tests/make_eagle3_fixtures.py).
//
// Per slot it keeps the keys (after k_norm and RoPE) and values of the
// step-0 entry of every committed position i, made from the target's
// features of i and the token at i + 1. A call's new context tokens bring
// the features of their positions; the token after the last of them is the
// anchor, so every committed position has its entry by the time it drafts.
// The chain's own keys and values (drafts 2, 3, ...) live only for the call.
#include <cmath>
#include <string>
#include <utility>

#include "engine/counter_rng.h"
#include "engine/cpu_math.h"
#include "engine/drafter.h"
#include "engine/eagle3.h"
#include "engine/verify.h"

namespace sp {

namespace {

using namespace cpu;

class Eagle3Cpu final : public Drafter {
public:
    Eagle3Cpu(std::string dir, Eagle3Weights w, const ModelWeights& target, int n_slots, int gamma)
        : name_(std::move(dir)), w_(std::move(w)), target_(target), gamma_(gamma),
          inv_freq_(rope_inv_freq(w_.cfg.layers)), slots_(n_slots) {}
    const char* kind() const override { return "eagle3"; }
    const std::string& name() const override { return name_; }
    const char* device() const override { return "cpu"; }
    int gamma() const override { return gamma_; }
    int n_slots() const override { return static_cast<int>(slots_.size()); }
    int len(int slot) const override { return slots_.at(slot).len; }
    const std::vector<int>& target_layers() const override { return w_.cfg.target_layers; }
    void reset(int slot) override { slots_.at(slot) = Slot{}; }
    void draft(const DraftBatch& b, DraftOutput* out) override;

private:
    struct Slot {
        std::vector<float> k, v;  // (len, KVH D) the step-0 entries
        int len = 0;
        // the last entry's query (H D), its h (d) and its token: draft 1's inputs
        Vec last_q, last_h;
        int last_token = -1;
    };
    // One (token, h) entry at RoPE position pos: its query (H D), key and value (KVH D each).
    void entry(int token, const Vec& h, int pos, Vec* q, Vec* k, Vec* v) const;
    // The layer's output for query q over keys/values 0..n-1 (the slot's
    // step-0 entries, then the chain's), residual h.
    Vec layer_out(const Vec& q, const Vec& h, const std::vector<const float*>& keys,
                  const std::vector<const float*>& vals) const;

    std::string name_;
    Eagle3Weights w_;
    const ModelWeights& target_;  // the embedding and LM head; outlives the drafter
    int gamma_;
    std::vector<double> inv_freq_;
    std::vector<Slot> slots_;
    std::vector<float> q_;  // (S, gamma, V), DraftOutput::q
};

void Eagle3Cpu::entry(int token, const Vec& h, int pos, Vec* q, Vec* k, Vec* v) const {
    const Config& c = w_.cfg.layers;
    const LayerWeights& lw = w_.layer;
    const int d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads, D = c.head_dim;
    // x = [input_layernorm(embed(token)) ; hidden_norm(h)]: 2d wide
    Vec x(2 * d);
    x.head(d) = rmsnorm(Eigen::Map<const Vec>(target_.embed.data() + size_t(token) * d, d), lw.attn_norm, c.rms_eps);
    x.tail(d) = rmsnorm(h, w_.hidden_norm, c.rms_eps);
    *q = mat(lw.wq, H * D, 2 * d) * x;
    *k = mat(lw.wk, KVH * D, 2 * d) * x;
    *v = mat(lw.wv, KVH * D, 2 * d) * x;
    for (int i = 0; i < H; i++) {
        rmsnorm_row(&(*q)[i * D], &(*q)[i * D], lw.q_norm.data(), D, c.rms_eps);
        rope_rotate(&(*q)[i * D], D, pos, inv_freq_);
    }
    for (int g = 0; g < KVH; g++) {
        rmsnorm_row(&(*k)[g * D], &(*k)[g * D], lw.k_norm.data(), D, c.rms_eps);
        rope_rotate(&(*k)[g * D], D, pos, inv_freq_);
    }
}

Vec Eagle3Cpu::layer_out(const Vec& q, const Vec& h, const std::vector<const float*>& keys,
                         const std::vector<const float*>& vals) const {
    const Config& c = w_.cfg.layers;
    const LayerWeights& lw = w_.layer;
    const int d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads, D = c.head_dim, n_rep = H / KVH;
    const int n = static_cast<int>(keys.size());
    const float att_scale = 1.0f / std::sqrt(static_cast<float>(D));
    Vec att = Vec::Zero(H * D);
    std::vector<float> score(static_cast<size_t>(n));
    for (int hh = 0; hh < H; hh++) {
        const int g = hh / n_rep;
        float mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            float dot = 0.0f;
            for (int i = 0; i < D; i++) dot += q[hh * D + i] * keys[size_t(j)][g * D + i];
            score[size_t(j)] = dot * att_scale;
            mx = std::fmax(mx, score[size_t(j)]);
        }
        float sum = 0.0f;
        for (float& s : score) sum += (s = std::exp(s - mx));
        for (int j = 0; j < n; j++)
            for (int i = 0; i < D; i++) att[hh * D + i] += score[size_t(j)] / sum * vals[size_t(j)][g * D + i];
    }
    Vec x = h + mat(lw.wo, d, H * D) * att;
    mlp_add(x, lw, c);
    return x;
}

void Eagle3Cpu::draft(const DraftBatch& b, DraftOutput* out) {
    draft_batch_check(b, name_, n_slots(), gamma_, w_.cfg.layers.vocab, true);
    // Draft 1 comes from the entry of the position before the anchor, made
    // with the anchor as its token: without new context, the slot's last
    // entry must have been made with this anchor (a context-only call, such
    // as the flush before a new request, leaves it so).
    for (size_t s = 0; s < b.slot.size(); s++) {
        const Slot& slot = slots_[size_t(b.slot[s])];
        if (b.n_draft[s] > 0 && b.n_ctx[s] == 0 && (slot.len == 0 || slot.last_token != b.anchor[s]))
            throw Error("drafter " + name_ + ": slot " + std::to_string(b.slot[s]) +
                        ": an EAGLE-3 draft needs the features of the position before its anchor");
    }
    const Config& c = w_.cfg.layers;
    const int S = static_cast<int>(b.slot.size()), V = c.vocab, d = c.hidden, kv_dim = c.n_kv_heads * c.head_dim;
    const int m = static_cast<int>(w_.cfg.target_layers.size());
    const ConstMat head = target_.cfg.tie_embeddings ? mat(target_.embed, V, d) : mat(target_.lm_head, V, d);
    out->gamma = gamma_;
    out->vocab = V;
    out->tokens.assign(size_t(S) * gamma_, -1);
    q_.assign(size_t(S) * gamma_ * V, 0.0f);
    out->q = q_.data();
    out->q_token.assign(size_t(S) * gamma_, 0.0f);
    out->conf_logit.clear();
    out->conf.clear();

    size_t ctx = 0;
    for (int s = 0; s < S; s++) {
        Slot& slot = slots_[size_t(b.slot[s])];
        // 1. a step-0 entry per new context position: its features with the
        //    token after it (the next context token, or the anchor); the last
        //    one's query and h are kept, for draft 1
        Vec q, k, v;
        for (int j = 0; j < b.n_ctx[s]; j++, ctx++) {
            Vec f(m * d);
            for (int i = 0; i < m; i++)
                f.segment(i * d, d) =
                    Eigen::Map<const Vec>(b.hidden + (size_t(i) * b.hidden_T + size_t(b.ctx_row[ctx])) * d, d);
            const int next = j + 1 < b.n_ctx[s] ? b.ctx_tokens[ctx + 1] : b.anchor[s];
            slot.last_h = mat(w_.fc, d, m * d) * f;
            entry(next, slot.last_h, slot.len, &slot.last_q, &k, &v);
            slot.last_token = next;
            slot.k.insert(slot.k.end(), k.data(), k.data() + kv_dim);
            slot.v.insert(slot.v.end(), v.data(), v.data() + kv_dim);
            slot.len++;
        }
        if (b.n_draft[s] == 0) continue;
        const int anchor_pos = slot.len;

        // 2. the chain: draft 1 from the last step-0 entry, then each draft
        //    (or its forced token) fed back with the layer's output
        std::vector<const float*> keys, vals;
        for (int j = 0; j < slot.len; j++) {
            keys.push_back(&slot.k[size_t(j) * kv_dim]);
            vals.push_back(&slot.v[size_t(j) * kv_dim]);
        }
        std::vector<Vec> chain_k, chain_v;
        chain_k.reserve(size_t(b.n_draft[s]));  // pointers into them are kept: no reallocation
        chain_v.reserve(size_t(b.n_draft[s]));
        const float T = b.temperature[s];
        const uint64_t rng = counter_row(b.seed, RNG_DRAFT, b.request[s], anchor_pos);
        std::vector<float> logits(V);
        Vec h = layer_out(slot.last_q, slot.last_h, keys, vals);
        for (int kk = 0; kk < b.n_draft[s]; kk++) {
            if (kk > 0) {
                const int forced = b.forced.empty() ? -1 : b.forced[size_t(s) * gamma_ + kk - 1];
                const int prev = forced >= 0 ? forced : out->tokens[size_t(s) * gamma_ + kk - 1];
                chain_k.emplace_back();
                chain_v.emplace_back();
                entry(prev, h, anchor_pos - 1 + kk, &q, &chain_k.back(), &chain_v.back());
                keys.push_back(chain_k.back().data());
                vals.push_back(chain_v.back().data());
                h = layer_out(q, h, keys, vals);
            }
            Eigen::Map<Vec>(logits.data(), V) = head * rmsnorm(h, w_.final_norm, c.rms_eps);
            const int tok = sample_row(logits.data(), V, T, rng, kk * V);
            out->tokens[size_t(s) * gamma_ + kk] = tok;
            float* qr = &q_[(size_t(s) * gamma_ + kk) * V];
            softmax_row(qr, logits.data(), V, T > 0 ? T : 1.0f);
            out->q_token[size_t(s) * gamma_ + kk] = qr[tok];
        }
    }
}

}  // namespace

std::unique_ptr<Drafter> drafter_eagle3_cpu(const std::string& dir, const ModelWeights& target, int n_slots,
                                            int gamma) {
    Eagle3Weights w = eagle3_load(dir, target.cfg);
    if (gamma <= 0) gamma = w.cfg.ttt_length;
    if (gamma > 64) throw Error("drafter " + dir + ": gamma must be in 1..64, got " + std::to_string(gamma));
    if (n_slots < 1) throw Error("drafter_eagle3_cpu: n_slots must be >= 1, got " + std::to_string(n_slots));
    return std::make_unique<Eagle3Cpu>(dir, std::move(w), target, n_slots, gamma);
}

}  // namespace sp
