// test_policy.cpp: the verification policies on hand-made inputs with
// hand-computed answers, and the fast DSpark ranking against a slow,
// obviously correct transcription of Algorithm 1 on random inputs.
//
// Confidences in the hand-made cases are dyadic (0.5, 0.25, 0.75, ...) where
// a Theta is compared exactly; elsewhere expected Thetas carry a 1e-6
// tolerance for float confidences such as 0.9f.
//
// draft-prob's estimator (policy/draft_prob.h) against its documented
// closed forms: bins of logit(q) worked out by hand, the prior before any
// data, the counts after a hand-made sequence of verified blocks (slots
// after a rejection and unverified slots not counted), and the policy as
// DSpark's scheduler over estimates computed by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "policy/draft_prob.h"
#include "policy/policy.h"
#include "traces/rng.h"

using namespace sp;

namespace {

// Step time: table[B] when a table is given (out of range throws, so a policy
// asking about a B the test did not foresee fails loudly), else t0 + slope * B.
struct StepFn {
    double t0 = 1, slope = 0;
    std::vector<double> table;
};

double step_fn(const void* ctx, int, int b) {
    const StepFn& s = *static_cast<const StepFn*>(ctx);
    return s.table.empty() ? s.t0 + s.slope * b : s.table.at(static_cast<size_t>(b));
}

// One scheduling problem; owns what PolicyInput points at.
struct World {
    int n = 0, gamma = 0;
    std::vector<float> conf, stale;  // (n, gamma); stale empty: none given
    std::vector<int> max_len;        // empty: none given
    std::vector<double> alpha;       // empty: none given
    std::vector<float> q;            // (n, gamma) draft probabilities (draft-prob); empty: none given
    DraftProbEstimator est;          // draft-prob's counts
    int budget = 1 << 20;
    StepFn step;

    PolicyInput input() const {
        PolicyInput in;
        in.n = n;
        in.gamma = gamma;
        in.conf = conf.data();
        in.conf_stale = stale.empty() ? nullptr : stale.data();
        in.max_len = max_len.empty() ? nullptr : max_len.data();
        in.alpha_hat = alpha.empty() ? nullptr : alpha.data();
        in.draft_prob = q.empty() ? nullptr : q.data();
        in.estimator = &est;
        in.token_budget = budget;
        in.step_time = StepTime{step_fn, &step};
        return in;
    }
    std::vector<int> choose(const char* policy_text) const {
        Policy p;
        std::string err;
        EXPECT_TRUE(policy_parse(policy_text, &p, &err)) << err;
        return choose(p);
    }
    std::vector<int> choose(const Policy& p) const {
        std::vector<int> ell(static_cast<size_t>(n), -1);
        PolicyInput in = input();
        policy_choose(p, in, ell.data());
        return ell;
    }
    std::vector<int> dspark(bool early_stop, double* theta = nullptr) const {
        std::vector<int> ell(static_cast<size_t>(n), -1);
        PolicyInput in = input();
        double t = dspark_schedule(in, early_stop, ell.data());
        if (theta) *theta = t;
        return ell;
    }
};

World world(int n, int gamma, std::vector<float> conf) {
    World w;
    w.n = n;
    w.gamma = gamma;
    w.conf = std::move(conf);
    EXPECT_EQ(w.conf.size(), static_cast<size_t>(n * gamma));
    return w;
}

using L = std::vector<int>;

}  // namespace

// ---- parsing

TEST(Policy, ParseAcceptsEveryPolicyAndGivesItsCanonicalName) {
    struct Case {
        const char* text;
        PolicyKind kind;
        const char* name;
    } cases[] = {
        {"ar", POLICY_AR, "ar"},
        {"mtp1", POLICY_MTP1, "mtp1"},
        {"fixed:3", POLICY_FIXED, "fixed:3"},
        {"fixed:03", POLICY_FIXED, "fixed:3"},
        {"fixed:0", POLICY_FIXED, "fixed:0"},
        {"threshold:0.6", POLICY_THRESHOLD, "threshold:0.6"},
        {"threshold:0.60", POLICY_THRESHOLD, "threshold:0.6"},
        {"threshold:6e-1", POLICY_THRESHOLD, "threshold:0.6"},
        {"threshold:1", POLICY_THRESHOLD, "threshold:1"},
        {"threshold:0", POLICY_THRESHOLD, "threshold:0"},
        {"dspark", POLICY_DSPARK, "dspark"},
        {"dspark-async", POLICY_DSPARK_ASYNC, "dspark-async"},
        {"goodput", POLICY_GOODPUT, "goodput"},
        {"batch-table", POLICY_BATCH_TABLE, "batch-table"},
        {"draft-prob", POLICY_DRAFT_PROB, "draft-prob"},
    };
    for (const Case& c : cases) {
        Policy p;
        std::string err;
        ASSERT_TRUE(policy_parse(c.text, &p, &err)) << c.text << ": " << err;
        EXPECT_EQ(p.kind, c.kind) << c.text;
        EXPECT_EQ(p.name, c.name) << c.text;
    }
    Policy p;
    std::string err;
    ASSERT_TRUE(policy_parse("fixed:12", &p, &err));
    EXPECT_EQ(p.k, 12);
    ASSERT_TRUE(policy_parse("threshold:0.25", &p, &err));
    EXPECT_EQ(p.threshold, 0.25);
}

