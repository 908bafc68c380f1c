// test_sim.cpp: the simulator against closed forms: Little's law, Leviathan
// et al.'s expected tokens per step and speedup, the degenerate acceptance
// cases, M/D/1 queueing, the arrival generators, the engine invariants, and
// determinism across thread counts. Scenarios are built in code so each test
// states exactly the conditions its closed form assumes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulator/report.h"
#include "simulator/plan.h"
#include "simulator/sweep.h"
#include "simulator/workload.h"
#include "sim_scenario.h"
#include "tests/draft_prob_trace.h"
#include "tests/scratch.h"
#include "traces/models.h"

using namespace sp;

static Scenario base(double alpha, int gamma) { return sim_scenario(alpha, gamma); }
static Policy policy(const char* text) { return sim_policy(text); }

static PointResult run(const Scenario& sc, const char* pol, double load, SimObserver* obs = nullptr) {
    AcceptanceData acc = acceptance_load(sc);
    return sim_run_point(sc, acc, policy(pol), load, obs);
}

// [SECTION] Little's law ---------------------------------------------------------

TEST(Sim, ClosedLoopThroughputObeysLittlesLaw) {
    for (const char* pol : {"ar", "fixed:3", "dspark"}) {
        Scenario sc = base(0.7, 4);
        sc.workload.requests = 3000;
        sc.workload.warmup = 300;
        sc.workload.output_len = {DIST_UNIFORM, 0, 50, 400, 0, 0};
        const int n = 32;
        PointResult p = run(sc, pol, n);
        // X_req = N / E[E2E]; X_tok = N * E[OSL] / E[E2E]
        EXPECT_NEAR(p.request_rate, n / p.e2e.mean, 0.005 * p.request_rate) << pol;
        EXPECT_NEAR(p.throughput, n * p.mean_output_len / p.e2e.mean, 0.005 * p.throughput) << pol;
    }
}

TEST(Sim, WithFixedLengthsThroughputIsNTimesOslOverTtftPlusOslMinusOneTpot) {
    Scenario sc = base(0.6, 3);
    sc.workload.requests = 2000;
    sc.workload.warmup = 200;
    const int n = 16, osl = 400;
    PointResult p = run(sc, "fixed:3", n);
    double x = n * osl / (p.ttft.mean + (osl - 1) * p.tpot.mean);
    EXPECT_NEAR(p.throughput, x, 0.005 * x);
}

// [SECTION] Leviathan's closed forms ---------------------------------------------

// Expected tokens per step with i.i.d. acceptance alpha and k drafts:
// E = (1 - alpha^(k+1)) / (1 - alpha) (Leviathan et al. 2023, eq. 1).
static double leviathan_tokens(double alpha, int k) { return (1 - std::pow(alpha, k + 1)) / (1 - alpha); }

TEST(Sim, OneUserFixedKTokensPerStepMatchLeviathan) {
    for (double alpha : {0.5, 0.8}) {
        for (int k : {1, 3, 5}) {
            Scenario sc = base(alpha, 5);
            sc.workload.output_len.value = 4000;
            sc.workload.requests = 20;
            sc.workload.warmup = 0;
            std::string pol = "fixed:" + std::to_string(k);
            PointResult p = run(sc, pol.c_str(), 1);
            double e = leviathan_tokens(alpha, k);
            // Variance of tokens per step N = 1 + min(Geom, k): E[N^2] - E[N]^2 by summing
            // P(N = j) = alpha^(j-1) (1 - alpha) for j <= k and alpha^k for j = k + 1.
            double m2 = 0;
            for (int j = 1; j <= k; j++) m2 += j * j * std::pow(alpha, j - 1) * (1 - alpha);
            m2 += (k + 1) * (k + 1) * std::pow(alpha, k);
            double sd = std::sqrt((m2 - e * e) / static_cast<double>(p.n_steps));
            // The last steps of each request are capped by its remaining tokens,
            // which lowers tau by at most k tokens per request: allow that too.
            double cap = static_cast<double>(k) * 20 / static_cast<double>(p.n_steps);
            EXPECT_NEAR(p.tau, e, 5 * sd + cap) << "alpha " << alpha << " k " << k;
        }
    }
}

TEST(Sim, OneUserSpeedupOverArMatchesTheClosedFormForTheCostRatio) {
    const double alpha = 0.8;
    const int k = 4;
    Scenario sc = base(alpha, k);
    sc.workload.output_len.value = 4000;
    sc.workload.requests = 20;
    sc.workload.warmup = 0;
    PointResult ar = run(sc, "ar", 1);
    PointResult spec = run(sc, "fixed:4", 1);
    // The scenario's cost ratio: one decode step of ar against draft + verify of k+1 tokens.
    BatchShape one{1, 1, 2100, 0, 0, 0}, block{1, k + 1, 2100, 0, 0, 0};
    double t_ar = cost_forward_s(sc.cost, one);
    double t_spec = cost_draft_s(sc.cost, 1, k, 2100) + cost_forward_s(sc.cost, block);
    double speedup = leviathan_tokens(alpha, k) * t_ar / t_spec;
    double measured = spec.per_user.mean / ar.per_user.mean;
    EXPECT_NEAR(measured, speedup, 0.03 * speedup);  // tau's sampling error at ~1000 steps/request is ~1 %
    EXPECT_GT(measured, 1.5);  // and speculation does pay off here
}

