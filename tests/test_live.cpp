// test_live.cpp: `specplan live` (serve/live.h) on the CPU reference with the
// tiny fixtures: a scenario's load served for real, in wall-clock time.
//
//  - conservation and causality: every measured request arrived, was
//    admitted, emitted its first token and finished in that order, with
//    exactly the scenario's output length (EOS ignored); a closed-loop user
//    sends its next request only after its last reply; never more requests
//    in the system than users;
//  - tokens: every request's output equals the target's greedy
//    autoregressive output for its prompt (test_speculative holds that
//    Speculator to HF), with the DSpark drafter and chunked prefill sharing
//    the forwards;
//  - Little's law on the measured window: with no think time the users are
//    always in the system, so users = request rate x mean E2E;
//  - replaying a trace, the live engine and the simulator decide alike:
//    fixed:4 accepts step for step as the simulator; draft-prob (whose
//    estimate pools every request's past steps), dspark and dspark-async
//    (confidences two steps old) pick the same verify lengths in the same
//    batches when both read the trace's draft probabilities and confidences
//    and price B from the same cost table;
//  - the CLI: sweep's JSON fields measured, plus the host loop's time; the
//    trace store gets a run per point whose steps account for every output
//    token, and the step-cost table; bad input is one line and exit 1
//    before anything runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/drafter.h"
#include "engine/model.h"
#include "serve/live.h"
#include "simulator/cost.h"
#include "simulator/sim.h"
#include "simulator/workload.h"
#include "tests/cli_run.h"
#include "tests/draft_prob_trace.h"
#include "tests/perfetto_check.h"
#include "tests/scratch.h"
#include "tests/sim_scenario.h"
#include "tests/spec_run.h"
#include "traces/trace_db.h"

