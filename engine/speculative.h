// speculative.h: the speculative decoder: requests, and one
// draft-verify-accept-truncate iteration over all of them, on any Backend
// with any Drafter of the same device (drafter.h, backend.h). `specplan
// generate` and `specplan capture` drive it; live serving will batch through
// it.
//
// One iteration (digest §3):
//  0. requests submitted with submit() are prefilled in chunks that ride in
//     the same forward as the verify blocks (VerifyBatch::n_context): the
//     decode tokens first, then prompt chunks FCFS in the room that
//     token_budget leaves, at most prefill_chunk tokens per iteration, as
//     the simulator's engine model does (simulator/sim.h);
//  1. draft: every running request hands the drafter the context committed
//     since its last call (tokens, and target hidden states when the drafter
//     reads them) and its anchor; the drafter returns up to gamma drafts and,
//     with a head, their confidences;
//  2. choose l_r per request with the policy (policy/policy.h), capped by the
//     drafts there are and the tokens left: l_r <= max_new - output - 1;
//     draft-prob reads each draft's q_token and the Speculator's estimator
//     (policy/draft_prob.h), which every verified block then updates;
//  3. verify: one target forward over every [anchor, d_1..d_l] (ragged, l may
//     be 0), then lossless acceptance (verify.h) where the logits live;
//  4. commit: the n accepted drafts and the correction or bonus join the
//     output; the target's cache keeps anchor + n accepted (the new anchor
//     is not yet processed); the drafter gets anchor + n accepted as new
//     context at the next call.
// A request ends at EOS (emitted or accepted) or after max_new tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/drafter.h"
#include "policy/draft_prob.h"
#include "policy/policy.h"
#include "traces/trace_db.h"  // Step

namespace sp {

struct SpecRequest {
    uint64_t id = 0;                 // RNG key: the same id and seed give the same tokens
    std::vector<int> prompt;         // >= 1 token
    int max_new = 0;                 // output tokens at most, >= 1
    float temperature = 0;           // 0 = greedy
    // Forced acceptance (timing at full shape with random weights): when set,
    // the accept decision of slot k at output anchor t is a coin against
    // beta(t mod n, k) of these positions instead of the verifier's; the
    // forward and the drafter run as usual. EOS is ignored. When the
    // positions carry draft_prob, the draft-prob policy reads row t mod n of
    // it instead of the drafter's q_token, and when they carry conf_prob the
    // confidence policies read it instead of the head's, so their inputs are
    // the trace's, as the simulator's are.
    const Positions* replay = nullptr;

    // filled in as it runs
    std::vector<int> output;         // emitted tokens
    std::vector<uint8_t> drafted;    // (output) 1 where the token was an accepted draft
    std::vector<Step> steps;         // one per decoding iteration (request_id left 0)
    int64_t prefill_ns = 0;          // add(): wall time of the prompt's forward and first token
    int64_t first_token_ns = -1;     // when the first output token came out, since the Speculator's start
    int64_t done_ns = -1;            // when the request finished, likewise
    bool done = false;
};

struct SpecOptions {
    Policy policy;                   // default ar
    int gamma = 0;                   // drafts per step at most; <= the drafter's gamma
    int eos = -1;                    // stop token, -1 for none
    uint64_t seed = 0;
    StepTime step_time;              // seconds per iteration at B tokens: policy_needs_step_time's policies
    // Add this iteration's measured draft phase to step_time (a verify-only
    // step-cost table), so that the policies price a whole iteration, as
    // the simulator's StepTime does with its draft cost. Wall-clock: the
    // decisions then vary from run to run.
    bool step_time_adds_draft = false;
    int token_budget = 1 << 20;      // tokens per forward at most: verified tokens first, prefill chunks after
    int prefill_chunk = 1 << 20;     // prompt tokens prefilled per iteration at most (submit())
    int draft_max_running = 0;       // > 0: no drafts while more requests decode (policy_draft_len_at)
};

// What one step() ran, for a serving loop's accounting.
struct IterationInfo {
    int decode_seqs = 0;             // R: requests that verified a block
    int decode_tokens = 0;           // sum over them of 1 + l_r
    int prefill_seqs = 0, prefill_tokens = 0;  // prompt chunks in the same forward
    int64_t draft_ns = 0, verify_ns = 0;       // the drafter's call; the forward with verification
    int64_t total_ns = 0;            // the whole step(): the rest is the host's bookkeeping
};

class Speculator {
public:
    // Checks that the drafter and the target fit (vocabulary, device, hidden
    // layers in range), and that the policy's inputs exist (threshold and
    // dspark need a confidence head; the cost-aware policies, draft-prob
    // among them, a step_time; ar needs no drafter). Throws sp::Error.
    Speculator(Backend& target, Drafter* drafter, const SpecOptions& o);

    // Prefills r's prompt into a free slot, emits its first token and hands
    // the drafter the prompt, at once, in forwards of its own. Throws
    // sp::Error for a bad request or when no slot is free.
    void add(SpecRequest* r);
    // Takes a free slot for r and queues its prompt: step() prefills it in
    // chunks inside its own forwards and emits the first token when the last
    // chunk is in. Throws as add() does.
    void submit(SpecRequest* r);
    // One iteration over every running request; finished ones leave (their
    // slots are free again). t_ns of each Step counts from construction.
    void step();
    bool idle() const { return running_.empty(); }
    int n_free_slots() const;
    const IterationInfo& last_iteration() const { return last_; }
    int64_t elapsed_ns() const;      // since construction, the clock of Step::t_ns
    // draft-prob's acceptance by draft probability: every verified block of
    // this Speculator's life, observed after each step in request-row order
    const DraftProbEstimator& draft_prob_estimator() const { return draft_est_; }
    // add() then step() until it finishes.
    void run(SpecRequest* r);

private:
    struct Live {
        SpecRequest* r = nullptr;
        int slot = 0;
        int prefilled = -1;          // submit(): prompt tokens in the target's cache while prefilling; -1 once decoding
        int pending = 0;             // committed tokens the drafter has not seen (the last ones)
        int hidden_row = 0;          // row in the target's hidden_data() of the first pending token
        int anchor_t = 0;            // replay: the output index of the anchor
        std::vector<float> conf, conf_old1, conf_old2;  // (gamma) this step's confidences, one and two steps old
        int verified = 0, accepted = 0;  // drafts, for goodput's alpha_hat
    };

    void pending_to(const Live& l, int n_draft, DraftBatch* b) const;
    int take_slot(const SpecRequest& r);
    Live make_live(SpecRequest* r, int slot, int pending, int hidden_row) const;

    Backend& target_;
    Drafter* drafter_;
    SpecOptions o_;
    std::vector<int> layers_;        // the drafter's target layers
    std::vector<Live> running_;
    std::vector<bool> slot_used_;
    int hidden_T_ = 0;               // rows of target_.hidden_data()
    IterationInfo last_;
    DraftProbEstimator draft_est_;
    int64_t t0_ns_ = 0;
};

}  // namespace sp
