// verify.cpp: the CPU reference of lossless verification (verify.h), written
// as gpt-fast's speculative_decode reads: accept, then one correction or
// bonus, per sequence.
#include "engine/verify.h"

#include <cmath>
#include <numeric>
#include <string>

#include "engine/counter_rng.h"
#include "traces/trace_db.h"  // sp::Error

namespace sp {

void softmax_row(float* probs, const float* logits, int V, float T) {
    const float inv_t = 1.0f / T;
    float mx = -INFINITY;
    for (int v = 0; v < V; v++) mx = std::fmax(mx, logits[v] * inv_t);
    float sum = 0.0f;
    for (int v = 0; v < V; v++) sum += std::exp(logits[v] * inv_t - mx);
    for (int v = 0; v < V; v++) probs[v] = std::exp(logits[v] * inv_t - mx) / sum;
}

int sample_row(const float* logits, int V, float T, uint64_t row, int base) {
    int best = 0;
    float best_v = -INFINITY;
    for (int v = 0; v < V; v++) {
        float x = logits[v];
        if (T > 0.0f) x = x / T - std::log(-std::log(counter_uniform(row, base + v)));
        if (x > best_v || v == 0) {
            best_v = x;
            best = v;
        }
    }
    return best;
}

namespace {

// A draw from the residual max(0, p - q) (unnormalised: the Gumbel-max draw
// needs no normalisation), or from p when the residual holds no mass.
int sample_residual(const std::vector<float>& p, const float* q, int draft, int V, uint64_t row) {
    std::vector<float> logr(V);
    float mass = 0.0f;
    for (int v = 0; v < V; v++) {
        const float r = std::fmax(0.0f, p[v] - (q ? q[v] : (v == draft ? 1.0f : 0.0f)));
        mass += r;
        logr[v] = r > 0.0f ? std::log(r) : -INFINITY;
    }
    if (!(mass > 1e-8f))
        for (int v = 0; v < V; v++) logr[v] = p[v] > 0.0f ? std::log(p[v]) : -INFINITY;
    return sample_row(logr.data(), V, 1.0f, row, 0);
}

}  // namespace

void verify_check(const RaggedBatch& b, const VerifyBatch& v) {
    const size_t S = b.seq.size();
    if (v.temperature.size() != S || v.request.size() != S || v.anchor_pos.size() != S || b.q_len.size() != S ||
        (v.q && (v.q_row.size() != S || v.q_gamma < 1)) || (!v.n_context.empty() && v.n_context.size() != S))
        throw Error("verify: per-sequence arrays do not match the batch");
    for (size_t s = 0; s < S; s++) {
        if (!(v.temperature[s] >= 0)) throw Error("verify: temperature must be >= 0");
        const int ctx = verify_n_context(v, s);
        if (ctx < 0 || ctx >= b.q_len[s]) throw Error("verify: n_context outside 0..q_len - 1");
        if (v.q && (b.q_len[s] - 1 - ctx > v.q_gamma || v.q_row[s] < 0))
            throw Error("verify: more drafts than the drafter's gamma, or a negative q_row");
    }
}

void verify_reference(const float* logits, int V, const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out) {
    verify_check(b, v);
    const size_t S = b.seq.size();
    out->n_accepted.assign(S, 0);
    out->next.assign(S, -1);
    std::vector<float> p(V);
    int t0 = 0;  // the sequence's anchor row
    for (size_t s = 0; s < S; s++) {
        t0 += verify_n_context(v, s);
        const int ell = b.q_len[s] - 1 - verify_n_context(v, s);
        const float T = v.temperature[s];
        const float* rows = logits + static_cast<size_t>(t0) * V;
        const int* drafts = b.tokens.data() + t0 + 1;
        const uint64_t coins = counter_row(v.seed, RNG_ACCEPT, v.request[s], v.anchor_pos[s]);
        auto q_of = [&](int k) {
            return v.q ? v.q + (static_cast<size_t>(v.q_row[s]) * v.q_gamma + k) * V : nullptr;
        };
        int n = 0;
        bool stopped = false;
        for (; n < ell; n++) {
            const int d = drafts[n];
            bool accept;
            if (T <= 0.0f) {
                accept = d == sample_row(rows + static_cast<size_t>(n) * V, V, 0.0f, 0, 0);
            } else {
                softmax_row(p.data(), rows + static_cast<size_t>(n) * V, V, T);
                const float qd = q_of(n) ? q_of(n)[d] : 1.0f;
                accept = counter_uniform(coins, n) * qd < p[d];
            }
            if (!accept) break;
            if (d == v.eos) {
                n++;
                stopped = true;
                break;
            }
        }
        out->n_accepted[s] = n;
        if (!stopped) {
            const float* row = rows + static_cast<size_t>(n) * V;
            const uint64_t target = counter_row(v.seed, RNG_TARGET, v.request[s], v.anchor_pos[s] + n + 1);
            if (T <= 0.0f || n == ell) {
                out->next[s] = sample_row(row, V, T, target, 0);
            } else {
                softmax_row(p.data(), row, V, T);
                out->next[s] = sample_residual(p, q_of(n), drafts[n], V, target);
            }
        }
        t0 += b.q_len[s] - verify_n_context(v, s);
    }
}

void sample_check(const RaggedBatch& b, const SampleBatch& s) {
    const size_t S = b.seq.size();
    if (s.temperature.size() != S || s.rng.size() != S || s.q_row.size() != S || b.q_len.size() != S)
        throw Error("sample: per-sequence arrays do not match the batch");
    if (s.k < 0 || s.k >= s.q_gamma)
        throw Error("sample: slot " + std::to_string(s.k) + " outside 0.." + std::to_string(s.q_gamma - 1));
    for (size_t i = 0; i < S; i++) {
        if (!(s.temperature[i] >= 0)) throw Error("sample: temperature must be >= 0");
        if (s.q_row[i] < 0) throw Error("sample: negative q_row");
        if (s.temperature[i] > 0 && !s.q) throw Error("sample: a sampling sequence needs q");
    }
}

void sample_reference(const float* logits, int V, const RaggedBatch& b, const SampleBatch& s, SampleResult* out) {
    sample_check(b, s);
    const size_t S = b.seq.size();
    out->token.assign(S, 0);
    out->q_token.assign(S, 0.0f);
    std::vector<float> p(static_cast<size_t>(V));
    int row = -1;
    for (size_t i = 0; i < S; i++) {
        row += b.q_len[i];  // the sequence's last token
        const float* lg = logits + static_cast<size_t>(row) * V;
        const float T = s.temperature[i];
        const int tok = sample_row(lg, V, T, s.rng[i], s.k * V);
        float* q = T > 0 ? s.q + (static_cast<size_t>(s.q_row[i]) * s.q_gamma + s.k) * V : p.data();
        softmax_row(q, lg, V, T > 0 ? T : 1.0f);
        out->token[i] = tok;
        out->q_token[i] = q[tok];
    }
}

}  // namespace sp