// The serving loop's host time lengthens every iteration by itself and
// leaves the price the policies compare alone: at one user every token of
// ar is one step, so TPOT grows by exactly host_s, and dspark's choices (its
// tau) do not move.
TEST(Sim, HostTimeAddsToEveryIterationButNotToThePolicysPrice) {
    Scenario sc = base(0.8, 4);
    sc.workload.requests = 10;
    sc.workload.warmup = 0;
    Scenario host = sc;
    host.cost.host_s = 250e-6;
    PointResult ar = run(sc, "ar", 1), ar_host = run(host, "ar", 1);
    EXPECT_NEAR(ar_host.tpot.mean - ar.tpot.mean, 250e-6, 1e-9);
    // the same 250 us as 50 + 200 per running request: one request runs each decode step
    Scenario per_seq = sc;
    per_seq.cost.host_s = 50e-6;
    per_seq.cost.host_s_per_seq = 200e-6;
    EXPECT_NEAR(run(per_seq, "ar", 1).tpot.mean - ar.tpot.mean, 250e-6, 1e-9);
    PointResult ds = run(sc, "dspark", 1), ds_host = run(host, "dspark", 1);
    EXPECT_EQ(ds_host.tau, ds.tau);
    // a dspark step emits tau tokens: about host_s / tau more per token (request ends make it inexact)
    EXPECT_NEAR(ds_host.tpot.mean - ds.tpot.mean, 250e-6 / ds.tau, 0.1 * 250e-6 / ds.tau);
}

// [SECTION] degenerate cases -----------------------------------------------------

TEST(Sim, AlphaZeroGivesExactlyOneTokenPerStep) {
    Scenario sc = base(0.0, 4);
    for (int n : {1, 8}) {
        PointResult p = run(sc, "fixed:4", n);
        EXPECT_EQ(p.tau, 1.0);
        EXPECT_GT(p.waste, 0.79);  // 4 of 5 verified tokens rejected, save capped final steps
    }
}

TEST(Sim, AlphaOneGivesKPlusOneTokensPerStep) {
    Scenario sc = base(1.0, 4);
    sc.workload.output_len.value = 1 + 5 * 80;  // after the first token, whole blocks of k + 1
    for (int n : {1, 8}) {
        PointResult p = run(sc, "fixed:4", n);
        EXPECT_EQ(p.tau, 5.0);
        EXPECT_EQ(p.waste, 0.0);
    }
}

TEST(Sim, FixedZeroIsByteIdenticalToAr) {
    Scenario sc = base(0.7, 4);
    sc.workload.concurrency = {1, 4, 16};
    AcceptanceData acc = acceptance_load(sc);
    std::vector<double> loads{1, 4, 16};
    auto json = [&](const char* pol) {
        Policy p = policy(pol);
        p.name = "x";  // the name is the one field allowed to differ
        SweepResult r = sweep_run(sc, acc, {p}, loads, 1);
        std::ostringstream out;
        report_json(out, sc, {p}, r);
        return out.str();
    };
    EXPECT_EQ(json("fixed:0"), json("ar"));
}

// engine.draft_max_running turns speculation off above a batch size: with 4,
// dspark at 16 and 32 users (every iteration decodes more than 4) drafts
// nothing and verifies one token a request, byte for byte ar; at 1 user it
// still speculates.
TEST(Sim, DraftMaxRunningMakesAnyPolicyArAboveIt) {
    Scenario sc = base(0.7, 4);
    sc.workload.concurrency = {16, 32};
    sc.engine.draft_max_running = 4;
    AcceptanceData acc = acceptance_load(sc);
    auto json = [&](const char* pol, std::vector<double> loads) {
        Policy p = policy(pol);
        p.name = "x";
        SweepResult r = sweep_run(sc, acc, {p}, loads, 1);
        std::ostringstream out;
        report_json(out, sc, {p}, r);
        return out.str();
    };
    for (const char* pol : {"dspark", "fixed:4", "mtp1"}) EXPECT_EQ(json(pol, {16, 32}), json("ar", {16, 32})) << pol;
    sc.workload.concurrency = {1};
    EXPECT_GT(run(sc, "dspark", 1).tau, 1.5);
}

// batch-table drafts only the k in force at each iteration's R: a table whose
// one speculating row starts above every load tried drafts nothing there, so
// it pays no draft phase and matches ar byte for byte (the draft phase once
// took the table's largest k at every R: 4 MTP drafts a step for nothing).
TEST(Sim, BatchTableOffAtTheLoadIsByteIdenticalToAr) {
    Scenario sc = base(0.7, 4);
    sc.workload.concurrency = {1, 4, 16};
    AcceptanceData acc = acceptance_load(sc);
    std::vector<double> loads{1, 4, 16};
    auto json = [&](Policy p) {
        p.name = "x";
        SweepResult r = sweep_run(sc, acc, {p}, loads, 1);
        std::ostringstream out;
        report_json(out, sc, {p}, r);
        return out.str();
    };
    Policy table = policy("batch-table");
    table.batch_table = {{1000, 4}};
    ASSERT_GT(cost_draft_s(sc.cost, 16, 4, 100), 0) << "the drafter must cost something for this test to bite";
    EXPECT_EQ(json(table), json(policy("ar")));
}

// [SECTION] queueing -------------------------------------------------------------

TEST(Sim, BatchCapOneWithPoissonArrivalsWaitsAsMD1) {
    Scenario sc = base(0.0, 1);
    sc.engine.max_seqs = 1;
    sc.workload.output_len.value = 10;
    sc.workload.requests = 1;
    sc.workload.warmup = 0;
    // Service time D: one request alone (closed loop, one user).
    double d = run(sc, "ar", 1).e2e.mean;
    const double rho = 0.6, lambda = rho / d;
    sc.workload.mode = WORKLOAD_OPEN;
    sc.workload.arrival = ARRIVAL_POISSON;
    sc.workload.requests = 40000;
    sc.workload.warmup = 2000;
    PointResult p = run(sc, "ar", lambda);
    double wq = lambda * d * d / (2 * (1 - rho));  // Pollaczek-Khinchine for deterministic service
    // Batch means of M/D/1 waits at rho 0.6 are correlated over ~(1+rho)/(1-rho)^2 = 10 customers;
    // 40000 customers give a standard error near 2 % of W_q. Allow 4 standard errors.
    EXPECT_NEAR(p.e2e.mean - d, wq, 0.08 * wq);
    EXPECT_NEAR(p.busy_fraction, rho, 0.02);
}

