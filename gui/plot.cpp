// plot.cpp: see plot.h. One plot is open at a time; its series are recorded
// into a static context between plot_begin and plot_end (ImGui's own
// pattern), and plot_end lays it out, handles the mouse and draws.
//
// Layout of the frame, outside in: title row, rotated y label, y tick labels,
// the plot area, x tick labels, x label; the export buttons' row below the
// frame. Tick labels set the margins, and ticks depend on the range, so the
// layout is computed twice a frame: once with the range the mouse acts on,
// and again after zoom, pan or fit changed it.
#include "gui/plot.h"

#include <imgui_internal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

namespace sp {

std::string plot_export_dir = "out/gui";
std::string plot_export_status;

enum SeriesKind { SERIES_LINE, SERIES_SCATTER, SERIES_BARS, SERIES_LABELS };

struct PlotSeries {
    SeriesKind kind = SERIES_LINE;
    std::string label;
    std::vector<double> xs, ys;
    std::vector<std::string> tips;  // hover lines (labels: the drawn texts); empty: none
    ImU32 color = 0;
    double bar_width = 0;
    PlotStyle style;
};

struct PlotRef {
    bool vertical = false;
    double value = 0;
    std::string label;
    ImU32 color = 0;
};

struct PlotContext {
    bool open = false;
    std::string title, file, x_label, y_label;
    ImGuiID id = 0;
    PlotView* view = nullptr;
    ImVec2 pos, size;
    std::vector<PlotSeries> series;
    std::vector<PlotRef> refs;
    PlotStyle next_style;
    bool has_next_style = false;
    std::set<std::pair<ImGuiID, std::string>> hidden;  // (plot, series label) hidden from the legend
    std::vector<PngRequest> png_requests;
};
static PlotContext g_plot;

ImU32 plot_color(int i) {
    const Rgba c = plot_palette(i);  // shared with the CLI's plot files
    return IM_COL32(c.r, c.g, c.b, c.a);
}

static ImU32 color_alpha(ImU32 c, float a) {
    ImVec4 v = ImGui::ColorConvertU32ToFloat4(c);
    v.w *= a;
    return ImGui::ColorConvertFloat4ToU32(v);
}

bool plot_begin(const char* id, PlotView& view, ImVec2 size, const char* x_label, const char* y_label) {
    IM_ASSERT(!g_plot.open && "plot_begin without plot_end");
    ImVec2 avail = ImGui::GetContentRegionAvail();
    if (size.x <= 0) size.x = std::max(avail.x + size.x, 160.0f);
    if (size.y <= 0) size.y = std::max(avail.y + size.y, 120.0f);
    ImVec2 pos = ImGui::GetCursorScreenPos();
    if (!ImGui::IsRectVisible(pos, ImVec2(pos.x + size.x, pos.y + size.y))) {
        ImGui::Dummy(size);
        return false;
    }
    PlotContext& c = g_plot;
    c.open = true;
    std::string full = id;
    size_t hashes = full.find("##");
    c.title = hashes == std::string::npos ? full : full.substr(0, hashes);
    c.file = hashes == std::string::npos ? full : full.substr(hashes + 2);
    c.id = ImGui::GetID(id);
    c.x_label = x_label ? x_label : "";
    c.y_label = y_label ? y_label : "";
    c.view = &view;
    c.pos = pos;
    c.size = size;
    c.series.clear();
    c.refs.clear();
    c.has_next_style = false;
    ImGui::BeginGroup();
    ImGui::PushID(id);
    return true;
}

void plot_next_style(const PlotStyle& style) {
    g_plot.next_style = style;
    g_plot.has_next_style = true;
}

static void series_add(SeriesKind kind, const char* label, const double* xs, const double* ys, int n, ImU32 color,
                       const std::string* tips, double width) {
    IM_ASSERT(g_plot.open && "plot series outside plot_begin/plot_end");
    PlotSeries s;
    s.kind = kind;
    s.label = label ? label : "";
    s.xs.assign(xs, xs + std::max(n, 0));
    s.ys.assign(ys, ys + std::max(n, 0));
    if (tips) s.tips.assign(tips, tips + std::max(n, 0));
    s.color = color;
    s.bar_width = width;
    if (g_plot.has_next_style) s.style = g_plot.next_style;
    else if (kind == SERIES_SCATTER) s.style.line = 0;
    g_plot.has_next_style = false;
    g_plot.series.push_back(std::move(s));
}

void plot_line(const char* label, const double* xs, const double* ys, int n, ImU32 color, const std::string* tips) {
    series_add(SERIES_LINE, label, xs, ys, n, color, tips, 0);
}
void plot_scatter(const char* label, const double* xs, const double* ys, int n, ImU32 color,
                  const std::string* tips) {
    series_add(SERIES_SCATTER, label, xs, ys, n, color, tips, 0);
}
void plot_bars(const char* label, const double* xs, const double* ys, int n, double width, ImU32 color,
               const std::string* tips) {
    series_add(SERIES_BARS, label, xs, ys, n, color, tips, width);
}
void plot_labels(const char* label, const double* xs, const double* ys, const std::string* texts, int n,
                 ImU32 color) {
    series_add(SERIES_LABELS, label, xs, ys, n, color, texts, 0);
}

void plot_hline(double y, const char* label, ImU32 color) {
    IM_ASSERT(g_plot.open);
    g_plot.refs.push_back({false, y, label ? label : "", color});
}
void plot_vline(double x, const char* label, ImU32 color) {
    IM_ASSERT(g_plot.open);
    g_plot.refs.push_back({true, x, label ? label : "", color});
}

// ---------------------------------------------------------------------------
// layout

struct Layout {
    ImRect frame, area;             // whole frame; the plot area inside the axes
    std::vector<Tick> xt, yt;
    ImRect legend;                  // empty when there is nothing to list
    std::vector<ImRect> entry;      // one per legend label
    std::vector<std::string> labels;  // legend labels, first appearance order
    std::vector<ImU32> colors;
};

static bool is_hidden(const std::string& label) { return g_plot.hidden.count({g_plot.id, label}) > 0; }

// A point the current scales can show.
static bool point_ok(const PlotView& v, double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!v.x.log || x > 0) && (!v.y.log || y > 0);
}

