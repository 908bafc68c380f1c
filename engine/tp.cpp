// tp.cpp: the tensor-parallel partition of tp.h and its CPU reference forward.
#include "engine/tp.h"

#include <algorithm>
#include <string>

#include "engine/cpu_math.h"

namespace sp {

using namespace cpu;

void tp_check(const Config& c, int tp) {
    const std::string got = std::to_string(tp);
    if (tp < 1) throw Error("tp " + got + ": expected at least 1");
    if (c.n_heads % tp != 0 || c.n_kv_heads % tp != 0 || c.ffn % tp != 0 || tp > c.vocab)
        throw Error("tp " + got + ": expected a divisor of " + c.name + "'s " + std::to_string(c.n_heads) +
                    " query heads, " + std::to_string(c.n_kv_heads) + " KV heads and " + std::to_string(c.ffn) +
                    " FFN columns");
}

void tp_vocab_range(int vocab, int tp, int rank, int* begin, int* end) {
    const int slice = (vocab + tp - 1) / tp;
    *begin = std::min(vocab, rank * slice);
    *end = std::min(vocab, (rank + 1) * slice);
}

namespace {

// Rows [r0, r1) of a row-major (rows, cols) matrix.
std::vector<float> rows_of(const std::vector<float>& m, int cols, int r0, int r1) {
    return std::vector<float>(m.begin() + static_cast<ptrdiff_t>(r0) * cols, m.begin() + static_cast<ptrdiff_t>(r1) * cols);
}

// Columns [c0, c1) of a row-major (rows, cols) matrix.
std::vector<float> cols_of(const std::vector<float>& m, int rows, int cols, int c0, int c1) {
    std::vector<float> out;
    out.reserve(static_cast<size_t>(rows) * (c1 - c0));
    for (int i = 0; i < rows; i++)
        out.insert(out.end(), m.begin() + static_cast<ptrdiff_t>(i) * cols + c0,
                   m.begin() + static_cast<ptrdiff_t>(i) * cols + c1);
    return out;
}

}  // namespace

ModelWeights tp_shard(const ModelWeights& w, int tp, int rank) {
    const Config& c = w.cfg;
    tp_check(c, tp);
    if (rank < 0 || rank >= tp) throw Error("tp_shard: rank " + std::to_string(rank) + " outside [0, " +
                                            std::to_string(tp) + ")");
    const int d = c.hidden, D = c.head_dim, h = c.n_heads / tp, g = c.n_kv_heads / tp, f = c.ffn / tp;
    int v0 = 0, v1 = 0;
    tp_vocab_range(c.vocab, tp, rank, &v0, &v1);
    ModelWeights s;
    s.cfg = c;
    s.cfg.n_heads = h;
    s.cfg.n_kv_heads = g;
    s.cfg.ffn = f;
    s.cfg.vocab = v1 - v0;
    s.embed = rows_of(w.embed, d, v0, v1);
    if (!c.tie_embeddings) s.lm_head = rows_of(w.lm_head, d, v0, v1);
    s.final_norm = w.final_norm;
    for (const LayerWeights& lw : w.layers) {
        LayerWeights l;
        l.attn_norm = lw.attn_norm;
        l.mlp_norm = lw.mlp_norm;
        l.q_norm = lw.q_norm;
        l.k_norm = lw.k_norm;
        l.wq = rows_of(lw.wq, d, rank * h * D, (rank + 1) * h * D);
        l.wk = rows_of(lw.wk, d, rank * g * D, (rank + 1) * g * D);
        l.wv = rows_of(lw.wv, d, rank * g * D, (rank + 1) * g * D);
        l.wo = cols_of(lw.wo, d, c.n_heads * D, rank * h * D, (rank + 1) * h * D);
        l.w_gate = rows_of(lw.w_gate, d, rank * f, (rank + 1) * f);
        l.w_up = rows_of(lw.w_up, d, rank * f, (rank + 1) * f);
        l.w_down = cols_of(lw.w_down, d, c.ffn, rank * f, (rank + 1) * f);
        s.layers.push_back(std::move(l));
    }
    return s;
}

void reference_forward_tp(const std::vector<ModelWeights>& shards, std::vector<CpuKvCache>& kv,
                          const RaggedBatch& b, std::vector<float>* logits) {
    const int tp = static_cast<int>(shards.size());
    if (tp < 1 || static_cast<int>(kv.size()) != tp)
        throw Error("reference_forward_tp: expected one KV cache per shard, got " + std::to_string(kv.size()) +
                    " for " + std::to_string(tp) + " shards");
    const Config& c0 = shards[0].cfg;
    int V = 0;  // the whole vocabulary: the slices' sum
    for (const ModelWeights& s : shards) {
        const Config& c = s.cfg;
        if (c.hidden != c0.hidden || c.head_dim != c0.head_dim || c.n_layers != c0.n_layers ||
            c.n_heads != c0.n_heads || c.n_kv_heads != c0.n_kv_heads || c.ffn != c0.ffn ||
            static_cast<int>(s.layers.size()) != c.n_layers)
            throw Error("reference_forward_tp: the shards are not of one model split one way");
        check_weights(s);
        V += c.vocab;
    }
    // Each rank checks the batch against its own cache; the positions agree
    // when the caches do, and the token range is the whole vocabulary's.
    std::vector<TokenSlots> at(tp);
    for (int r = 0; r < tp; r++) {
        Config whole = shards[r].cfg;
        whole.vocab = V;
        at[r] = batch_slots(whole, kv[r], b);
        if (at[r].pos != at[0].pos) throw Error("reference_forward_tp: the ranks' caches hold different lengths");
    }
    const int d = c0.hidden, T = static_cast<int>(at[0].seq.size());

    // the embedding: the rank whose slice holds the token gives its row, the others zero (an all-reduce)
    std::vector<Vec> x(T, Vec::Zero(d));
    for (int r = 0, v0 = 0; r < tp; v0 += shards[r].cfg.vocab, r++)
        for (int t = 0; t < T; t++) {
            const int row = b.tokens[t] - v0;
            if (row >= 0 && row < shards[r].cfg.vocab)
                x[t] += Eigen::Map<const Vec>(shards[r].embed.data() + static_cast<size_t>(row) * d, d);
        }

    for (int l = 0; l < c0.n_layers; l++) {
        // attention: every rank its heads over the replicated normed rows, the partials summed (all-reduce 1)
        const LayerWeights& l0 = shards[0].layers[l];
        std::vector<Vec> xn(T);
        for (int t = 0; t < T; t++) xn[t] = rmsnorm(x[t], l0.attn_norm, c0.rms_eps);
        for (int r = 0; r < tp; r++) {
            const std::vector<Vec> part = attention_out(shards[r].cfg, shards[r].layers[l], l, kv[r], at[r], xn);
            for (int t = 0; t < T; t++) x[t] += part[t];
        }
        // MLP: every rank its FFN columns, the partials summed (all-reduce 2)
        for (int t = 0; t < T; t++) xn[t] = rmsnorm(x[t], l0.mlp_norm, c0.rms_eps);
        for (int r = 0; r < tp; r++)
            for (int t = 0; t < T; t++) x[t] += mlp_out(xn[t], shards[r].layers[l], shards[r].cfg);
    }
    for (CpuKvCache& k : kv)
        for (size_t s = 0; s < b.seq.size(); s++) k.len[b.seq[s]] += b.q_len[s];

    // the LM head: each rank its vocabulary slice of every row's logits (all-gather)
    if (!logits) return;
    logits->assign(static_cast<size_t>(T) * V, 0.0f);
    for (int t = 0; t < T; t++) {
        const Vec xn = rmsnorm(x[t], shards[0].final_norm, c0.rms_eps);
        for (int r = 0, v0 = 0; r < tp; v0 += shards[r].cfg.vocab, r++) {
            const ModelWeights& s = shards[r];
            const Vec lg = mat(s.cfg.tie_embeddings ? s.embed : s.lm_head, s.cfg.vocab, d) * xn;
            std::copy(lg.data(), lg.data() + lg.size(), logits->data() + static_cast<size_t>(t) * V + v0);
        }
    }
}

}  // namespace sp
