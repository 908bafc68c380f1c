// test_timeline.cpp: the Step timeline's capture (gui/timeline.h) against
// closed forms. With one closed-loop user and fixed lengths every request
// runs alone, so its decode steps and their accepted lengths follow from the
// output length alone, and the point ends with no request in flight.
#include <gtest/gtest.h>

#include <cmath>

#include "gui/timeline.h"
#include "simulator/sim.h"
#include "sim_scenario.h"
#include "traces/models.h"

using namespace sp;

static Scenario base(double alpha, int gamma, int output_len, int warmup, int requests) {
    return sim_scenario(alpha, gamma, output_len, warmup, requests);
}
static Policy policy(const char* text) { return sim_policy(text); }

static TimelineOutput capture(const Scenario& sc, const char* pol, double load) {
    AcceptanceData acc = acceptance_load(sc);
    return timeline_capture_point(sc, acc, policy(pol), load);
}

// Every captured iteration starts after the previous one ended.
static void expect_consecutive(const TimelineOutput& t) {
    for (size_t i = 1; i < t.steps.size(); i++) EXPECT_GE(t.steps[i].start_ns, t.steps[i - 1].end_ns) << i;
}

TEST(Timeline, AutoregressiveStepsVerifyNothingAndEmitOneTokenEach) {
    const int L = 50, W = 10, N = 40;
    Scenario sc = base(0.7, 4, L, W, N);
    TimelineOutput t = capture(sc, "ar", 1);
    ASSERT_EQ(t.accepted_hist.size(), 5u);
    // After the prefill's first token, L - 1 decode steps of one token per request.
    EXPECT_EQ(t.accepted_hist[0], static_cast<int64_t>(W + N) * (L - 1));
    for (int j = 1; j <= 4; j++) EXPECT_EQ(t.accepted_hist[static_cast<size_t>(j)], 0) << j;
    ASSERT_EQ(t.steps.size(), static_cast<size_t>(TIMELINE_STEPS));
    for (const TimelineStep& s : t.steps) {
        ASSERT_EQ(timeline_requests(s), 1);
        EXPECT_EQ(s.ell[0], 0);
        EXPECT_EQ(s.accepted[0], 0);
        EXPECT_EQ(s.batch_tokens, 1 + s.prefill_tokens);
        EXPECT_EQ(timeline_tau(s), 1.0);
        EXPECT_EQ(timeline_emitted(s), 1);
        EXPECT_EQ(timeline_wasted(s), 0);
        EXPECT_GT(timeline_step_s(s), 0.0);
    }
    expect_consecutive(t);
    EXPECT_EQ(t.policy, "ar");
    EXPECT_EQ(t.token_budget, 8192);
    EXPECT_FALSE(t.conf_read);
}

TEST(Timeline, AlphaOneFixedKAcceptsWholeBlocksThenTheCappedRemainder) {
    // L - 1 = 4 * 12 + 2 tokens after the first: 12 blocks of k + 1 = 4, then
    // one step capped at l = 1 (remaining - 1), accepted too.
    const int L = 51, W = 5, N = 20;
    Scenario sc = base(1.0, 4, L, W, N);
    TimelineOutput t = capture(sc, "fixed:3", 1);
    ASSERT_EQ(t.accepted_hist.size(), 5u);
    const std::vector<int64_t> want = {0, W + N, 0, 12 * (W + N), 0};
    EXPECT_EQ(t.accepted_hist, want);
    ASSERT_FALSE(t.steps.empty());
    for (const TimelineStep& s : t.steps) {
        ASSERT_EQ(timeline_requests(s), 1);
        EXPECT_TRUE(s.ell[0] == 3 || s.ell[0] == 1) << s.ell[0];
        EXPECT_EQ(s.accepted[0], s.ell[0]);
        EXPECT_EQ(timeline_wasted(s), 0);
        EXPECT_EQ(timeline_verified(s), 1 + s.ell[0]);
        EXPECT_EQ(s.batch_tokens, 1 + s.ell[0] + s.prefill_tokens);
    }
    expect_consecutive(t);
}