namespace sp {
namespace {

const std::string kFixtures = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";

// The simulator tests' scenario (tests/sim_scenario.h: closed loop, no think
// time, i.i.d. acceptance 0.7 on the simulator's side; the live run drafts
// for real) with `users` users, output lengths 6..30, two domains, and an
// engine small enough that prompt chunks share forwards with verify blocks.
Scenario live_scenario(int users, int warmup, int requests) {
    Scenario sc = sim_scenario(0.7, 4, 30, warmup, requests);
    sc.seed = 3;
    Workload& w = sc.workload;
    w.concurrency = {users};
    w.prompt_len = {DIST_FIXED, 8, 1, 1, 0, 0};  // the simulator's; live prompts come from the prompts
    w.output_len = {DIST_UNIFORM, 0, 6, 30, 0, 0};
    w.mix = {{"code", 0.5, {}}, {"chat", 0.5, {}}};
    sc.engine.max_seqs = 8;
    sc.engine.max_batch_tokens = 24;     // a prompt chunk shares the forward with verify blocks
    sc.engine.prefill_chunk_tokens = 5;
    sc.engine.kv_capacity_tokens = 4096;
    return sc;
}

std::vector<LivePrompt> live_prompts() {
    std::vector<LivePrompt> p;
    for (int i = 0; i < 6; i++)
        p.push_back({i % 2 ? "chat" : "code", {1, (17 * i + 5) % 500, (31 * i + 9) % 500, 23, 7, 11 + i, 40 + 3 * i}});
    return p;
}

TEST(Live, RequestsAreConservedCausalAndGiveTheGreedyTokens) {
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    const int users = 3;
    auto target = backend_cpu(w, users);
    auto drafter = drafter_open_cpu(kFixtures + "tiny-dspark", w, DrafterOptions{0, users});
    const Scenario sc = live_scenario(users, 4, 16);
    const AcceptanceData acc = acceptance_load(sc);
    const auto prompts = live_prompts();

    std::vector<LiveRequest> done;
    LiveOptions o;
    o.max_seqs = users;
    o.on_complete = [&](const LiveRequest& r) { done.push_back(r); };
    LiveStats st;
    const PointResult p = live_run_point(sc, acc, *target, drafter.get(), policy_of("fixed:4"), users, prompts, o, &st);

    EXPECT_EQ(p.n_requests, 16);
    EXPECT_EQ(st.completed, int64_t(done.size()));
    ASSERT_GE(done.size(), 4u + 16u);
    EXPECT_GT(p.tau, 1.0);  // the drafter lands drafts
    std::map<int, std::vector<const LiveRequest*>> by_user;
    int64_t last_done = 0;
    for (const LiveRequest& r : done) {
        SCOPED_TRACE("request " + std::to_string(r.key));
        EXPECT_LE(r.arrival_ns, r.first_token_ns);
        EXPECT_LE(r.first_token_ns, r.done_ns);
        EXPECT_GE(r.done_ns, last_done);  // handed over in completion order
        last_done = r.done_ns;
        EXPECT_EQ(int(r.output.size()), workload_request(sc, acc, r.key).output_len);
        EXPECT_EQ(prompts[size_t(r.prompt_index)].domain, sc.workload.mix[size_t(r.domain)].domain);
        by_user[int(r.key >> 32)].push_back(&r);
    }
    ASSERT_EQ(by_user.size(), size_t(users));
    for (auto& [u, rs] : by_user) {
        for (size_t i = 0; i < rs.size(); i++) {
            EXPECT_EQ(uint32_t(rs[i]->key), uint32_t(i)) << "user " << u << ": the i-th request is its i-th";
            if (i > 0) {
                EXPECT_GE(rs[i]->arrival_ns, rs[i - 1]->done_ns) << "user " << u << " sent before its reply";
            }
        }
    }
    // the tokens: greedy AR of each prompt for its drawn length, EOS ignored
    for (const LiveRequest& r : done) {
        const auto want = ar_outputs(*target, {r.prompt}, int(r.output.size()));
        EXPECT_EQ(r.output, want[0]) << "request " << r.key;
    }
}

// --trace-out's writer on a live point: a valid trace with a step slice per
// iteration holding its measured draft and verify phases, and request tracks
// whose decode slices emit each finished request's output after its first token.
TEST(Live, ATracedPointIsAValidTraceWithTheMeasuredPhasesAndEveryOutputToken) {
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    const int users = 2;
    auto target = backend_cpu(w, users);
    auto drafter = drafter_open_cpu(kFixtures + "tiny-dspark", w, DrafterOptions{0, users});
    const Scenario sc = live_scenario(users, 2, 6);
    const AcceptanceData acc = acceptance_load(sc);
    std::ostringstream out;
    PerfettoTrace t;
    perfetto_begin(t, out);
    perfetto_point(t, {"live", 1, acc.domains, true, false});
    std::map<uint64_t, int> outputs;
    LiveOptions o;
    o.max_seqs = users;
    o.trace = &t;
    o.on_complete = [&](const LiveRequest& r) { outputs[r.key] = int(r.output.size()); };
    LiveStats st;
    live_run_point(sc, acc, *target, drafter.get(), policy_of("fixed:4"), users, live_prompts(), o, &st);
    perfetto_end(t);

    const json ev = trace_of(out.str());
    check_valid(ev);
    int steps = 0, drafts = 0, verifies = 0;
    std::map<int, int> emitted, output_of;  // by tid
    for (const json& e : ev) {
        steps += e["name"] == "step";
        drafts += e["name"] == "draft";
        verifies += e["name"] == "verify";
        if (e["name"] == "decode") emitted[e["tid"]] += e["args"]["emitted"].get<int>();
        if (e["name"] == "prefill") output_of[e["tid"]] = e["args"]["output_tokens"];
    }
    EXPECT_EQ(steps, st.iterations);
    EXPECT_EQ(verifies, st.iterations) << "every iteration runs a forward";
    EXPECT_GT(drafts, 0);
    EXPECT_EQ(output_of.size(), outputs.size());
    for (const auto& [tid, n] : output_of) EXPECT_EQ(emitted[tid] + 1, n) << "track " << tid;
}

TEST(Live, LittlesLawHoldsOnTheWindow) {
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    const int users = 4;
    auto target = backend_cpu(w, users);
    // 240 measured requests: the window's edges cut up to `users` requests in
    // flight, so the error shrinks as 1 / requests (60 gave 10.6 % once, on
    // a machine busy with a build)
    const Scenario sc = live_scenario(users, 8, 240);
    const AcceptanceData acc = acceptance_load(sc);
    LiveOptions o;
    const PointResult p = live_run_point(sc, acc, *target, nullptr, policy_of("ar"), users, live_prompts(), o);
    // L = lambda W: the users are always in the system (think time 0)
    const double L = p.request_rate * p.e2e.mean;
    std::printf("  users %d, request rate %.1f/s x mean E2E %.2f ms = %.3f\n", users, p.request_rate,
                p.e2e.mean * 1e3, L);
    EXPECT_NEAR(L, users, 0.1 * users);
    EXPECT_GT(p.throughput, 0);
    EXPECT_DOUBLE_EQ(p.tau, 1.0);  // ar: one token per request-step
}

// Replaying a greedy trace (beta 0 or 1) under fixed:4, the live engine and
// the simulator accept exactly the same drafts at every step of every
// request: the same workload draws, anchors and verify lengths, one policy
// implementation; only the clock differs.
TEST(Live, ReplayingATraceAcceptsStepForStepAsTheSimulator) {
    ScratchDir dir;
    CliResult t = cli_run(dir, "traces synth -o " + dir.file("t.specdb") +
                                   " --domain code=0.9,0.8,0.6,0.5 --requests 12 --prompt-len 8:8 --output-len 12:40");
    ASSERT_EQ(t.code, 0) << t.err;
    Scenario sc = live_scenario(2, 2, 8);
    sc.workload.lengths = LENGTHS_TRACE;
    sc.workload.mix = {{"code", 1, {}}};
    sc.acceptance.kind = ACCEPT_TRACE;
    sc.acceptance.trace_path = dir.file("t.specdb");
    sc.engine.max_batch_tokens = 64;  // never cuts a verify length
    const AcceptanceData acc = acceptance_load(sc);
    const Policy fixed4 = policy_of("fixed:4");

    struct Record : SimObserver {
        std::map<uint64_t, std::vector<std::pair<int, int>>> steps;  // key -> (l, accepted) per step
        void on_step(const StepView& v) override {
            for (int i = 0; i < v.n_decode; i++) steps[v.keys[i]].emplace_back(v.ell[i], v.accepted[i]);
        }
    } sim;
    sim_run_point(sc, acc, fixed4, 2, &sim);

    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    auto target = backend_cpu(w, 2);
    auto drafter = drafter_open_cpu(kFixtures + "tiny-dspark", w, DrafterOptions{0, 2});
    LiveOptions o;
    o.replay = true;
    std::vector<LiveRequest> done;
    o.on_complete = [&](const LiveRequest& r) { done.push_back(r); };
    live_run_point(sc, acc, *target, drafter.get(), fixed4, 2, {{"code", {1, 5, 9, 23, 7, 5, 9, 11}}}, o);
    int compared = 0;
    for (const LiveRequest& r : done) {
        if (!sim.steps.count(r.key)) continue;
        std::vector<std::pair<int, int>> live;
        for (const Step& st : r.steps) live.emplace_back(st.verify_len, st.n_accepted);
        EXPECT_EQ(live, sim.steps[r.key]) << "request " << r.key;
        compared++;
    }
    EXPECT_GE(compared, 8);
}

// A policy replayed live and simulated, on a trace (tests/draft_prob_trace.h)
// whose draft probabilities mislead (the surest-looking drafts fail most),
// so draft-prob's estimate moves and the verify lengths with it, and whose
// confidences are drawn apart from both, so the confidence policies read
// something no drafter produced. Both sides read the trace's draft
// probabilities and confidences (the live engine through
// SpecRequest::replay), take the trace's accept decisions, and price a verify
// of B tokens from one cost table, 1 ms + 0.25 ms per token, with no draft or
// prefill cost (so the simulator's StepTime is the table alone, as the
// engine's). Then every step of every request must verify the same number of
// drafts in a batch of the same size: the pooled estimate, the confidences of
// two steps ago and the cost-aware budget leave no room for a step taken in
// another order or an input from elsewhere.
void expect_replayed_decisions_equal(const std::string& policy, int draft_max_running = 0) {
    ScratchDir dir;
    write_draft_prob_trace(dir.file("q.specdb"), 12, 8, 12, 40, /*conf=*/true);
    Scenario sc = live_scenario(2, 2, 8);
    sc.workload.lengths = LENGTHS_TRACE;
    sc.workload.mix = {{"code", 1, {}}};
    sc.acceptance.kind = ACCEPT_TRACE;
    sc.acceptance.trace_path = dir.file("q.specdb");
    sc.engine.max_batch_tokens = 64;
    sc.engine.draft_max_running = draft_max_running;
    CostModel& c = sc.cost;
    c.kind = COST_MEASURED;
    c.drafter.kind = DRAFTER_NONE;
    for (int b = 1; b <= 64; b++) {
        Profile cell;
        cell.phase = PHASE_VERIFY;
        cell.n_seqs = 1;
        cell.n_tokens = b;
        cell.latency_us_p10 = cell.latency_us_p50 = cell.latency_us_p90 = 1000 + 250 * b;
        c.measured.verify.push_back(cell);
    }
    Profile free_prefill;
    free_prefill.phase = PHASE_PREFILL;
    free_prefill.n_seqs = free_prefill.n_tokens = 1;
    c.measured.prefill = {free_prefill};
    const AcceptanceData acc = acceptance_load(sc);
    ASSERT_EQ(acc.draft_prob.size(), acc.beta.size());
    ASSERT_EQ(acc.conf.size(), acc.beta.size());
    const Policy pol = policy_of(policy);

    using Decisions = std::vector<std::tuple<int, int, int>>;  // (R, l, accepted) per step
    struct Record : SimObserver {
        std::map<uint64_t, Decisions> steps;
        std::set<uint64_t> done;
        void on_step(const StepView& v) override {
            for (int i = 0; i < v.n_decode; i++) steps[v.keys[i]].emplace_back(v.n_decode, v.ell[i], v.accepted[i]);
        }
        void on_complete(const CompletedRequest& r) override { done.insert(r.key); }
    } sim;
    sim_run_point(sc, acc, pol, 2, &sim);

    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3-4l");
    auto target = backend_cpu(w, 2);
    auto drafter = drafter_open_cpu(kFixtures + "tiny-dspark", w, DrafterOptions{0, 2});
    LiveOptions o;
    o.replay = true;
    o.step_time.ctx = &sc.cost;
    o.step_time.fn = [](const void* ctx, int, int n_tokens) {
        BatchShape b;
        b.n_decode_seqs = 1;
        b.n_decode_tokens = n_tokens;
        return cost_forward_s(*static_cast<const CostModel*>(ctx), b);
    };
    std::vector<LiveRequest> done;
    o.on_complete = [&](const LiveRequest& r) { done.push_back(r); };
    live_run_point(sc, acc, *target, drafter.get(), pol, 2, {{"code", {1, 5, 9, 23, 7, 5, 9, 11}}}, o);
    int compared = 0;
    std::set<int> ells;
    for (const LiveRequest& r : done) {
        if (!sim.done.count(r.key)) continue;
        Decisions live;
        for (const Step& st : r.steps) {
            live.emplace_back(st.batch_size, st.verify_len, st.n_accepted);
            ells.insert(st.verify_len);
        }
        EXPECT_EQ(live, sim.steps[r.key]) << policy << ", request " << r.key;
        compared++;
    }
    EXPECT_GE(compared, 8) << policy;
    EXPECT_GE(ells.size(), 3u) << policy << " should vary its verify lengths here";
}

TEST(Live, DraftProbReplayedDecidesStepForStepAsTheSimulator) { expect_replayed_decisions_equal("draft-prob"); }
TEST(Live, DSparkReplayedDecidesStepForStepAsTheSimulator) { expect_replayed_decisions_equal("dspark"); }
TEST(Live, DSparkAsyncReplayedDecidesStepForStepAsTheSimulator) { expect_replayed_decisions_equal("dspark-async"); }
// With speculation off above one decoding request, both sides verify one
// token a request while two decode and draft again when one is left.
TEST(Live, DraftMaxRunningDecidesStepForStepAsTheSimulator) { expect_replayed_decisions_equal("dspark", 1); }

// ---------------------------------------------------------------------------
// the command

// A small closed-loop scenario: 1 and 2 users, 6 requests a point, one domain.
std::string write_scenario(const ScratchDir& dir, const std::string& name = "live.toml",
                           const std::string& domain = "code") {
    std::ofstream f(dir.file(name));
    f << "name = \"live-test\"\nseed = 2\n[workload]\nmode = \"closed\"\nconcurrency = [1, 2]\nrequests = 6\n"
         "warmup = 1\nlengths = \"distribution\"\nprompt_len = { dist = \"fixed\", value = 8 }\n"
         "output_len = { dist = \"uniform\", min = 4, max = 12 }\n[[workload.domain]]\nname = \""
      << domain << "\"\n[engine]\ngamma = 4\nmax_seqs = 4\nmax_batch_tokens = 32\nkv_capacity_tokens = 2048\n"
      << "[acceptance]\nsource = \"iid\"\nalpha = 0.6\n[policies]\nlist = [\"ar\", \"fixed:4\"]\n"
                  "[slo]\nper_user_tok_s = 5.0\n";
    return dir.file(name);
}

void replace_once(std::string& s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
}

std::string write_prompts(const ScratchDir& dir) {
    std::ofstream f(dir.file("prompts.jsonl"));
    for (int i = 0; i < 4; i++) f << "{\"prompt_ids\": [1, " << 17 * i + 5 << ", 23, 7], \"domain\": \"code\"}\n";
    return dir.file("prompts.jsonl");
}

TEST(LiveCli, WritesSweepsFieldsMeasuredPlusTheHostLoop) {
    ScratchDir dir;
    const std::string sc = write_scenario(dir), prompts = write_prompts(dir);
    CliResult r = cli_run(dir, "live " + sc + " --device cpu --model " + kFixtures + "tiny-qwen3-4l --drafter " +
                                   kFixtures + "tiny-dspark --prompts " + prompts + " --policies ar,fixed:4,dspark" +
                                   " --json " + dir.file("o.json") + " --csv " + dir.file("o.csv") + " --db " +
                                   dir.file("live.specdb"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("capacity at SLO"), std::string::npos) << r.out;
    const auto j = nlohmann::json::parse(slurp(dir.file("o.json")));
    ASSERT_EQ(j.at("points").size(), 6u);  // 3 policies x 2 loads
    for (const auto& p : j["points"]) {
        EXPECT_GT(p.at("throughput_tok_s_gpu").get<double>(), 0);
        EXPECT_GT(p.at("host_loop_us").at("p50").get<double>(), 0);
        EXPECT_EQ(p.at("n_requests"), 6);
    }
    EXPECT_EQ(j.at("measured").at("device"), "cpu");
    EXPECT_EQ(j.at("measured").at("model_weights"), "checkpoint");
    EXPECT_EQ(j.at("measured").at("drafter_weights"), "checkpoint");
    EXPECT_EQ(j.at("measured").at("accept_decisions"), "the verifier's");
    EXPECT_TRUE(j.contains("capacity_at_slo"));
    const std::string csv = slurp(dir.file("o.csv"));
    EXPECT_NE(csv.find(",host_loop_us_p50,host_loop_us_p90\n"), std::string::npos);
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);

    // --db: a run per point; each request's live steps account for its
    // output (first token + sum of accepted + 1); the step-cost table that
    // dspark read
    TraceDb db = trace_db_open(dir.file("live.specdb"), TRACE_READ);
    const std::vector<sp::Run> runs = trace_db_runs(db);
    ASSERT_EQ(runs.size(), 6u);
    for (const sp::Run& run : runs) {
        EXPECT_TRUE(run.complete);
        const auto reqs = trace_db_requests(db, run.id);
        EXPECT_GE(reqs.size(), 7u);  // warmup 1 + 6 measured, at least
        std::map<int64_t, int> emitted;
        trace_db_for_each_step(db, run.id, [&](const Step& st) {
            emitted[st.request_id] += st.n_accepted + 1;
            EXPECT_GE(st.batch_tokens, st.batch_size * 1 + st.verify_len);  // R anchors, its own drafts at least
            EXPECT_GT(st.host_ns, 0);
        });
        for (const Request& q : reqs) EXPECT_EQ(1 + emitted[q.id], q.output_len) << run.notes;
    }
    // What the engine measured at start, in the first run: verify at two
    // contexts, R in {1, 2} (the largest load's users) x q in {1, 2, 4, 5}
    // (gamma 4 + the anchor), non-decreasing along both; prefill, one prompt
    // (a 32-token budget holds one chunk) of 16, 32, 64, .. tokens, doubling
    // up to the chunk, 511 (the fixture's 512 positions less one); draft,
    // R in {1, 2} x gamma 4 at both contexts.
    const std::vector<Profile> cells = trace_db_profiles(db);
    std::map<int, std::vector<Profile>> verify_by_ctx;
    std::vector<int> prefill_tokens;
    int draft = 0;
    for (const Profile& c : cells) {
        EXPECT_EQ(c.run_id, runs[0].id);
        if (c.phase == PHASE_VERIFY) verify_by_ctx[c.context].push_back(c);
        if (c.phase == PHASE_PREFILL) {
            EXPECT_EQ(c.context, 0);
            EXPECT_EQ(c.n_seqs, 1);
            prefill_tokens.push_back(c.n_tokens);
        }
        if (c.phase == PHASE_DRAFT) {
            EXPECT_EQ(c.n_tokens, 4 * c.n_seqs);
            EXPECT_GT(c.latency_us_p50, 0);
            draft++;
        }
    }
    ASSERT_EQ(verify_by_ctx.size(), 2u);
    EXPECT_EQ(draft, 2 * 2);
    std::sort(prefill_tokens.begin(), prefill_tokens.end());
    EXPECT_EQ(prefill_tokens, (std::vector<int>{16, 32, 64, 128, 256, 511}));
    const int qs[] = {1, 2, 4, 5};
    for (const auto& [ctx, v] : verify_by_ctx) {
        ASSERT_EQ(v.size(), 8u) << ctx;
        for (size_t i = 0; i < v.size(); i++) {
            const int R = 1 + int(i / 4), q = qs[i % 4];
            EXPECT_EQ(v[i].n_seqs, R);
            EXPECT_EQ(v[i].n_tokens, R * q);
            if (i % 4) { EXPECT_GE(v[i].latency_us_p50, v[i - 1].latency_us_p50); }
            if (i >= 4) { EXPECT_GE(v[i].latency_us_p50, v[i - 4].latency_us_p50); }
        }
    }

    // and the store prices a simulation of the same scenario (sweep --profiles)
    CliResult sim = cli_run(dir, "sweep " + sc + " --policies ar,fixed:4,dspark --profiles " +
                                     dir.file("live.specdb") + " --host-us 20 --json " + dir.file("sim.json"));
    ASSERT_EQ(sim.code, 0) << sim.err;
    const auto js = nlohmann::json::parse(slurp(dir.file("sim.json")));
    EXPECT_EQ(js.at("context").at("cost_model"), "measured");
}

// Random weights at a preset shape, accept decisions replayed from the
// scenario's trace: the cost is the shape's, the acceptance the trace's.
TEST(LiveCli, APresetWithRandomWeightsServesWithReplayedAcceptance) {
    ScratchDir dir;
    CliResult t = cli_run(dir, "traces synth -o " + dir.file("t.specdb") +
                                   " --domain code=0.9,0.8,0.7,0.6 --requests 8 --prompt-len 6:6 --output-len 10:20");
    ASSERT_EQ(t.code, 0) << t.err;
    std::string sc = slurp(write_scenario(dir));
    replace_once(sc, "lengths = \"distribution\"", "lengths = \"trace\"");
    replace_once(sc, "source = \"iid\"\nalpha = 0.6", "source = \"trace\"\ntrace = \"t.specdb\"");
    std::ofstream(dir.file("replay.toml")) << sc;
    CliResult r = cli_run(dir, "live " + dir.file("replay.toml") + " --device cpu --model tiny-qwen3 --drafter ngram" +
                                   " --prompts " + write_prompts(dir) + " --policies fixed:4 --replay --json " +
                                   dir.file("o.json"));
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(slurp(dir.file("o.json")));
    for (const auto& p : j.at("points")) EXPECT_GT(p.at("tau").get<double>(), 1.0);
    EXPECT_EQ(j.at("measured").at("model_weights"), "random");
    EXPECT_EQ(j.at("measured").at("drafter_weights"), "none (n-gram lookup)");
    EXPECT_EQ(j.at("measured").at("accept_decisions"), "replayed from the scenario's trace");
    // not a folder and not a preset: the checkpoint loader's one line
    r = cli_run(dir, "live " + dir.file("replay.toml") + " --device cpu --model " + dir.file("nomodel") +
                         " --drafter ngram --prompts " + write_prompts(dir));
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("nomodel"), std::string::npos) << r.err;
    // a random DSpark drafter is made on the GPU, and only beside a preset
    r = cli_run(dir, "live " + dir.file("replay.toml") + " --device cpu --model tiny-qwen3 --drafter dspark" +
                         " --prompts " + write_prompts(dir) + " --replay");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("needs --device cuda"), std::string::npos) << r.err;
    r = cli_run(dir, "live " + dir.file("replay.toml") + " --device cpu --model " + kFixtures +
                         "tiny-qwen3-4l --drafter eagle3 --prompts " + write_prompts(dir));
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("--model must be a preset"), std::string::npos) << r.err;
}