static ImVec2 to_screen(const Layout& l, const PlotView& v, double x, double y) {
    // clamped so that far off-screen points stay within float range; only
    // the direction of a segment leaving the area by 1000 widths is bent
    double ux = std::clamp(axis_to_unit(v.x, x), -1e3, 1e3), uy = std::clamp(axis_to_unit(v.y, y), -1e3, 1e3);
    return ImVec2(static_cast<float>(l.area.Min.x + ux * l.area.GetWidth()),
                  static_cast<float>(l.area.Max.y - uy * l.area.GetHeight()));
}

static Layout layout_compute(const PlotView& v) {
    const ImGuiStyle& st = ImGui::GetStyle();
    const float lh = ImGui::GetTextLineHeight();
    const float button_row = ImGui::GetFrameHeight() - 2 * st.FramePadding.y + st.ItemSpacing.y + 2;
    Layout l;
    l.frame = ImRect(g_plot.pos, ImVec2(g_plot.pos.x + g_plot.size.x, g_plot.pos.y + g_plot.size.y - button_row));
    float top = l.frame.Min.y + (g_plot.title.empty() ? lh * 0.5f : lh + 6);
    float bottom = l.frame.Max.y - lh - 4 - (g_plot.x_label.empty() ? 0 : lh + 2);
    l.yt = axis_ticks(v.y, std::clamp(static_cast<int>((bottom - top) / 45), 2, 10));
    float yw = 0;
    for (const Tick& t : l.yt) yw = std::max(yw, ImGui::CalcTextSize(t.label.c_str()).x);
    float left = l.frame.Min.x + (g_plot.y_label.empty() ? 0 : lh + 4) + yw + 8;
    float right = l.frame.Max.x - 12;
    l.area = ImRect(ImVec2(left, top), ImVec2(std::max(right, left + 20), std::max(bottom, top + 20)));
    l.xt = axis_ticks(v.x, std::clamp(static_cast<int>(l.area.GetWidth() / 90), 2, 12));

    // Legend: one entry per label; put in the corner of the area that covers
    // the fewest shown points (ties: top right, top left, bottom right, bottom left).
    for (const PlotSeries& s : g_plot.series) {
        if (s.kind == SERIES_LABELS || s.label.empty()) continue;
        if (std::find(l.labels.begin(), l.labels.end(), s.label) == l.labels.end()) {
            l.labels.push_back(s.label);
            l.colors.push_back(s.color);
        }
    }
    if (l.labels.empty()) return l;
    float ew = 0;
    for (const std::string& s : l.labels) ew = std::max(ew, ImGui::CalcTextSize(s.c_str()).x);
    const float swatch = 22, pad = 6, row = lh + 2;
    ImVec2 lsize(pad * 2 + swatch + 4 + ew, pad * 2 + row * static_cast<float>(l.labels.size()));
    ImVec2 corners[4] = {
        ImVec2(l.area.Max.x - lsize.x - 6, l.area.Min.y + 6), ImVec2(l.area.Min.x + 6, l.area.Min.y + 6),
        ImVec2(l.area.Max.x - lsize.x - 6, l.area.Max.y - lsize.y - 6), ImVec2(l.area.Min.x + 6, l.area.Max.y - lsize.y - 6)};
    int best = 0, best_count = -1;
    for (int k = 0; k < 4; k++) {
        ImRect r(corners[k], ImVec2(corners[k].x + lsize.x, corners[k].y + lsize.y));
        int count = 0;
        for (const PlotSeries& s : g_plot.series) {
            if (is_hidden(s.label)) continue;
            for (size_t i = 0; i < s.xs.size(); i++)
                if (point_ok(v, s.xs[i], s.ys[i]) && r.Contains(to_screen(l, v, s.xs[i], s.ys[i]))) count++;
        }
        if (best_count < 0 || count < best_count) {
            best = k;
            best_count = count;
        }
    }
    l.legend = ImRect(corners[best], ImVec2(corners[best].x + lsize.x, corners[best].y + lsize.y));
    for (size_t i = 0; i < l.labels.size(); i++) {
        float y = l.legend.Min.y + pad + row * static_cast<float>(i);
        l.entry.emplace_back(ImVec2(l.legend.Min.x + 2, y), ImVec2(l.legend.Max.x - 2, y + row));
    }
    return l;
}

