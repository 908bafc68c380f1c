// report_plot.h: a sweep's plots as files, drawn without a window, in the
// dashboard's look (its policy colours and dark background, titles, axis
// titles with units, SLO lines), for pasting into documents:
//
//   frontier    output tok/s per GPU against per-user tok/s, one colour per
//               policy: p90 solid (the dashboard's curve), mean dashed; the
//               per-user SLA as a vertical line; each policy's capacity at
//               the SLO as a hollow ring
//   latency     TTFT p90 and TPOT p90 (ms) against load, two panels side by
//               side, with the TTFT SLO and 1 / per-user SLA as lines
//   acceptance  conditional acceptance alpha_k against draft slot k, one
//               curve per domain (the trace's statistics, or the parametric
//               source's alphas)
//
// One drawing, two files. A chart (PlotChart, plain data) is laid out once
// into primitives in pixels (Drawing: rectangles, polylines, circles, text);
// plot_write_svg writes them as SVG text and plot_write_png rasterizes the
// same primitives with cairo. Text widths are only estimated for the layout
// (PLOT_CHAR_EM of the font size a character); each format anchors its text
// itself.
//
// Layout of a panel w x h pixels at (x0, y0): the plot area runs from
// x0 + PLOT_MARGIN_LEFT to x0 + w - PLOT_MARGIN_RIGHT and from
// y0 + PLOT_MARGIN_TOP to y0 + h - PLOT_MARGIN_BOTTOM. An axis spans whole
// tick steps: step = tick_step(hi - lo, PLOT_TICKS) of the data's range (the
// reference lines' values included, 0 when the chart starts at zero, y_top),
// from floor(lo / step) step to ceil(hi / step) step, a tick at every step;
// a value maps linearly onto it (y upwards). Non-finite points break a line.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "simulator/acceptance.h"
#include "simulator/plot_math.h"
#include "simulator/sweep.h"

namespace sp {

inline constexpr int PLOT_WIDTH = 800, PLOT_HEIGHT = 480;  // one panel, px
inline constexpr double PLOT_MARGIN_LEFT = 72, PLOT_MARGIN_RIGHT = 20, PLOT_MARGIN_TOP = 36, PLOT_MARGIN_BOTTOM = 52;
inline constexpr int PLOT_TICKS = 6;
inline constexpr double PLOT_CHAR_EM = 0.6;
inline constexpr Rgba PLOT_TEXT = {255, 255, 255, 255};
inline constexpr Rgba PLOT_AREA = {16, 16, 20, 255};         // the dashboard's plot area
inline constexpr Rgba PLOT_FRAME = {255, 255, 255, 70};
inline constexpr Rgba PLOT_GRID = {255, 255, 255, 28};
inline constexpr Rgba PLOT_NEUTRAL = {200, 200, 200, 255};   // legend samples that stand for every policy

// [SECTION] charts --------------------------------------------------------------

struct PlotSeries {
    std::string label;           // the legend's, and SVG's data-series
    std::vector<double> x, y;
    Rgba color;
    double line = 2;             // px; 0: markers only
    bool dashed = false;
    double marker = 3;           // radius, px; 0: none
    bool hollow = false;         // ring markers
    bool legend = true;          // listed in the legend
};

// A line across the whole area, labelled at its top (vertical: on the side
// with more room) or right end.
struct PlotRef {
    bool vertical = false;       // x = value, else y = value
    double value = 0;
    std::string label;
    Rgba color = PLOT_SLO_RGBA;
};

enum PlotCorner { PLOT_TOP_RIGHT, PLOT_TOP_LEFT, PLOT_BOTTOM_RIGHT, PLOT_BOTTOM_LEFT };

struct PlotChart {
    std::string title, x_label, y_label;  // axis labels carry their units
    std::vector<PlotSeries> series;
    std::vector<PlotRef> refs;
    std::vector<PlotSeries> legend_extra;  // legend-only entries (their x, y unused): "p90", "mean"
    bool x_from_zero = true, y_from_zero = true;
    double y_top = 0;            // the y axis reaches at least this (1 for a probability)
    bool x_whole = false;        // x ticks at whole numbers only (draft slots)
    PlotCorner legend = PLOT_TOP_RIGHT;
};

// One domain's alpha_k, k = 1..gamma (NaN where unknown).
struct AlphaCurve {
    std::string domain;
    std::vector<double> alpha;
};
// The scenario's domains: a trace's statistics ("all" first, then each
// domain: trace_acceptance_stats, opening the trace read-only), else the
// parametric or iid alphas per workload domain; cut to the engine's gamma.
std::vector<AlphaCurve> plot_alpha_curves(const Scenario& sc, const AcceptanceData& acc);

PlotChart plot_frontier(const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r);
std::vector<PlotChart> plot_latency(const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r);
PlotChart plot_acceptance(const std::vector<AlphaCurve>& curves);

// [SECTION] drawing -------------------------------------------------------------

enum DrawKind { DRAW_RECT, DRAW_POLYLINE, DRAW_CIRCLE, DRAW_TEXT };

struct DrawItem {
    DrawKind kind = DRAW_RECT;
    std::vector<double> xy;      // px. RECT: x0 y0 x1 y1; POLYLINE: x y pairs; CIRCLE: cx cy r; TEXT: x, baseline y
    Rgba fill = {0, 0, 0, 0}, stroke = {0, 0, 0, 0};  // alpha 0: none
    double width = 1;            // stroke, px
    bool dashed = false;
    std::string text;            // TEXT, UTF-8
    double size = 12;            // TEXT: font size, px
    int anchor = -1;             // TEXT: -1 start, 0 middle, 1 end
    bool vertical = false;       // TEXT: turned a quarter anticlockwise about (x, y)
    std::string series;          // the series it draws, or its role ("grid", "slo", ...): SVG's data-series
};

struct Drawing {
    int width = 0, height = 0;
    std::vector<DrawItem> items;  // in painting order
};

// The axis a chart's panel gets along one dimension (see the layout above);
// `whole`: a step of at least 1.
Axis plot_axis(double lo, double hi, bool from_zero, bool whole = false);
// Panels side by side, each PLOT_WIDTH x PLOT_HEIGHT, on the dashboard's background.
Drawing plot_draw(const std::vector<PlotChart>& panels);

// SVG 1.1 text (coordinates to 0.01 px). Throws nothing.
void plot_write_svg(std::ostream& out, const Drawing& d);
// PNG (8-bit RGBA) of the same drawing through cairo; sp::Error when cairo fails.
void plot_write_png(std::ostream& out, const Drawing& d);
// Whether this build has cairo (CMake SPECPLAN_PNG); without it
// plot_write_png throws sp::Error saying so.
bool plot_png_available();

}  // namespace sp