TEST(Policy, ParseRejectsMalformedTextSayingWhatWasExpected) {
    const std::string fixed = "fixed:K with K a whole number >= 0, got '";
    const std::string threshold = "threshold:T with T a number in [0, 1], got '";
    const std::string unknown =
        "a policy: ar, mtp1, fixed:K, threshold:T, dspark, dspark-async, goodput, batch-table or draft-prob, got '";
    struct Case {
        const char* text;
        const std::string& expected;
    } cases[] = {
        {"fixed:x", fixed},          {"fixed:-1", fixed},         {"fixed:", fixed},
        {"fixed:2.5", fixed},        {"fixed: 3", fixed},         {"fixed:+3", fixed},
        {"fixed:99999999999", fixed}, {"threshold:1.5", threshold}, {"threshold:-0.1", threshold},
        {"threshold:", threshold},   {"threshold:nan", threshold}, {"threshold:inf", threshold},
        {"threshold:0.5x", threshold}, {"", unknown},             {"DSpark", unknown},
        {"ar ", unknown},            {"fixed", unknown},          {"batch-table:4", unknown},
        {"eagle", unknown},          {"draft-prob:0.5", unknown}, {"draftprob", unknown},
    };
    for (const Case& c : cases) {
        Policy p;
        p.name = "untouched";
        std::string err;
        EXPECT_FALSE(policy_parse(c.text, &p, &err)) << c.text;
        EXPECT_EQ(err, c.expected + c.text + "'") << c.text;
        EXPECT_EQ(p.name, "untouched") << "a failed parse must leave *out alone: " << c.text;
    }
}

TEST(Policy, DraftLengthIsZeroForArOneForMtpKForFixedAndGammaOtherwise) {
    auto len = [](const char* text, int gamma) {
        Policy p;
        std::string err;
        EXPECT_TRUE(policy_parse(text, &p, &err)) << err;
        return policy_draft_len(p, gamma);
    };
    EXPECT_EQ(len("ar", 5), 0);
    EXPECT_EQ(len("mtp1", 5), 1);
    EXPECT_EQ(len("mtp1", 0), 0);
    EXPECT_EQ(len("fixed:3", 5), 3);
    EXPECT_EQ(len("fixed:9", 5), 5);
    EXPECT_EQ(len("fixed:0", 5), 0);
    EXPECT_EQ(len("threshold:0.5", 5), 5);
    EXPECT_EQ(len("dspark", 5), 5);
    EXPECT_EQ(len("dspark-async", 5), 5);
    EXPECT_EQ(len("goodput", 5), 5);
    EXPECT_EQ(len("draft-prob", 5), 5);
    Policy table;
    table.kind = POLICY_BATCH_TABLE;
    EXPECT_EQ(policy_draft_len(table, 5), 0) << "an empty table never verifies, so drafts nothing";
    table.batch_table = {{1, 4}, {64, 2}};
    EXPECT_EQ(policy_draft_len(table, 5), 4) << "the table's largest k";
    table.batch_table = {{1, 9}};
    EXPECT_EQ(policy_draft_len(table, 5), 5) << "capped by gamma";
}

// An iteration's drafts: batch-table's k in force at R (capped by gamma, 0
// where speculation is off); every other policy as policy_draft_len.
TEST(Policy, DraftLenAtRIsTheBatchTablesRowInForce) {
    Policy table;
    table.kind = POLICY_BATCH_TABLE;
    table.name = "batch-table";
    table.batch_table = {{1, 9}, {16, 2}, {64, 0}};
    const std::pair<int, int> want[] = {{0, 0}, {1, 5}, {15, 5}, {16, 2}, {63, 2}, {64, 0}, {1000, 0}};
    for (auto [R, k] : want) EXPECT_EQ(policy_draft_len_at(table, 5, R), k) << "R = " << R;
    for (const char* text : {"ar", "mtp1", "fixed:3", "fixed:9", "threshold:0.5", "dspark", "dspark-async"}) {
        Policy p;
        std::string err;
        ASSERT_TRUE(policy_parse(text, &p, &err)) << err;
        for (int R : {1, 64, 1000}) EXPECT_EQ(policy_draft_len_at(p, 5, R), policy_draft_len(p, 5)) << text;
        // engine.draft_max_running: nothing above it, the policy's own at and below it
        EXPECT_EQ(policy_draft_len_at(p, 5, 49, 48), 0) << text;
        EXPECT_EQ(policy_draft_len_at(p, 5, 48, 48), policy_draft_len(p, 5)) << text;
    }
    EXPECT_EQ(policy_draft_len_at(table, 5, 15, 8), 0);
}

// ---- the static policies

TEST(Policy, ArVerifiesNothingEvenForCertainDrafts) {
    World w = world(2, 2, {1, 1, 1, 1});
    EXPECT_EQ(w.choose("ar"), (L{0, 0}));
}

TEST(Policy, Mtp1VerifiesOneDraftUnlessTheRequestIsCappedAtZero) {
    World w = world(3, 2, {0.1f, 0.1f, 0.9f, 0.9f, 0.5f, 0.5f});
    w.max_len = {2, 0, 1};
    EXPECT_EQ(w.choose("mtp1"), (L{1, 0, 1}));
}

TEST(Policy, FixedVerifiesKCappedByGammaAndByEachRequestsMaxLen) {
    World w = world(4, 4, std::vector<float>(16, 0.5f));
    w.max_len = {4, 2, 0, 3};
    EXPECT_EQ(w.choose("fixed:3"), (L{3, 2, 0, 3}));
    EXPECT_EQ(w.choose("fixed:9"), (L{4, 2, 0, 3}));
    EXPECT_EQ(w.choose("fixed:0"), (L{0, 0, 0, 0}));
    w.max_len.clear();  // no caps given: gamma
    EXPECT_EQ(w.choose("fixed:9"), (L{4, 4, 4, 4}));
}