// ---------------------------------------------------------------------------
// fitting, mouse

static void view_fit(PlotView& v) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    auto take_x = [&](double x) {
        if (std::isfinite(x) && (!v.x_log || x > 0)) xlo = std::min(xlo, x), xhi = std::max(xhi, x);
    };
    auto take_y = [&](double y) {
        if (std::isfinite(y) && (!v.y_log || y > 0)) ylo = std::min(ylo, y), yhi = std::max(yhi, y);
    };
    bool bars = false;
    for (const PlotSeries& s : g_plot.series) {
        if (is_hidden(s.label)) continue;
        for (size_t i = 0; i < s.xs.size(); i++) {
            double x = s.xs[i], y = s.ys[i];
            if (!std::isfinite(x) || !std::isfinite(y) || (v.x_log && x <= 0) || (v.y_log && y <= 0)) continue;
            if (s.kind == SERIES_BARS) {
                take_x(x - s.bar_width / 2);
                take_x(x + s.bar_width / 2);
                bars = true;
            } else {
                take_x(x);
            }
            take_y(y);
        }
    }
    // Reference lines count, so that an SLO stays in view; so does y = 0 on
    // a linear axis over non-negative data (throughput, latency, goodput all
    // start at zero, and bars stand on it).
    for (const PlotRef& r : g_plot.refs) {
        if (r.vertical) take_x(r.value);
        else take_y(r.value);
    }
    if (!v.y_log && std::isfinite(ylo) && (ylo >= 0 || bars)) ylo = std::min(ylo, 0.0);
    if (!(xlo <= xhi)) xlo = xhi = v.x_log ? 1 : 0;
    if (!(ylo <= yhi)) ylo = yhi = v.y_log ? 1 : 0;
    v.x = axis_fit(xlo, xhi, v.x_log);
    v.y = axis_fit(ylo, yhi, v.y_log);
    if (!v.y_log && ylo == 0 && yhi > 0) v.y.lo = 0;  // no margin below a zero baseline
    v.fitted = true;
}

// Zoom, pan, re-fit and legend clicks. The frame is one invisible button, so
// a drag on it does not move the window and the wheel does not scroll it.
static void mouse_handle(PlotView& v, const Layout& l) {
    ImGui::SetCursorScreenPos(l.frame.Min);
    ImGui::InvisibleButton("##frame", l.frame.GetSize(), ImGuiButtonFlags_MouseButtonLeft);
    ImGuiContext& g = *GImGui;
    const bool hovered = ImGui::IsItemHovered(), active = ImGui::IsItemActive();
    if (hovered) g.HoveredIdUsingMouseWheel = true;
    if (active) g.ActiveIdUsingMouseWheel = true;
    const ImGuiIO& io = ImGui::GetIO();
    const ImVec2 m = io.MousePos;
    const bool on_legend = l.legend.Contains(m);

    if (hovered && on_legend && ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
        for (size_t i = 0; i < l.entry.size(); i++)
            if (l.entry[i].Contains(m)) {
                std::pair<ImGuiID, std::string> key{g_plot.id, l.labels[i]};
                if (!g_plot.hidden.erase(key)) g_plot.hidden.insert(key);
            }
        return;
    }
    if (hovered && !on_legend && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) {
        v.fitted = false;
        return;
    }
    const double ux = (m.x - l.area.Min.x) / l.area.GetWidth(), uy = (l.area.Max.y - m.y) / l.area.GetHeight();
    if (hovered && io.MouseWheel != 0) {
        // below the area: x only; left of it: y only; inside: both
        const bool in_x = m.x >= l.area.Min.x, in_y = m.y <= l.area.Max.y;
        const double f = std::pow(0.85, io.MouseWheel);
        if (in_x) axis_zoom(v.x, ux, f);
        if (in_y) axis_zoom(v.y, uy, f);
    }
    if (active && ImGui::IsMouseDragging(ImGuiMouseButton_Left) && !l.legend.Contains(io.MouseClickedPos[0])) {
        axis_pan(v.x, -io.MouseDelta.x / l.area.GetWidth());
        axis_pan(v.y, io.MouseDelta.y / l.area.GetHeight());
    }
    // a range a float cannot draw, or a log axis driven past zero, is reset
    auto sane = [](const Axis& a) {
        return std::isfinite(a.lo) && std::isfinite(a.hi) && a.hi > a.lo && (!a.log || a.lo > 0) &&
               (a.hi - a.lo) > 1e-12 * std::max(std::fabs(a.lo), std::fabs(a.hi));
    };
    if (!sane(v.x) || !sane(v.y)) v.fitted = false;
}

