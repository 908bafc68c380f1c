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

// Copies a replayed field's row for output index t (t mod n: a trace request
// shorter than the live one wraps) into out, at most gamma values; the
// caller has checked that the field is recorded (not empty) and n > 0.
void replay_row(const Positions& p, const std::vector<float>& field, int t, int gamma, float* out) {
    std::copy_n(field.begin() + long(t % p.n) * p.gamma, std::min(gamma, p.gamma), out);
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
    if (policy_needs_step_time(o_.policy) && !o_.step_time.fn)
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
// (the last l.pending in the target's cache, rows l.hidden_row.. of the last
// forward's hidden states), its anchor, and n_draft. A request still
// prefilling has no anchor yet and drafts nothing: it passes its next prompt
// token, which the drafter does not read at n_draft 0.
void Speculator::pending_to(const Live& l, int n_draft, DraftBatch* b) const {
    const SpecRequest& r = *l.r;
    const int P = int(r.prompt.size());
    const bool prefilling = l.prefilled >= 0;
    const int cached = prefilling ? l.prefilled : P + int(r.output.size()) - 1;  // the anchor is not in the cache
    const int first = cached - l.pending;  // position of the first pending token
    b->slot.push_back(l.slot);
    b->n_ctx.push_back(l.pending);
    for (int i = 0; i < l.pending; i++) {
        const int pos = first + i;
        b->ctx_tokens.push_back(pos < P ? r.prompt[size_t(pos)] : r.output[size_t(pos - P)]);
        b->ctx_row.push_back(l.hidden_row + i);
    }
    b->anchor.push_back(prefilling ? r.prompt[size_t(std::min(l.prefilled, P - 1))] : r.output.back());
    b->n_draft.push_back(prefilling ? 0 : n_draft);
    b->temperature.push_back(r.temperature);
    b->request.push_back(r.id);
}

int Speculator::n_free_slots() const { return int(std::count(slot_used_.begin(), slot_used_.end(), false)); }

int64_t Speculator::elapsed_ns() const { return now_ns() - t0_ns_; }

// Checks r (add() and submit() refuse the same requests) and returns a free slot.
int Speculator::take_slot(const SpecRequest& r) {
    const int V = target_.config().vocab;
    if (r.prompt.empty() || r.max_new < 1 || !(r.temperature >= 0))
        throw Error("request " + std::to_string(r.id) + ": needs a prompt, max_new >= 1 and temperature >= 0");
    for (int t : r.prompt)
        if (t < 0 || t >= V) throw Error("request " + std::to_string(r.id) + ": prompt token outside the vocabulary");
    if (int(r.prompt.size()) + r.max_new > target_.config().max_position)
        throw Error("request " + std::to_string(r.id) + ": prompt + max_new exceeds max_position_embeddings (" +
                    std::to_string(target_.config().max_position) + ")");
    auto free = std::find(slot_used_.begin(), slot_used_.end(), false);
    if (free == slot_used_.end()) throw Error("no free sequence slot for request " + std::to_string(r.id));
    return int(free - slot_used_.begin());
}

Speculator::Live Speculator::make_live(SpecRequest* r, int slot, int pending, int hidden_row) const {
    Live l;
    l.r = r;
    l.slot = slot;
    l.pending = drafter_ ? pending : 0;
    l.hidden_row = hidden_row;
    l.conf.assign(size_t(o_.gamma), 1.0f);
    l.conf_old1 = l.conf_old2 = l.conf;
    return l;
}

void Speculator::submit(SpecRequest* r) {
    const int slot = take_slot(*r);
    target_.truncate(slot, 0);
    if (drafter_) drafter_->reset(slot);
    r->output.clear();
    r->drafted.clear();
    r->steps.clear();
    r->done = false;
    r->first_token_ns = r->done_ns = -1;
    slot_used_[size_t(slot)] = true;
    Live l = make_live(r, slot, 0, 0);
    l.prefilled = 0;
    running_.push_back(std::move(l));
}

void Speculator::add(SpecRequest* r) {
    const int slot = take_slot(*r);
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
    const int64_t t_end = now_ns();
    r->prefill_ns = t_end - t_start;
    r->first_token_ns = t_end - t0_ns_;
    r->done_ns = r->done ? r->first_token_ns : -1;
    if (r->done) return;
    slot_used_[size_t(slot)] = true;
    running_.push_back(make_live(r, slot, 1, 0));
}

void Speculator::step() {
    last_ = IterationInfo{};
    if (running_.empty()) return;
    const int G = o_.gamma;
    const int64_t t_step = now_ns();
    std::vector<int> dec;  // running_ indices of the decoding requests
    for (int i = 0; i < int(running_.size()); i++)
        if (running_[size_t(i)].prefilled < 0) dec.push_back(i);
    const int R = int(dec.size());
    // fixed:k and mtp1 verify no more: draft no more; batch-table the k in force
    // at R; none above draft_max_running
    const int draft_len = policy_draft_len_at(o_.policy, G, R, o_.draft_max_running);

    // 1. draft: the decoding requests' blocks; the prefilling requests hand
    //    over their last chunk's rows (hidden states are overwritten by the
    //    forward below)
    DraftOutput drafts;
    std::vector<int> n_drafts(size_t(R), 0), draft_row(size_t(R), 0);  // drafts proposed; row in drafts
    if (drafter_) {
        DraftBatch in;
        in.hidden = target_.hidden_data();
        in.hidden_T = hidden_T_;
        in.seed = o_.seed;
        for (int j = 0, i = 0; i < int(running_.size()); i++) {
            Live& l = running_[size_t(i)];
            if (l.prefilled >= 0 && l.pending == 0) continue;
            if (l.prefilled < 0) draft_row[size_t(j++)] = int(in.slot.size());
            pending_to(l, std::min(draft_len, l.r->max_new - int(l.r->output.size()) - 1), &in);
            l.pending = 0;
        }
        if (!in.slot.empty()) drafter_->draft(in, &drafts);
        for (int j = 0; j < R; j++) {
            const size_t row = size_t(draft_row[size_t(j)]);
            while (n_drafts[size_t(j)] < in.n_draft[row] &&
                   drafts.tokens[row * size_t(drafts.gamma) + size_t(n_drafts[size_t(j)])] >= 0)
                n_drafts[size_t(j)]++;
        }
    }
    const int64_t t_drafted = now_ns();

    // 2. verify lengths of the decoding requests from the policy; draft-prob
    //    reads each draft's q, the replayed trace's when it has them
    std::vector<int> ell(size_t(R), 0);
    const bool reads_q = o_.policy.kind == POLICY_DRAFT_PROB && drafter_ && G > 0;
    std::vector<float> q(reads_q ? size_t(R) * size_t(G) : 0, 0.0f);  // (R, G); undrafted slots 0
    for (int j = 0; j < R && reads_q; j++) {
        const Live& l = running_[size_t(dec[size_t(j)])];
        const Positions* p = l.r->replay;
        float* qj = q.data() + size_t(j) * size_t(G);
        if (p && p->n > 0 && !p->draft_prob.empty())
            replay_row(*p, p->draft_prob, l.anchor_t, G, qj);
        else if (!drafts.q_token.empty())
            std::copy_n(drafts.q_token.begin() + long(draft_row[size_t(j)]) * drafts.gamma, n_drafts[size_t(j)], qj);
    }
    if (drafter_ && G > 0 && R > 0) {
        std::vector<float> conf(size_t(R) * size_t(G), 0.0f), stale(conf.size(), 0.0f);
        std::vector<double> alpha(static_cast<size_t>(R));
        for (int j = 0; j < R; j++) {
            Live& l = running_[size_t(dec[size_t(j)])];
            // a replayed trace's confidences when it has them (as the simulator reads them), else the head's
            const Positions* p = l.r->replay;
            const bool replayed = p && p->n > 0 && !p->conf_prob.empty();
            if (replayed || !drafts.conf.empty()) {
                l.conf_old2 = l.conf_old1;
                l.conf_old1 = l.conf;
                if (replayed) {
                    std::fill(l.conf.begin(), l.conf.end(), 0.0f);
                    replay_row(*p, p->conf_prob, l.anchor_t, G, l.conf.data());
                } else {
                    std::copy_n(drafts.conf.begin() + long(draft_row[size_t(j)]) * drafts.gamma, G, l.conf.begin());
                }
            }
            // two steps old, or this step's while the request is younger than that (as the simulator)
            const std::vector<float>& old = l.r->steps.size() >= 2 ? l.conf_old2 : l.conf;
            std::copy(l.conf.begin(), l.conf.end(), conf.begin() + long(j) * G);
            std::copy(old.begin(), old.end(), stale.begin() + long(j) * G);
            alpha[size_t(j)] = alpha_estimate(l.accepted, l.verified);
        }
        PolicyInput pin;
        pin.n = R;
        pin.gamma = G;
        pin.conf = conf.data();
        pin.conf_stale = stale.data();
        pin.max_len = n_drafts.data();
        pin.alpha_hat = alpha.data();
        pin.draft_prob = reads_q ? q.data() : nullptr;
        pin.estimator = &draft_est_;
        pin.token_budget = std::max(o_.token_budget, R);
        StepTimePlus plus{o_.step_time, 1e-9 * double(t_drafted - t_step)};
        pin.step_time = o_.step_time_adds_draft ? step_time_plus(&plus) : o_.step_time;
        policy_choose(o_.policy, pin, ell.data());
    }

    // 3. one forward: every [anchor, d_1..d_l], then prompt chunks in the room left
    RaggedBatch b;
    VerifyBatch v;
    v.eos = o_.eos;
    v.seed = o_.seed;
    if (drafts.q) {
        const size_t rows = drafts.tokens.size() / size_t(std::max(1, drafts.gamma));
        const bool staged = std::string(drafter_->device()) != target_.name();
        v.q = staged ? target_.stage(drafts.q, rows * size_t(drafts.gamma) * size_t(drafts.vocab)) : drafts.q;
        v.q_gamma = drafts.gamma;
    }
    int decode_tokens = 0;
    for (int j = 0; j < R; j++) {
        const Live& l = running_[size_t(dec[size_t(j)])];
        const SpecRequest& r = *l.r;
        const int e = ell[size_t(j)];
        b.seq.push_back(l.slot);
        b.q_len.push_back(1 + e);
        b.tokens.push_back(r.output.back());
        for (int k = 0; k < e; k++)
            b.tokens.push_back(drafts.tokens[size_t(draft_row[size_t(j)]) * size_t(drafts.gamma) + size_t(k)]);
        v.temperature.push_back(r.temperature);
        v.request.push_back(r.id);
        v.anchor_pos.push_back(int(r.prompt.size() + r.output.size()) - 1);
        v.n_context.push_back(0);
        if (v.q) v.q_row.push_back(draft_row[size_t(j)]);
        decode_tokens += 1 + e;
    }
    std::vector<std::pair<int, int>> chunks;  // (running_ index, prompt tokens) in the batch after the decodes
    int room = std::max(0, std::min(o_.prefill_chunk, o_.token_budget - decode_tokens));
    for (int i = 0; i < int(running_.size()) && room > 0; i++) {
        const Live& l = running_[size_t(i)];
        if (l.prefilled < 0) continue;
        const SpecRequest& r = *l.r;
        const int c = std::min(room, int(r.prompt.size()) - l.prefilled);
        b.seq.push_back(l.slot);
        b.q_len.push_back(c);
        b.tokens.insert(b.tokens.end(), r.prompt.begin() + l.prefilled, r.prompt.begin() + l.prefilled + c);
        v.temperature.push_back(r.temperature);
        v.request.push_back(r.id);
        v.anchor_pos.push_back(l.prefilled + c - 1);
        v.n_context.push_back(c - 1);
        if (v.q) v.q_row.push_back(0);  // no drafts: never read
        chunks.emplace_back(i, c);
        room -= c;
    }
    VerifyResult res;
    if (!b.seq.empty()) target_.verify(b, v, &res, layers_);
    hidden_T_ = int(b.tokens.size());
    const int64_t t_verified = now_ns();

    // 4. commit, truncate, and note the step
    std::vector<bool> finished(running_.size(), false);
    int row = 0;
    for (int j = 0; j < R; j++) {
        Live& l = running_[size_t(dec[size_t(j)])];
        SpecRequest& r = *l.r;
        const int ell_s = ell[size_t(j)];
        const int* d = b.tokens.data() + row + 1;
        int n = res.n_accepted[size_t(j)], next = res.next[size_t(j)];
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
        const int anchor_pos = v.anchor_pos[size_t(j)];
        Step st;
        st.step = int(r.steps.size());
        st.batch_size = R;
        st.verify_len = ell_s;
        st.n_accepted = n;
        st.bonus = next >= 0 && n == ell_s;
        st.draft_ns = t_drafted - t_step;
        st.verify_ns = t_verified - t_drafted;
        st.t_ns = t_step - t0_ns_;
        st.batch_tokens = int(b.tokens.size());
        r.steps.push_back(st);
        l.verified += ell_s;
        l.accepted += n;
        if (reads_q) draft_prob_observe(draft_est_, q.data() + size_t(j) * size_t(G), ell_s, n);
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
        finished[size_t(dec[size_t(j)])] = r.done;
    }
    for (size_t c = 0; c < chunks.size(); c++) {
        Live& l = running_[size_t(chunks[c].first)];
        SpecRequest& r = *l.r;
        l.prefilled += chunks[c].second;
        l.pending = drafter_ ? chunks[c].second : 0;
        l.hidden_row = row;
        row += chunks[c].second;
        if (l.prefilled < int(r.prompt.size())) continue;
        // the prompt is in: the chunk's last row gave the first output token
        const int next = res.next[size_t(R) + c];
        l.prefilled = -1;
        r.output.assign(1, next);
        r.drafted.assign(1, 0);
        r.first_token_ns = t_verified - t0_ns_;
        r.done = next == o_.eos || r.max_new == 1;
        finished[size_t(chunks[c].first)] = r.done;
    }
    std::vector<Live> still;
    for (size_t i = 0; i < running_.size(); i++) {
        if (finished[i]) {
            running_[i].r->done_ns = t_verified - t0_ns_;
            slot_used_[size_t(running_[i].slot)] = false;
        } else {
            still.push_back(std::move(running_[i]));
        }
    }
    running_ = std::move(still);
    last_.decode_seqs = R;
    last_.decode_tokens = decode_tokens;
    last_.prefill_seqs = int(chunks.size());
    last_.prefill_tokens = int(b.tokens.size()) - decode_tokens;
    last_.draft_ns = t_drafted - t_step;
    last_.verify_ns = t_verified - t_drafted;
    last_.total_ns = now_ns() - t_step;
}

void Speculator::run(SpecRequest* r) {
    add(r);
    while (!idle()) step();
}

}  // namespace sp