TEST(Policy, ThresholdTakesTheLeadingSlotsAtOrAboveTAndStopsAtTheFirstBelow) {
    World w = world(5, 4,
                    {
                        0.9f, 0.4f, 0.9f, 0.9f,  // a later confident slot does not count after a miss: 1
                        0.6f, 0.6f, 0.6f, 0.6f,  // per-slot c, not the product (0.6^4 = 0.13): 4
                        0.3f, 0.9f, 0.9f, 0.9f,  // the first slot misses: 0
                        0.5f, 0.5f, 0.49f, 1,    // c == t is in: 2
                        0.9f, 0.9f, 0.9f, 0.9f,  // capped by max_len: 2
                    });
    w.max_len = {4, 4, 4, 4, 2};
    EXPECT_EQ(w.choose("threshold:0.5"), (L{1, 4, 0, 2, 2}));
    EXPECT_EQ(w.choose("threshold:0"), (L{4, 4, 4, 4, 2})) << "t = 0: full blocks";
    EXPECT_EQ(w.choose("threshold:1"), (L{0, 0, 0, 0, 0}));
    // A confidence stored as 0.6f meets threshold:0.6 (compared in float).
    EXPECT_EQ(w.choose("threshold:0.6")[1], 4);
}

// fixed:3 on caps {3, 3, 1}: l = {3, 3, 1}, B = 3 + 7 = 10. Trimming removes
// the deepest slot first, the higher request first among equal depth:
// (1,3), (0,3), (1,2), (0,2), (2,1), (1,1), (0,1).
TEST(Policy, BudgetTrimRemovesTheDeepestSlotsFirstHigherRequestsFirstAmongEqualDepth) {
    World w = world(3, 3, std::vector<float>(9, 0.9f));
    w.max_len = {3, 3, 1};
    struct Case {
        int budget;
        L ell;
    } cases[] = {
        {10, {3, 3, 1}}, {9, {3, 2, 1}}, {8, {2, 2, 1}}, {7, {2, 1, 1}},
        {6, {1, 1, 1}},  {5, {1, 1, 0}}, {4, {1, 0, 0}}, {3, {0, 0, 0}},
    };
    for (const Case& c : cases) {
        w.budget = c.budget;
        EXPECT_EQ(w.choose("fixed:3"), c.ell) << "budget " << c.budget;
        EXPECT_EQ(w.choose("threshold:0.5"), c.ell) << "budget " << c.budget;
    }
    World m = world(4, 1, std::vector<float>(4, 0.9f));
    m.budget = 6;
    EXPECT_EQ(m.choose("mtp1"), (L{1, 1, 0, 0}));
    Policy table;
    table.kind = POLICY_BATCH_TABLE;
    table.batch_table = {{1, 3}};
    w.budget = 7;
    EXPECT_EQ(w.choose(table), (L{2, 1, 1}));
}

TEST(Policy, BatchTableUsesTheEntryWithTheLargestMinAtOrBelowTheRunningCount) {
    Policy p;
    p.kind = POLICY_BATCH_TABLE;
    p.batch_table = {{4, 3}, {8, 2}, {16, 1}};
    struct Case {
        int n, k;
    } cases[] = {{1, 0}, {3, 0}, {4, 3}, {7, 3}, {8, 2}, {15, 2}, {16, 1}, {40, 1}};
    for (const Case& c : cases) {
        World w = world(c.n, 4, std::vector<float>(static_cast<size_t>(c.n) * 4, 0.5f));
        EXPECT_EQ(w.choose(p), L(static_cast<size_t>(c.n), c.k)) << "n = " << c.n;
    }
    p.batch_table = {{1, 9}};
    World w = world(2, 4, std::vector<float>(8, 0.5f));
    w.max_len = {4, 1};
    EXPECT_EQ(w.choose(p), (L{4, 1})) << "capped by gamma and max_len";
}

// ---- dspark (Algorithm 1)

// Flat step time: Theta = tau, which every slot with a > 0 raises.
// r0: a = 0.5, 0.25, 0.125; r1: c2 = 0 ends the request at one slot;
// r2: a = 0.25, 0.25, 0.25 (c = 1 after the first). tau = 3 + 0.875 + 0.5 + 0.75.
TEST(Policy, DSparkWithAFlatStepTimeAdmitsEverySlotWithPositiveSurvival) {
    World w = world(3, 3, {0.5f, 0.5f, 0.5f, 0.5f, 0, 0.5f, 0.25f, 1, 1});
    double theta = 0;
    EXPECT_EQ(w.dspark(true, &theta), (L{3, 1, 3}));
    EXPECT_EQ(theta, 3 + 0.875 + 0.5 + 0.75);
    EXPECT_EQ(w.choose("dspark"), (L{3, 1, 3}));
    w.max_len = {1, 3, 2};
    EXPECT_EQ(w.dspark(true, &theta), (L{1, 1, 2}));
    EXPECT_EQ(theta, 3 + 0.5 + 0.5 + 0.5);
}

// Step time proportional to B: Theta = tau / B starts at 1, and a slot with
// a <= 1 can never raise it (a = 1 only ties, which does not admit). This is
// the l = 0 case: plain decoding for everyone.
TEST(Policy, DSparkWithASteepStepTimeAdmitsNothing) {
    World w = world(2, 2, {0.9f, 0.9f, 1, 1});
    w.step.t0 = 0;
    w.step.slope = 1;
    double theta = 0;
    EXPECT_EQ(w.dspark(true, &theta), (L{0, 0}));
    EXPECT_EQ(theta, 1.0);
    EXPECT_EQ(w.dspark(false, &theta), (L{0, 0}));
    EXPECT_EQ(theta, 1.0);
}

