// test_speculative.cpp: the speculative decoder (engine/speculative.h) on
// the CPU reference, with every drafter.
//
// Evidence, each against something the decoder does not compute itself:
//  - greedy equality: greedy speculative output equals greedy autoregressive
//    output token for token (the Speculator with no drafter, whose tokens
//    test_reference holds to HF), for every drafter, for policies whose l
//    changes from step to step, and for several requests in one ragged batch;
//  - losslessness under sampling: at T = 1 the second output token's
//    distribution over 2,000 seeds equals the target's exact marginal
//    sum_o p(o | prompt) p(v | prompt, o), computed with the reference
//    forward: a chi-square test at the 0.1 % level for every drafter; a wrong
//    acceptance rule (accept every draft) must fail the same test;
//  - the verifier's rule against hand-worked cases (verify_reference),
//    prefill chunks' context rows included;
//  - chunked prefill (submit): requests joining while others decode give
//    the tokens of add()'s one-forward prefill, greedy and at T = 1;
//  - draft-prob's estimator counts what the steps record: min(l, n + 1)
//    slots observed and n accepted per verified block.
//
// Models: the HF fixture tiny-qwen3 as the target; tiny-llama (same
// vocabulary) as an independent draft model; the target itself as a draft
// model (q = p: every draft is accepted, a closed form); n-gram lookup; the
// DSpark and DFlash fixtures (tests/make_dspark_fixtures.py) on their
// 4-layer target.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "engine/backend.h"
#include "engine/counter_rng.h"
#include "engine/drafter.h"
#include "engine/speculative.h"
#include "engine/verify.h"
#include "tests/chi_square.h"
#include "tests/spec_run.h"