TEST(Sim, ArrivalGapsHaveTheirMeanAndCv) {
    Workload w;
    for (double shape : {1.0, 0.25, 4.0}) {
        w.arrival = shape == 1.0 ? ARRIVAL_POISSON : ARRIVAL_GAMMA;
        w.burstiness = shape;
        Rng r = rng_seed(3);
        const int n = 200000;
        const double rate = 5;
        double sum = 0, sq = 0;
        for (int i = 0; i < n; i++) {
            double g = workload_gap_s(w, rate, r);
            sum += g;
            sq += g * g;
        }
        double mean = sum / n, var = sq / n - mean * mean, cv = std::sqrt(var) / mean;
        double want_cv = 1 / std::sqrt(shape);
        EXPECT_NEAR(mean, 1 / rate, 6 * want_cv / rate / std::sqrt(n)) << shape;
        EXPECT_NEAR(cv, want_cv, 0.03 * want_cv) << shape;  // ~5 sigma for the heavy-tailed shape 0.25
    }
}

// [SECTION] invariants -----------------------------------------------------------

struct InvariantChecker : SimObserver {
    int64_t last = 0;
    int64_t states = 0, completions = 0;
    int violations = 0;
    std::string first;
    void bad(const std::string& what) {
        if (violations++ == 0) first = what;
    }
    void on_state(const SimState& s) override {
        states++;
        if (s.now_ns < last) bad("time ran backwards");
        last = s.now_ns;
        if (s.arrived != s.done + s.waiting + s.prefilling + s.running + s.remote_prefill)
            bad("requests not conserved");
        if (s.kv_used > s.kv_capacity || s.kv_used < 0) bad("KV capacity exceeded");
        if (!s.busy && (s.waiting + s.prefilling + s.running) > 0) bad("idle while work waits");
    }
    void on_complete(const CompletedRequest& r) override {
        completions++;
        if (!(r.arrival_ns <= r.first_token_ns && r.first_token_ns <= r.done_ns)) bad("causality");
    }
};

TEST(Sim, InvariantsHoldUnderLoadForEveryPolicyWithColocatedOrDisaggregatedPrefill) {
    for (bool disagg : {false, true})
    for (const char* pol : {"ar", "mtp1", "fixed:4", "threshold:0.5", "dspark", "dspark-async", "goodput"}) {
        Scenario sc = base(0.7, 4);
        sc.acceptance.kind = ACCEPT_PARAMETRIC;
        sc.workload.mix = {{"code", 0.4, {0.9, 0.8, 0.7, 0.6}}, {"chat", 0.6, {0.7, 0.6, 0.5, 0.4}}};
        sc.workload.prompt_len = {DIST_UNIFORM, 0, 100, 3000, 0, 0};
        sc.workload.output_len = {DIST_UNIFORM, 0, 1, 500, 0, 0};
        sc.engine.kv_capacity_tokens = 40000;  // tight: admission must wait for memory
        sc.engine.max_seqs = 48;
        sc.engine.max_batch_tokens = 1024;
        sc.engine.prefill_chunk_tokens = 512;
        sc.engine.disaggregated_prefill = disagg;
        InvariantChecker check;
        PointResult p = run(sc, pol, 64, &check);
        EXPECT_EQ(check.violations, 0) << pol << (disagg ? " disaggregated: " : ": ") << check.first;
        EXPECT_GT(check.states, 1000) << pol;
        EXPECT_EQ(p.n_requests, sc.workload.requests) << pol;
        // saturation shows: 64 users reserving about 1,800 tokens each in a
        // 40,000-token cache keep it mostly reserved and keep requests waiting
        EXPECT_GT(p.kv_use, 0.5) << pol;
        EXPECT_LE(p.kv_use, 1.0) << pol;
        EXPECT_GT(p.queue_wait.p90, 0.0) << pol;
        if (!disagg && std::string(pol) == "ar") {  // the control: room for everyone, nobody waits
            sc.engine.kv_capacity_tokens = 10'000'000;
            sc.engine.max_seqs = 256;
            sc.engine.max_batch_tokens = 8192;
            const PointResult q = run(sc, pol, 64);
            EXPECT_LT(q.kv_use, 0.02);
            EXPECT_LT(q.queue_wait.p90, 1e-6);
        }
    }
}

// draft-prob replays a trace's draft probabilities (tests/draft_prob_trace.h:
// 20 requests, 100-token prompts, outputs of 50..300), here under load.
static Scenario draft_prob_scenario(const std::string& trace) {
    Scenario sc = base(0.7, 4);
    sc.acceptance.kind = ACCEPT_TRACE;
    sc.acceptance.trace_path = trace;
    sc.workload.lengths = LENGTHS_TRACE;
    sc.workload.mix = {{"code", 1, {}}};
    sc.engine.max_seqs = 48;
    sc.engine.max_batch_tokens = 1024;
    sc.engine.prefill_chunk_tokens = 512;
    return sc;
}

TEST(Sim, InvariantsHoldUnderLoadForDraftProbOnATraceWithDraftProbabilities) {
    ScratchDir dir;
    write_draft_prob_trace(dir.file("q.specdb"), 20, 100, 50, 300);
    for (bool disagg : {false, true}) {
        Scenario sc = draft_prob_scenario(dir.file("q.specdb"));
        sc.engine.disaggregated_prefill = disagg;
        InvariantChecker check;
        struct Verified : SimObserver {
            SimObserver* inner;
            std::set<int> ells;
            explicit Verified(SimObserver* i) : inner(i) {}
            void on_step(const StepView& v) override {
                for (int i = 0; i < v.n_decode; i++) ells.insert(v.ell[i]);
                inner->on_step(v);
            }
            void on_state(const SimState& st) override { inner->on_state(st); }
            void on_complete(const CompletedRequest& r) override { inner->on_complete(r); }
        } verified(&check);
        PointResult p = run(sc, "draft-prob", 32, &verified);
        EXPECT_EQ(check.violations, 0) << (disagg ? "disaggregated: " : "") << check.first;
        EXPECT_GE(check.completions, sc.workload.warmup + sc.workload.requests);
        EXPECT_EQ(p.n_requests, sc.workload.requests);
        EXPECT_GE(verified.ells.size(), 3u) << "draft-prob's verify lengths vary";
    }
}