// r0: c = 0.8, 0.75, 0.5 -> a = 0.8, 0.6, 0.3; r1: c = 0.9, 0.5, 0.5 -> a = 0.9,
// 0.45, 0.225. Ranking (1,1) (0,1) (0,2) (1,2) (0,3) (1,3).
// t(B) = 1 + 0.1 (B - 2):
//   B  slot   tau    t    Theta
//   2  -      2      1.0  2
//   3  (1,1)  2.9    1.1  2.636  up
//   4  (0,1)  3.7    1.2  3.083  up
//   5  (0,2)  4.3    1.3  3.308  up
//   6  (1,2)  4.75   1.4  3.393  up
//   7  (0,3)  5.05   1.5  3.367  down: stop
TEST(Policy, DSparkWorkedExampleStopsAtTheFirstSlotThatDoesNotRaiseTheta) {
    World w = world(2, 3, {0.8f, 0.75f, 0.5f, 0.9f, 0.5f, 0.5f});
    w.step.t0 = 0.8;
    w.step.slope = 0.1;
    double theta = 0;
    EXPECT_EQ(w.dspark(true, &theta), (L{2, 2}));
    EXPECT_NEAR(theta, 4.75 / 1.4, 1e-6);
    // Theta keeps falling after (0,3) (5.275 / 1.6 = 3.297), so the global
    // argmax agrees here.
    EXPECT_EQ(w.dspark(false, &theta), (L{2, 2}));
    EXPECT_NEAR(theta, 4.75 / 1.4, 1e-6);
    // t(B) = 1 + 0.2 (B - 2): Theta 2, 2.417, 2.643, 2.6875 (B = 5), then
    // 4.75 / 1.8 = 2.639 at B = 6: the stop comes one slot earlier, before (1,2).
    w.step.t0 = 0.6;
    w.step.slope = 0.2;
    EXPECT_EQ(w.dspark(true, &theta), (L{2, 1}));
    EXPECT_NEAR(theta, 4.3 / 1.6, 1e-6);
}

// The token budget is a clean way to admit exactly the first K slots of the
// ranking under a flat step time, so the exact tie order shows.
TEST(Policy, DSparkTiesKeepEachRequestsSlotsInOrderThenLowerRequestsFirst) {
    // c = 1 makes a(r,1) = a(r,2) = 1 in both requests: order (0,1) (1,1) (0,2) (1,2) (0,3) (1,3).
    World w = world(2, 3, {1, 1, 0.5f, 1, 1, 0.5f});
    L expect[] = {{0, 0}, {1, 0}, {1, 1}, {2, 1}, {2, 2}, {3, 2}, {3, 3}};
    for (int k = 0; k <= 6; k++) {
        w.budget = 2 + k;
        EXPECT_EQ(w.dspark(true), expect[k]) << k << " slots";
        EXPECT_EQ(w.dspark(false), expect[k]) << k << " slots";
    }
    // (0,2) ties with (1,1) at a = 0.5: the lower j goes first, then r.
    World v = world(2, 2, {0.5f, 1, 0.5f, 1});
    L expect2[] = {{0, 0}, {1, 0}, {1, 1}, {2, 1}, {2, 2}};
    for (int k = 0; k <= 4; k++) {
        v.budget = 2 + k;
        EXPECT_EQ(v.dspark(true), expect2[k]) << k << " slots";
    }
    // Equal a across three requests, cut by the step time rather than the
    // budget: the lower requests go first.
    World u = world(3, 1, {0.5f, 0.5f, 0.5f});
    u.step.table = {0, 1, 1, 1, 1, 1, 9};  // B = 3..5 flat, a cliff at B = 6: two slots
    EXPECT_EQ(u.dspark(true), (L{1, 1, 0}));
    u.step.table = {0, 1, 1, 1, 1, 9, 9};  // only B = 4 is free: one slot
    EXPECT_EQ(u.dspark(true), (L{1, 0, 0}));
}

// A staircase step time: t = 1 at B = 2, then 1.5 for B = 3..6. n = 2, c = 0.5
// everywhere: a = 0.5, 0.5, 0.25, 0.25 in the order (0,1) (1,1) (0,2) (1,2).
//   B   tau    Theta
//   2   2      2
//   3   2.5    1.667   early stop halts here: l = 0
//   4   3      2
//   5   3.25   2.167
//   6   3.5    2.333   the global argmax
TEST(Policy, DSparkEarlyStopHaltsAtAStaircaseThatTheGlobalArgmaxClimbs) {
    World w = world(2, 2, {0.5f, 0.5f, 0.5f, 0.5f});
    w.step.table = {0, 0, 1, 1.5, 1.5, 1.5, 1.5};
    double early = 0, global = 0;
    EXPECT_EQ(w.dspark(true, &early), (L{0, 0}));
    EXPECT_EQ(early, 2.0);
    EXPECT_EQ(w.dspark(false, &global), (L{2, 2}));
    EXPECT_EQ(global, 3.5 / 1.5);
    EXPECT_GT(global, early);
}

// Equal Thetas: n = 1, a = 1, 1 (c = 1); t = 1, 1, 1.5 for B = 1, 2, 3 gives
// Theta 1, 2, 2. The global argmax keeps the shorter prefix.
TEST(Policy, DSparkGlobalArgmaxPrefersTheShorterPrefixOnATie) {
    World w = world(1, 2, {1, 1});
    w.step.table = {0, 1, 1, 1.5};
    double theta = 0;
    EXPECT_EQ(w.dspark(false, &theta), (L{1}));
    EXPECT_EQ(theta, 2.0);
    EXPECT_EQ(w.dspark(true, &theta), (L{1}));
}

