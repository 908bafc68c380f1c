// test_plot_math.cpp: the dashboard's plot arithmetic (simulator/plot_math.h)
// against hand-worked values: transforms, ticks and labels, zoom and pan,
// fitting, hit-testing.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "simulator/plot_math.h"

using namespace sp;

static std::vector<double> values(const std::vector<Tick>& ticks) {
    std::vector<double> v;
    for (const Tick& t : ticks) v.push_back(t.value);
    return v;
}

TEST(PlotMath, LinearAndLogTransformsAreInverse) {
    Axis lin{-2, 6, false};
    EXPECT_DOUBLE_EQ(axis_to_unit(lin, 2), 0.5);
    EXPECT_DOUBLE_EQ(axis_to_unit(lin, -2), 0.0);
    Axis lg{1, 10000, true};
    EXPECT_DOUBLE_EQ(axis_to_unit(lg, 100), 0.5);  // the geometric middle
    EXPECT_NEAR(axis_from_unit(lg, 0.25), 10, 1e-12);
    for (double v : {1.5, 37.0, 9999.0}) EXPECT_NEAR(axis_from_unit(lg, axis_to_unit(lg, v)), v, 1e-9 * v);
    for (double v : {-1.5, 0.0, 5.9}) EXPECT_NEAR(axis_from_unit(lin, axis_to_unit(lin, v)), v, 1e-12);
}

TEST(PlotMath, LinearTicksAreNiceMultiples) {
    EXPECT_EQ(values(axis_ticks({0, 1, false}, 5)), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
    EXPECT_EQ(values(axis_ticks({0, 13000, false}, 6)), (std::vector<double>{0, 5000, 10000}));
    EXPECT_EQ(values(axis_ticks({-3, 7, false}, 5)), (std::vector<double>{-2, 0, 2, 4, 6}));
    std::vector<Tick> t = axis_ticks({0, 13000, false}, 6);
    EXPECT_EQ(t[1].label, "5k");
    EXPECT_EQ(t[2].label, "10k");
}

TEST(PlotMath, LogTicksAreDecadesWithMinorTicksOverFewDecades) {
    std::vector<Tick> t = axis_ticks({1, 1000, true}, 6);
    EXPECT_EQ(values(t), (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}));
    EXPECT_TRUE(t[0].major);
    EXPECT_FALSE(t[1].major);
    EXPECT_EQ(t[9].label, "1k");
    // nine decades, six ticks wanted: every other decade, no minor ticks
    EXPECT_EQ(values(axis_ticks({1e-3, 1e6, true}, 6)), (std::vector<double>{1e-3, 1e-1, 1e1, 1e3, 1e5}));
    EXPECT_TRUE(axis_ticks({0, 10, true}).empty());  // a log axis needs lo > 0
}

TEST(PlotMath, LabelsAreShortAndReadable) {
    EXPECT_EQ(tick_label(0), "0");
    EXPECT_EQ(tick_label(0.25), "0.25");
    EXPECT_EQ(tick_label(1500), "1.5k");
    EXPECT_EQ(tick_label(2e6), "2M");
    EXPECT_EQ(tick_label(-3000), "-3k");
    EXPECT_EQ(tick_label(0.001), "0.001");
    EXPECT_EQ(tick_label(123.456), "123");
}

TEST(PlotMath, ZoomKeepsTheAnchorAndPanShiftsByUnits) {
    Axis a{0, 100, false};
    axis_zoom(a, 0.25, 0.5);  // zoom in 2x around the value 25
    EXPECT_DOUBLE_EQ(a.lo, 12.5);
    EXPECT_DOUBLE_EQ(a.hi, 62.5);
    EXPECT_DOUBLE_EQ(axis_from_unit(a, 0.25), 25);
    axis_pan(a, 0.1);  // a tenth of the width to the right
    EXPECT_DOUBLE_EQ(a.lo, 17.5);
    EXPECT_DOUBLE_EQ(a.hi, 67.5);
    Axis lg{1, 10000, true};
    axis_zoom(lg, 0.5, 0.5);  // around 100: one decade on each side becomes half a decade
    EXPECT_NEAR(lg.lo, 10, 1e-9);
    EXPECT_NEAR(lg.hi, 1000, 1e-7);
}

TEST(PlotMath, FitAddsAMarginAndHandlesDegenerateRanges) {
    Axis a = axis_fit(0, 100, false);
    EXPECT_DOUBLE_EQ(a.lo, -5);
    EXPECT_DOUBLE_EQ(a.hi, 105);
    Axis d = axis_fit(7, 7, false);
    EXPECT_LT(d.lo, 7);
    EXPECT_GT(d.hi, 7);
    Axis l = axis_fit(10, 1000, true);
    EXPECT_NEAR(std::log10(l.lo), 1 - 0.1, 1e-12);  // 5 % of two decades
    EXPECT_NEAR(std::log10(l.hi), 3 + 0.1, 1e-12);
}

TEST(PlotMath, HitTestFindsTheNearestPointWithinTheRadius) {
    double xs[] = {10, 50, 52, 200}, ys[] = {10, 50, 51, 10};
    EXPECT_EQ(hit_test(xs, ys, 4, 51, 50, 5), 1);   // (50,50) at 1, (52,51) at 1.41
    EXPECT_EQ(hit_test(xs, ys, 4, 52, 52, 5), 2);
    EXPECT_EQ(hit_test(xs, ys, 4, 120, 10, 5), -1);  // nothing within 5 px
    EXPECT_EQ(hit_test(xs, ys, 4, 14, 13, 5), 0);    // exactly at the radius counts
}

