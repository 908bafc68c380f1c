// drafter_model.cpp: an independent draft model: any Qwen3 or Llama
// checkpoint with the target's vocabulary, drafting autoregressively with its
// own KV cache, through the same Backend interface as the target (so it runs
// on either backend).
//
// Per slot the draft cache holds the committed tokens and, after a call, the
// anchor and the drafts it fed back. The next call keeps the longest prefix
// of that cache which the committed tokens confirm, truncates the rest (the
// rejected drafts) and runs the unconfirmed committed remainder as one chunk
// without logits; then the anchor and each draft, one token a step.
#include <algorithm>
#include <string>

#include "engine/backend.h"
#include "engine/counter_rng.h"
#include "engine/drafter.h"
#include "engine/verify.h"  // SampleBatch

namespace sp {

namespace {

class ModelDrafter final : public Drafter {
public:
    ModelDrafter(std::unique_ptr<Backend> m, int gamma)
        : m_(std::move(m)), name_(m_->config().name), gamma_(gamma), committed_(size_t(m_->n_seqs())),
          cached_(size_t(m_->n_seqs())) {}
    const char* kind() const override { return "draft-model"; }
    const std::string& name() const override { return name_; }
    const char* device() const override { return m_->name(); }  // q stays where the draft model runs
    int gamma() const override { return gamma_; }
    int n_slots() const override { return m_->n_seqs(); }
    int len(int slot) const override { return static_cast<int>(committed_.at(size_t(slot)).size()); }
    void reset(int slot) override {
        committed_.at(size_t(slot)).clear();
        cached_[size_t(slot)].clear();
        m_->truncate(slot, 0);
    }
    void draft(const DraftBatch& b, DraftOutput* out) override;

private:
    std::unique_ptr<Backend> m_;
    std::string name_;
    int gamma_;
    std::vector<std::vector<int>> committed_;  // [slot] committed tokens
    std::vector<std::vector<int>> cached_;     // [slot] the tokens in the draft model's cache, in order
    SampleResult drawn_;
};

void ModelDrafter::draft(const DraftBatch& b, DraftOutput* out) {
    const size_t S = b.slot.size();
    const int V = m_->config().vocab;
    draft_batch_check(b, name_, n_slots(), gamma_, V, false);

    out->gamma = gamma_;
    out->vocab = V;
    out->tokens.assign(S * size_t(gamma_), -1);
    float* q = m_->q_buffer(S * size_t(gamma_) * size_t(V));  // rows of greedy or absent drafts: not written
    out->q = q;
    out->q_token.assign(S * size_t(gamma_), 0.0f);
    out->conf_logit.clear();
    out->conf.clear();

    // 1. commit the new context; drop the cached tokens it does not confirm;
    //    run the unconfirmed committed rest without logits (its (T, V) would
    //    dwarf the draft model: a prompt's worth), so that only the anchor is
    //    left for the first drafting step
    std::vector<std::vector<int>> chunk(S);
    RaggedBatch rest;
    size_t ctx = 0;
    for (size_t s = 0; s < S; s++) {
        const int slot = b.slot[s];
        std::vector<int>& com = committed_[size_t(slot)];
        std::vector<int>& cached = cached_[size_t(slot)];
        com.insert(com.end(), b.ctx_tokens.begin() + long(ctx), b.ctx_tokens.begin() + long(ctx + size_t(b.n_ctx[s])));
        ctx += size_t(b.n_ctx[s]);
        size_t keep = 0;
        while (keep < cached.size() && keep < com.size() && cached[keep] == com[keep]) keep++;
        m_->truncate(slot, int(keep));
        cached.assign(com.begin(), com.end());
        if (keep < com.size()) {
            rest.seq.push_back(slot);
            rest.q_len.push_back(int(com.size() - keep));
            rest.tokens.insert(rest.tokens.end(), com.begin() + long(keep), com.end());
        }
        chunk[s].assign(1, b.anchor[s]);
    }
    if (!rest.seq.empty()) m_->forward(rest, nullptr);

    // 2. gamma autoregressive steps over the requests still drafting, one
    //    token each: the anchor, then each draft (or its forced token); the
    //    draw and q where the logits are (Backend::sample)
    for (int k = 0; k < gamma_; k++) {
        RaggedBatch rb;
        SampleBatch sb;
        std::vector<size_t> who;
        for (size_t s = 0; s < S; s++) {
            if (k >= b.n_draft[s]) continue;
            const int slot = b.slot[s];
            rb.seq.push_back(slot);
            rb.q_len.push_back(int(chunk[s].size()));
            rb.tokens.insert(rb.tokens.end(), chunk[s].begin(), chunk[s].end());
            const int anchor_pos = int(committed_[size_t(slot)].size());
            sb.temperature.push_back(b.temperature[s]);
            sb.rng.push_back(counter_row(b.seed, RNG_DRAFT, b.request[s], anchor_pos));
            sb.q_row.push_back(int(s));
            who.push_back(s);
        }
        if (who.empty()) break;
        sb.k = k;
        sb.q = q;
        sb.q_gamma = gamma_;
        m_->sample(rb, sb, &drawn_);
        for (size_t i = 0; i < who.size(); i++) {
            const size_t s = who[i];
            std::vector<int>& cached = cached_[size_t(b.slot[s])];
            cached.insert(cached.end(), chunk[s].begin(), chunk[s].end());
            const size_t at = s * size_t(gamma_) + size_t(k);
            out->tokens[at] = drawn_.token[i];
            out->q_token[at] = drawn_.q_token[i];
            const int forced = b.forced.empty() ? -1 : b.forced[at];
            chunk[s].assign(1, forced >= 0 ? forced : drawn_.token[i]);
        }
    }
}

}  // namespace

std::unique_ptr<Drafter> drafter_model(std::unique_ptr<Backend> draft, int gamma) {
    if (gamma < 1 || gamma > 64) throw Error("draft model: gamma must be in 1..64, got " + std::to_string(gamma));
    return std::make_unique<ModelDrafter>(std::move(draft), gamma);
}

}  // namespace sp
