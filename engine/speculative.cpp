// speculative.cpp: the Speculator (speculative.h): bookkeeping around one
// drafter call, one policy call and one verify per iteration. The numerics
// live in the drafter, the backend and verify.h; this file only decides
// which tokens go where.
#include "engine/speculative.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "engine/counter_rng.h"

namespace sp {

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool policy_needs_confidence(const Policy& p) {
    return p.kind == POLICY_THRESHOLD || p.kind == POLICY_DSPARK || p.kind == POLICY_DSPARK_ASYNC;
}

}  // namespace

Speculator::Speculator(Backend& target, Drafter* drafter, const SpecOptions& o)
    : target_(target), drafter_(drafter), o_(o), slot_used_(size_t(target.n_seqs()), false), t0_ns_(now_ns()) {
    if (o_.policy.name.empty()) o_.policy.name = "ar";
    if (!drafter_) {
        if (o_.policy.kind != POLICY_AR) throw Error("policy " + o_.policy.name + " needs a drafter (--drafter)");
        o_.gamma = 0;
        return;
    }
    if (o_.gamma <= 0) o_.gamma = drafter_->gamma();
    if (o_.gamma > drafter_->gamma())
        throw Error("--gamma " + std::to_string(o_.gamma) + ": the drafter " + drafter_->name() + " drafts at most " +
                    std::to_string(drafter_->gamma()));
    // A drafter that reads hidden states reads them where the target leaves
    // them; the others run anywhere (their q is staged with Backend::stage).
    if (std::string(drafter_->device()) != target.name() &&
        (!drafter_->target_layers().empty() || std::string(drafter_->device()) != "cpu"))
        throw Error(std::string("the ") + drafter_->kind() + " drafter on " + drafter_->device() +
                    " cannot serve a target on " + target.name() + " (use the same --device for both)");
    if (policy_needs_confidence(o_.policy) && !drafter_->has_confidence())
        throw Error("policy " + o_.policy.name + " needs a confidence head; the " + drafter_->kind() + " drafter " +
                    drafter_->name() + " has none");
    if ((o_.policy.kind == POLICY_DSPARK || o_.policy.kind == POLICY_DSPARK_ASYNC ||
         o_.policy.kind == POLICY_GOODPUT) && !o_.step_time.fn)
        throw Error("policy " + o_.policy.name + " needs the step-time table (SpecOptions::step_time)");
    if (drafter_->n_slots() < target.n_seqs())
        throw Error("the drafter has " + std::to_string(drafter_->n_slots()) + " slots for " +
                    std::to_string(target.n_seqs()) + " target sequences");
    layers_ = drafter_->target_layers();
    for (int l : layers_)
        if (l < 0 || l >= target.config().n_layers)
            throw Error("drafter " + drafter_->name() + ": target layer " + std::to_string(l) + " outside the target");
}

// Appends l's request to b: the committed tokens the drafter has not seen
// (the last l.pending, rows l.hidden_row.. of the last forward's hidden
// states), its anchor, and n_draft.
void Speculator::pending_to(const Live& l, int n_draft, DraftBatch* b) const {
    const SpecRequest& r = *l.r;
    const int P = int(r.prompt.size());
    const int first = P + int(r.output.size()) - 1 - l.pending;  // position of the first pending token
    b->slot.push_back(l.slot);
    b->n_ctx.push_back(l.pending);
    for (int i = 0; i < l.pending; i++) {
        const int pos = first + i;
        b->ctx_tokens.push_back(pos < P ? r.prompt[size_t(pos)] : r.output[size_t(pos - P)]);
        b->ctx_row.push_back(l.hidden_row + i);
    }
    b->anchor.push_back(r.output.back());
    b->n_draft.push_back(n_draft);
    b->temperature.push_back(r.temperature);
    b->request.push_back(r.id);
}