// ---------------------------------------------------------------------------
// drawing

static void marker_draw(ImDrawList* dl, ImVec2 p, const PlotStyle& st, ImU32 color) {
    if (st.marker <= 0) return;
    if (st.hollow) dl->AddCircle(p, st.marker, color, 0, 2.0f);
    else dl->AddCircleFilled(p, st.marker, color);
}

// Text centred on `centre`, turned a quarter counter-clockwise: ImGui has no
// rotated text, so the glyph quads are rotated in place.
static void text_vertical(ImDrawList* dl, ImVec2 centre, ImU32 color, const char* text) {
    ImVec2 sz = ImGui::CalcTextSize(text);
    int v0 = dl->VtxBuffer.Size;
    ImVec2 at(std::floor(centre.x - sz.x / 2), std::floor(centre.y - sz.y / 2));
    dl->PushClipRectFullScreen();  // AddText culls glyphs against the unturned box
    dl->AddText(at, color, text);
    dl->PopClipRect();
    for (int i = v0; i < dl->VtxBuffer.Size; i++) {
        ImVec2& p = dl->VtxBuffer[i].pos;
        float dx = p.x - centre.x, dy = p.y - centre.y;
        p = ImVec2(centre.x + dy, centre.y - dx);
    }
}

struct Hover {
    int series = -1, index = -1;
    double dist2 = 0;
};

static Hover hover_find(const PlotView& v, const Layout& l, ImVec2 m) {
    Hover h;
    if (!l.area.Contains(m) || l.legend.Contains(m)) return h;
    std::vector<double> sx, sy;
    std::vector<int> idx;
    for (size_t s = 0; s < g_plot.series.size(); s++) {
        const PlotSeries& ps = g_plot.series[s];
        if (ps.kind == SERIES_LABELS || is_hidden(ps.label)) continue;
        sx.clear();
        sy.clear();
        idx.clear();
        for (size_t i = 0; i < ps.xs.size(); i++) {
            if (!point_ok(v, ps.xs[i], ps.ys[i])) continue;
            ImVec2 p = to_screen(l, v, ps.xs[i], ps.ys[i]);
            if (ps.kind == SERIES_BARS) {
                // a bar is hit anywhere inside it: test against the point of the bar nearest the mouse
                ImVec2 a = to_screen(l, v, ps.xs[i] - ps.bar_width / 2, v.y.log ? v.y.lo : 0.0);
                ImVec2 b = to_screen(l, v, ps.xs[i] + ps.bar_width / 2, ps.ys[i]);
                p = ImVec2(std::clamp(m.x, std::min(a.x, b.x), std::max(a.x, b.x)),
                           std::clamp(m.y, std::min(a.y, b.y), std::max(a.y, b.y)));
            }
            sx.push_back(p.x);
            sy.push_back(p.y);
            idx.push_back(static_cast<int>(i));
        }
        int k = hit_test(sx.data(), sy.data(), static_cast<int>(sx.size()), m.x, m.y, 12);
        if (k < 0) continue;
        double d2 = (sx[k] - m.x) * (sx[k] - m.x) + (sy[k] - m.y) * (sy[k] - m.y);
        if (h.series < 0 || d2 <= h.dist2) h = {static_cast<int>(s), idx[k], d2};
    }
    return h;
}