// [SECTION] determinism ----------------------------------------------------------

// The sweep's JSON report at this seed and thread count.
std::string sweep_json(Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& pols,
                       const std::vector<double>& loads, int threads, uint64_t seed) {
    sc.seed = seed;
    SweepResult r = sweep_run(sc, acc, pols, loads, threads);
    std::ostringstream out;
    report_json(out, sc, pols, r);
    return out.str();
}

TEST(Sim, DraftProbGivesByteIdenticalJsonOnOneThreadAndOnMany) {
    ScratchDir dir;
    write_draft_prob_trace(dir.file("q.specdb"), 20, 100, 50, 300);
    Scenario sc = draft_prob_scenario(dir.file("q.specdb"));
    sc.workload.requests = 60;
    std::vector<Policy> pols{policy("draft-prob"), policy("fixed:4")};
    std::vector<double> loads{1, 8, 32};
    AcceptanceData acc = acceptance_load(sc);
    auto json = [&](int threads, uint64_t seed) { return sweep_json(sc, acc, pols, loads, threads, seed); };
    std::string one = json(1, 7);
    EXPECT_EQ(one, json(1, 7));
    EXPECT_EQ(one, json(3, 7));
    EXPECT_NE(one, json(1, 8));
}

TEST(Sim, TheSameSeedGivesByteIdenticalJsonOnOneThreadAndOnMany) {
    Scenario sc = base(0.7, 4);
    sc.acceptance.kind = ACCEPT_PARAMETRIC;
    sc.workload.mix = {{"code", 0.4, {0.9, 0.8, 0.7, 0.6}}, {"chat", 0.6, {0.7, 0.6, 0.5, 0.4}}};
    std::vector<Policy> pols{policy("ar"), policy("fixed:2"), policy("dspark"), policy("dspark-async")};
    std::vector<double> loads{1, 8, 32};
    AcceptanceData acc = acceptance_load(sc);
    auto json = [&](int threads, uint64_t seed) { return sweep_json(sc, acc, pols, loads, threads, seed); };
    std::string one = json(1, 7);
    EXPECT_EQ(one, json(1, 7));
    EXPECT_EQ(one, json(2, 7));
    EXPECT_EQ(one, json(4, 7));
    EXPECT_NE(one, json(1, 8));
}

TEST(Sim, PoliciesComparedInOneSweepSeeTheSameRequests) {
    // Common random numbers: the n-th request of user u is the same request
    // under every policy, so the measured output lengths match closely.
    Scenario sc = base(0.7, 4);
    sc.workload.output_len = {DIST_UNIFORM, 0, 10, 1000, 0, 0};
    struct Lengths : SimObserver {
        std::vector<std::pair<uint64_t, int>> seen;
        void on_complete(const CompletedRequest& r) override { seen.push_back({r.key, r.output_len}); }
    } a, b;
    run(sc, "ar", 8, &a);
    run(sc, "dspark", 8, &b);
    std::sort(a.seen.begin(), a.seen.end());
    std::sort(b.seen.begin(), b.seen.end());
    size_t common = 0;
    for (auto& [key, len] : a.seen) {
        auto it = std::lower_bound(b.seen.begin(), b.seen.end(), std::make_pair(key, 0));
        if (it != b.seen.end() && it->first == key) {
            EXPECT_EQ(it->second, len);
            common++;
        }
    }
    EXPECT_GT(common, a.seen.size() / 2);
}

TEST(Sim, DisaggregatedPrefillGivesTtftOfThePromptAloneAndKeepsPrefillOutOfDecodeSteps) {
    Scenario sc = base(0.7, 4);
    sc.engine.disaggregated_prefill = true;
    sc.engine.prefill_chunk_tokens = 64;  // the 100-token prompt: chunks of 64 and 36
    struct Steps : SimObserver {
        int prefill_tokens = 0;
        void on_step(const StepView& v) override { prefill_tokens += v.prefill_tokens; }
    } steps;
    PointResult p = run(sc, "dspark", 16, &steps);
    BatchShape c1, c2;
    c1.n_prefill_seqs = c2.n_prefill_seqs = 1;
    c1.n_prefill_tokens = 64;
    c2.n_prefill_tokens = 36;
    c2.prefill_context = 64;
    double ttft = cost_forward_s(sc.cost, c1) + cost_forward_s(sc.cost, c2);
    // every request: TTFT is its prompt's prefill alone (ns rounding per chunk)
    EXPECT_NEAR(p.ttft.p99, ttft, 0.005 * ttft);
    EXPECT_NEAR(p.ttft.mean, ttft, 1e-8);
    EXPECT_EQ(steps.prefill_tokens, 0);
}

// [SECTION] the clock and overload -----------------------------------------------

// Passes when `f` throws one sp::Error line that starts with the scenario's
// path and names `key` (as "key: ").
template <class F>
static ::testing::AssertionResult clock_refused(F f, const std::string& key) {
    try {
        f();
        return ::testing::AssertionFailure() << "ran; expected an error naming " << key;
    } catch (const Error& e) {
        std::string msg = e.what();
        if (msg.find('\n') != std::string::npos) return ::testing::AssertionFailure() << "two lines: " << msg;
        if (msg.rfind("test: " + key + ": expected ", 0) != 0)
            return ::testing::AssertionFailure() << "does not name the file and " << key << ": " << msg;
        return ::testing::AssertionSuccess() << msg;
    }
}