// ---- dspark-async

// Budget from stale confidences: row 1 of the stale matrix is all zero, so
// the stale ranking has 2 slots (flat step time: K = 2). The current ranking
// (c = 0.5 everywhere) gives its top 2: (0,1) and (1,1).
TEST(Policy, DSparkAsyncTakesItsBudgetFromStaleConfidencesAndItsSlotsFromCurrentOnes) {
    World w = world(2, 2, {0.5f, 0.5f, 0.5f, 0.5f});
    w.stale = {0.9f, 0.9f, 0, 0};
    EXPECT_EQ(w.choose("dspark-async"), (L{1, 1}));
    EXPECT_EQ(w.choose("dspark"), (L{2, 2}));
    // The staircase of the test above: over stale = current the global argmax
    // is 4 slots, where dspark stops at none.
    w.step.table = {0, 0, 1, 1.5, 1.5, 1.5, 1.5};
    w.stale = w.conf;
    EXPECT_EQ(w.choose("dspark-async"), (L{2, 2}));
    EXPECT_EQ(w.choose("dspark"), (L{0, 0}));
    // Without stale confidences it uses the current ones; caps hold.
    w.stale.clear();
    w.max_len = {1, 2};
    EXPECT_EQ(w.choose("dspark-async"), (L{1, 2}));
}

// A linear step time makes Theta unimodal along the ranking (tau is concave
// in the number of slots, the time affine), so the early stop finds the
// global argmax, and dspark-async over stale == current picks the same set.
TEST(Policy, DSparkAsyncEqualsDSparkWhenStaleIsCurrentAndTheStepTimeIsSmooth) {
    Rng rng = rng_seed(7);
    for (int trial = 0; trial < 50; trial++) {
        int n = 1 + static_cast<int>(rng_below(rng, 40)), gamma = 1 + static_cast<int>(rng_below(rng, 7));
        World w;
        w.n = n;
        w.gamma = gamma;
        for (int i = 0; i < n * gamma; i++) w.conf.push_back(static_cast<float>(rng_uniform(rng)));
        w.stale = w.conf;
        w.step.t0 = 1;
        w.step.slope = 0.005 + 0.1 * rng_uniform(rng);
        L early = w.dspark(true);
        EXPECT_EQ(w.dspark(false), early) << "trial " << trial;
        EXPECT_EQ(w.choose("dspark-async"), early) << "trial " << trial;
        EXPECT_EQ(w.choose("dspark"), early) << "trial " << trial;
    }
}

// ---- goodput

// alpha = 0.9 and 0.3, gamma 4, t = 1 + 0.1 (B - 2). Gains 0.9, 0.81, 0.729,
// 0.6561 (r0), then 0.3, 0.09, ... (r1). Theta over the first K:
// K = 0..5: 2, 2.636, 3.092, 3.415, 3.639, 3.597 -> K = 4, all of r0.
TEST(Policy, GoodputVerifiesMoreDraftsForHighAcceptanceThanForLow) {
    World w = world(2, 4, std::vector<float>(8, 0.5f));
    w.step.t0 = 0.8;
    w.step.slope = 0.1;
    w.alpha = {0.9, 0.3};
    EXPECT_EQ(w.choose("goodput"), (L{4, 0}));
    w.alpha = {0.3, 0.9};
    EXPECT_EQ(w.choose("goodput"), (L{0, 4}));
    // Confidences do not enter: goodput looks only at alpha_hat.
    w.conf.assign(8, 1.0f);
    EXPECT_EQ(w.choose("goodput"), (L{0, 4}));
}

TEST(Policy, GoodputClampsAlphaAndTreatsNaNAsNoAcceptance) {
    World w = world(3, 3, std::vector<float>(9, 0.5f));
    w.alpha = {std::numeric_limits<double>::quiet_NaN(), -0.5, 7.0};
    EXPECT_EQ(w.choose("goodput"), (L{0, 0, 3})) << "flat step time: every slot with gain > 0";
    w.max_len = {3, 3, 2};
    EXPECT_EQ(w.choose("goodput"), (L{0, 0, 2}));
    w.budget = 4;
    EXPECT_EQ(w.choose("goodput"), (L{0, 0, 1}));
}

// ---- draft-prob: the estimator and the policy

TEST(Policy, StepTimeIsNeededByTheCostAwarePoliciesOnly) {
    auto needs = [](const char* text) {
        Policy p;
        std::string err;
        EXPECT_TRUE(policy_parse(text, &p, &err)) << err;
        return policy_needs_step_time(p);
    };
    for (const char* t : {"dspark", "dspark-async", "goodput", "draft-prob"}) EXPECT_TRUE(needs(t)) << t;
    for (const char* t : {"ar", "mtp1", "fixed:3", "threshold:0.5", "batch-table"}) EXPECT_FALSE(needs(t)) << t;
}

// bin = floor((logit(q) + 6) / 0.75), clamped into 0..15; logits by hand:
// logit(0.55) = 0.2007 -> 8.27; logit(0.9) = ln 9 = 2.197 -> 10.93;
// logit(0.99) = ln 99 = 4.595 -> 14.13; logit(0.999) = 6.907 -> 17.2 -> 15;
// logit(0.01) = -4.595 -> 1.87; logit(0.001) = -6.907 -> -1.2 -> 0;
// logit(0.3) = -0.847 -> 6.87; q = 0.5 is logit 0 exactly, the lower edge of bin 8.
TEST(DraftProb, BinsAreThreeQuarterUnitsOfLogitQOpenAtBothEnds) {
    struct Case {
        float q;
        int bin;
    } cases[] = {{0.55f, 8},  {0.9f, 10}, {0.99f, 14}, {0.999f, 15}, {0.01f, 1}, {0.001f, 0},
                 {0.3f, 6},   {0.5f, 8},  {1.0f, 15},  {0.0f, 0},    {-1.0f, 0}, {std::nanf(""), 0}};
    for (const Case& c : cases) EXPECT_EQ(draft_prob_bin(c.q), c.bin) << "q " << c.q;
}