void Speculator::add(SpecRequest* r) {
    const int V = target_.config().vocab;
    if (r->prompt.empty() || r->max_new < 1 || !(r->temperature >= 0))
        throw Error("request " + std::to_string(r->id) + ": needs a prompt, max_new >= 1 and temperature >= 0");
    for (int t : r->prompt)
        if (t < 0 || t >= V) throw Error("request " + std::to_string(r->id) + ": prompt token outside the vocabulary");
    if (int(r->prompt.size()) + r->max_new > target_.config().max_position)
        throw Error("request " + std::to_string(r->id) + ": prompt + max_new exceeds max_position_embeddings (" +
                    std::to_string(target_.config().max_position) + ")");
    auto free = std::find(slot_used_.begin(), slot_used_.end(), false);
    if (free == slot_used_.end()) throw Error("no free sequence slot for request " + std::to_string(r->id));
    const int slot = int(free - slot_used_.begin());
    const int64_t t_start = now_ns();

    // The rows of hidden_data() that running requests still owe the drafter
    // are about to be overwritten: hand them over first.
    if (drafter_) {
        DraftBatch flush;
        for (Live& l : running_) {
            if (l.pending == 0) continue;
            pending_to(l, 0, &flush);
            l.pending = 0;
        }
        if (!flush.slot.empty()) {
            flush.hidden = target_.hidden_data();
            flush.hidden_T = hidden_T_;
            flush.seed = o_.seed;
            DraftOutput ignored;
            drafter_->draft(flush, &ignored);
        }
    }

    target_.truncate(slot, 0);
    if (drafter_) drafter_->reset(slot);
    const int P = int(r->prompt.size());
    // prompt[0 .. P-2] without logits; its hidden states go to the drafter at once
    if (P > 1) {
        RaggedBatch pre{{slot}, {P - 1}, std::vector<int>(r->prompt.begin(), r->prompt.end() - 1)};
        target_.forward(pre, nullptr, layers_);
        hidden_T_ = P - 1;
        if (drafter_) {
            DraftBatch in;
            in.slot = {slot};
            in.n_ctx = {P - 1};
            in.ctx_tokens = pre.tokens;
            for (int i = 0; i < P - 1; i++) in.ctx_row.push_back(i);
            in.hidden = target_.hidden_data();
            in.hidden_T = P - 1;
            in.anchor = {r->prompt.back()};
            in.n_draft = {0};
            in.temperature = {r->temperature};
            in.request = {r->id};
            in.seed = o_.seed;
            DraftOutput ignored;
            drafter_->draft(in, &ignored);
        }
    }
    // the last prompt token as a step with no drafts: the first output token
    RaggedBatch last{{slot}, {1}, {r->prompt.back()}};
    VerifyBatch v;
    v.temperature = {r->temperature};
    v.request = {r->id};
    v.anchor_pos = {P - 1};
    v.eos = o_.eos;
    v.seed = o_.seed;
    VerifyResult res;
    target_.verify(last, v, &res, layers_);
    hidden_T_ = 1;

    r->output.assign(1, res.next[0]);
    r->drafted.assign(1, 0);
    r->steps.clear();
    r->done = res.next[0] == o_.eos || r->max_new == 1;
    r->prefill_ns = now_ns() - t_start;
    if (r->done) return;
    slot_used_[size_t(slot)] = true;
    Live l;
    l.r = r;
    l.slot = slot;
    l.pending = drafter_ ? 1 : 0;
    l.hidden_row = 0;
    l.conf.assign(size_t(o_.gamma), 1.0f);
    l.conf_old1 = l.conf_old2 = l.conf;
    running_.push_back(std::move(l));
}