TEST(Timeline, AcceptedLengthsAddUpToEveryOutputToken) {
    // Whatever the policy verifies, each request-step emits accepted + 1
    // tokens and a request needs L - 1 of them after its first.
    const int L = 120, W = 10, N = 30;
    for (const char* pol : {"dspark", "fixed:4", "threshold:0.5", "goodput"}) {
        Scenario sc = base(0.7, 4, L, W, N);
        TimelineOutput t = capture(sc, pol, 1);
        int64_t tokens = 0;
        for (size_t j = 0; j < t.accepted_hist.size(); j++) tokens += static_cast<int64_t>(j + 1) * t.accepted_hist[j];
        EXPECT_EQ(tokens, static_cast<int64_t>(W + N) * (L - 1)) << pol;
        for (const TimelineStep& s : t.steps)
            for (int r = 0; r < timeline_requests(s); r++) {
                EXPECT_LE(s.accepted[static_cast<size_t>(r)], s.ell[static_cast<size_t>(r)]) << pol;
                EXPECT_LE(s.ell[static_cast<size_t>(r)], 4) << pol;
            }
    }
}

// An independent record of the point: completion times and decode steps.
struct Recorder : SimObserver {
    std::vector<int64_t> done_ns;
    std::vector<int64_t> decode_starts;
    void on_complete(const CompletedRequest& c) override { done_ns.push_back(c.done_ns); }
    void on_step(const StepView& v) override {
        if (v.n_decode > 0) decode_starts.push_back(v.start_ns);
    }
};

TEST(Timeline, CaptureStartsInTheMiddleOfTheMeasurementWindow) {
    const int W = 20, N = 60;
    Scenario sc = base(0.6, 4, 80, W, N);
    sc.workload.output_len = {DIST_UNIFORM, 0, 20, 200, 0, 0};
    AcceptanceData acc = acceptance_load(sc);
    const double users = 8;
    Recorder rec;
    sim_run_point(sc, acc, policy("dspark"), users, &rec);
    TimelineOutput t = timeline_capture_point(sc, acc, policy("dspark"), users);
    EXPECT_TRUE(t.conf_read);
    ASSERT_EQ(t.steps.size(), static_cast<size_t>(TIMELINE_STEPS));
    // The first decode step that starts once W + N/2 requests are done.
    const int64_t middle = rec.done_ns[static_cast<size_t>(W + N / 2 - 1)];
    size_t first = 0;
    while (first < rec.decode_starts.size() && rec.decode_starts[first] < middle) first++;
    ASSERT_LE(first + TIMELINE_STEPS, rec.decode_starts.size());
    for (size_t i = 0; i < t.steps.size(); i++) EXPECT_EQ(t.steps[i].start_ns, rec.decode_starts[first + i]) << i;
    for (const TimelineStep& s : t.steps) {
        EXPECT_EQ(s.conf.size(), s.ell.size() * 4);
        EXPECT_LE(timeline_requests(s), 8);
        EXPECT_LE(timeline_tau(s), static_cast<double>(timeline_verified(s)) + 1e-9);
        EXPECT_GE(timeline_tau(s), static_cast<double>(timeline_requests(s)));
    }
}

TEST(Timeline, ShortPointKeepsConsecutiveStepsFromBeforeTheMiddle) {
    // 4 requests of 10 tokens: 4 * 9 decode steps in all, fewer than a capture
    // wants, and only half of them after the middle (2 completions).
    Scenario sc = base(0.0, 4, 10, 0, 4);
    TimelineOutput t = capture(sc, "ar", 1);
    EXPECT_EQ(t.steps.size(), 36u);
    expect_consecutive(t);
}

TEST(Timeline, ExpectedTokensArePrefixSurvivalSums) {
    TimelineStep s;
    s.gamma = 3;
    s.ell = {2, 0, 3};
    s.accepted = {1, 0, 3};
    s.conf = {0.5f, 0.5f, 0.9f,   // 1 + 0.5 + 0.25 (slot 3 drafted, not verified)
              0.9f, 0.9f, 0.9f,   // 1
              1.0f, 0.5f, 0.5f};  // 1 + 1 + 0.5 + 0.25
    EXPECT_NEAR(timeline_tau(s), 1.75 + 1 + 2.75, 1e-6);
    EXPECT_EQ(timeline_emitted(s), 2 + 1 + 4);
    EXPECT_EQ(timeline_verified(s), 3 + 1 + 4);
    EXPECT_EQ(timeline_wasted(s), 1);
}