// Before any data c(q) is its bin's centre probability sigma(-6 + 0.75 (b + 0.5)):
// bin 8: sigma(0.375) = 0.59267; bin 10: sigma(1.875) = 0.86704; bin 15:
// sigma(5.625) = 0.99641; bin 0: sigma(-5.625) = 0.0035936.
TEST(DraftProb, BeforeAnyDataTheEstimateIsTheBinsCentreProbability) {
    const DraftProbEstimator none;
    EXPECT_NEAR(draft_prob_estimate(none, 0.55f), 0.5926665999540697, 1e-12);
    EXPECT_NEAR(draft_prob_estimate(none, 0.6f), 0.5926665999540697, 1e-12);  // same bin, same estimate
    EXPECT_NEAR(draft_prob_estimate(none, 0.9f), 0.8670357598021706, 1e-12);
    EXPECT_NEAR(draft_prob_estimate(none, 1.0f), 0.9964063974185798, 1e-12);
    EXPECT_NEAR(draft_prob_estimate(none, 0.0f), 0.00359360258142009, 1e-12);
    for (int b = 0; b < DRAFT_PROB_BINS; b++) {
        const double x = -6 + 0.75 * (b + 0.5);
        EXPECT_NEAR(draft_prob_prior(b), 1 / (1 + std::exp(-x)), 1e-15) << "bin " << b;
    }
}

// Four blocks by hand (q of each slot, l verified, n accepted):
//   {0.9, 0.55, 0.99, 0.9}  l 4, n 1: slot 0 accepted (bin 10), slot 1 rejected (bin 8);
//                                     slots 2, 3 after the rejection: not observed
//   {0.9, 0.9, 0.55, 0.99}  l 3, n 3: slots 0, 1 accepted (bin 10), slot 2 (bin 8);
//                                     slot 3 drafted but not verified: not observed
//   {0.99, 0.9}             l 2, n 0: slot 0 rejected (bin 14); slot 1 not observed
//   {0.55}                  l 0:      nothing verified, nothing observed
// Counts: bin 10 3 of 3, bin 8 1 of 2, bin 14 0 of 1, every other bin 0.
// c = (accepted + 2 prior) / (observed + 2): c(0.9) = (3 + 2 x 0.86704) / 5 =
// 0.94681, c(0.55) = (1 + 2 x 0.59267) / 4 = 0.54633, c(0.99) = 2 x
// sigma(4.875) / 3 = 0.66162.
TEST(DraftProb, CountsOnlySlotsVerifiedBehindAcceptedOnes) {
    DraftProbEstimator e;
    const float a[] = {0.9f, 0.55f, 0.99f, 0.9f}, b[] = {0.9f, 0.9f, 0.55f, 0.99f}, c[] = {0.99f, 0.9f}, d[] = {0.55f};
    draft_prob_observe(e, a, 4, 1);
    draft_prob_observe(e, b, 3, 3);
    draft_prob_observe(e, c, 2, 0);
    draft_prob_observe(e, d, 0, 0);
    int64_t want_obs[DRAFT_PROB_BINS] = {}, want_acc[DRAFT_PROB_BINS] = {};
    want_obs[10] = 3, want_acc[10] = 3;
    want_obs[8] = 2, want_acc[8] = 1;
    want_obs[14] = 1, want_acc[14] = 0;
    for (int k = 0; k < DRAFT_PROB_BINS; k++) {
        EXPECT_EQ(e.observed[k], want_obs[k]) << "bin " << k;
        EXPECT_EQ(e.accepted[k], want_acc[k]) << "bin " << k;
    }
    EXPECT_NEAR(draft_prob_estimate(e, 0.9f), 0.9468143039208682, 1e-12);
    EXPECT_NEAR(draft_prob_estimate(e, 0.55f), 0.5463332999770348, 1e-12);
    EXPECT_NEAR(draft_prob_estimate(e, 0.99f), 0.6616151724880929, 1e-12);
    EXPECT_NEAR(draft_prob_estimate(e, 0.3f), 0.24508501313237172, 1e-12) << "an unseen bin keeps its prior";
    // the same blocks in another order: the same counts
    DraftProbEstimator f;
    draft_prob_observe(f, d, 0, 0);
    draft_prob_observe(f, c, 2, 0);
    draft_prob_observe(f, b, 3, 3);
    draft_prob_observe(f, a, 4, 1);
    for (int k = 0; k < DRAFT_PROB_BINS; k++)
        EXPECT_EQ(std::tie(f.observed[k], f.accepted[k]), std::tie(e.observed[k], e.accepted[k])) << "bin " << k;
}

TEST(DraftProb, TheEstimateStaysStrictlyInsideZeroOne) {
    DraftProbEstimator e;
    e.observed[0] = e.accepted[15] = e.observed[15] = 1'000'000'000;  // bin 0 never accepted, bin 15 always
    EXPECT_GT(draft_prob_estimate(e, 0.0f), 0.0);
    EXPECT_LT(draft_prob_estimate(e, 1.0f), 1.0);
}

