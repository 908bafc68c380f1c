// plot_math.h: the arithmetic of the dashboard's plot module, kept apart from
// ImGui so that CI tests it without a window: scale transforms (linear and
// log), tick positions with readable labels, zoom and pan, and hit-testing of
// points in screen space, and the plots' colours. ImPlot is not packaged in
// Debian; gui/plot.cpp draws with ImDrawList on top of this, and the CLI's
// plot files (report_plot.h) with the same ticks and colours.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sp {

// One axis' visible range. A log axis needs lo > 0.
struct Axis {
    double lo = 0, hi = 1;
    bool log = false;
};

// Position of v along the axis: 0 at lo, 1 at hi (outside [0, 1] beyond the range).
double axis_to_unit(const Axis& a, double v);
double axis_from_unit(const Axis& a, double u);

struct Tick {
    double value;
    std::string label;  // "0.25", "1.5k", "2M", "1e-3"
    bool major;         // log axes: decades are major, 2x and 5x minor
};

// Ticks inside [lo, hi]. Linear: multiples of 1, 2 or 5 x 10^k, about
// `target` of them. Log: every decade (every n-th when there are many), with
// 2x and 5x minor ticks when the range spans few decades.
std::vector<Tick> axis_ticks(const Axis& a, int target = 6);

// The "nice" tick step near range / target: 1, 2 or 5 x 10^k, the smallest
// of them at least range / target.
double tick_step(double range, int target);

// A value as a tick label: at most 3 significant digits, k/M/G suffixes from
// 1e3 up, scientific below 1e-2.
std::string tick_label(double v);

// A data value for tooltips and read-outs, more precise than a tick label:
// 4 significant digits without trailing zeros ("61.23", "0.5", "0.02134"),
// whole numbers with thousands separators from 1000 up ("4,210").
std::string value_label(double v);

// One CSV field: quoted when it holds a comma, quote or line break, with
// quotes doubled (RFC 4180).
std::string csv_field(const std::string& s);

// Greedy placement of text boxes (tick labels, point labels) in priority
// order: a box is kept when it overlaps no box kept before it. Touching
// edges do not overlap.
struct Box {
    double x0, y0, x1, y1;
};
std::vector<bool> boxes_place(const std::vector<Box>& boxes);

// Point labels (the users beside each point), which pile up where a curve
// saturates. Label i is w x h pixels for the point at (x, y) whose own
// marker reaches `pad` pixels out; it goes to the first of four spots
// gap + pad pixels off the point (clear of that marker), in this order:
// right-above, left-above, right-below, left-below, that lies inside
// `area` and overlaps neither an obstacle (the legend, reference labels,
// the points' markers) nor a label placed before it. A label with no such
// spot is skipped (placed = false): a missing label, never two on top of
// each other. Touching edges do not overlap.
struct LabelSpot {
    double x, y, w, h;
    double pad = 0;
};
struct LabelPlace {
    bool placed = false;
    Box box{0, 0, 0, 0};   // where it goes, when placed
};
std::vector<LabelPlace> labels_place(const std::vector<LabelSpot>& labels, const std::vector<Box>& obstacles,
                                     const Box& area, double gap);

// Zoom by `factor` (< 1 zooms in) keeping the point at unit position
// `anchor` (0..1) fixed on screen; pan by `delta` in unit positions.
void axis_zoom(Axis& a, double anchor, double factor);
void axis_pan(Axis& a, double delta);

// A range that shows every value in [lo, hi] with a margin, and for a log
// axis only positive values. Degenerate ranges widen around their value.
Axis axis_fit(double lo, double hi, bool log);

// An sRGB colour, 0..255 per channel, alpha 255 = opaque.
struct Rgba {
    uint8_t r = 0, g = 0, b = 0, a = 255;
};
// Series i's colour (policy i of a sweep, domain i), cycling: Tableau-10-like
// hues, lightened to read on the dark PLOT_BACKGROUND; red comes last
// because it is the SLO colour.
Rgba plot_palette(int i);
inline constexpr Rgba PLOT_SLO_RGBA = {230, 80, 80, 255};
inline constexpr Rgba PLOT_BACKGROUND = {23, 23, 26, 255};  // the dashboard's clear colour (0.09, 0.09, 0.10)

// Index of the point nearest to (mx, my) within radius pixels, or -1.
// xs, ys are screen coordinates of n points.
int hit_test(const double* xs, const double* ys, int n, double mx, double my, double radius);

}  // namespace sp