static void series_draw(ImDrawList* dl, const PlotView& v, const Layout& l) {
    std::vector<ImVec2> pts;
    for (const PlotSeries& s : g_plot.series) {
        if (is_hidden(s.label) || s.kind == SERIES_LABELS) continue;
        if (s.kind == SERIES_BARS) {
            for (size_t i = 0; i < s.xs.size(); i++) {
                if (!point_ok(v, s.xs[i], s.ys[i])) continue;
                ImVec2 a = to_screen(l, v, s.xs[i] - s.bar_width / 2, v.y.log ? v.y.lo : 0.0);
                ImVec2 b = to_screen(l, v, s.xs[i] + s.bar_width / 2, s.ys[i]);
                ImVec2 mn(std::min(a.x, b.x) + 1, std::min(a.y, b.y)), mx(std::max(a.x, b.x) - 1, std::max(a.y, b.y));
                if (mx.x < mn.x + 1) mx.x = mn.x + 1;
                dl->AddRectFilled(mn, mx, color_alpha(s.color, 0.75f));
                dl->AddRect(mn, mx, s.color);
            }
            continue;
        }
        pts.clear();
        for (size_t i = 0; i < s.xs.size(); i++)
            if (point_ok(v, s.xs[i], s.ys[i])) pts.push_back(to_screen(l, v, s.xs[i], s.ys[i]));
        if (s.kind == SERIES_LINE && s.style.line > 0 && pts.size() >= 2)
            dl->AddPolyline(pts.data(), static_cast<int>(pts.size()), s.color, 0, s.style.line);
        for (const ImVec2& p : pts) marker_draw(dl, p, s.style, s.color);
    }
}

// Where a reference line is on screen; false when it is out of view.
static bool ref_place(const PlotView& v, const Layout& l, const PlotRef& r, ImVec2* p) {
    if (!std::isfinite(r.value) || ((r.vertical ? v.x.log : v.y.log) && r.value <= 0)) return false;
    *p = r.vertical ? to_screen(l, v, r.value, v.y.lo) : to_screen(l, v, v.x.lo, r.value);
    return r.vertical ? p->x >= l.area.Min.x && p->x <= l.area.Max.x : p->y >= l.area.Min.y && p->y <= l.area.Max.y;
}

static void refs_draw(ImDrawList* dl, const PlotView& v, const Layout& l) {
    for (const PlotRef& r : g_plot.refs) {
        ImVec2 p;
        if (!ref_place(v, l, r, &p)) continue;
        if (r.vertical)
            for (float y = l.area.Min.y; y < l.area.Max.y; y += 10)
                dl->AddLine(ImVec2(p.x, y), ImVec2(p.x, std::min(y + 6, l.area.Max.y)), r.color, 1.5f);
        else
            for (float x = l.area.Min.x; x < l.area.Max.x; x += 10)
                dl->AddLine(ImVec2(x, p.y), ImVec2(std::min(x + 6, l.area.Max.x), p.y), r.color, 1.5f);
    }
}