// Scenarios built in code skip the loader's bounds: the simulator itself
// refuses a duration the int64 ns clock cannot hold, and a run that would
// pass its end, instead of clamping or wrapping (think_time_ms = 1e13 read
// "busy 3833376.8 %", rate 1e-12 read 22.8 req/s, overhead 1e16 us read
// 1.3e11 tok/s/GPU).
TEST(Sim, ADurationOrARunPastTheClockIsAnErrorNamingItsKeyNotAWrappedTime) {
    Scenario sc = base(0.5, 2);
    sc.workload.output_len.value = 20;
    sc.workload.think_time_s = 1e10;
    EXPECT_TRUE(clock_refused([&] { run(sc, "ar", 1); }, "workload.think_time_ms"));
    sc.workload.think_time_s = 5e8;  // each fits; 17 in a row pass the clock's 8.2e9 s
    EXPECT_TRUE(clock_refused([&] { run(sc, "ar", 1); }, "workload.think_time_ms"));

    sc = base(0.5, 2);
    sc.workload.mode = WORKLOAD_OPEN;
    EXPECT_TRUE(clock_refused([&] { run(sc, "ar", 1e-12); }, "workload.rate"));

    sc = base(0.5, 2);
    sc.cost.roofline.gpu.overhead_s = 1e10;
    EXPECT_TRUE(clock_refused([&] { run(sc, "ar", 1); }, "cost"));
    // On a sweep's worker threads the error reaches the caller, one line.
    AcceptanceData acc = acceptance_load(sc);
    EXPECT_TRUE(clock_refused([&] { sweep_run(sc, acc, {policy("ar"), policy("fixed:2")}, {1, 2}, 2); }, "cost"));
}

struct QueuePeak : SimObserver {
    int peak = 0;
    void on_state(const SimState& s) override { peak = std::max(peak, s.waiting + s.remote_prefill); }
};

static Scenario open_loop(bool disaggregated) {
    Scenario sc = base(0.7, 4);
    sc.workload.mode = WORKLOAD_OPEN;
    sc.workload.output_len.value = 100;
    sc.workload.warmup = 50;
    sc.workload.requests = 500;
    sc.engine.max_seqs = 64;
    sc.engine.disaggregated_prefill = disaggregated;
    return sc;
}

// rate = 1e6 grew to 5.2 GB and 1e7 died of std::bad_alloc: the waiting
// queue is capped (sim_queue_cap), the point stops there and is unstable.
TEST(Sim, AnOpenLoopFarPastSaturationStopsAtTheQueueCapAndIsUnstable) {
    for (bool disagg : {false, true}) {
        Scenario sc = open_loop(disagg);
        QueuePeak q;
        PointResult p = run(sc, "fixed:4", 1e7, &q);
        EXPECT_TRUE(p.unstable) << disagg;
        EXPECT_EQ(q.peak, sim_queue_cap(sc.engine) + 1) << disagg;
        EXPECT_EQ(sim_queue_cap(sc.engine), 4096);
    }
}

// Service capacity from a saturated closed loop, then an open loop at half
// of it (stable) and at 1.5 times it, where the queue grows but stays far
// under the cap within the window: the growth marks it.
TEST(Sim, AnOpenLoopIsUnstableExactlyWhenItsArrivalsOutpaceService) {
    for (bool disagg : {false, true}) {
        Scenario sc = open_loop(disagg);
        sc.workload.mode = WORKLOAD_CLOSED;
        const double capacity = run(sc, "fixed:4", 256).request_rate;
        sc.workload.mode = WORKLOAD_OPEN;
        PointResult stable = run(sc, "fixed:4", 0.5 * capacity);
        EXPECT_FALSE(stable.unstable) << disagg;
        EXPECT_EQ(stable.n_requests, sc.workload.requests);
        QueuePeak q;
        PointResult over = run(sc, "fixed:4", 1.5 * capacity, &q);
        EXPECT_TRUE(over.unstable) << disagg;
        EXPECT_LT(q.peak, sim_queue_cap(sc.engine)) << disagg;   // marked by growth, not by the cap
        EXPECT_EQ(over.n_requests, sc.workload.requests);
    }
}

TEST(Sim, UnstableShowsInTheTableTheJsonAndTheCsv) {
    Scenario sc = open_loop(false);
    sc.path = "test";
    AcceptanceData acc = acceptance_load(sc);
    std::vector<Policy> pols{policy("ar")};
    SweepResult r = sweep_run(sc, acc, pols, {1, 1e7}, 1);
    ASSERT_EQ(r.points.size(), 2u);
    EXPECT_FALSE(r.points[0].unstable);
    EXPECT_TRUE(r.points[1].unstable);
    std::ostringstream json, csv;
    report_json(json, sc, pols, r);
    EXPECT_NE(json.str().find("\"unstable\": false"), std::string::npos);
    EXPECT_NE(json.str().find("\"unstable\": true"), std::string::npos);
    report_csv(csv, sc, r);
    std::string head = csv.str().substr(0, csv.str().find('\n'));
    EXPECT_EQ(head.substr(head.rfind(',') + 1), "unstable");
    EXPECT_NE(csv.str().find(",false\n"), std::string::npos);
    EXPECT_NE(csv.str().find(",true\n"), std::string::npos);
    char* buf = nullptr;
    size_t len = 0;
    FILE* f = open_memstream(&buf, &len);
    report_table(f, sc, pols, r);
    std::fclose(f);
    std::string table(buf, len);
    std::free(buf);
    size_t mark = table.find("UNSTABLE");
    ASSERT_NE(mark, std::string::npos) << table;
    EXPECT_EQ(table.find("UNSTABLE", mark + 1), std::string::npos) << table;   // the one overloaded row
    std::string row = table.substr(table.rfind('\n', mark) + 1, mark - table.rfind('\n', mark) - 1);
    EXPECT_EQ(row.rfind("ar", 0), 0u) << row;
    EXPECT_NE(row.find(" 1e+07 "), std::string::npos) << row;
}

// [SECTION] capacity by bisection, and the fleet ---------------------------------

