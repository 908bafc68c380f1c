// test_readout.cpp: the words and numbers the dashboard's panels print
// (gui/readout.h, and goodput_text in simulator/plan.h) against hand-worked
// values: the SLO line names only the SLOs that are set, the frontier marks
// capacity at its own point with the load the table shows, a curve that
// misses a matched throughput is said to lie above or below it, and the
// plan view picks the fleet with the fewest GPUs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gui/readout.h"

using namespace sp;

TEST(Readout, TheSloLineNamesOnlyTheSlosThatAreSet) {
    Slo s;
    s.per_user_tok_s = 120;
    s.ttft_s = 2.0;
    EXPECT_EQ(latency_slo_line(s),
              "SLOs: per-user p90 >= 120 tok/s, TTFT p90 <= 2000 ms. Goodput: requests with speed >= 120 tok/s and "
              "TTFT <= 2000 ms");
    s.ttft_s = 0;  // the case that once read "TTFT <= 0s"
    EXPECT_EQ(latency_slo_line(s), "SLOs: per-user p90 >= 120 tok/s. Goodput: requests with speed >= 120 tok/s");
    EXPECT_EQ(latency_slo_line(s).find("TTFT"), std::string::npos);
    s.per_user_tok_s = 0;
    s.ttft_s = 0.5;
    s.percentile = 99;
    EXPECT_EQ(latency_slo_line(s), "SLOs: TTFT p99 <= 500 ms. Goodput: requests with TTFT <= 500 ms");
    // TPOT bounds capacity but not goodput (metrics.cpp counts speed and TTFT)
    s = Slo{};
    s.tpot_s = 0.025;
    EXPECT_EQ(latency_slo_line(s),
              "SLOs: TPOT p90 <= 25 ms. Goodput: every request (no per-user speed or TTFT SLO set)");
    EXPECT_EQ(goodput_text(Slo{}), "every request (no per-user speed or TTFT SLO set)");
}

// fixed:7 of the default scenario: 46 users meet every SLO, 47 miss the
// per-user speed. The marker sits at that point (not on the SLA line) and
// says 46 users, as the table does.
TEST(Readout, TheCapacityMarkIsTheCapacityPointWithItsLoad) {
    Capacity c;
    c.policy = "fixed:7";
    c.met = true;
    c.bounded = true;
    c.load = 46;
    c.throughput = 11728;
    c.per_user_p90 = 124.5;
    c.binding = SLO_SPEED;
    CapacityMark m = capacity_mark(c, false);
    EXPECT_TRUE(m.shown);
    EXPECT_EQ(m.x, 124.5);
    EXPECT_EQ(m.y, 11728);
    EXPECT_EQ(m.label, "46 users");
    EXPECT_EQ(m.tip, "capacity: 46 users, 11,728 tok/s/GPU, per-user p90 124.5 tok/s; one more user misses per-user speed");
    c.load = 1;
    EXPECT_EQ(capacity_mark(c, false).label, "1 user");
    // the search stopped at its ceiling: a lower bound, said so
    c.load = 1024;
    c.bounded = false;
    m = capacity_mark(c, false);
    EXPECT_EQ(m.label, ">= 1,024 users");
    EXPECT_NE(m.tip.find("ceiling"), std::string::npos) << m.tip;
    // an open loop's capacity is a rate
    c.load = 2.5;
    c.bounded = true;
    c.binding = SLO_TTFT;
    m = capacity_mark(c, true);
    EXPECT_EQ(m.label, "2.5 req/s");
    EXPECT_NE(m.tip.find("misses TTFT"), std::string::npos) << m.tip;
    c.met = false;
    EXPECT_FALSE(capacity_mark(c, false).shown);
}

TEST(Readout, ACurveLiesAboveBelowOrAcrossAThroughput) {
    const std::vector<double> curve = {5120, NAN, 8000, 7400};  // NaN: an unmeasured point
    EXPECT_EQ(curve_reach(curve, 4439), REACH_ABOVE);
    EXPECT_EQ(curve_reach(curve, 9000), REACH_BELOW);
    EXPECT_EQ(curve_reach(curve, 6000), REACH_CROSSES);
    EXPECT_EQ(curve_reach(curve, 8000), REACH_CROSSES);  // its top point reaches it
    EXPECT_EQ(curve_reach(curve, 5120), REACH_CROSSES);
    EXPECT_EQ(curve_reach({NAN}, 1), REACH_NONE);
    EXPECT_EQ(curve_reach({}, 1), REACH_NONE);
}