// Two requests, gamma 3, q rows {0.999, 0.999, 0.55} and {0.55, 0.999, 0.999}
// (bins 15, 15, 8 and 8, 15, 15), step time 1 + 0.1 B. With 2 of 8 drafts
// of bin 15 accepted so far, c15 = (2 + 2 x 0.99641) / 10 = 0.39928 and
// c8 = 0.59267 (no data: its prior). Prefix survival: r0 .39928 .15943
// .09449; r1 .59267 .23664 .09449. Algorithm 1 from Theta = 2 / 1.2 = 1.6667:
// +.59267 (1,1) 1.9944, +.39928 (0,1) 2.1371, +.23664 (1,2) 2.1524, +.15943
// (0,2) 2.1175 falls: stop. l = {1, 2}. With no data the same drafts look
// near certain (c15 = 0.99641) and every slot raises Theta: l = {3, 3}.
TEST(Policy, DraftProbIsDSparksSchedulerOverTheEstimatedAcceptance) {
    World w = world(2, 3, std::vector<float>(6, 0.0f));  // no head: draft-prob never reads conf
    w.step.slope = 0.1;
    w.q = {0.999f, 0.999f, 0.55f, 0.55f, 0.999f, 0.999f};
    EXPECT_EQ(w.choose("draft-prob"), (L{3, 3})) << "priors only";
    w.est.observed[15] = 8;
    w.est.accepted[15] = 2;
    EXPECT_EQ(w.choose("draft-prob"), (L{1, 2}));
    // dspark_schedule fed the estimates computed by hand decides the same
    const float c15 = 0.39928127948371595f, c8 = 0.5926665999540697f;
    w.conf = {c15, c15, c8, c8, c15, c15};
    EXPECT_EQ(w.dspark(true), (L{1, 2}));
    // caps and the budget hold as for dspark: r1 capped at 1 draft
    w.max_len = {3, 1};
    EXPECT_EQ(w.choose("draft-prob"), (L{1, 1}));
}

// ---- against a slow reference

namespace {

// Algorithm 1 as written in dspark.md 4.2: list every slot with a > 0, sort
// by (a desc, j asc, r asc), walk. a is the float product of the clamped
// confidences, as the policy computes it, so Thetas compare exactly.
double reference_dspark(const World& w, const std::vector<float>& conf, bool early_stop, L* ell) {
    struct Slot {
        float a;
        int j, r;
    };
    std::vector<Slot> slots;
    for (int r = 0; r < w.n; r++) {
        int cap = w.max_len.empty() ? w.gamma : std::clamp(w.max_len[static_cast<size_t>(r)], 0, w.gamma);
        float a = 1;
        for (int j = 1; j <= cap; j++) {
            float c = conf[static_cast<size_t>(r * w.gamma + j - 1)];
            a *= std::min(c, 1.0f);
            if (!(a > 0)) break;
            slots.push_back({a, j, r});
        }
    }
    std::sort(slots.begin(), slots.end(), [](const Slot& x, const Slot& y) {
        if (x.a != y.a) return x.a > y.a;
        if (x.j != y.j) return x.j < y.j;
        return x.r < y.r;
    });
    ell->assign(static_cast<size_t>(w.n), 0);
    L cur = *ell;
    int b = w.n;
    double tau = w.n, best = tau / step_fn(&w.step, w.n, b);
    for (const Slot& s : slots) {
        if (b + 1 > w.budget) break;
        b++;
        tau += s.a;
        cur[static_cast<size_t>(s.r)] = s.j;
        double theta = tau / step_fn(&w.step, w.n, b);
        if (theta > best) {
            best = theta;
            *ell = cur;
        } else if (early_stop) {
            break;
        }
    }
    return best;
}

// Random worlds that reach the sort's corners: many equal confidences (ties
// and crowded buckets), zeros, values above 1, gains below 2^-16, caps,
// budgets, and step times with cliffs.
World random_world(Rng& rng) {
    World w;
    w.n = 1 + static_cast<int>(rng_below(rng, rng_below(rng, 4) == 0 ? 400 : 60));
    w.gamma = 1 + static_cast<int>(rng_below(rng, 8));
    int style = static_cast<int>(rng_below(rng, 4));
    for (int i = 0; i < w.n * w.gamma; i++) {
        float c;
        if (style == 0) c = static_cast<float>(rng_uniform(rng));
        else if (style == 1) c = static_cast<float>(rng_below(rng, 9)) / 8;  // ties, zeros, ones
        else if (style == 2) c = static_cast<float>(0.999 + 0.001 * rng_uniform(rng));  // one crowded bucket
        else c = static_cast<float>(std::pow(rng_uniform(rng), 8) * 1.2);  // tiny gains, and some > 1
        w.conf.push_back(c);
    }
    if (rng_below(rng, 2)) {
        for (int r = 0; r < w.n; r++) w.max_len.push_back(static_cast<int>(rng_below(rng, w.gamma + 2)));
    }
    int full = w.n * (1 + w.gamma);
    w.budget = rng_below(rng, 2) ? full : w.n + static_cast<int>(rng_below(rng, static_cast<uint64_t>(full - w.n + 1)));
    // A flat step time admits every slot up to the budget, so the budget
    // cut then reads out the ranking itself, down to the tiniest gains.
    bool flat = rng_below(rng, 4) == 0;
    double t = 1;
    w.step.table.push_back(0);
    for (int b = 1; b <= full; b++) {
        if (!flat && rng_below(rng, 16) == 0) t += 0.3 * rng_uniform(rng);  // a cliff
        if (!flat) t += 0.002 * rng_uniform(rng);
        w.step.table.push_back(t);
    }
    return w;
}

}  // namespace