// capacity_search against the slow scan: every load from 1 to 48 users
// simulated, each boundary (a load meeting the SLO whose next misses it)
// listed. The search's answer must be one of them, and the only one when
// the curve is monotone (it is here: per-user speed falls with users).
TEST(Plan, CapacityByBisectionIsABoundaryOfTheFullScan) {
    Scenario sc = base(0.7, 4);
    sc.workload.output_len = {DIST_FIXED, 60, 1, 1, 0, 0};
    sc.workload.warmup = 8;
    sc.workload.requests = 48;
    const Policy p = policy("fixed:3");
    const AcceptanceData acc = acceptance_load(sc);
    std::vector<PointResult> scan;
    for (int u = 1; u <= 48; u++) scan.push_back(sim_run_point(sc, acc, p, u));
    // an SLO that binds inside the scan: halfway between the speeds at 1 and 48 users
    sc.slo.per_user_tok_s = 0.5 * (scan.front().per_user.p90 + scan.back().per_user.p90);
    std::vector<int> boundaries;
    bool monotone = true;
    for (int u = 1; u < 48; u++) {
        const bool a = slo_check(sc.slo, scan[size_t(u - 1)]) == SLO_MET, b = slo_check(sc.slo, scan[size_t(u)]) == SLO_MET;
        if (a && !b) boundaries.push_back(u);
        if (!a && b) monotone = false;
    }
    ASSERT_FALSE(boundaries.empty());
    const CapacitySearch s = capacity_search(sc, acc, p, {}, {}, 48);
    ASSERT_TRUE(s.met);
    EXPECT_TRUE(s.bounded);
    EXPECT_EQ(s.binding, SLO_SPEED);
    EXPECT_NE(std::find(boundaries.begin(), boundaries.end(), int(s.load)), boundaries.end()) << s.load;
    if (monotone) {
        EXPECT_EQ(boundaries.size(), 1u);
    }
    EXPECT_DOUBLE_EQ(s.point.throughput, scan[size_t(s.load) - 1].throughput) << "the point at the capacity";
    EXPECT_LT(s.n_points, 16) << "bisection, not a scan";
    // seeded with a grid that brackets it, the same answer
    const std::vector<double> grid{1, 8, 32, 48};
    std::vector<PointResult> known;
    for (double g : grid) known.push_back(scan[size_t(g) - 1]);
    EXPECT_DOUBLE_EQ(capacity_search(sc, acc, p, grid, known, 48).load, s.load);
    // an SLO nothing meets, and one everything meets
    sc.slo.per_user_tok_s = 10 * scan.front().per_user.p90;
    EXPECT_FALSE(capacity_search(sc, acc, p, {}, {}, 48).met);
    sc.slo.per_user_tok_s = 0.5 * scan.back().per_user.p90;
    const CapacitySearch all = capacity_search(sc, acc, p, {}, {}, 48);
    EXPECT_TRUE(all.met);
    EXPECT_FALSE(all.bounded);
    EXPECT_DOUBLE_EQ(all.load, 48);
}

// The fleet for N users: ceil(N / capacity) replicas of tp GPUs, the users
// spread evenly (ceil(N / replicas) a replica), that point simulated, and
// the price per hour and per million output tokens from it.
TEST(Plan, AFleetIsTheFewestReplicasWithinCapacity) {
    Scenario sc = base(0.7, 4);
    sc.workload.output_len = {DIST_FIXED, 60, 1, 1, 0, 0};
    sc.workload.warmup = 8;
    sc.workload.requests = 48;
    sc.engine.tp = 2;
    const Policy p = policy("fixed:3");
    const AcceptanceData acc = acceptance_load(sc);
    const PointResult one = sim_run_point(sc, acc, p, 1), many = sim_run_point(sc, acc, p, 48);
    sc.slo.per_user_tok_s = 0.5 * (one.per_user.p90 + many.per_user.p90);
    const double cap = capacity_search(sc, acc, p, {}, {}, 100).load;
    ASSERT_GE(cap, 2);
    const int users = int(3.5 * cap);
    const FleetPlan f = plan_fleet(sc, acc, p, users, 2.5);
    ASSERT_TRUE(f.feasible);
    EXPECT_EQ(f.replicas, 4);  // 3.5 capacities of users: 4 replicas
    EXPECT_EQ(f.gpus, 8);
    EXPECT_EQ(f.users_per_replica, (users + 3) / 4);
    EXPECT_LE(f.users_per_replica, cap);
    const PointResult at = sim_run_point(sc, acc, p, f.users_per_replica);
    EXPECT_DOUBLE_EQ(f.point.throughput, at.throughput);
    EXPECT_DOUBLE_EQ(f.usd_per_hour, 8 * 2.5);
    EXPECT_DOUBLE_EQ(f.usd_per_million_tokens, 20.0 / (at.throughput * 8 * 3600) * 1e6);
    EXPECT_DOUBLE_EQ(plan_fleet(sc, acc, p, users, 0).usd_per_hour, 0) << "no price, no cost";
}

