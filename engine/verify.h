// verify.h: lossless verification of draft blocks (digest §3), and the CPU
// sampling primitives the reference drafters share with it.
//
// One target forward has run [anchor, d_1..d_l] of every sequence (l may
// differ per sequence, and may be 0); row i of a sequence's logits is the
// target's distribution p_i for the token after input i. Per sequence:
//   greedy (T = 0)  accept d_{i+1} while it equals argmax p_i; then emit
//                   argmax p_n (the correction, or the bonus after a full accept)
//   sampling        accept d_{i+1} when u_i q(d_{i+1}) < p_i(d_{i+1}), i.e.
//                   u_i < min(1, p/q), u_i from counter_rng's RNG_ACCEPT row of
//                   the anchor; on the first rejection emit a draw from the
//                   residual max(0, p_n - q_n) (p_n when its mass is below
//                   1e-8); after a full accept emit the bonus, a draw from p_l
//   EOS             an accepted draft equal to eos ends the sequence: nothing
//                   after it is accepted and no token is emitted (next = -1)
// p = softmax(logits / T). q is the drafter's distribution of each draft;
// without one (n-gram lookup, which proposes deterministically) q is one-hot
// on the draft. Emitted tokens draw from RNG_TARGET at their own position, as
// plain sampling does, so a request samples the same way with or without a
// drafter wherever nothing is drafted.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/reference.h"  // RaggedBatch

namespace sp {

struct VerifyBatch {
    std::vector<float> temperature;  // (S) per sequence of the RaggedBatch; 0 = greedy
    std::vector<uint64_t> request;   // (S) RNG keys
    std::vector<int> anchor_pos;     // (S) position of each sequence's anchor
    // (S) or empty (all 0): leading tokens of each sequence that are context,
    // not drafts, so that a prefill chunk rides in the same forward as the
    // verify blocks: its tokens are [context..., anchor] with no drafts, and
    // its next token is the first output token when the chunk ends the
    // prompt. Sequence s is [n_context[s] context, anchor, q_len[s] - 1 -
    // n_context[s] drafts].
    std::vector<int> n_context;
    // Draft probabilities in the backend's memory: sequence s, draft k (0-based)
    // at q + (q_row[s] * q_gamma + k) * V, as DraftOutput::q lays them out.
    // Null: one-hot drafts. Not read for greedy sequences.
    const float* q = nullptr;
    std::vector<int> q_row;          // (S) when q is given
    int q_gamma = 0;
    int eos = -1;                    // stop token, or -1
    uint64_t seed = 0;
};

inline int verify_n_context(const VerifyBatch& v, size_t s) { return v.n_context.empty() ? 0 : v.n_context[s]; }

struct VerifyResult {
    std::vector<int> n_accepted;     // (S) drafts accepted, 0..l
    std::vector<int> next;           // (S) the correction or bonus token; -1 when an accepted EOS ended it
};

// Throws sp::Error when v does not fit b (array sizes, more drafts than
// q_gamma): backends call it before their forward, so that a bad call
// leaves the cache as it was.
void verify_check(const RaggedBatch& b, const VerifyBatch& v);
// The reference: logits (T, V) of the batch's forward, on the host.
void verify_reference(const float* logits, int V, const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out);

// One draw per sequence from the last row of a forward's logits, where they
// live: a draft model's step (drafter_model.cpp through Backend::sample).
struct SampleBatch {
    std::vector<float> temperature;  // (S) 0 = argmax
    std::vector<uint64_t> rng;       // (S) counter_rng rows; the draw reads entries k V + v (sample_row's base)
    int k = 0;                       // the draft slot, 0 <= k < q_gamma
    // Where sequence s's outputs go, as DraftOutput lays them out: q row
    // q + (q_row[s] q_gamma + k) V, softmax(logits / T), in the backend's
    // memory (Backend::q_buffer), written for T > 0 only; q may be null when
    // no sequence samples.
    float* q = nullptr;
    std::vector<int> q_row;          // (S)
    int q_gamma = 0;
};

struct SampleResult {
    std::vector<int> token;          // (S)
    std::vector<float> q_token;      // (S) q of the token: softmax(logits / T)[token], at T = 1 when greedy
};

// Throws sp::Error when s does not fit b (array sizes, k outside 0..q_gamma - 1, a
// negative q_row, sampling without q).
void sample_check(const RaggedBatch& b, const SampleBatch& s);
// The reference: logits (T, V) of the batch's forward, on the host.
void sample_reference(const float* logits, int V, const RaggedBatch& b, const SampleBatch& s, SampleResult* out);

// Primitives (CPU, fp32, the same arithmetic as the kernels):
// probs (V) = softmax(logits / T), T > 0.
void softmax_row(float* probs, const float* logits, int V, float T);
// argmax_v logits[v] (lowest index on ties) at T = 0; otherwise the
// Gumbel-max draw argmax_v logits[v] / T - log(-log u_v), u_v =
// counter_uniform(row, base + v): a draw from softmax(logits / T).
int sample_row(const float* logits, int V, float T, uint64_t row, int base);

}  // namespace sp