TEST(Policy, DSparkMatchesTheReferenceAlgorithmOnRandomWorlds) {
    Rng rng = rng_seed(11);
    for (int trial = 0; trial < 400; trial++) {
        World w = random_world(rng);
        for (bool early : {true, false}) {
            L ref;
            double theta_ref = reference_dspark(w, w.conf, early, &ref), theta = 0;
            L got = w.dspark(early, &theta);
            ASSERT_EQ(got, ref) << "trial " << trial << " early " << early << " n " << w.n << " gamma " << w.gamma;
            ASSERT_EQ(theta, theta_ref) << "trial " << trial;
        }
    }
}

// goodput is the global argmax over gains alpha^j: the reference run on a
// matrix whose row r repeats alpha_r (clamped as goodput clamps it).
TEST(Policy, GoodputMatchesTheReferenceOnRandomWorlds) {
    Rng rng = rng_seed(12);
    for (int trial = 0; trial < 200; trial++) {
        World w = random_world(rng);
        std::vector<float> rows;
        for (int r = 0; r < w.n; r++) {
            double x = rng_uniform(rng);
            if (rng_below(rng, 8) == 0) x = 1.0;
            w.alpha.push_back(x);
            for (int j = 0; j < w.gamma; j++) rows.push_back(static_cast<float>(std::min(x, 0.999)));
        }
        L ref;
        reference_dspark(w, rows, false, &ref);
        ASSERT_EQ(w.choose("goodput"), ref) << "trial " << trial;
    }
}

// draft_prob.h's estimate transcribed from its header, independently of
// draft_prob.cpp: the bin from the logit, the prior at the bin's centre.
static double reference_estimate(const DraftProbEstimator& e, float q) {
    int b = 0;
    if (q >= 1) b = 15;
    else if (q > 0) b = std::clamp(static_cast<int>(std::floor((std::log(q / (1.0 - q)) + 6) / 0.75)), 0, 15);
    const double prior = 1 / (1 + std::exp(-(-6 + 0.75 * (b + 0.5))));
    return (static_cast<double>(e.accepted[b]) + 2 * prior) / (static_cast<double>(e.observed[b]) + 2);
}

TEST(Policy, DraftProbMatchesTheReferenceOverTheReferenceEstimatesOnRandomWorlds) {
    Rng rng = rng_seed(17);
    for (int trial = 0; trial < 200; trial++) {
        World w = random_world(rng);
        for (int i = 0; i < w.n * w.gamma; i++) {
            // q from all over (0, 1), crowded near 1 as a good drafter's, and exact 0s and 1s
            const int style = static_cast<int>(rng_below(rng, 3));
            const double u = rng_uniform(rng);
            w.q.push_back(static_cast<float>(style == 0 ? u : style == 1 ? 1 - 0.02 * u : std::round(u)));
        }
        for (int b = 0; b < DRAFT_PROB_BINS; b++) {
            w.est.observed[b] = static_cast<int64_t>(rng_below(rng, 50));
            w.est.accepted[b] = static_cast<int64_t>(rng_below(rng, static_cast<uint64_t>(w.est.observed[b]) + 1));
        }
        std::vector<float> c;
        for (float q : w.q) c.push_back(static_cast<float>(reference_estimate(w.est, q)));
        L ref;
        reference_dspark(w, c, true, &ref);
        ASSERT_EQ(w.choose("draft-prob"), ref) << "trial " << trial;
    }
}

TEST(Policy, EveryPolicyIsDeterministicAndKeepsCapsAndBudget) {
    Rng rng = rng_seed(13);
    const char* policies[] = {"ar",           "mtp1",    "fixed:3",   "threshold:0.4",
                              "dspark",       "dspark-async", "goodput", "draft-prob"};
    for (int trial = 0; trial < 60; trial++) {
        World w = random_world(rng);
        for (int i = 0; i < w.n * w.gamma; i++) w.stale.push_back(static_cast<float>(rng_uniform(rng)));
        for (int r = 0; r < w.n; r++) w.alpha.push_back(rng_uniform(rng));
        for (int i = 0; i < w.n * w.gamma; i++) w.q.push_back(static_cast<float>(rng_uniform(rng)));
        World other = random_world(rng);  // disturbs the thread_local scratch between the two calls
        other.alpha.assign(static_cast<size_t>(other.n), 0.5);
        other.q.assign(static_cast<size_t>(other.n * other.gamma), 0.9f);
        for (const char* text : policies) {
            L first = w.choose(text);
            other.choose(text);
            EXPECT_EQ(w.choose(text), first) << text << " trial " << trial;
            int b = 0;
            for (int r = 0; r < w.n; r++) {
                int cap = w.max_len.empty() ? w.gamma : std::min(w.max_len[static_cast<size_t>(r)], w.gamma);
                EXPECT_GE(first[static_cast<size_t>(r)], 0) << text;
                EXPECT_LE(first[static_cast<size_t>(r)], cap) << text;
                b += 1 + first[static_cast<size_t>(r)];
            }
            EXPECT_LE(b, w.budget) << text << " trial " << trial;
        }
    }
}

TEST(Policy, AnEmptyBatchIsNotAnError) {
    World w = world(0, 4, {});
    w.budget = 0;
    for (const char* text :
         {"ar", "mtp1", "fixed:2", "threshold:0.5", "dspark", "dspark-async", "goodput", "draft-prob"})
        EXPECT_EQ(w.choose(text), L{}) << text;
    double theta = -1;
    EXPECT_EQ(w.dspark(true, &theta), L{});
    EXPECT_EQ(theta, 0.0);
}