// Outputs carry their context: the scenario file and its hash (FNV-1a 64 of
// the text, here of a known string), model, GPU, gamma, tp, cost model and
// acceptance source, flagged synthetic for a parametric source; the table
// says the same in its second line; a headline ratio that does not apply is
// null, never 0.
TEST(Report, OutputsCarryTheirContextAndNullsForWhatDoesNotApply) {
    const std::string text = R"(name = "ctx"
[workload]
mode = "closed"
concurrency = [1, 2]
requests = 20
warmup = 2
lengths = "distribution"
prompt_len = { dist = "fixed", value = 32 }
output_len = { dist = "fixed", value = 32 }
[[workload.domain]]
name = "all"
alpha = [0.9, 0.8]
[engine]
gamma = 2
[acceptance]
source = "parametric"
[cost]
model = "roofline"
gpu = "h100-sxm"
preset = "qwen3-8b"
[policies]
list = ["ar", "fixed:2"]
compare = ["fixed:2", "ar"]
[slo]
per_user_tok_s = 1e9
)";
    Scenario sc = scenario_parse(text, "ctx.toml");
    // FNV-1a 64 of the text, whatever the file's name: a reference loop, checked on the published vector for "a"
    auto fnv1a = [](const std::string& t) {
        uint64_t h = 14695981039346656037ull;
        for (unsigned char ch : t) h = (h ^ ch) * 1099511628211ull;
        return h;
    };
    ASSERT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cull);
    EXPECT_EQ(sc.text_hash, fnv1a(text));
    EXPECT_EQ(scenario_parse(text, "other-name.toml").text_hash, sc.text_hash);
    AcceptanceData acc = acceptance_load(sc);
    std::vector<Policy> pols{policy("ar"), policy("fixed:2")};
    SweepResult r = sweep_run(sc, acc, pols, {1, 2}, 1);
    std::ostringstream out;
    report_json(out, sc, pols, r, "abc123");
    const std::string j = out.str();
    EXPECT_NE(j.find("\"specplan\": \"abc123\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"scenario_file\": \"ctx.toml\""), std::string::npos);
    EXPECT_NE(j.find("\"model\": \"qwen3-8b\""), std::string::npos);
    EXPECT_NE(j.find("\"gpu\": \"h100-sxm\""), std::string::npos);
    EXPECT_NE(j.find("\"cost_model\": \"roofline\""), std::string::npos);
    EXPECT_NE(j.find("\"acceptance\": \"parametric\""), std::string::npos);
    EXPECT_NE(j.find("\"synthetic_acceptance\": true"), std::string::npos);
    // nothing meets 1e9 tok/s a user: no capacity, so no ratio
    EXPECT_NE(j.find("\"throughput_gain\": null"), std::string::npos) << j;
    EXPECT_NE(j.find("\"per_user_gain\": null"), std::string::npos) << j;
    const std::string line = report_context_line(sc, "abc123");
    EXPECT_NE(line.find("ctx.toml (fnv1a "), std::string::npos) << line;
    EXPECT_NE(line.find("qwen3-8b on h100-sxm, uncalibrated roofline cost; gamma 2, tp 1"), std::string::npos) << line;
    EXPECT_NE(j.find("\"cost_calibration\": null"), std::string::npos) << j;
    // a roofline fitted by calibrate-cost says so, and what to
    std::string cal = text;
    cal.replace(cal.find("preset = \"qwen3-8b\"\n"), 20, "preset = \"qwen3-8b\"\ncalibrated = \"h100 profile\"\n");
    const Scenario scc = scenario_parse(cal, "ctx.toml");
    EXPECT_NE(report_context_line(scc, "abc123").find("calibrated roofline cost (h100 profile); gamma"),
              std::string::npos)
        << report_context_line(scc, "abc123");
    EXPECT_NE(line.find("SYNTHETIC acceptance"), std::string::npos) << line;
    // a roofline at tp > 1 names what its collectives are priced from, none of it measured
    Scenario tp2 = sc;
    tp2.engine.tp = tp2.cost.roofline.tp = 2;
    EXPECT_NE(report_context_line(tp2, "abc123")
                  .find("uncalibrated roofline cost; tp 2 all-reduce at 360 GB/s bus, 10 us a call (assumed, not "
                        "measured); gamma 2, tp 2"),
              std::string::npos)
        << report_context_line(tp2, "abc123");
    // speculation switched off above a batch size is said, where it is on
    EXPECT_EQ(line.find("no drafts above"), std::string::npos) << line;
    Scenario capped = sc;
    capped.engine.draft_max_running = 48;
    EXPECT_NE(report_context_line(capped, "abc123").find("gamma 2, tp 1, no drafts above 48 running; "),
              std::string::npos)
        << report_context_line(capped, "abc123");
}

// ITL, the gaps between a request's tokens: without speculation every gap is
// one step, so ITL is TPOT; with fixed:4 at alpha 0.7 a step brings
// (1 - 0.7^5) / 0.3 = 2.77 tokens on average, of which all but the first
// come at once, so most gaps are 0 (the median) while the mean gap is still
// TPOT (fixed output lengths: every request's tokens weigh alike).
TEST(Sim, InterTokenLatencyIsBurstyUnderSpeculation) {
    Scenario sc = base(0.7, 4);
    sc.workload.output_len = {DIST_FIXED, 200, 1, 1, 0, 0};
    const PointResult ar = run(sc, "ar", 1);
    EXPECT_NEAR(ar.itl.p50, ar.tpot.p50, 0.01 * ar.tpot.p50);
    EXPECT_NEAR(ar.itl.mean, ar.tpot.mean, 0.01 * ar.tpot.mean);
    const PointResult f = run(sc, "fixed:4", 1);
    EXPECT_LT(f.itl.p50, 1e-6);
    EXPECT_NEAR(f.itl.mean, f.tpot.mean, 0.01 * f.tpot.mean);
    EXPECT_GT(f.itl.p90, 2 * f.tpot.p90);  // the gap before a burst is a whole (longer) verify step
}

TEST(Report, CsvNumbersKeepFourSignificantDigitsInPlainDecimal) {
    EXPECT_EQ(csv_number(4439.7), "4440");
    EXPECT_EQ(csv_number(123456.7), "123457");  // the integer part is never cut
    EXPECT_EQ(csv_number(0.012345), "0.01235");
    EXPECT_EQ(csv_number(12.5), "12.5");        // trailing zeros dropped
    EXPECT_EQ(csv_number(99.996), "100");
    EXPECT_EQ(csv_number(0.1 + 0.2), "0.3");    // not 0.30000000000000004
    EXPECT_EQ(csv_number(-2.0 / 3.0), "-0.6667");
    EXPECT_EQ(csv_number(-0.00001, 1), "-0.00001");
    EXPECT_EQ(csv_number(0), "0");
    EXPECT_EQ(csv_number(-0.0), "0");
    EXPECT_EQ(csv_number(std::nan("")), "");
    EXPECT_EQ(csv_number(HUGE_VAL), "");
}

