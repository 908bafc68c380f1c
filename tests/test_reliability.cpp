// test_reliability.cpp: the reliability diagram's bins (gui/reliability.h)
// against a hand-worked run, a perfectly calibrated one, and rows that lie
// about their extent.
#include <gtest/gtest.h>

#include "gui/reliability.h"

using namespace sp;

// One request, gamma 2, output 3: slots (t, k) with t + k < 3 are (0,1),
// (0,2) and (1,1).
static AcceptanceData one_request() {
    AcceptanceData a;
    a.kind = ACCEPT_TRACE;
    a.gamma = a.trace_gamma = 2;
    TraceRequest q;
    q.output_len = 3;
    q.offset = 0;
    a.requests = {q};
    a.conf = {0.95f, 0.5f, 0.25f, 0.7f, 0.6f, 0.6f};
    a.beta = {1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 1.0f};
    return a;
}

TEST(Reliability, HandWorkedRun) {
    Reliability r = reliability_compute(one_request());
    ASSERT_TRUE(r.available);
    EXPECT_EQ(r.total, 3);
    // (0,1): predicted 0.95 (bin 9), realised 1; (0,2): 0.95 * 0.5 = 0.475 (bin 4),
    // realised 1 * 0 = 0; (1,1): 0.25 (bin 2), realised 1.
    EXPECT_EQ(r.count[9], 1);
    EXPECT_EQ(r.count[4], 1);
    EXPECT_EQ(r.count[2], 1);
    EXPECT_NEAR(r.pred[4], 0.475, 1e-7);
    EXPECT_DOUBLE_EQ(r.real[4], 0.0);
    EXPECT_NEAR(r.pred[2], 0.25, 1e-7);
    EXPECT_DOUBLE_EQ(r.real[2], 1.0);
    EXPECT_NEAR(r.ece, (0.05 + 0.475 + 0.75) / 3, 1e-6);
}

TEST(Reliability, AnOracleHeadHasNoCalibrationError) {
    AcceptanceData a = one_request();
    a.conf = a.beta;   // confidence 1 exactly where accepted, 0 where rejected
    Reliability r = reliability_compute(a);
    EXPECT_EQ(r.total, 3);
    EXPECT_DOUBLE_EQ(r.ece, 0.0);
    EXPECT_EQ(r.count[0] + r.count[9], 3);
}

TEST(Reliability, OnlyTraceRunsWithConfidences) {
    AcceptanceData a = one_request();
    a.conf.clear();
    EXPECT_FALSE(reliability_compute(a).available);
    a = one_request();
    a.kind = ACCEPT_PARAMETRIC;
    EXPECT_FALSE(reliability_compute(a).available);
}

TEST(Reliability, RowsBeyondTheArraysAreNotRead) {
    AcceptanceData a = one_request();
    a.requests[0].output_len = 1000;   // claims far more rows than stored
    TraceRequest past;
    past.output_len = 5;
    past.offset = 600;                 // starts past the end
    a.requests.push_back(past);
    Reliability r = reliability_compute(a);
    // the first request stops at the end of its stored rows (3 rows, every slot of each now real)
    EXPECT_EQ(r.total, 6);
}