TEST(PlotMath, ValueLabelsKeepFourDigitsAndGroupThousands) {
    EXPECT_EQ(value_label(0), "0");
    EXPECT_EQ(value_label(61.234), "61.23");
    EXPECT_EQ(value_label(60.0), "60");
    EXPECT_EQ(value_label(174.56), "174.6");
    EXPECT_EQ(value_label(0.5), "0.5");
    EXPECT_EQ(value_label(0.021346), "0.02135");
    EXPECT_EQ(value_label(-0.25), "-0.25");
    EXPECT_EQ(value_label(4210.4), "4,210");
    EXPECT_EQ(value_label(999.97), "1,000");  // rounds up into the grouped form
    EXPECT_EQ(value_label(-1234567), "-1,234,567");
    EXPECT_EQ(value_label(2e-5), "2e-05");
}

TEST(PlotMath, CsvFieldsAreQuotedOnlyWhenNeeded) {
    EXPECT_EQ(csv_field("dspark"), "dspark");
    EXPECT_EQ(csv_field("64 users: 4,210 tok/s"), "\"64 users: 4,210 tok/s\"");
    EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
}

TEST(PlotMath, BoxesArePlacedGreedilyWithoutOverlap) {
    // b overlaps a; c touches a's right edge only; d overlaps b alone, which was dropped
    std::vector<Box> boxes = {{0, 0, 10, 10}, {5, 5, 15, 15}, {10, 0, 20, 10}, {12, 12, 20, 20}};
    EXPECT_EQ(boxes_place(boxes), (std::vector<bool>{true, false, true, true}));
}

// Point labels 10 x 4 px, gap 2, in an area (0,0)-(100,100). Worked by hand:
//   a at (50,50): right-above is x 52..62, y 44..48; free, taken.
//   b at (50,50) again (a pile-up at saturation): right-above is taken by a,
//     left-above x 38..48, y 44..48 is free.
//   c at (50,50) a third time: both upper spots taken; right-below x 52..62,
//     y 52..56.
//   d at (50,50) a fourth time: left-below x 38..48, y 52..56.
//   e at (50,50) a fifth time: all four spots taken, skipped.
//   f at (95,3): right spots leave the area (x1 = 107), left-above has y0 = -5;
//     left-below x 83..93, y 5..9 fits.
//   g at (70,50): right-above x 72..82, y 44..48 overlaps the obstacle
//     (75,40)-(80,47); left-above x 58..68 overlaps a (52..62); right-below
//     x 72..82, y 52..56 is free.
TEST(PlotMath, PointLabelsTakeTheFirstFreeSpotOrAreLeftOut) {
    const std::vector<LabelSpot> spots = {{50, 50, 10, 4}, {50, 50, 10, 4}, {50, 50, 10, 4}, {50, 50, 10, 4},
                                          {50, 50, 10, 4}, {95, 3, 10, 4},  {70, 50, 10, 4}};
    const std::vector<Box> obstacles = {{75, 40, 80, 47}};
    const std::vector<LabelPlace> p = labels_place(spots, obstacles, {0, 0, 100, 100}, 2);
    ASSERT_EQ(p.size(), spots.size());
    auto at = [&](size_t i, Box b) {
        EXPECT_TRUE(p[i].placed) << i;
        EXPECT_EQ(p[i].box.x0, b.x0) << i;
        EXPECT_EQ(p[i].box.y0, b.y0) << i;
        EXPECT_EQ(p[i].box.x1, b.x1) << i;
        EXPECT_EQ(p[i].box.y1, b.y1) << i;
    };
    at(0, {52, 44, 62, 48});
    at(1, {38, 44, 48, 48});
    at(2, {52, 52, 62, 56});
    at(3, {38, 52, 48, 56});
    EXPECT_FALSE(p[4].placed);
    at(5, {83, 5, 93, 9});
    at(6, {72, 52, 82, 56});
    // no two placed labels overlap, whatever was skipped
    for (size_t i = 0; i < p.size(); i++)
        for (size_t j = i + 1; j < p.size(); j++)
            if (p[i].placed && p[j].placed) {
                EXPECT_FALSE(p[i].box.x0 < p[j].box.x1 && p[j].box.x0 < p[i].box.x1 && p[i].box.y0 < p[j].box.y1 &&
                             p[j].box.y0 < p[i].box.y1)
                    << i << " overlaps " << j;
            }
}

// A label clears its own point's marker: with pad 3 and gap 2 the
// right-above spot of (50,50) is x 55..65, y 41..45, outside the marker's
// box (47,47)-(53,53), which is also an obstacle.
TEST(PlotMath, ALabelClearsItsOwnMarker) {
    const std::vector<LabelPlace> p =
        labels_place({{50, 50, 10, 4, 3}}, {{47, 47, 53, 53}}, {0, 0, 100, 100}, 2);
    ASSERT_TRUE(p[0].placed);
    EXPECT_EQ(p[0].box.x0, 55);
    EXPECT_EQ(p[0].box.y0, 41);
    EXPECT_EQ(p[0].box.y1, 45);
}

// A label that only touches an obstacle's edge is placed: right-above of
// (10,10) with gap 0 is x 10..20, y 6..10, and the obstacle starts at x 20.
TEST(PlotMath, ALabelTouchingAnObstacleIsPlaced) {
    const std::vector<LabelPlace> p = labels_place({{10, 10, 10, 4}}, {{20, 0, 30, 10}}, {0, 0, 100, 100}, 0);
    ASSERT_TRUE(p[0].placed);
    EXPECT_EQ(p[0].box.x1, 20);
}
