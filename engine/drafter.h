// drafter.h: the one interface of every drafter, as backend.h is the one
// interface of the target's forwards. The speculative step (speculative.h),
// `specplan generate` and `specplan capture` drive DSpark, DFlash, EAGLE-3,
// an independent draft model and n-gram lookup the same way.
//
// A drafter owns per-request state in n_slots slots (context K/V, token
// history). Each call hands it, per request, the context that was committed
// since its last call (tokens, and for drafters that read the target, the
// target's hidden states of those tokens), then the anchor: the token the
// target emitted last, which no forward has processed yet. It returns up to
// gamma draft tokens after the anchor, with
//  - q, the draft distribution each token was drawn from, which lossless
//    verification needs (softmax(logits / T); at T = 0 the token is the
//    argmax and q is not written);
//  - the confidence head's raw logit z and its calibrated confidence
//    c = sigma(z / T_k) (Sequential Temperature Scaling), for drafters with a
//    head.
//
// Positions (digest §8.1): a slot holding len committed context tokens has
// them at positions 0..len-1; the anchor sits at len, and draft k (0-based)
// drafts position len + k + 1. After verification accepted n drafts, the
// next call brings n + 1 new context tokens (the anchor and the accepted
// drafts) and a new anchor (the correction or the bonus).
//
// Randomness is counter_rng.h's RNG_DRAFT row of (seed, request, anchor
// position), so a draft is a pure function of its inputs.
//
// Contract, held by every drafter (tests/test_drafter.cpp):
//  - a bad batch (slot out of range or repeated, n_draft outside 0..gamma,
//    token outside the vocabulary, hidden states missing for a drafter that
//    reads them) throws sp::Error and leaves every slot as it was;
//  - draft k depends only on the context, the anchor and draft tokens 0..k-1
//    (or, when DraftBatch::forced is given, on forced tokens 0..k-1 instead:
//    teacher forcing, which `capture` uses to measure conditional acceptance);
//  - reset(slot) forgets the slot's request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"

