// test_steps_replay.cpp: the simulator replaying imported acceptance
// (simulator/acceptance.h, sources "steps" and "trace" with verified slots),
// against closed forms worked by hand.
#include <gtest/gtest.h>

#include <fstream>

#include "sim_scenario.h"
#include "simulator/acceptance.h"
#include "simulator/scenario.h"
#include "simulator/sim.h"
#include "tests/scratch.h"
#include "traces/trace_deepspec.h"
#include "traces/trace_import.h"

using namespace sp;

namespace {

// One importer run (gamma 3) with one request in domain "d" whose verify
// steps are (verified, accepted) = (1, 1), (3, 3), (3, 1); each drafted 3.
// Pooled rates from the verified slots, by hand: slot 1: 3 of 3; slot 2:
// verified with slot 1 accepted by steps 2 and 3, accepted by step 2: 1/2;
// slot 3: verified with slots 1-2 accepted by step 2 only, accepted: 1.
// (Counting step 1's two unverified drafts as rejections would give
// slot 2 a rate of 1/3.)
std::string write_steps_store(const ScratchDir& dir) {
    const std::string path = dir.file("steps.specdb");
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    ImportedRequest q;
    q.domain = "d";
    q.steps = {{3, 1, 1}, {3, 3, 3}, {3, 3, 1}};
    trace_import_steps(db, ImportOptions{}, "vllm-requests", "x", {q});
    return path;
}

Scenario steps_scenario(const std::string& store) {
    Scenario sc = sim_scenario(0.0, 3, 400);
    sc.acceptance.kind = ACCEPT_STEPS;
    sc.acceptance.trace_path = store;
    sc.acceptance.run_id = 1;
    sc.workload.mix = {{"d", 1, {}}};
    return sc;
}

// Accepted drafts of simulated request `key` at its decode step `step` when l slots are verified.
int accepted(const AcceptanceData& a, uint64_t key, int step, int l) {
    SlotDraws d;
    const int t = 1 + 10 * step;  // any anchor; it keys the coins only
    acceptance_draw(a, key, 0, 0, t, step, 0, l, &d);
    return acceptance_count(a, key, t, l, d);
}

}  // namespace

TEST(StepsReplay, PooledRatesComeFromTheVerifiedSlots) {
    ScratchDir dir{"specplan_steps"};
    const AcceptanceData a = acceptance_load(steps_scenario(write_steps_store(dir)));
    ASSERT_EQ(a.requests.size(), 1u);
    EXPECT_EQ(a.requests[0].n_steps, 3);
    ASSERT_EQ(a.alpha.size(), 1u);
    EXPECT_EQ(a.alpha[0], (std::vector<double>{1.0, 0.5, 1.0}));
}

// Per recorded step, E[accepted | l] = min(l, a) when a < v, else
// min(l, v) + sum_{m=v+1..l} prod_{i=v+1..m} alpha_i:
//   step (1,1): l=1: 1;  l=2: 1 + .5 = 1.5;  l=3: 1 + .5 + .5 * 1 = 2
//   step (3,3): l: l
//   step (3,1): l=1: 1;  l>=2: 1 (slot 2 was rejected)
// and step 3 replays step 0 again.
TEST(StepsReplay, ExpectedAcceptsPerStepMatchTheClosedForm) {
    ScratchDir dir{"specplan_steps"};
    const AcceptanceData a = acceptance_load(steps_scenario(write_steps_store(dir)));
    const double want[4][4] = {{0, 1, 1.5, 2}, {0, 1, 2, 3}, {0, 1, 1, 1}, {0, 1, 1.5, 2}};
    const int N = 4000;  // requests; the coin at p = .5 has sd .5 / sqrt(N) = .008
    for (int step = 0; step < 4; step++)
        for (int l = 1; l <= 3; l++) {
            double sum = 0;
            int lo = 99, hi = -1;
            for (int key = 0; key < N; key++) {
                const int n = accepted(a, static_cast<uint64_t>(key), step, l);
                sum += n;
                lo = std::min(lo, n), hi = std::max(hi, n);
            }
            const bool exact = step % 3 != 0 || l == 1;  // only step (1, 1) past its one verified slot draws coins
            if (exact) EXPECT_EQ(std::make_pair(lo, hi), std::make_pair(int(want[step][l]), int(want[step][l])))
                << "step " << step << " l " << l;
            else EXPECT_NEAR(sum / N, want[step][l], 0.04) << "step " << step << " l " << l;
        }
}