void Speculator::step() {
    if (running_.empty()) return;
    const int S = int(running_.size()), G = o_.gamma;
    const int64_t t_step = now_ns();

    // 1. draft
    DraftOutput drafts;
    std::vector<int> n_drafts(size_t(S), 0);  // drafts actually proposed per request
    if (drafter_ && G > 0) {
        DraftBatch in;
        in.hidden = target_.hidden_data();
        in.seed = o_.seed;
        for (const Live& l : running_)
            pending_to(l, std::min(G, l.r->max_new - int(l.r->output.size()) - 1), &in);
        in.hidden_T = hidden_T_;
        drafter_->draft(in, &drafts);
        for (int s = 0; s < S; s++) {
            running_[size_t(s)].pending = 0;
            while (n_drafts[size_t(s)] < in.n_draft[size_t(s)] &&
                   drafts.tokens[size_t(s) * size_t(drafts.gamma) + size_t(n_drafts[size_t(s)])] >= 0)
                n_drafts[size_t(s)]++;
        }
    }
    const int64_t t_drafted = now_ns();

    // 2. verify lengths from the policy
    std::vector<int> ell(size_t(S), 0);
    if (drafter_ && G > 0) {
        std::vector<float> conf(size_t(S) * size_t(G), 0.0f), stale(conf.size(), 0.0f);
        std::vector<double> alpha(static_cast<size_t>(S));
        for (int s = 0; s < S; s++) {
            Live& l = running_[size_t(s)];
            if (!drafts.conf.empty()) {
                l.conf_old2 = l.conf_old1;
                l.conf_old1 = l.conf;
                std::copy_n(drafts.conf.begin() + long(s) * drafts.gamma, G, l.conf.begin());
                if (l.r->steps.empty()) l.conf_old2 = l.conf_old1 = l.conf;  // a new request's stale rows: its current values
            }
            std::copy(l.conf.begin(), l.conf.end(), conf.begin() + long(s) * G);
            std::copy(l.conf_old2.begin(), l.conf_old2.end(), stale.begin() + long(s) * G);
            alpha[size_t(s)] = l.verified > 0 ? double(l.accepted) / l.verified : 0.5;
        }
        PolicyInput pin;
        pin.n = S;
        pin.gamma = G;
        pin.conf = conf.data();
        pin.conf_stale = stale.data();
        pin.max_len = n_drafts.data();
        pin.alpha_hat = alpha.data();
        pin.token_budget = std::max(o_.token_budget, S);
        pin.step_time = o_.step_time;
        policy_choose(o_.policy, pin, ell.data());
    }

    // 3. verify every [anchor, d_1..d_l] in one forward
    RaggedBatch b;
    VerifyBatch v;
    v.eos = o_.eos;
    v.seed = o_.seed;
    if (drafts.q) {
        const bool staged = std::string(drafter_->device()) != target_.name();
        v.q = staged ? target_.stage(drafts.q, size_t(S) * size_t(drafts.gamma) * size_t(drafts.vocab)) : drafts.q;
        v.q_gamma = drafts.gamma;
    }
    for (int s = 0; s < S; s++) {
        const Live& l = running_[size_t(s)];
        const SpecRequest& r = *l.r;
        b.seq.push_back(l.slot);
        b.q_len.push_back(1 + ell[size_t(s)]);
        b.tokens.push_back(r.output.back());
        for (int k = 0; k < ell[size_t(s)]; k++) b.tokens.push_back(drafts.tokens[size_t(s) * size_t(drafts.gamma) + size_t(k)]);
        v.temperature.push_back(r.temperature);
        v.request.push_back(r.id);
        v.anchor_pos.push_back(int(r.prompt.size() + r.output.size()) - 1);
        if (v.q) v.q_row.push_back(s);
    }
    VerifyResult res;
    target_.verify(b, v, &res, layers_);
    hidden_T_ = int(b.tokens.size());
    const int64_t t_verified = now_ns();

    // 4. commit, truncate, and note the step
    int row = 0;
    std::vector<Live> still;
    for (int s = 0; s < S; s++) {
        Live& l = running_[size_t(s)];
        SpecRequest& r = *l.r;
        const int ell_s = ell[size_t(s)];
        const int* d = b.tokens.data() + row + 1;
        int n = res.n_accepted[size_t(s)], next = res.next[size_t(s)];
        if (r.replay && r.replay->n > 0) {
            // forced acceptance: the trace's coins decide, the real forward's
            // tokens fill in (their values do not matter for timing)
            const Positions& p = *r.replay;
            const int t = l.anchor_t % p.n;
            const uint64_t coins = counter_row(o_.seed, RNG_ACCEPT, r.id, -1 - t);
            n = 0;
            while (n < ell_s && n < p.gamma &&
                   counter_uniform(coins, n) < p.beta[size_t(t) * size_t(p.gamma) + size_t(n)])
                n++;
            if (n < ell_s) next = d[n];
            else if (next < 0) next = r.output.back();
        }
        const int anchor_pos = v.anchor_pos[size_t(s)];
        Step st;
        st.step = int(r.steps.size());
        st.batch_size = S;
        st.verify_len = ell_s;
        st.n_accepted = n;
        st.bonus = next >= 0 && n == ell_s;
        st.draft_ns = t_drafted - t_step;
        st.verify_ns = t_verified - t_drafted;
        st.t_ns = t_step - t0_ns_;
        r.steps.push_back(st);
        l.verified += ell_s;
        l.accepted += n;
        for (int k = 0; k < n; k++) {
            r.output.push_back(d[k]);
            r.drafted.push_back(1);
        }
        const bool eos_accepted = n > 0 && d[n - 1] == o_.eos && !r.replay;
        if (next >= 0 && !eos_accepted) {
            r.output.push_back(next);
            r.drafted.push_back(0);
        }
        // the cache keeps the anchor and the accepted drafts
        target_.truncate(l.slot, anchor_pos + 1 + n);
        l.pending = drafter_ ? 1 + n : 0;
        l.hidden_row = row;
        l.anchor_t = int(r.output.size()) - 1;
        row += 1 + ell_s;
        const bool eos = !r.replay && (eos_accepted || next < 0 || next == o_.eos);
        r.done = eos || int(r.output.size()) >= r.max_new;
        if (r.done)
            slot_used_[size_t(l.slot)] = false;
        else
            still.push_back(std::move(l));
    }
    running_ = std::move(still);
}

void Speculator::run(SpecRequest* r) {
    add(r);
    while (!idle()) step();
}

}  // namespace sp