namespace sp {
namespace {

const std::string kFixtures = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";

// A fixed step cost for the policies that need one: 1 ms + 0.25 ms per
// verified token, so that dspark and goodput trade l against cost and l
// varies from step to step.
StepTime linear_cost() {
    StepTime st;
    st.fn = [](const void*, int, int n_tokens) { return 1e-3 + 0.25e-3 * n_tokens; };
    return st;
}

struct DrafterCase {
    std::string target, drafter;  // fixture folders (drafter may be "ngram")
};

// The drafters under test, each with the target it drafts for.
std::vector<DrafterCase> setups() {
    return {
        {"tiny-qwen3", "ngram"},
        {"tiny-qwen3", kFixtures + "tiny-llama"},
        {"tiny-qwen3", kFixtures + "tiny-qwen3"},
        {"tiny-qwen3-4l", kFixtures + "tiny-dspark"},
        {"tiny-qwen3-4l", kFixtures + "tiny-dflash"},
        {"tiny-qwen3-4l", kFixtures + "tiny-eagle3"},
    };
}

// ---------------------------------------------------------------------------
// [SECTION] greedy equality

TEST(SpeculativeGreedy, EveryDrafterAndPolicyReproducesAutoregressiveOutput) {
    const std::vector<std::vector<int>> prompts = {
        {1, 5, 9, 23, 7, 5, 9}, {203, 62, 340, 95, 178, 91, 302, 93}, {1, 400, 17}};
    const int max_new = 60;
    for (const DrafterCase& s : setups()) {
        const ModelWeights w = weights_load(kFixtures + s.target);
        auto target = backend_cpu(w, int(prompts.size()));
        const auto want = ar_outputs(*target, prompts, max_new);
        auto drafter = drafter_open_cpu(s.drafter, w, DrafterOptions{0, int(prompts.size())});
        const int G = drafter->gamma();
        std::vector<std::string> policies = {"fixed:1", "fixed:" + std::to_string(G), "goodput", "draft-prob"};
        if (drafter->has_confidence()) policies.insert(policies.end(), {"threshold:0.4", "dspark", "dspark-async"});
        for (const std::string& pol : policies) {
            SCOPED_TRACE(s.drafter + " " + pol);
            SpecOptions o;
            o.policy = policy_of(pol);
            o.step_time = linear_cost();
            Speculator spec(*target, drafter.get(), o);
            const std::vector<SpecRequest> reqs = spec_run_batch(spec, prompts, max_new);  // one ragged batch
            std::map<int, int> ells;  // verify length -> steps, to see that l varied
            int accepted = 0;
            for (size_t i = 0; i < prompts.size(); i++) {
                EXPECT_EQ(reqs[i].output, want[i]) << "prompt " << i;
                for (const Step& st : reqs[i].steps) {
                    ells[st.verify_len]++;
                    accepted += st.n_accepted;
                }
            }
            std::printf("  %-40s %-14s accepted %4d, verify lengths seen %zu\n", s.drafter.c_str(), pol.c_str(),
                        accepted, ells.size());
        }
    }
}

// A real drafter behind a spy: every call goes through, and the most drafts
// any request was asked for is kept.
struct DraftCounter : Drafter {
    Drafter& d;
    int most_drafts = 0;
    explicit DraftCounter(Drafter& inner) : d(inner) {}
    const char* kind() const override { return d.kind(); }
    const std::string& name() const override { return d.name(); }
    const char* device() const override { return d.device(); }
    int gamma() const override { return d.gamma(); }
    int n_slots() const override { return d.n_slots(); }
    int len(int slot) const override { return d.len(slot); }
    bool has_confidence() const override { return d.has_confidence(); }
    const std::vector<int>& target_layers() const override { return d.target_layers(); }
    void draft(const DraftBatch& b, DraftOutput* out) override {
        for (int n : b.n_draft) most_drafts = std::max(most_drafts, n);
        d.draft(b, out);
    }
    void reset(int slot) override { d.reset(slot); }
};

// batch-table drafts the k in force at the step's R (policy_draft_len_at):
// with speculation off at every R of the batch, the drafter is asked for no
// draft (it still takes each step's context) and the output is ar's.
TEST(SpeculativeGreedy, BatchTableOffAtTheBatchSizeAsksForNoDraft) {
    const std::vector<std::vector<int>> prompts = {{1, 5, 9, 23, 7, 5, 9}, {203, 62, 340, 95}, {1, 400, 17}};
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    auto target = backend_cpu(w, int(prompts.size()));
    const auto want = ar_outputs(*target, prompts, 20);
    auto drafter = drafter_open_cpu(kFixtures + "tiny-dspark", w, DrafterOptions{0, int(prompts.size())});
    for (const auto& [table, most] : std::vector<std::pair<std::vector<std::pair<int, int>>, int>>{
             {{{1000, 3}}, 0}, {{{1, 3}, {1000, 1}}, 3}}) {
        DraftCounter spy(*drafter);
        SpecOptions o;
        o.policy = policy_of("batch-table");
        o.policy.batch_table = table;
        Speculator spec(*target, &spy, o);
        const std::vector<SpecRequest> reqs = spec_run_batch(spec, prompts, 20);
        for (size_t i = 0; i < prompts.size(); i++) EXPECT_EQ(reqs[i].output, want[i]) << "prompt " << i;
        EXPECT_EQ(spy.most_drafts, most) << "first row's min " << table[0].first;
        for (int s = 0; s < int(prompts.size()); s++) drafter->reset(s);
    }
}

// draft_max_running turns speculation off above a batch size: three prompts
// of one length decode side by side to the end, so R is 3 at every step;
// with a limit of 2 the drafter is asked for nothing (dspark verifies one
// token a request), with 3 it drafts. The output is ar's either way.
TEST(SpeculativeGreedy, DraftMaxRunningAsksForNoDraftAboveIt) {
    const std::vector<std::vector<int>> prompts = {{1, 5, 9, 23}, {203, 62, 340, 95}, {1, 400, 17, 8}};
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    auto target = backend_cpu(w, int(prompts.size()));
    const auto want = ar_outputs(*target, prompts, 20);
    auto drafter = drafter_open_cpu(kFixtures + "tiny-dspark", w, DrafterOptions{0, int(prompts.size())});
    for (const auto& [limit, drafts] : std::vector<std::pair<int, bool>>{{2, false}, {3, true}, {0, true}}) {
        DraftCounter spy(*drafter);
        SpecOptions o;
        o.policy = policy_of("dspark");
        o.step_time = linear_cost();
        o.draft_max_running = limit;
        Speculator spec(*target, &spy, o);
        const std::vector<SpecRequest> reqs = spec_run_batch(spec, prompts, 20);
        for (size_t i = 0; i < prompts.size(); i++) EXPECT_EQ(reqs[i].output, want[i]) << "prompt " << i;
        EXPECT_EQ(spy.most_drafts > 0, drafts) << "limit " << limit;
        for (size_t i = 0; i < prompts.size() && !drafts; i++)
            for (const Step& st : reqs[i].steps) EXPECT_EQ(st.verify_len, 0);
        for (int s = 0; s < int(prompts.size()); s++) drafter->reset(s);
    }
}

// draft-prob's estimator learns from every verified block, as draft_prob.h
// says: summed over the requests' recorded steps, slots observed = min(l,
// n + 1) and accepted = n. n-gram lookup is sure of every draft (q = 1), so
// all of it lands in the last bin; the draft model spreads over several. A
// flat step cost makes every drafted slot worth verifying, so the unrelated
// tiny-llama, whose drafts all fail, keeps being observed.
TEST(SpeculativeGreedy, DraftProbLearnsFromEveryVerifiedBlock) {
    const std::vector<std::vector<int>> prompts = {{1, 5, 9, 23, 7, 5, 9}, {203, 62, 340, 95, 178, 91, 302, 93}};
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3");
    auto target = backend_cpu(w, int(prompts.size()));
    for (const std::string& d : {std::string("ngram"), kFixtures + "tiny-llama"}) {
        SCOPED_TRACE(d);
        auto drafter = drafter_open_cpu(d, w, DrafterOptions{0, int(prompts.size())});
        SpecOptions o;
        o.policy = policy_of("draft-prob");
        o.step_time.fn = [](const void*, int, int) { return 1e-3; };
        Speculator spec(*target, drafter.get(), o);
        const std::vector<SpecRequest> reqs = spec_run_batch(spec, prompts, 40);
        int64_t observed = 0, accepted = 0;
        for (const SpecRequest& r : reqs)
            for (const Step& st : r.steps) {
                observed += std::min(st.verify_len, st.n_accepted + 1);
                accepted += st.n_accepted;
            }
        const DraftProbEstimator& e = spec.draft_prob_estimator();
        int64_t seen = 0, took = 0;
        int bins_used = 0;
        for (int b = 0; b < DRAFT_PROB_BINS; b++) {
            seen += e.observed[b];
            took += e.accepted[b];
            bins_used += e.observed[b] > 0;
        }
        EXPECT_GT(observed, 0);
        EXPECT_EQ(seen, observed);
        EXPECT_EQ(took, accepted);
        if (d == "ngram") EXPECT_EQ(e.observed[DRAFT_PROB_BINS - 1], observed) << "q = 1: the last bin";
        else EXPECT_GE(bins_used, 2);
        std::printf("  %-40s %lld slots observed in %d bins, %lld accepted\n", d.c_str(), (long long)seen, bins_used,
                    (long long)took);
    }
}

// Chunked prefill (submit): prompts go in in chunks that share each forward
// with the running requests' verify blocks, requests join while others
// decode, and the outputs are the same tokens as add()'s one-forward prefill:
// greedy against AR, and at T = 1 against add() with the same seed (every
// draw is keyed by request and position, not by the batch it ran in).
// step_time_adds_draft: dspark priced on a verify cost of 1 ns a token
// alone never verifies (a slot with c < 1 only lowers tau / B); with the
// measured draft phase (microseconds at least, even for the tiny drafter)
// added to every iteration's price, extra tokens are nearly free and it
// verifies drafts.
TEST(SpeculativeGreedy, TheMeasuredDraftPhaseEntersTheStepPrice) {
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    const std::vector<std::vector<int>> prompts = {{1, 5, 9, 23, 7}, {3, 8, 2}};
    auto verified = [&](bool adds_draft) {
        auto target = backend_cpu(w, 2);
        auto drafter = drafter_open_cpu(kFixtures + "tiny-dspark", w, DrafterOptions{0, 2});
        SpecOptions o;
        o.policy = policy_of("dspark");
        o.gamma = drafter->gamma();
        o.step_time.fn = [](const void*, int, int n_tokens) { return 1e-9 * n_tokens; };
        o.step_time_adds_draft = adds_draft;
        Speculator spec(*target, drafter.get(), o);
        int n = 0;
        for (const SpecRequest& r : spec_run_batch(spec, prompts, 24))
            for (const Step& st : r.steps) n += st.verify_len;
        return n;
    };
    EXPECT_EQ(verified(false), 0);
    EXPECT_GT(verified(true), 0);
}

// A StepTime plus a fixed phase: the inner price plus its seconds, whatever R and B.
TEST(StepTimePlus, AddsItsSecondsToTheInnerPrice) {
    StepTimePlus p{StepTime{[](const void*, int r, int b) { return 0.001 * r + 0.01 * b; }, nullptr}, 0.5};
    const StepTime t = step_time_plus(&p);
    EXPECT_DOUBLE_EQ(t(2, 3), 0.532);
    EXPECT_DOUBLE_EQ(t(1, 1), 0.511);
}

TEST(SpeculativeChunkedPrefill, RequestsJoiningMidwayGiveAddsTokens) {
    const std::vector<std::vector<int>> prompts = {
        {1, 5, 9, 23, 7, 5, 9, 11, 40, 2, 3, 9}, {203, 62, 340, 95, 178, 91, 302, 93}, {1, 400, 17}, {77}};
    const int max_new = 40;
    for (const DrafterCase& s : setups()) {
        const ModelWeights w = weights_load(kFixtures + s.target);
        auto target = backend_cpu(w, int(prompts.size()));
        for (float T : {0.0f, 1.0f}) {
            SCOPED_TRACE(s.drafter + " T " + std::to_string(T));
            auto drafter = drafter_open_cpu(s.drafter, w, DrafterOptions{0, int(prompts.size())});
            SpecOptions o;
            o.policy = policy_of("fixed:" + std::to_string(drafter->gamma()));
            o.seed = 7;
            // the reference: each request alone, prefilled by add()
            std::vector<std::vector<int>> want;
            {
                Speculator one(*target, drafter.get(), o);
                for (size_t i = 0; i < prompts.size(); i++) {
                    SpecRequest r;
                    r.id = i;
                    r.prompt = prompts[i];
                    r.max_new = max_new;
                    r.temperature = T;
                    one.run(&r);
                    want.push_back(r.output);
                }
            }
            if (T == 0.0f) {
                EXPECT_EQ(want, ar_outputs(*target, prompts, max_new));
            }
            // 5 prompt tokens per iteration at most: chunks of 1..5 tokens
            // beside verify blocks; request i joins at iteration 3 i. Greedy
            // also under a 12-token forward, which cuts verify lengths; not
            // at T = 1, where the draws are keyed by each block's anchor, so
            // other verify lengths draw other (equally distributed) tokens.
            o.prefill_chunk = 5;
            if (T == 0.0f) o.token_budget = 12;
            Speculator spec(*target, drafter.get(), o);
            std::vector<SpecRequest> reqs(prompts.size());
            int mixed = 0;  // iterations that carried a prompt chunk and a verify block
            int first_token_it = -1;
            for (int it = 0, joined = 0; joined < int(prompts.size()) || !spec.idle(); it++) {
                if (joined < int(prompts.size()) && it == 3 * joined) {
                    reqs[size_t(joined)].id = uint64_t(joined);
                    reqs[size_t(joined)].prompt = prompts[size_t(joined)];
                    reqs[size_t(joined)].max_new = max_new;
                    reqs[size_t(joined)].temperature = T;
                    spec.submit(&reqs[size_t(joined)]);
                    joined++;
                }
                int decoding = 0, prefilling = 0;
                for (const SpecRequest& r : reqs) {
                    if (r.prompt.empty() || r.done) continue;
                    (r.output.empty() ? prefilling : decoding)++;
                }
                mixed += decoding > 0 && prefilling > 0;
                spec.step();
                if (first_token_it < 0 && !reqs[0].output.empty()) first_token_it = it;
                ASSERT_LT(it, 10000) << "no progress";
            }
            EXPECT_GT(mixed, 0);
            for (size_t i = 0; i < prompts.size(); i++) {
                EXPECT_EQ(reqs[i].output, want[i]) << "request " << i;

                EXPECT_TRUE(reqs[i].done);
                EXPECT_GE(reqs[i].first_token_ns, 0);
                EXPECT_GE(reqs[i].done_ns, reqs[i].first_token_ns);
            }
            // request 0 alone: its 12-token prompt in chunks of 5, 5 and 2, its first token after the third forward
            EXPECT_EQ(first_token_it, 2);
        }
    }
}

// The target drafting for itself at T = 1: q = p, so every draft passes
// (u q < p with q = p) and each step emits gamma + 1 tokens: a closed form.
TEST(SpeculativeSampling, TheTargetAsItsOwnDrafterAcceptsEveryDraft) {
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3");
    auto target = backend_cpu(w, 1);
    auto drafter = drafter_open_cpu(kFixtures + "tiny-qwen3", w, DrafterOptions{4, 1});
    SpecOptions o;
    o.policy = policy_of("fixed:4");
    Speculator spec(*target, drafter.get(), o);
    SpecRequest r;
    r.prompt = {1, 5, 9};
    r.max_new = 1 + 5 * 8;
    r.temperature = 1;
    spec.run(&r);
    ASSERT_EQ(r.steps.size(), 8u);
    for (const Step& st : r.steps) {
        EXPECT_EQ(st.n_accepted, 4);
        EXPECT_TRUE(st.bonus);
    }
}

// ---------------------------------------------------------------------------
// [SECTION] losslessness under sampling

// Wraps a backend and replaces its acceptance with a wrong rule: every draft
// accepted, bonus from p. The chi-square test must catch it.
class AcceptAll final : public Backend {
public:
    explicit AcceptAll(std::unique_ptr<Backend> b) : b_(std::move(b)) {}
    const Config& config() const override { return b_->config(); }
    const char* name() const override { return b_->name(); }
    int n_seqs() const override { return b_->n_seqs(); }
    int len(int seq) const override { return b_->len(seq); }
    void forward(const RaggedBatch& b, std::vector<float>* logits, const std::vector<int>& layers,
                 std::vector<float>* hidden) override {
        b_->forward(b, logits, layers, hidden);
    }
    void truncate(int seq, int n) override { b_->truncate(seq, n); }
    void verify(const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out, const std::vector<int>& layers) override {
        std::vector<float> logits;
        b_->forward(b, &logits, layers, nullptr);
        const int V = config().vocab;
        out->n_accepted.clear();
        out->next.clear();
        int t0 = 0;
        for (size_t s = 0; s < b.seq.size(); s++) {
            const int ell = b.q_len[s] - 1;
            out->n_accepted.push_back(ell);
            const uint64_t row = counter_row(v.seed, RNG_TARGET, v.request[s], v.anchor_pos[s] + ell + 1);
            out->next.push_back(sample_row(logits.data() + size_t(t0 + ell) * V, V, v.temperature[s], row, 0));
            t0 += b.q_len[s];
        }
    }
    void sample(const RaggedBatch& b, const SampleBatch& s, SampleResult* out) override { b_->sample(b, s, out); }
    const float* hidden_data() const override { return b_->hidden_data(); }
    const float* stage(const float* host, size_t n) override { return b_->stage(host, n); }
    float* q_buffer(size_t n) override { return b_->q_buffer(n); }

private:
    std::unique_ptr<Backend> b_;
};

TEST(SpeculativeSampling, EveryDrafterKeepsTheTargetsDistribution) {
    const int n = 2000;
    for (const DrafterCase& s : setups()) {
        SCOPED_TRACE(s.drafter);
        const ModelWeights w = weights_load(kFixtures + s.target);
        const std::vector<int> prompt = {1, 5, 9, 23, 7, 5, 9, 23};
        const std::vector<double> m = second_token_marginal(w, prompt);
        auto target = backend_cpu(w, 1);
        auto drafter = drafter_open_cpu(s.drafter, w, DrafterOptions{0, 1});
        int dof = 0;
        const double stat = chi_square(second_tokens(*target, drafter.get(), prompt, n), m, n, &dof);
        const double crit = chi_square_critical(dof);
        std::printf("  %-40s chi2 %.1f, dof %d, critical (0.1 %%) %.1f\n", s.drafter.c_str(), stat, dof, crit);
        EXPECT_LT(stat, crit);
    }
}

TEST(SpeculativeSampling, AWrongAcceptanceRuleFailsTheSameTest) {
    const int n = 2000;
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3");
    const std::vector<int> prompt = {1, 5, 9, 23, 7, 5, 9, 23};
    const std::vector<double> m = second_token_marginal(w, prompt);
    AcceptAll wrong(backend_cpu(w, 1));
    auto drafter = drafter_open_cpu(kFixtures + "tiny-llama", w, DrafterOptions{3, 1});
    int dof = 0;
    const double stat = chi_square(second_tokens(wrong, drafter.get(), prompt, n), m, n, &dof);
    std::printf("  accept-all rule: chi2 %.1f, dof %d, critical (0.1 %%) %.1f\n", stat, dof, chi_square_critical(dof));
    EXPECT_GT(stat, chi_square_critical(dof));
}

// ---------------------------------------------------------------------------
// [SECTION] the verifier against hand-worked cases

// V = 4, one sequence [anchor, d1, d2]; logits rows chosen by hand.
struct VerifyCase {
    std::vector<float> logits;  // (3, 4)
    RaggedBatch b{{0}, {3}, {0, 2, 1}};
    VerifyBatch v;
    VerifyCase() {
        v.temperature = {0};
        v.request = {7};
        v.anchor_pos = {10};
        v.seed = 1;
    }
};

TEST(Verify, GreedyAcceptsWhileTheDraftIsTheArgmaxThenEmitsTheArgmax) {
    VerifyCase c;
    c.logits = {0, 0, 5, 0,   // argmax 2 = d1: accepted
                0, 0, 0, 3,   // argmax 3 != d2 = 1: rejected; 3 emitted
                9, 0, 0, 0};
    VerifyResult r;
    verify_reference(c.logits.data(), 4, c.b, c.v, &r);
    EXPECT_EQ(r.n_accepted[0], 1);
    EXPECT_EQ(r.next[0], 3);
    c.logits[7] = 0;  // row 1 all zeros: ties go to the lowest index, 0 != 1: still rejected, 0 emitted
    verify_reference(c.logits.data(), 4, c.b, c.v, &r);
    EXPECT_EQ(r.next[0], 0);
    c.logits[5] = 4;  // row 1 argmax 1 = d2: all accepted, the bonus is row 2's argmax
    verify_reference(c.logits.data(), 4, c.b, c.v, &r);
    EXPECT_EQ(r.n_accepted[0], 2);
    EXPECT_EQ(r.next[0], 0);
}

TEST(Verify, AnAcceptedEosEndsTheBlockWithoutABonus) {
    VerifyCase c;
    c.logits = {0, 0, 5, 0, 0, 4, 0, 0, 9, 0, 0, 0};
    c.v.eos = 2;  // d1 = 2 is accepted and is EOS
    VerifyResult r;
    verify_reference(c.logits.data(), 4, c.b, c.v, &r);
    EXPECT_EQ(r.n_accepted[0], 1);
    EXPECT_EQ(r.next[0], -1);
}

TEST(Verify, SamplingWithQEqualToPAcceptsAndWithPZeroRejects) {
    VerifyCase c;
    c.logits = {1, 2, 3, 0.5f, 0.2f, 1.5f, 0, 1, 0, 0, 0, 0};
    c.v.temperature = {1};
    std::vector<float> q(2 * 4);
    softmax_row(q.data(), c.logits.data(), 4, 1);
    softmax_row(q.data() + 4, c.logits.data() + 4, 4, 1);
    c.v.q = q.data();
    c.v.q_row = {0};
    c.v.q_gamma = 2;
    VerifyResult r;
    verify_reference(c.logits.data(), 4, c.b, c.v, &r);
    EXPECT_EQ(r.n_accepted[0], 2);  // p = q: min(1, p/q) = 1
    // p(d1) = 0 (logit -inf): rejected whatever the coin; the residual
    // max(0, p - q) puts no mass on d1
    c.logits[2] = -INFINITY;
    for (uint64_t req = 0; req < 50; req++) {
        c.v.request = {req};
        verify_reference(c.logits.data(), 4, c.b, c.v, &r);
        EXPECT_EQ(r.n_accepted[0], 0);
        EXPECT_NE(r.next[0], 2);
    }
}

// A prefill chunk's context rows are skipped: [c0, c1, anchor, d1, d2] with
// n_context 2 decides as [anchor, d1, d2] does on rows 2..4, and the
// sequence after it starts at row 5.
TEST(Verify, ContextRowsOfAPrefillChunkAreNotDrafts) {
    VerifyCase c;
    const std::vector<float> noise = {1, 2, 3, 9, 9, 3, 2, 1};  // rows that would reject anything but 3 and 0
    c.logits = {0, 0, 5, 0, 0, 4, 0, 3, 9, 0, 0, 0};  // d1 = 2 accepted, d2 = 1 accepted, bonus 0
    std::vector<float> logits = noise;
    logits.insert(logits.end(), c.logits.begin(), c.logits.end());
    logits.insert(logits.end(), {0, 0, 0, 7});     // a second sequence: one anchor row, argmax 3
    RaggedBatch b{{0, 1}, {5, 1}, {3, 3, 0, 2, 1, 1}};
    VerifyBatch v = c.v;
    v.temperature = {0, 0};
    v.request = {7, 8};
    v.anchor_pos = {10, 4};
    v.n_context = {2, 0};
    VerifyResult with_ctx, alone;
    verify_reference(logits.data(), 4, b, v, &with_ctx);
    verify_reference(c.logits.data(), 4, c.b, c.v, &alone);
    EXPECT_EQ(with_ctx.n_accepted[0], alone.n_accepted[0]);
    EXPECT_EQ(with_ctx.n_accepted[0], 2);
    EXPECT_EQ(with_ctx.next[0], alone.next[0]);
    EXPECT_EQ(with_ctx.next[1], 3);
    v.n_context = {5, 0};  // no anchor left
    EXPECT_THROW(verify_reference(logits.data(), 4, b, v, &with_ctx), Error);
    v.n_context = {2};     // not one per sequence
    EXPECT_THROW(verify_reference(logits.data(), 4, b, v, &with_ctx), Error);
}

TEST(Verify, ABadBatchIsRefusedBeforeTheCacheChanges) {
    const ModelWeights w = weights_random([] {
        Config c;
        config_preset("tiny-qwen3", &c);
        return c;
    }(), 3);
    auto b = backend_cpu(w, 1);
    VerifyBatch v;  // no per-sequence arrays
    VerifyResult r;
    EXPECT_THROW(b->verify(RaggedBatch{{0}, {2}, {1, 2}}, v, &r), Error);
    EXPECT_EQ(b->len(0), 0);
}

}  // namespace
}  // namespace sp