// The sentence the frontier once got wrong: "dspark's curve never reaches
// 4,439 tok/s/GPU" for a curve that starts above it.
TEST(Readout, AMissedMatchedThroughputSaysWhichSide) {
    const std::vector<double> curve = {5120, 8000, 7400};
    EXPECT_EQ(matched_miss_text("dspark", curve, 4439),
              "dspark's curve lies entirely above 4,439 tok/s/GPU (its lowest point: 5,120): no point of it runs that "
              "slowly");
    EXPECT_EQ(matched_miss_text("dspark", curve, 22741),
              "dspark's curve stays below 22,741 tok/s/GPU (its highest point: 8,000)");
    EXPECT_EQ(matched_miss_text("dspark", curve, 6000), "");
    EXPECT_EQ(matched_miss_text("dspark", {NAN, NAN}, 6000), "dspark has no measured point");
}

static FleetPlan fleet(const char* name, bool feasible, int gpus, double usd_per_mtok) {
    FleetPlan f;
    f.policy = name;
    f.feasible = feasible;
    f.gpus = gpus;
    f.usd_per_million_tokens = usd_per_mtok;
    return f;
}

TEST(Readout, ThePlanPicksTheFewestGpusThenTheCheaperToken) {
    // infeasible plans have gpus 0 and never win
    EXPECT_EQ(plan_fewest({fleet("a", false, 0, 0), fleet("b", true, 14, 0.031), fleet("c", true, 12, 0.033)}), 2);
    // a tie on GPUs goes to the lower $/Mtok
    EXPECT_EQ(plan_fewest({fleet("a", true, 12, 0.040), fleet("b", true, 12, 0.033)}), 1);
    // unpriced: a tie goes to the earlier policy
    EXPECT_EQ(plan_fewest({fleet("a", true, 12, 0), fleet("b", true, 12, 0)}), 0);
    EXPECT_EQ(plan_fewest({fleet("a", false, 0, 0)}), -1);
    EXPECT_EQ(plan_fewest({}), -1);
}

TEST(Readout, ThePlanIsRefusedWithoutAClosedLoopAUserOrAnSlo) {
    Scenario sc;
    sc.workload.mode = WORKLOAD_CLOSED;
    sc.slo.per_user_tok_s = 50;
    EXPECT_EQ(plan_refusal(sc, 2000), "");
    EXPECT_EQ(plan_refusal(sc, 0), "users: at least 1");
    sc.slo = Slo{};
    EXPECT_NE(plan_refusal(sc, 2000).find("at least one SLO"), std::string::npos);
    sc.slo.tpot_s = 0.02;  // any one SLO bounds capacity
    EXPECT_EQ(plan_refusal(sc, 2000), "");
    sc.workload.mode = WORKLOAD_OPEN;
    EXPECT_NE(plan_refusal(sc, 2000).find("closed-loop"), std::string::npos);
}

// The frontier's marker reads Capacity::per_user_p90: the grid read-out
// fills it from the last point meeting every SLO (sweep_run's bisection
// from the point it found, which needs a simulation; not repeated here).
TEST(Readout, ACapacityCarriesThePerUserSpeedOfItsPoint) {
    std::vector<PointResult> curve(3);
    const double speed[3] = {180, 130, 90}, tput[3] = {4000, 9000, 11000};
    for (int i = 0; i < 3; i++) {
        curve[static_cast<size_t>(i)].per_user.p90 = speed[i];
        curve[static_cast<size_t>(i)].throughput = tput[i];
    }
    Slo slo;
    slo.per_user_tok_s = 120;
    const Capacity c = sweep_capacity(curve, {16, 48, 128}, slo);
    ASSERT_TRUE(c.met);
    EXPECT_EQ(c.load, 48);
    EXPECT_EQ(c.throughput, 9000);
    EXPECT_EQ(c.per_user_p90, 130);
    const CapacityMark m = capacity_mark(c, false);
    EXPECT_EQ(m.x, 130);
    EXPECT_EQ(m.label, "48 users");
}
