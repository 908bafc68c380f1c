// test_step_cost.cpp: SPS(R, B) (engine/step_cost.h). The lookup against
// closed forms on a hand-made table; the measurement on the CPU reference:
// the grid's shape, non-decreasing along both axes, the slots left empty,
// and bad sizes refused; the draft phase likewise, through a Speculator.
#include <gtest/gtest.h>

#include "engine/backend.h"
#include "engine/drafter.h"
#include "engine/model.h"
#include "engine/step_cost.h"

using namespace sp;

TEST(StepCost, GridIsPowersOfTwoBelowNThenN) {
    EXPECT_EQ(step_cost_grid(1), (std::vector<int>{1}));
    EXPECT_EQ(step_cost_grid(8), (std::vector<int>{1, 2, 4, 8}));
    EXPECT_EQ(step_cost_grid(5), (std::vector<int>{1, 2, 4, 5}));
}

// rows R = 1, 4; q = 1, 2, 8: seconds(R, q) = R + 10 q, a plane, so every
// lookup inside the grid is R + 10 B / R exactly; past q = 8 the last
// segment's slope (10 per token of q) goes on; R outside 1..4 is clamped.
TEST(StepCost, LookupIsLinearInQAndInR) {
    StepCostTable t;
    t.seqs = {1, 4};
    t.per_seq = {1, 2, 8};
    for (int R : t.seqs)
        for (int q : t.per_seq) t.seconds.push_back(R + 10.0 * q);
    EXPECT_DOUBLE_EQ(step_cost_seconds(t, 1, 1), 11);
    EXPECT_DOUBLE_EQ(step_cost_seconds(t, 1, 5), 51);    // q 5, between 2 and 8
    EXPECT_DOUBLE_EQ(step_cost_seconds(t, 4, 12), 34);   // q 3
    EXPECT_DOUBLE_EQ(step_cost_seconds(t, 2, 4), 22);    // R 2 of 1..4, q 2
    EXPECT_DOUBLE_EQ(step_cost_seconds(t, 3, 9), 33);    // R 3, q 3
    EXPECT_DOUBLE_EQ(step_cost_seconds(t, 1, 10), 101);  // past the last q
    EXPECT_DOUBLE_EQ(step_cost_seconds(t, 8, 8), 14);    // R clamped to 4, q stays 8 / 8
    EXPECT_DOUBLE_EQ(step_cost_fn(t)(2, 4), 22);
}

TEST(StepCost, MeasuresTheGridOnTheCpuAndLeavesTheSlotsEmpty) {
    const ModelWeights w = weights_random(config_resolve("tiny-qwen3"), 3);
    auto b = backend_cpu(w, 3);
    const StepCostTable t = step_cost_measure(*b, 3, 5, 16, 1);
    EXPECT_EQ(t.context, 16);
    EXPECT_EQ(t.seqs, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(t.per_seq, (std::vector<int>{1, 2, 4, 5}));
    ASSERT_EQ(t.seconds.size(), 12u);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++) {
            const double v = t.seconds[i * 4 + j];
            EXPECT_GT(v, 0);
            if (j) { EXPECT_GE(v, t.seconds[i * 4 + j - 1]); }
            if (i) { EXPECT_GE(v, t.seconds[(i - 1) * 4 + j]); }
        }
    for (int s = 0; s < 3; s++) EXPECT_EQ(b->len(s), 0);
    EXPECT_THROW(step_cost_measure(*b, 4, 5, 16, 1), Error);   // more sequences than slots
    EXPECT_THROW(step_cost_measure(*b, 3, 0, 16, 1), Error);   // no tokens
    b->forward(RaggedBatch{{1}, {2}, {5, 6}}, nullptr);
    EXPECT_THROW(step_cost_measure(*b, 3, 5, 16, 1), Error);   // slot 1 is taken
    EXPECT_EQ(b->len(1), 2) << "a refused measurement changes nothing";
}

TEST(StepCost, MeasuresTheDraftPhasePerRAndLeavesTheSlotsEmpty) {
    const std::string fixtures = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";
    const ModelWeights w = weights_load(fixtures + "tiny-qwen3-4l");
    auto b = backend_cpu(w, 4);
    auto d = drafter_open_cpu(fixtures + "tiny-dspark", w, DrafterOptions{0, 4});
    const std::vector<double> s = draft_cost_measure(*b, *d, {1, 2, 4}, 4, 12, 2);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_GT(s[0], 0);
    EXPECT_GE(s[1], s[0]);
    EXPECT_GE(s[2], s[1]);
    for (int slot = 0; slot < 4; slot++) {
        EXPECT_EQ(b->len(slot), 0) << slot;
        EXPECT_EQ(d->len(slot), 0) << slot;
    }
    EXPECT_THROW(draft_cost_measure(*b, *d, {1, 8}, 4, 12, 2), Error);         // more sequences than slots
    EXPECT_THROW(draft_cost_measure(*b, *d, {1, 2}, d->gamma() + 1, 12, 2), Error);  // past the drafter's block
    EXPECT_THROW(draft_cost_measure(*b, *d, {2, 1}, 4, 12, 2), Error);         // not ascending
}
