// reference.cpp: the fp32 CPU forward of a Qwen3 or Llama decoder, written to
// be read top to bottom (llama2.c's run.c is the model): one commented step
// per stage, no fusion, no threads. It defines what "correct" means for the
// CUDA backend; tests hold it to HF transformers' eager fp32 forward.
//
// Every token is computed on its own (matrix-vector products, never a
// matrix-matrix product over the batch), so a token's logits do not depend on
// which other tokens share its forward: a ragged batch, a chunked prefill and
// one-at-a-time decoding give bitwise the same numbers. Eigen's GEMM would
// block differently for different T and break that.
//
// Numerics follow HF: RMSNorm in fp32, rotate_half RoPE with fp32 angles
// (inv_freq * pos), scores scaled by 1/sqrt(D), softmax in fp32 after
// subtracting the row maximum.
#include "engine/reference.h"

#include <cmath>
#include <numbers>
#include <string>

#include "engine/cpu_math.h"

namespace sp {

namespace {

using namespace cpu;

// cpu::mat after a size check: reference_forward takes any ModelWeights.
ConstMat as_matrix(const std::vector<float>& w, int rows, int cols, const char* what) {
    if (w.size() != static_cast<size_t>(rows) * static_cast<size_t>(cols))
        throw Error(std::string("reference_forward: weight ") + what + ": expected " + std::to_string(rows) + " x " +
                    std::to_string(cols) + " floats, got " + std::to_string(w.size()));
    return ConstMat(w.data(), rows, cols);
}

}  // namespace

// Every tensor's size against the config, so that a forward fails before it
// appends anything to the cache.
void cpu::check_weights(const ModelWeights& w) {
    const Config& c = w.cfg;
    const int d = c.hidden, D = c.head_dim, kv_dim = c.n_kv_heads * c.head_dim, F = c.ffn;
    auto check = [](const std::vector<float>& t, int rows, int cols, const std::string& what) {
        as_matrix(t, rows, cols, what.c_str());
    };
    check(w.embed, c.vocab, d, "embed");
    check(c.tie_embeddings ? w.embed : w.lm_head, c.vocab, d, "lm_head");
    check(w.final_norm, 1, d, "final_norm");
    for (int l = 0; l < c.n_layers; l++) {
        const LayerWeights& lw = w.layers[l];
        const std::string p = "layers." + std::to_string(l) + ".";
        check(lw.attn_norm, 1, d, p + "attn_norm");
        check(lw.mlp_norm, 1, d, p + "mlp_norm");
        check(lw.wq, c.n_heads * D, d, p + "wq");
        check(lw.wk, kv_dim, d, p + "wk");
        check(lw.wv, kv_dim, d, p + "wv");
        check(lw.wo, d, c.n_heads * D, p + "wo");
        check(lw.w_gate, F, d, p + "w_gate");
        check(lw.w_up, F, d, p + "w_up");
        check(lw.w_down, d, F, p + "w_down");
        if (c.qk_norm) {
            check(lw.q_norm, 1, D, p + "q_norm");
            check(lw.k_norm, 1, D, p + "k_norm");
        }
    }
}

void rmsnorm_row(float* out, const float* x, const float* w, int n, double eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + static_cast<float>(eps));
    for (int i = 0; i < n; i++) out[i] = w[i] * (x[i] * scale);
}

