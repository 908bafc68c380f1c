// plot.h: a small plotting module drawn with ImDrawList (ImPlot is not
// packaged in Debian). Immediate mode, like ImGui itself:
//
//   if (plot_begin("frontier", view, size, "per-user tok/s (p90)", "tok/s/GPU")) {
//       plot_line("dspark", xs, ys, n, color, tips);   // tips: optional hover text per point
//       plot_hline(60.0, "SLO", slo_color);
//       plot_end();
//   }
//
// Series are recorded between begin and end and drawn at plot_end, which
// also draws the axes (plot_math.h ticks), the legend, the hover tooltip of
// the nearest point, and handles the mouse: wheel zooms about the cursor,
// left-drag pans, double-click fits the data again. A plot fits its data the
// first time it is drawn and whenever view.fitted is cleared (the app clears
// it when a new sweep lands). The "PNG" and "CSV" buttons under the plot
// export it (see plot_export_*).
//
// The id follows ImGui's "##" rule: "Throughput per GPU##frontier" draws the
// title "Throughput per GPU" above the plot and exports frontier.csv; an id
// without "##" is both. Series with the same label share one legend entry,
// and clicking the entry hides all of them (their labels too). Wheel over an
// axis' tick labels zooms that axis alone. The hover tooltip names the
// nearest point's series, x and y (with the axis labels) and its tip.
#pragma once

#include <imgui.h>

#include <string>
#include <vector>

#include "simulator/plot_math.h"

namespace sp {

// Persistent state of one plot: lives in AppState.
struct PlotView {
    Axis x, y;                 // visible ranges; Axis::log selects log scale
    bool fitted = false;       // false: fit to the data at the next plot_end
    bool x_log = false, y_log = false;  // wanted scales (copied into x.log / y.log on fit)
};

// Starts a plot of `size` pixels, the export buttons' row included (0 =
// available width / height, negative = available less that much). Returns
// false when the plot is clipped away; then call nothing else for it. The
// plot is one ImGui group, so SameLine() after plot_end places beside it.
bool plot_begin(const char* id, PlotView& view, ImVec2 size, const char* x_label, const char* y_label);

// A polyline through the points (skipping non-finite ones) with markers.
// `tips`, when given, holds one hover line per point (e.g. "64 users").
void plot_line(const char* label, const double* xs, const double* ys, int n, ImU32 color,
               const std::string* tips = nullptr);
// Markers only.
void plot_scatter(const char* label, const double* xs, const double* ys, int n, ImU32 color,
                  const std::string* tips = nullptr);
// Bars centred on xs, `width` in x units, from y = 0.
void plot_bars(const char* label, const double* xs, const double* ys, int n, double width, ImU32 color,
               const std::string* tips = nullptr);
// Text beside points (e.g. the concurrency of each), belonging to series
// `label`: hidden with it, not a legend entry of its own. A label that would
// overlap one already drawn in this plot is left out.
void plot_labels(const char* label, const double* xs, const double* ys, const std::string* texts, int n,
                 ImU32 color);
// Reference lines across the whole plot (SLOs, matched throughput), labelled at the edge.
void plot_hline(double y, const char* label, ImU32 color);
void plot_vline(double x, const char* label, ImU32 color);

void plot_end();

// Style of the next series only, ImPlot's SetNext*Style idiom: line width
// (0 = no line), marker radius in pixels (0 = none), hollow markers.
struct PlotStyle {
    float line = 2.0f;
    float marker = 3.0f;
    bool hollow = false;
};
void plot_next_style(const PlotStyle& style);

// Exports, behind the "PNG" and "CSV" buttons plot_end draws under each
// plot, into plot_export_dir (default "out/gui", created when needed) as
// <id>.csv and <id>.png. CSV (label,x,y,tip per row, every series and
// reference line) is written at once. A PNG is the plot's rectangle of the
// framebuffer, which only exists once the frame is rendered: plot_end queues
// a request, and the main loop writes it after rendering
// (plot_take_png_requests, then png_write_framebuffer in gui/png.h).
struct PngRequest {
    std::string path;
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // framebuffer pixels, top-left origin, exclusive end
};
std::vector<PngRequest> plot_take_png_requests();
extern std::string plot_export_dir;
// The last export's outcome ("wrote out/gui/frontier.csv" or the error), for the status bar.
extern std::string plot_export_status;

// Colours: policy i of a sweep, a domain (plot_palette), and the fixed roles.
ImU32 plot_color(int i);
constexpr ImU32 PLOT_SLO_COLOR = IM_COL32(PLOT_SLO_RGBA.r, PLOT_SLO_RGBA.g, PLOT_SLO_RGBA.b, PLOT_SLO_RGBA.a);
constexpr ImU32 PLOT_GRID_COLOR = IM_COL32(255, 255, 255, 28);

}  // namespace sp