// Texts over the series: reference line labels first (always drawn, on a
// backing), then point labels, each at the first free spot beside its point
// (labels_place): clear of those, the legend, every visible marker and the
// labels placed before it, or left out.
static void texts_draw(ImDrawList* dl, const PlotView& v, const Layout& l) {
    struct Text {
        ImVec2 at;
        const std::string* text;
        ImU32 color;
        bool backing;
    };
    std::vector<Text> texts;
    std::vector<Box> obstacles;
    if (l.legend.GetWidth() > 0) obstacles.push_back({l.legend.Min.x, l.legend.Min.y, l.legend.Max.x, l.legend.Max.y});
    for (const PlotRef& r : g_plot.refs) {
        ImVec2 p;
        if (r.label.empty() || !ref_place(v, l, r, &p)) continue;
        ImVec2 sz = ImGui::CalcTextSize(r.label.c_str()), at;
        if (r.vertical) {
            at = ImVec2(p.x + 4, l.area.Min.y + 2);  // at the top, on the side with room
            if (at.x + sz.x > l.area.Max.x) at.x = p.x - 4 - sz.x;
        } else {
            at = ImVec2(l.area.Max.x - sz.x - 4, p.y - sz.y - 1);  // at the right end, above the line
            if (at.y < l.area.Min.y) at.y = p.y + 1;
            if (at.x < l.legend.Max.x && l.legend.Min.x < at.x + sz.x && at.y < l.legend.Max.y &&
                l.legend.Min.y < at.y + sz.y)
                at.x = l.legend.Min.x - sz.x - 8;  // left of the legend rather than under it
        }
        at = ImVec2(std::floor(at.x), std::floor(at.y));
        texts.push_back({at, &r.label, r.color, true});
        obstacles.push_back({at.x - 2, at.y, at.x + sz.x + 2, at.y + sz.y});
    }
    // every visible marker, so that a label never covers another point
    struct Marker {
        float x, y, r;
    };
    std::vector<Marker> markers;
    for (const PlotSeries& s : g_plot.series) {
        if (is_hidden(s.label) || s.kind == SERIES_LABELS || s.kind == SERIES_BARS || s.style.marker <= 0) continue;
        const float r = s.style.marker;
        for (size_t i = 0; i < s.xs.size(); i++) {
            if (!point_ok(v, s.xs[i], s.ys[i])) continue;
            const ImVec2 p = to_screen(l, v, s.xs[i], s.ys[i]);
            obstacles.push_back({p.x - r, p.y - r, p.x + r, p.y + r});
            markers.push_back({p.x, p.y, r});
        }
    }
    std::vector<LabelSpot> spots;
    std::vector<const std::string*> spot_text;
    std::vector<ImU32> spot_color;
    for (const PlotSeries& s : g_plot.series) {
        if (is_hidden(s.label) || s.kind != SERIES_LABELS) continue;
        for (size_t i = 0; i < s.xs.size() && i < s.tips.size(); i++) {
            if (!point_ok(v, s.xs[i], s.ys[i]) || s.tips[i].empty()) continue;
            const ImVec2 p = to_screen(l, v, s.xs[i], s.ys[i]), sz = ImGui::CalcTextSize(s.tips[i].c_str());
            float pad = 0;  // the label's own point's largest marker, which it must clear
            for (const Marker& m : markers)
                if (std::fabs(m.x - p.x) < 1 && std::fabs(m.y - p.y) < 1) pad = std::max(pad, m.r);
            spots.push_back({std::floor(p.x), std::floor(p.y), sz.x, sz.y, pad});
            spot_text.push_back(&s.tips[i]);
            spot_color.push_back(color_alpha(s.color, 0.9f));
        }
    }
    const Box area{l.area.Min.x, l.area.Min.y, l.area.Max.x, l.area.Max.y};
    const std::vector<LabelPlace> placed = labels_place(spots, obstacles, area, 4);
    for (size_t i = 0; i < spots.size(); i++)
        if (placed[i].placed)
            texts.push_back({ImVec2(static_cast<float>(placed[i].box.x0), static_cast<float>(placed[i].box.y0)),
                             spot_text[i], spot_color[i], false});
    for (const Text& t : texts) {
        if (t.backing) {
            ImVec2 sz = ImGui::CalcTextSize(t.text->c_str());
            dl->AddRectFilled(ImVec2(t.at.x - 2, t.at.y), ImVec2(t.at.x + sz.x + 2, t.at.y + sz.y), IM_COL32(16, 16, 20, 235));
        }
        dl->AddText(t.at, t.color, t.text->c_str());
    }
}

static void axes_draw(ImDrawList* dl, const PlotView& v, const Layout& l) {
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text), dim = ImGui::GetColorU32(ImGuiCol_TextDisabled);
    const float lh = ImGui::GetTextLineHeight();
    // x tick labels: majors first, then minors where they fit
    std::vector<Box> boxes;
    std::vector<const Tick*> order;
    for (const Tick& t : l.xt)
        if (t.major) order.push_back(&t);
    for (const Tick& t : l.xt)
        if (!t.major) order.push_back(&t);
    for (const Tick* t : order) {
        float x = to_screen(l, v, t->value, v.y.lo).x, w = ImGui::CalcTextSize(t->label.c_str()).x;
        boxes.push_back({x - w / 2 - 4, 0, x + w / 2 + 4, 1});
    }
    std::vector<bool> keep = boxes_place(boxes);
    for (size_t i = 0; i < order.size(); i++) {
        float x = to_screen(l, v, order[i]->value, v.y.lo).x;
        dl->AddLine(ImVec2(x, l.area.Max.y), ImVec2(x, l.area.Max.y + (order[i]->major ? 4.f : 2.f)), dim);
        if (!keep[i]) continue;
        float w = ImGui::CalcTextSize(order[i]->label.c_str()).x;
        dl->AddText(ImVec2(std::floor(x - w / 2), l.area.Max.y + 4), order[i]->major ? text : dim,
                    order[i]->label.c_str());
    }
    // y tick labels, right-aligned against the area
    boxes.clear();
    order.clear();
    for (const Tick& t : l.yt)
        if (t.major) order.push_back(&t);
    for (const Tick& t : l.yt)
        if (!t.major) order.push_back(&t);
    for (const Tick* t : order) {
        float y = to_screen(l, v, v.x.lo, t->value).y;
        boxes.push_back({0, y - lh / 2 - 1, 1, y + lh / 2 + 1});
    }
    keep = boxes_place(boxes);
    for (size_t i = 0; i < order.size(); i++) {
        float y = to_screen(l, v, v.x.lo, order[i]->value).y;
        dl->AddLine(ImVec2(l.area.Min.x - (order[i]->major ? 4.f : 2.f), y), ImVec2(l.area.Min.x, y), dim);
        if (!keep[i]) continue;
        float w = ImGui::CalcTextSize(order[i]->label.c_str()).x;
        dl->AddText(ImVec2(std::floor(l.area.Min.x - 6 - w), std::floor(y - lh / 2)), order[i]->major ? text : dim,
                    order[i]->label.c_str());
    }
    if (!g_plot.x_label.empty()) {
        float w = ImGui::CalcTextSize(g_plot.x_label.c_str()).x;
        dl->AddText(ImVec2(std::floor(l.area.GetCenter().x - w / 2), l.area.Max.y + lh + 6), text,
                    g_plot.x_label.c_str());
    }
    if (!g_plot.y_label.empty())
        text_vertical(dl, ImVec2(std::floor(l.frame.Min.x + lh / 2 + 1), std::floor(l.area.GetCenter().y)), text,
                      g_plot.y_label.c_str());
    if (!g_plot.title.empty()) {
        float w = ImGui::CalcTextSize(g_plot.title.c_str()).x;
        dl->AddText(ImVec2(std::floor(l.area.GetCenter().x - w / 2), l.frame.Min.y + 2), text, g_plot.title.c_str());
    }
}

