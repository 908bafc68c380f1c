// drafter_ngram.cpp: prompt lookup (vLLM's ngram proposer, llama.cpp's
// lookup decoding): no weights. The request's own tokens, prompt and output,
// are searched for an earlier occurrence of their last N tokens (the anchor
// included), longest N first from max_n down to min_n; the tokens that
// followed the latest such occurrence are the drafts. Nothing found: no
// drafts. Deterministic, so q is one-hot (DraftOutput::q stays null) and
// teacher forcing changes nothing: given drafts 0..k-1 accepted, draft k is
// the same continuation token.
//
// Cost: O(len * max_n) per call, a scan of the history. Fine for the
// prompts of a capture; a suffix automaton would make it O(max_n) if serving
// long contexts ever shows it in a profile.
#include <algorithm>
#include <string>

#include "engine/drafter.h"

namespace sp {

namespace {

class NgramDrafter final : public Drafter {
public:
    NgramDrafter(int n_slots, int gamma, int vocab, int max_n, int min_n)
        : name_("ngram:" + std::to_string(max_n) + ":" + std::to_string(min_n)), gamma_(gamma), vocab_(vocab),
          max_n_(max_n), min_n_(min_n), hist_(size_t(n_slots)) {}
    const char* kind() const override { return "ngram"; }
    const std::string& name() const override { return name_; }
    const char* device() const override { return "cpu"; }
    int gamma() const override { return gamma_; }
    int n_slots() const override { return static_cast<int>(hist_.size()); }
    int len(int slot) const override { return static_cast<int>(hist_.at(size_t(slot)).size()); }
    void reset(int slot) override { hist_.at(size_t(slot)).clear(); }

    void draft(const DraftBatch& b, DraftOutput* out) override {
        const size_t S = b.slot.size();
        draft_batch_check(b, name_, n_slots(), gamma_, vocab_, false);

        out->gamma = gamma_;
        out->vocab = vocab_;
        out->tokens.assign(S * size_t(gamma_), -1);
        out->q = nullptr;
        out->q_token.assign(S * size_t(gamma_), 1.0f);
        out->conf_logit.clear();
        out->conf.clear();
        size_t ctx = 0;
        for (size_t s = 0; s < S; s++) {
            std::vector<int>& h = hist_[size_t(b.slot[s])];
            h.insert(h.end(), b.ctx_tokens.begin() + long(ctx), b.ctx_tokens.begin() + long(ctx + size_t(b.n_ctx[s])));
            ctx += size_t(b.n_ctx[s]);
            if (b.n_draft[s] == 0) continue;
            h.push_back(b.anchor[s]);  // the suffix ends with the anchor
            const int from = lookup(h);
            h.pop_back();
            if (from < 0) continue;
            // the continuation of the match; it may run into the suffix itself
            // (a repeating pattern), which reads the anchor as history
            for (int k = 0; k < b.n_draft[s]; k++) {
                const size_t i = size_t(from) + size_t(k);
                const int tok = i < h.size() ? h[i] : i == h.size() ? b.anchor[s] : -1;
                if (tok < 0) break;
                out->tokens[s * size_t(gamma_) + size_t(k)] = tok;
            }
        }
    }

private:
    // Index of the token after the latest earlier occurrence of h's longest
    // matching suffix (max_n down to min_n tokens), or -1.
    int lookup(const std::vector<int>& h) const {
        const int L = static_cast<int>(h.size());
        for (int n = std::min(max_n_, L - 1); n >= min_n_; n--) {
            const int* suffix = h.data() + (L - n);
            for (int start = L - n - 1; start >= 0; start--)
                if (std::equal(suffix, suffix + n, h.data() + start)) return start + n;
        }
        return -1;
    }

    std::string name_;
    int gamma_, vocab_, max_n_, min_n_;
    std::vector<std::vector<int>> hist_;  // [slot] committed tokens
};

}  // namespace

std::unique_ptr<Drafter> drafter_ngram(int n_slots, int gamma, int vocab, int max_n, int min_n) {
    if (n_slots < 1 || gamma < 1 || gamma > 64 || vocab < 1 || min_n < 1 || max_n < min_n || max_n > 64)
        throw Error("ngram: expected ngram[:N[:M]] with 64 >= N >= M >= 1 and gamma in 1..64");
    return std::make_unique<NgramDrafter>(n_slots, gamma, vocab, max_n, min_n);
}

}  // namespace sp