TEST(LiveCli, WhatTheEngineCannotServeIsOneLineBeforeAnythingRuns) {
    ScratchDir dir;
    const std::string prompts = write_prompts(dir);
    const std::string model = " --device cpu --model " + kFixtures + "tiny-qwen3-4l --prompts " + prompts;
    struct Case {
        std::string scenario, args, needle;
    } cases[] = {
        {write_scenario(dir, "chat.toml", "chat"), " --drafter ngram", "\"chat\" has no prompt"},
        {write_scenario(dir), " --drafter " + kFixtures + "tiny-dflash --policies threshold:0.5",
         "confidence head"},
    };
    for (const Case& c : cases) {
        CliResult r = cli_run(dir, "live " + c.scenario + model + c.args + " --json " + dir.file("never.json"));
        EXPECT_EQ(r.code, 1) << c.args << ": " << r.err;
        EXPECT_EQ(r.err_lines(), 1) << r.err;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
        EXPECT_FALSE(std::ifstream(dir.file("never.json"))) << c.args;
    }
    // gamma above the drafter's block (tiny-dspark drafts 4)
    std::string sc = slurp(write_scenario(dir));
    replace_once(sc, "gamma = 4", "gamma = 6");
    std::ofstream(dir.file("g6.toml")) << sc;
    CliResult r = cli_run(dir, "live " + dir.file("g6.toml") + model + " --drafter " + kFixtures + "tiny-dspark");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("engine.gamma"), std::string::npos) << r.err;
    // a trace store that cannot be created
    r = cli_run(dir, "live " + write_scenario(dir) + model + " --drafter ngram --db /nonexistent/dir/x.specdb");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("/nonexistent/dir/x.specdb"), std::string::npos) << r.err;
    // a KV cache that cannot hold one request
    sc = slurp(write_scenario(dir));
    replace_once(sc, "kv_capacity_tokens = 2048", "kv_capacity_tokens = 10");
    std::ofstream(dir.file("kv.toml")) << sc;
    r = cli_run(dir, "live " + dir.file("kv.toml") + model + " --drafter ngram");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("kv_capacity_tokens"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sp