std::vector<double> rope_inv_freq(const Config& c) {
    const int D = c.head_dim;
    std::vector<double> inv_freq(static_cast<size_t>(D / 2));
    for (int i = 0; i < D / 2; i++) inv_freq[i] = 1.0 / std::pow(c.rope_theta, 2.0 * i / D);

    // Llama 3 scaling (HF _compute_llama3_parameters): wavelengths longer than
    // original_max / low_freq_factor are slowed down by `factor`, those shorter
    // than original_max / high_freq_factor are kept, and the band between is
    // interpolated smoothly in original_max / wavelen.
    const RopeScaling& rs = c.rope_scaling;
    if (rs.factor > 0) {
        const double old_len = rs.original_max_position;
        const double low_freq_wavelen = old_len / rs.low_freq_factor;
        const double high_freq_wavelen = old_len / rs.high_freq_factor;
        for (double& f : inv_freq) {
            const double wavelen = 2 * std::numbers::pi / f;
            if (wavelen > low_freq_wavelen) {
                f = f / rs.factor;
            } else if (wavelen >= high_freq_wavelen) {
                const double smooth =
                    (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
                f = (1 - smooth) * f / rs.factor + smooth * f;
            }
        }
    }
    return inv_freq;
}

void rope_rotate(float* x, int D, int pos, const std::vector<double>& inv_freq) {
    // HF's rotate_half: element i pairs with i + D/2, both turned by angle_i.
    // The angle is an fp32 product, as HF's (inv_freq @ position_ids) is.
    const int half = D / 2;
    for (int i = 0; i < half; i++) {
        const float angle = static_cast<float>(inv_freq[i]) * static_cast<float>(pos);
        const float cos_a = std::cos(angle), sin_a = std::sin(angle);
        const float a = x[i], b = x[i + half];
        x[i] = a * cos_a - b * sin_a;
        x[i + half] = b * cos_a + a * sin_a;
    }
}

CpuKvCache kv_cache_init(const Config& c, int n_seqs) {
    CpuKvCache kv;
    kv.n_layers = c.n_layers;
    kv.kv_dim = c.n_kv_heads * c.head_dim;
    kv.k.assign(n_seqs, std::vector<std::vector<float>>(c.n_layers));
    kv.v.assign(n_seqs, std::vector<std::vector<float>>(c.n_layers));
    kv.len.assign(n_seqs, 0);
    return kv;
}

void kv_truncate(CpuKvCache& kv, int seq, int new_len) {
    if (seq < 0 || seq >= static_cast<int>(kv.len.size()))
        throw Error("kv_truncate: sequence " + std::to_string(seq) + " out of range");
    if (new_len < 0 || new_len > kv.len[seq])
        throw Error("kv_truncate: new length " + std::to_string(new_len) + " outside [0, " +
                    std::to_string(kv.len[seq]) + "]");
    const size_t n = static_cast<size_t>(new_len) * static_cast<size_t>(kv.kv_dim);
    for (int l = 0; l < kv.n_layers; l++) {
        kv.k[seq][l].resize(n);
        kv.v[seq][l].resize(n);
    }
    kv.len[seq] = new_len;
}

TokenSlots cpu::batch_slots(const Config& c, const CpuKvCache& kv, const RaggedBatch& b) {
    const int H = c.n_heads, KVH = c.n_kv_heads, D = c.head_dim;
    const int kv_dim = KVH * D;
    const int S = static_cast<int>(b.seq.size());
    if (KVH <= 0 || H % KVH != 0 || D % 2 != 0)
        throw Error("reference_forward: inconsistent config (" + c.name + ")");
    if (kv.n_layers != c.n_layers || kv.kv_dim != kv_dim || kv.k.size() != kv.len.size() ||
        kv.v.size() != kv.len.size())
        throw Error("reference_forward: KV cache was made for another config");
    if (static_cast<int>(b.q_len.size()) != S) throw Error("reference_forward: seq and q_len differ in length");
    TokenSlots at;
    std::vector<bool> seen(kv.len.size(), false);
    for (int s = 0; s < S; s++) {
        const int slot = b.seq[s];
        if (slot < 0 || slot >= static_cast<int>(kv.len.size()) || seen[slot])
            throw Error("reference_forward: sequence slot " + std::to_string(slot) + " out of range or repeated");
        if (b.q_len[s] < 1) throw Error("reference_forward: q_len must be >= 1");
        seen[slot] = true;
        for (int i = 0; i < b.q_len[s]; i++) {
            at.seq.push_back(slot);
            at.pos.push_back(kv.len[slot] + i);
        }
    }
    for (int s = 0; s < S; s++)
        for (int l = 0; l < c.n_layers; l++)
            if (kv.k[b.seq[s]][l].size() != static_cast<size_t>(kv.len[b.seq[s]]) * kv_dim ||
                kv.v[b.seq[s]][l].size() != kv.k[b.seq[s]][l].size())
                throw Error("reference_forward: KV cache rows out of step with kv.len");
    if (b.tokens.size() != at.seq.size())
        throw Error("reference_forward: " + std::to_string(b.tokens.size()) + " tokens for a total q_len of " +
                    std::to_string(at.seq.size()));
    for (int tok : b.tokens)
        if (tok < 0 || tok >= c.vocab) throw Error("reference_forward: token " + std::to_string(tok) + " out of range");
    return at;
}

std::vector<Vec> cpu::attention_out(const Config& c, const LayerWeights& lw, int layer, CpuKvCache& kv,
                                    const TokenSlots& at, const std::vector<Vec>& xn) {
    const int d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads, D = c.head_dim;
    const int kv_dim = KVH * D, T = static_cast<int>(xn.size());
    const ConstMat wq = as_matrix(lw.wq, H * D, d, "wq"), wk = as_matrix(lw.wk, kv_dim, d, "wk"),
                   wv = as_matrix(lw.wv, kv_dim, d, "wv"), wo = as_matrix(lw.wo, d, H * D, "wo");
    const std::vector<double> inv_freq = rope_inv_freq(c);
    const float att_scale = 1.0f / std::sqrt(static_cast<float>(D));
    const int n_rep = H / KVH;  // query heads per KV head (GQA)

    // 1. q, k, v projections of the normed rows
    std::vector<Vec> q(T);
    for (int t = 0; t < T; t++) {
        q[t] = wq * xn[t];
        Vec k = wk * xn[t];
        const Vec v = wv * xn[t];

        // 2. Qwen3 QK-norm: RMSNorm over each head's D values, before RoPE
        if (c.qk_norm) {
            for (int h = 0; h < H; h++) rmsnorm_row(&q[t][h * D], &q[t][h * D], lw.q_norm.data(), D, c.rms_eps);
            for (int g = 0; g < KVH; g++) rmsnorm_row(&k[g * D], &k[g * D], lw.k_norm.data(), D, c.rms_eps);
        }

        // 3. RoPE at the token's absolute position, every head of q and k
        for (int h = 0; h < H; h++) rope_rotate(&q[t][h * D], D, at.pos[t], inv_freq);
        for (int g = 0; g < KVH; g++) rope_rotate(&k[g * D], D, at.pos[t], inv_freq);

        // 4. append k and v to the sequence's cache (as row at.pos[t])
        std::vector<float>& kc = kv.k[at.seq[t]][layer];
        std::vector<float>& vc = kv.v[at.seq[t]][layer];
        kc.insert(kc.end(), k.data(), k.data() + kv_dim);
        vc.insert(vc.end(), v.data(), v.data() + kv_dim);
    }

    // 5. attention: token t sees its sequence's positions 0..pos (the
    //    cached prefix and the new tokens up to itself: causal)
    std::vector<Vec> out(T);
    for (int t = 0; t < T; t++) {
        const int n_ctx = at.pos[t] + 1;
        const std::vector<float>& kc = kv.k[at.seq[t]][layer];
        const std::vector<float>& vc = kv.v[at.seq[t]][layer];
        Vec att = Vec::Zero(H * D);  // the heads' outputs, concatenated
        std::vector<float> score(n_ctx);
        for (int h = 0; h < H; h++) {
            const int g = h / n_rep;  // the KV head this query head reads
            const float* qh = &q[t][h * D];
            // scores q.k / sqrt(D)
            for (int j = 0; j < n_ctx; j++) {
                const float* kj = &kc[static_cast<size_t>(j) * kv_dim + g * D];
                float dot = 0.0f;
                for (int i = 0; i < D; i++) dot += qh[i] * kj[i];
                score[j] = dot * att_scale;
            }
            // softmax, max subtracted
            float mx = score[0];
            for (int j = 1; j < n_ctx; j++) mx = std::max(mx, score[j]);
            float sum = 0.0f;
            for (int j = 0; j < n_ctx; j++) {
                score[j] = std::exp(score[j] - mx);
                sum += score[j];
            }
            // weighted sum of the values
            float* o = &att[h * D];
            for (int j = 0; j < n_ctx; j++) {
                const float p = score[j] / sum;
                const float* vj = &vc[static_cast<size_t>(j) * kv_dim + g * D];
                for (int i = 0; i < D; i++) o[i] += p * vj[i];
            }
        }
        // 6. output projection
        out[t] = wo * att;
    }
    return out;
}

void reference_forward(const ModelWeights& w, CpuKvCache& kv, const RaggedBatch& b, std::vector<float>* logits,
                       const std::vector<int>& hidden_layers, std::vector<float>* hidden) {
    const Config& c = w.cfg;
    const int d = c.hidden, V = c.vocab;
    if (static_cast<int>(w.layers.size()) != c.n_layers)
        throw Error("reference_forward: inconsistent config (" + c.name + ")");
    const TokenSlots at = batch_slots(c, kv, b);
    check_weights(w);  // before the cache is touched: a bad weight leaves it as it was
    for (int l : hidden_layers)
        if (l < 0 || l >= c.n_layers)
            throw Error("reference_forward: hidden layer " + std::to_string(l) + " out of range");
    const int T = static_cast<int>(at.seq.size());

    // --- token embeddings: the residual stream x, one d-vector per token
    std::vector<Vec> x(T);
    for (int t = 0; t < T; t++) x[t] = Eigen::Map<const Vec>(w.embed.data() + static_cast<size_t>(b.tokens[t]) * d, d);
    if (hidden) hidden->assign(hidden_layers.size() * static_cast<size_t>(T) * d, 0.0f);

    for (int l = 0; l < c.n_layers; l++) {
        const LayerWeights& lw = w.layers[l];
        // attention on xn = RMSNorm(x), steps 1-6 above, and the residual
        std::vector<Vec> xn(T);
        for (int t = 0; t < T; t++) xn[t] = rmsnorm(x[t], lw.attn_norm, c.rms_eps);
        const std::vector<Vec> att = attention_out(c, lw, l, kv, at, xn);
        for (int t = 0; t < T; t++) x[t] += att[t];

        // 7. MLP: x += down(silu(gate(xn)) * up(xn)), xn = RMSNorm(x)
        for (int t = 0; t < T; t++) mlp_add(x[t], lw, c);

        // 8. hidden states: the raw residual stream after this layer
        for (size_t k = 0; k < hidden_layers.size(); k++) {
            if (hidden_layers[k] != l || !hidden) continue;
            for (int t = 0; t < T; t++)
                std::copy(x[t].data(), x[t].data() + d, hidden->data() + (k * T + t) * static_cast<size_t>(d));
        }
    }

    // the new tokens are in the cache of every layer now
    for (size_t s = 0; s < b.seq.size(); s++) kv.len[b.seq[s]] += b.q_len[s];

    // 9. final RMSNorm and the LM head (the embedding matrix when tied)
    if (!logits) return;
    const ConstMat head = c.tie_embeddings ? as_matrix(w.embed, V, d, "embed") : as_matrix(w.lm_head, V, d, "lm_head");
    logits->assign(static_cast<size_t>(T) * V, 0.0f);
    for (int t = 0; t < T; t++) {
        const Vec xn = rmsnorm(x[t], w.final_norm, c.rms_eps);
        const Vec lg = head * xn;
        std::copy(lg.data(), lg.data() + V, logits->data() + static_cast<size_t>(t) * V);
    }
}

}  // namespace sp