namespace sp {

struct DraftBatch {
    std::vector<int> slot;          // (S) the drafter's state slot of each request
    std::vector<int> n_ctx;         // (S) context tokens committed since the last call, >= 0
    std::vector<int> ctx_tokens;    // (sum n_ctx) those tokens, request after request, in position order
    // The target's hidden states of those tokens, for drafters whose
    // target_layers() is not empty: `hidden` (target_layers().size(), hidden_T,
    // d) in the drafter's memory (host for the CPU drafters), as
    // Backend::forward writes them for those layers; ctx_row (sum n_ctx) gives
    // each new context token's row t.
    const float* hidden = nullptr;
    int hidden_T = 0;
    std::vector<int> ctx_row;
    std::vector<int> anchor;        // (S) the anchor token, at position len(slot) + n_ctx
    std::vector<int> n_draft;       // (S) drafts wanted, 0..gamma()
    std::vector<float> temperature; // (S) 0 = greedy (argmax); otherwise the target's temperature
    std::vector<uint64_t> request;  // (S) request ids: RNG keys
    uint64_t seed = 0;
    // Teacher forcing: when not empty, (S, gamma) tokens; draft k is computed
    // as if drafts 0..k-1 had been forced[.., 0..k-1] (entries of -1: the
    // drafter's own token).
    std::vector<int> forced;
};

struct DraftOutput {
    int gamma = 0, vocab = 0;
    std::vector<int> tokens;        // (S, gamma) draft tokens; -1 from the first slot not drafted (past
                                    // n_draft, or where n-gram lookup found no continuation)
    // (S, gamma, V) draft probabilities softmax(logits / T) of each drafted
    // slot, in the drafter's memory; null for deterministic drafters (q is
    // one-hot on the draft). Rows of greedy requests hold the softmax at
    // temperature 1 or nothing: verification does not read them. Slots past
    // n_draft are not written. Valid until the next call.
    const float* q = nullptr;
    // (S, gamma) the draft's probability of each drafted token: q(token) when
    // sampling, softmax(logits)(token) (temperature 1) when greedy; 1 for
    // deterministic drafters. On the host: capture's beta = min(1, p/q) and
    // estimators of acceptance read it without touching q.
    std::vector<float> q_token;
    std::vector<float> conf_logit;  // (S, gamma) raw confidence logits z; empty without a head
    std::vector<float> conf;        // (S, gamma) calibrated c = sigma(z / T_k); empty without a head
};

class Drafter {
public:
    virtual ~Drafter() = default;
    virtual const char* kind() const = 0;        // "dspark", "dflash", "eagle3", "draft-model", "ngram"
    virtual const std::string& name() const = 0; // checkpoint folder, or "ngram"
    virtual const char* device() const = 0;      // "cpu" or "cuda": where hidden and q live
    virtual int gamma() const = 0;               // most drafts per call (DSpark: the block size)
    virtual int n_slots() const = 0;
    virtual int len(int slot) const = 0;         // committed context tokens held for slot
    virtual bool has_confidence() const { return false; }
    // Target layers whose hidden states the drafter reads (0-based decoder
    // layer index, the raw residual stream after the layer); empty for none.
    virtual const std::vector<int>& target_layers() const {
        static const std::vector<int> none;
        return none;
    }
    virtual void draft(const DraftBatch& b, DraftOutput* out) = 0;
    virtual void reset(int slot) = 0;
    // Readies every shape of a call handing over up to max_ctx context
    // tokens, so that none pays a one-off cost later (CUDA: cuBLAS's
    // algorithm timing per shape bucket, as Backend::warm).
    virtual void warm(int max_ctx) { (void)max_ctx; }
};

// The checks every drafter makes before it changes anything: per-request
// arrays of the batch's size, slots in range and distinct, n_ctx >= 0,
// n_draft in 0..gamma, tokens (anchor, context, forced) in the vocabulary,
// temperature >= 0, and with needs_hidden the hidden rows of every context
// token. Throws sp::Error "drafter <name>: ...". Returns sum(n_ctx).
size_t draft_batch_check(const DraftBatch& b, const std::string& name, int n_slots, int gamma, int vocab,
                         bool needs_hidden);

// What a drafter argument names, resolved against the target it will serve:
//   "none"            no drafter (nullptr)
//   "ngram[:N[:M]]"   prompt lookup: suffixes of up to N tokens (default 3),
//                     down to M (default 1)
//   a folder          config.json decides: architectures Qwen3DSparkModel
//                     (DSpark, or DFlash when markov_rank is 0 and the
//                     confidence head is off), Qwen3Eagle3Model (EAGLE-3),
//                     or Qwen3ForCausalLM / LlamaForCausalLM (an independent
//                     draft model)
// A folder the target cannot use is refused with one line naming the file
// and the mismatch (vocabulary, hidden size, target layer out of range, a
// missing tensor, an unsupported Markov head type). gamma <= 0 takes the
// drafter's own (DSpark: block_size; EAGLE-3: ttt_length; others: 7).
struct DrafterOptions {
    int gamma = 0;
    int n_slots = 1;
};
std::unique_ptr<Drafter> drafter_open_cpu(const std::string& spec, const ModelWeights& target,
                                          const DrafterOptions& o);

// drafter_open_cpu's parsing with other makers for DSpark, EAGLE-3 and the
// draft model's backend (drafter_open_cuda in drafter_cuda.h passes the CUDA
// ones).
class Backend;
struct DrafterMakers {
    using Maker = std::unique_ptr<Drafter> (*)(const std::string& dir, const ModelWeights& target, int n_slots,
                                               int gamma);
    Maker dspark;
    Maker eagle3;
    std::unique_ptr<Backend> (*backend)(ModelWeights w, int n_seqs);
};
std::unique_ptr<Drafter> drafter_open(const std::string& spec, const ModelWeights& target, const DrafterOptions& o,
                                      const DrafterMakers& make);

// The drafters, by kind (drafter_open_cpu picks among them). The DSpark and
// EAGLE-3 drafters read the target's embedding and LM head: `target` must
// outlive them.
// Their CUDA twins, drafter_dspark_cuda and drafter_eagle3_cuda, are in
// engine/drafter_cuda.h (the CUDA library's header: they take a
// KvCacheOptions).
std::unique_ptr<Drafter> drafter_dspark_cpu(const std::string& dir, const ModelWeights& target, int n_slots,
                                            int gamma);
std::unique_ptr<Drafter> drafter_eagle3_cpu(const std::string& dir, const ModelWeights& target, int n_slots,
                                            int gamma);
std::unique_ptr<Drafter> drafter_ngram(int n_slots, int gamma, int vocab, int max_n = 3, int min_n = 1);
std::unique_ptr<Drafter> drafter_model(std::unique_ptr<Backend> draft, int gamma);  // slots: draft->n_seqs()

}  // namespace sp