static void legend_draw(ImDrawList* dl, const Layout& l, ImVec2 m, bool hovered) {
    if (l.labels.empty()) return;
    dl->AddRectFilled(l.legend.Min, l.legend.Max, IM_COL32(24, 24, 30, 225), 3);
    dl->AddRect(l.legend.Min, l.legend.Max, IM_COL32(255, 255, 255, 50), 3);
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text), dim = ImGui::GetColorU32(ImGuiCol_TextDisabled);
    for (size_t i = 0; i < l.labels.size(); i++) {
        const ImRect& e = l.entry[i];
        bool hidden = is_hidden(l.labels[i]);
        if (hovered && e.Contains(m)) dl->AddRectFilled(e.Min, e.Max, IM_COL32(255, 255, 255, 25), 2);
        float cy = e.GetCenter().y, x0 = e.Min.x + 6;
        ImU32 c = hidden ? color_alpha(l.colors[i], 0.35f) : l.colors[i];
        dl->AddLine(ImVec2(x0, cy), ImVec2(x0 + 18, cy), c, 2);
        if (hidden) dl->AddCircle(ImVec2(x0 + 9, cy), 3, c);
        else dl->AddCircleFilled(ImVec2(x0 + 9, cy), 3, c);
        dl->AddText(ImVec2(x0 + 24, e.Min.y + 1), hidden ? dim : text, l.labels[i].c_str());
    }
}

static void tooltip_draw(ImDrawList* dl, const PlotView& v, const Layout& l, const Hover& h) {
    const PlotSeries& s = g_plot.series[static_cast<size_t>(h.series)];
    size_t i = static_cast<size_t>(h.index);
    ImVec2 p = to_screen(l, v, s.xs[i], s.ys[i]);
    if (s.kind != SERIES_BARS) {
        dl->AddCircle(p, std::max(s.style.marker, 3.0f) + 3, IM_COL32(255, 255, 255, 200), 0, 1.5f);
    }
    ImGui::BeginTooltip();
    ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(s.color), "%s", s.label.c_str());
    ImGui::Text("%s: %s", g_plot.x_label.empty() ? "x" : g_plot.x_label.c_str(), value_label(s.xs[i]).c_str());
    ImGui::Text("%s: %s", g_plot.y_label.empty() ? "y" : g_plot.y_label.c_str(), value_label(s.ys[i]).c_str());
    if (i < s.tips.size() && !s.tips[i].empty()) {
        ImGui::Separator();
        ImGui::TextUnformatted(s.tips[i].c_str());
    }
    ImGui::EndTooltip();
}

// ---------------------------------------------------------------------------
// export

static std::string export_path(const char* ext) {
    return (std::filesystem::path(plot_export_dir) / (g_plot.file + ext)).string();
}

static bool export_dir_make() {
    std::error_code ec;
    std::filesystem::create_directories(plot_export_dir, ec);
    if (ec) plot_export_status = "cannot create " + plot_export_dir + ": " + ec.message();
    return !ec;
}