// The whole simulator at fixed:3 over 400-token outputs: accepted drafts per
// step average (2 + 3 + 1) / 3 = 2, so tau = 3 tokens per request-step
// (less a little from capped final steps).
TEST(StepsReplay, TheSimulatorsTauMatchesTheReplayedSteps) {
    ScratchDir dir{"specplan_steps"};
    const Scenario sc = steps_scenario(write_steps_store(dir));
    const AcceptanceData acc = acceptance_load(sc);
    const PointResult p = sim_run_point(sc, acc, sim_policy("fixed:3"), 4);
    EXPECT_NEAR(p.tau, 3.0, 0.05);
}

// DeepSpec proposals replayed by the trace source: row 3 of the fixture
// stopped after 2 slots (EOS), so its slot 3 is unobserved and replays at
// the pooled rate of the observed third slots, 1/2 (test_trace_import.cpp
// works it out), instead of as a rejection. Observed slots replay as recorded.
TEST(StepsReplay, UnobservedPositionsSlotsReplayAtThePooledRate) {
    ScratchDir dir{"specplan_steps"};
    const std::string store = dir.file("d.specdb");
    {
        TraceDb db = trace_db_open(store, TRACE_CREATE);
        const std::string path = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/import/gsm8k/confidence_records.jsonl";
        std::ifstream in(path, std::ios::binary);
        deepspec_import(db, in, path, ImportOptions{}, 1 << 20);
    }
    Scenario sc = sim_scenario(0.0, 3, 400);
    sc.acceptance.kind = ACCEPT_TRACE;
    sc.acceptance.trace_path = store;
    sc.acceptance.run_id = 1;
    sc.workload.mix = {{"gsm8k", 1, {}}};
    const AcceptanceData a = acceptance_load(sc);
    ASSERT_EQ(a.beta.size(), 12u);
    EXPECT_EQ(a.beta, (std::vector<float>{1, 1, 0, 1, 0, 0, 1, 1, 0.5f, 1, 1, 1}));
    EXPECT_EQ(a.conf[8], 0.5f);
    EXPECT_NEAR(a.conf[0], 0.8807970779778823, 1e-7) << "observed slots keep their confidence, sigma(2)";
}

// A scenario names the source as acceptance.source = "steps"; the store's
// run must hold verify steps, and engine.gamma at most its gamma.
TEST(StepsReplay, AScenarioLoadsTheStepsSourceAndChecksTheRun) {
    ScratchDir dir{"specplan_steps"};
    const std::string store = write_steps_store(dir);
    auto text = [&](const std::string& path, int gamma) {
        return "seed = 3\n[workload]\nconcurrency = [1, 2]\n[[workload.domain]]\nname = \"d\"\n"
               "[engine]\ngamma = " + std::to_string(gamma) + "\n"
               "[acceptance]\nsource = \"steps\"\ntrace = \"" + path + "\"\n"
               "[policies]\nlist = [\"ar\", \"fixed:3\"]\n";
    };
    const Scenario sc = scenario_parse(text(store, 3), dir.file("s.toml"));
    EXPECT_EQ(sc.acceptance.kind, ACCEPT_STEPS);
    EXPECT_EQ(sc.acceptance.trace_producer, "importer");
    EXPECT_EQ(sc.workload.lengths, LENGTHS_TRACE);
    auto error = [&](const std::string& t) {
        try {
            scenario_parse(t, dir.file("s.toml"));
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    EXPECT_NE(error(text(store, 4)).find("engine.gamma: expected at most the trace run's gamma 3"), std::string::npos)
        << error(text(store, 4));
    const std::string positions = dir.file("p.specdb");
    {
        TraceDb db = trace_db_open(positions, TRACE_CREATE);
        const std::string path = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/import/gsm8k/confidence_records.jsonl";
        std::ifstream in(path, std::ios::binary);
        ImportOptions opt;
        opt.domain = "d";
        deepspec_import(db, in, path, opt, 1 << 20);
    }
    const std::string msg = error(text(positions, 3));
    EXPECT_NE(msg.find("acceptance.trace: expected run 1 of " + positions + " to hold requests with verify steps, got none"),
              std::string::npos) << msg;
}