// The CSV's header names carry units, and each cell is the JSON's value in
// that unit, rounded to csv_number's 4 significant digits.
TEST(Report, CsvHeaderCarriesUnitsAndCellsAreTheJsonValuesRounded) {
    const std::string text = R"(name = "csv"
[workload]
mode = "closed"
concurrency = [1, 3]
requests = 20
warmup = 2
lengths = "distribution"
prompt_len = { dist = "fixed", value = 32 }
output_len = { dist = "fixed", value = 32 }
[[workload.domain]]
name = "all"
alpha = [0.9, 0.8]
[engine]
gamma = 2
[acceptance]
source = "parametric"
[cost]
model = "roofline"
gpu = "h100-sxm"
preset = "qwen3-8b"
[policies]
list = ["ar", "fixed:2"]
)";
    Scenario sc = scenario_parse(text, "csv.toml");
    AcceptanceData acc = acceptance_load(sc);
    std::vector<Policy> pols{policy("ar"), policy("fixed:2")};
    SweepResult r = sweep_run(sc, acc, pols, {1, 3}, 1);
    std::ostringstream csv, json;
    report_csv(csv, sc, r, "abc,1");
    report_json(json, sc, pols, r);
    std::istringstream lines(csv.str());
    std::string header;
    std::getline(lines, header);
    EXPECT_EQ(header,
              "specplan,scenario,scenario_fnv1a,model,gpu,cost_model,cost_calibration,acceptance,"
              "synthetic_acceptance,policy,concurrency,rate_req_s,tok_s_per_gpu,request_rate_req_s,per_user_mean_tok_s,per_user_p50_tok_s,"
              "per_user_p90_tok_s,per_user_p99_tok_s,ttft_mean_ms,ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,tpot_mean_ms,"
              "tpot_p90_ms,e2e_mean_s,e2e_p90_s,goodput_fraction,tau_tok_per_req_step,mean_verified_tok,"
              "waste_fraction,mean_batch_tok,busy_fraction,mean_running_req,kv_use_fraction,queue_wait_p50_ms,"
              "queue_wait_p90_ms,itl_mean_ms,itl_p50_ms,itl_p90_ms,itl_p99_ms,tok_s_per_gpu_ci95,"
              "per_user_mean_tok_s_ci95,input_tok_s_per_gpu,total_tok_s_per_gpu,ttft_ms_p50,ttft_ms_p90,ttft_ms_p99,"
              "tpot_ms_p50,tpot_ms_p90,tpot_ms_p99,e2e_ms_p50,e2e_ms_p90,e2e_ms_p99,itl_ms_p50,itl_ms_p90,itl_ms_p99,"
              "warmup,short_window,n_requests,unstable");
    auto split = [](const std::string& row) {
        std::vector<std::string> out;
        std::stringstream ss(row);
        for (std::string cell; std::getline(ss, cell, ',');) out.push_back(cell);
        return out;
    };
    const std::vector<std::string> names = split(header);
    const nlohmann::json j = nlohmann::json::parse(json.str());
    ASSERT_EQ(j["points"].size(), 4u);
    // column -> (JSON value of the point, scale to the column's unit)
    auto expected = [](const nlohmann::json& p, const std::string& col) -> std::pair<double, double> {
        if (col == "tok_s_per_gpu") return {p["throughput_tok_s_gpu"], 1};
        if (col == "ttft_p90_ms") return {p["ttft_s"]["p90"], 1e3};
        if (col == "tpot_mean_ms") return {p["tpot_s"]["mean"], 1e3};
        if (col == "e2e_p90_s") return {p["e2e_s"]["p90"], 1};
        if (col == "per_user_p90_tok_s") return {p["per_user_tok_s"]["p90"], 1};
        if (col == "itl_p99_ms") return {p["itl_s"]["p99"], 1e3};
        if (col == "queue_wait_p90_ms") return {p["queue_wait_s"]["p90"], 1e3};
        if (col == "kv_use_fraction") return {p["kv_use_fraction"], 1};
        return {std::nan(""), 0};
    };
    std::string row;
    for (size_t i = 0; std::getline(lines, row); i++) {
        ASSERT_LT(i, j["points"].size());
        // the context, as the JSON's; the version is quoted for its comma
        EXPECT_EQ(row.rfind("\"abc,1\",csv.toml," + j["context"]["scenario_fnv1a"].get<std::string>() +
                                ",qwen3-8b,h100-sxm,uncalibrated roofline,,parametric,true,", 0), 0u) << row;
        std::vector<std::string> cells = split(row);
        cells.erase(cells.begin());  // the naive split cut "abc,1" in two
        ASSERT_EQ(cells.size(), names.size()) << row;
        int checked = 0;
        for (size_t c = 11; c + 4 < cells.size(); c++) {  // the float columns (an empty cell: not available)
            if (cells[c].empty()) continue;
            const double v = std::stod(cells[c]);
            EXPECT_EQ(cells[c], csv_number(v)) << names[c] << " in " << row;  // already in its rounded form
            auto [want, scale] = expected(j["points"][i], names[c]);
            if (std::isnan(want)) continue;
            EXPECT_EQ(cells[c], csv_number(want * scale)) << names[c] << " in " << row;
            checked++;
        }
        EXPECT_EQ(checked, 8);
        // at most 4 significant digits below 10,000
        for (size_t c = 11; c + 4 < cells.size(); c++) {
            // empty: not available; an exponent (below 1e-9, e.g. a deterministic run's zero-width interval
            // computed as 2e-14) keeps its 4 digits in the mantissa
            if (cells[c].empty() || cells[c].find('e') != std::string::npos) continue;
            std::string digits;
            for (char ch : cells[c])
                if (std::isdigit(static_cast<unsigned char>(ch))) digits += ch;
            digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
            if (std::fabs(std::stod(cells[c])) < 1e4) {
                EXPECT_LE(digits.size(), 4u) << names[c] << " = " << cells[c];
            }
        }
    }
}