static void export_csv() {
    if (!export_dir_make()) return;
    std::string path = export_path(".csv");
    std::ofstream f(path);
    if (!f) {
        plot_export_status = "cannot write " + path;
        return;
    }
    // one column pair named after the axes, so the file reads on its own
    f << "label," << csv_field(g_plot.x_label.empty() ? "x" : g_plot.x_label) << ','
      << csv_field(g_plot.y_label.empty() ? "y" : g_plot.y_label) << ",tip\n";
    char num[32];
    auto number = [&](double v) -> const char* {
        if (!std::isfinite(v)) return "";
        std::snprintf(num, sizeof num, "%.10g", v);
        return num;
    };
    for (const PlotSeries& s : g_plot.series) {
        if (s.kind == SERIES_LABELS) continue;
        for (size_t i = 0; i < s.xs.size(); i++) {
            f << csv_field(s.label) << ',' << number(s.xs[i]) << ',';
            std::string tip = i < s.tips.size() ? s.tips[i] : "";
            std::replace(tip.begin(), tip.end(), '\n', ' ');  // one row per line, for grep and spreadsheets
            f << number(s.ys[i]) << ',' << csv_field(tip) << '\n';
        }
    }
    for (const PlotRef& r : g_plot.refs) {
        f << csv_field(r.label) << ',';
        if (r.vertical) f << number(r.value) << ",,vertical line\n";
        else f << ',' << number(r.value) << ",horizontal line\n";
    }
    f.close();
    plot_export_status = f ? "wrote " + path : "cannot write " + path;
}

static void export_png(const Layout& l) {
    if (!export_dir_make()) return;
    const ImVec2 s = ImGui::GetIO().DisplayFramebufferScale;
    PngRequest r;
    r.path = export_path(".png");
    r.x0 = static_cast<int>(std::floor(l.frame.Min.x * s.x));
    r.y0 = static_cast<int>(std::floor(l.frame.Min.y * s.y));
    r.x1 = static_cast<int>(std::ceil(l.frame.Max.x * s.x));
    r.y1 = static_cast<int>(std::ceil(l.frame.Max.y * s.y));
    g_plot.png_requests.push_back(r);
    plot_export_status = "writing " + r.path;
}

std::vector<PngRequest> plot_take_png_requests() {
    std::vector<PngRequest> out;
    out.swap(g_plot.png_requests);
    return out;
}

// ---------------------------------------------------------------------------

void plot_end() {
    IM_ASSERT(g_plot.open && "plot_end without plot_begin");
    PlotView& v = *g_plot.view;
    if (!v.fitted) view_fit(v);
    Layout l = layout_compute(v);
    mouse_handle(v, l);
    const bool hovered = ImGui::IsItemHovered();
    if (!v.fitted) view_fit(v);
    l = layout_compute(v);

    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 m = ImGui::GetIO().MousePos;
    dl->AddRectFilled(l.area.Min, l.area.Max, IM_COL32(16, 16, 20, 255));
    dl->PushClipRect(l.area.Min, l.area.Max, true);
    for (const Tick& t : l.xt) {
        float x = to_screen(l, v, t.value, v.y.lo).x;
        dl->AddLine(ImVec2(x, l.area.Min.y), ImVec2(x, l.area.Max.y), t.major ? PLOT_GRID_COLOR : color_alpha(PLOT_GRID_COLOR, 0.5f));
    }
    for (const Tick& t : l.yt) {
        float y = to_screen(l, v, v.x.lo, t.value).y;
        dl->AddLine(ImVec2(l.area.Min.x, y), ImVec2(l.area.Max.x, y), t.major ? PLOT_GRID_COLOR : color_alpha(PLOT_GRID_COLOR, 0.5f));
    }
    refs_draw(dl, v, l);
    series_draw(dl, v, l);
    texts_draw(dl, v, l);
    Hover h = hovered ? hover_find(v, l, m) : Hover{};
    if (h.series >= 0) tooltip_draw(dl, v, l, h);
    dl->PopClipRect();
    dl->AddRect(l.area.Min, l.area.Max, IM_COL32(255, 255, 255, 70));
    legend_draw(dl, l, m, hovered);
    axes_draw(dl, v, l);

    // export buttons under the frame
    ImGui::SetCursorScreenPos(ImVec2(l.frame.Min.x, l.frame.Max.y + 2));
    if (ImGui::SmallButton("PNG")) export_png(l);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("write %s after this frame", export_path(".png").c_str());
    ImGui::SameLine();
    if (ImGui::SmallButton("CSV")) export_csv();
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("write %s", export_path(".csv").c_str());
    ImGui::SameLine();
    ImGui::TextDisabled("(?)");
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip("wheel: zoom about the cursor (over an axis' labels: that axis only)\n"
                          "drag: pan\ndouble-click: fit the data\nclick a legend entry: hide or show it");
    // the group spans exactly the requested size
    ImGui::SetCursorScreenPos(g_plot.pos);
    ImGui::Dummy(g_plot.size);
    ImGui::PopID();
    ImGui::EndGroup();
    g_plot.open = false;
}

}  // namespace sp
