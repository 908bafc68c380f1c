// report_plot.cpp: the sweep's charts and their layout (report_plot.h). The
// SVG and PNG writers are report_svg.cpp and report_png.cpp.
//
// [SECTION] charts   a sweep's frontier, latency and acceptance as PlotCharts
// [SECTION] layout   a chart into primitives: area, grid, ticks, series, lines, legend
#include "simulator/report_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "simulator/report.h"
#include "traces/trace_stats.h"

namespace sp {

// [SECTION] charts ---------------------------------------------------------------

static std::string number(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

static bool measured(const PointResult& p) { return p.n_requests > 0; }

// One y per load of policy pi, NaN where the point measured nothing.
template <typename F>
static std::vector<double> along(const SweepResult& r, size_t pi, F metric) {
    const size_t nl = r.loads.size();
    std::vector<double> out(nl);
    for (size_t i = 0; i < nl; i++) {
        const PointResult& p = r.points[pi * nl + i];
        out[i] = measured(p) ? metric(p) : NAN;
    }
    return out;
}

PlotChart plot_frontier(const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r) {
    PlotChart c;
    c.title = "Throughput per GPU against per-user speed";
    c.x_label = "per-user speed (tok/s/user): p90 solid, mean dashed";
    c.y_label = "output tok/s per GPU";
    for (size_t pi = 0; pi < policies.size() && (pi + 1) * r.loads.size() <= r.points.size(); pi++) {
        const Rgba color = plot_palette(static_cast<int>(pi));
        const std::vector<double> y = along(r, pi, [](const PointResult& p) { return p.throughput; });
        // the legend names the policy once, by its p90 curve
        c.series.push_back({policies[pi].name + " mean", along(r, pi, [](const PointResult& p) { return p.per_user.mean; }),
                            y, color, 1.5, true, 2, false, false});
        c.series.push_back({policies[pi].name, along(r, pi, [](const PointResult& p) { return p.per_user.p90; }), y,
                            color});
    }
    for (size_t pi = 0; pi < r.capacity.size() && pi < policies.size(); pi++) {
        const Capacity& cap = r.capacity[pi];
        if (!cap.met || !(cap.per_user_p90 > 0)) continue;
        c.series.push_back({policies[pi].name + " capacity", {cap.per_user_p90}, {cap.throughput},
                            plot_palette(static_cast<int>(pi)), 0, false, 7, true, false});
    }
    if (sc.slo.per_user_tok_s > 0)
        c.refs.push_back({true, sc.slo.per_user_tok_s, "SLA: p90 >= " + value_label(sc.slo.per_user_tok_s) + " tok/s/user"});
    c.legend_extra.push_back({"p90", {}, {}, PLOT_NEUTRAL, 2, false, 0});
    c.legend_extra.push_back({"mean", {}, {}, PLOT_NEUTRAL, 1.5, true, 0});
    c.legend_extra.push_back({"capacity at SLO", {}, {}, PLOT_NEUTRAL, 0, false, 7, true});
    return c;
}

std::vector<PlotChart> plot_latency(const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r) {
    const std::string load = sc.workload.mode == WORKLOAD_OPEN ? "arrival rate (req/s)" : "concurrent users";
    PlotChart ttft, tpot;
    ttft.title = "Time to first token, p90";
    tpot.title = "Time per output token, p90";
    ttft.x_label = tpot.x_label = load;
    ttft.y_label = "TTFT p90 (ms)";
    tpot.y_label = "TPOT p90 (ms)";
    ttft.legend = tpot.legend = PLOT_TOP_LEFT;  // latencies climb to the right
    for (size_t pi = 0; pi < policies.size() && (pi + 1) * r.loads.size() <= r.points.size(); pi++) {
        const Rgba color = plot_palette(static_cast<int>(pi));
        ttft.series.push_back({policies[pi].name, r.loads, along(r, pi, [](const PointResult& p) { return p.ttft.p90 * 1e3; }), color});
        tpot.series.push_back({policies[pi].name, r.loads, along(r, pi, [](const PointResult& p) { return p.tpot.p90 * 1e3; }), color});
    }
    if (sc.slo.ttft_s > 0) ttft.refs.push_back({false, sc.slo.ttft_s * 1e3, "TTFT SLO " + value_label(sc.slo.ttft_s * 1e3) + " ms"});
    if (sc.slo.tpot_s > 0) tpot.refs.push_back({false, sc.slo.tpot_s * 1e3, "TPOT SLO " + value_label(sc.slo.tpot_s * 1e3) + " ms"});
    // per-user speed p90 is about 1 / TPOT p90 (MLCommons): the speed SLA as a TPOT bound, as the dashboard draws it
    if (sc.slo.per_user_tok_s > 0)
        tpot.refs.push_back({false, 1e3 / sc.slo.per_user_tok_s, "1 / SLA = " + number("%.1f", 1e3 / sc.slo.per_user_tok_s) + " ms"});
    return {ttft, tpot};
}

std::vector<AlphaCurve> plot_alpha_curves(const Scenario& sc, const AcceptanceData& acc) {
    const size_t G = static_cast<size_t>(acc.gamma);
    auto cut = [G](std::vector<double> v) {
        v.resize(G, NAN);
        return v;
    };
    std::vector<AlphaCurve> out;
    if (acc.kind == ACCEPT_TRACE) {
        TraceDb db = trace_db_open(sc.acceptance.trace_path, TRACE_READ);
        for (const AcceptanceStats& st : trace_acceptance_stats(db, sc.acceptance.run_id))
            out.push_back({st.domain, cut(st.alpha)});
        return out;
    }
    for (size_t d = 0; d < acc.domains.size() && d < acc.alpha.size(); d++) out.push_back({acc.domains[d], cut(acc.alpha[d])});
    return out;
}

PlotChart plot_acceptance(const std::vector<AlphaCurve>& curves) {
    PlotChart c;
    c.title = "Conditional acceptance per draft slot";
    c.x_label = "draft slot k";
    c.y_label = "α_k = P(k accepted | 1..k-1 accepted)";
    c.x_from_zero = false;
    c.x_whole = true;
    c.y_top = 1;
    c.legend = PLOT_BOTTOM_LEFT;  // acceptance sits high and falls to the right
    for (size_t i = 0; i < curves.size(); i++) {
        std::vector<double> k;
        for (size_t j = 1; j <= curves[i].alpha.size(); j++) k.push_back(static_cast<double>(j));
        c.series.push_back({curves[i].domain, k, curves[i].alpha, plot_palette(static_cast<int>(i))});
    }
    return c;
}

// [SECTION] layout ---------------------------------------------------------------

static double axis_step(const Axis& a, bool whole) {
    const double step = tick_step(a.hi - a.lo, PLOT_TICKS);
    return whole ? std::max(step, 1.0) : step;
}

Axis plot_axis(double lo, double hi, bool from_zero, bool whole) {
    if (from_zero) {
        lo = std::min(lo, 0.0);
        hi = std::max(hi, 0.0);
    }
    if (!(std::isfinite(lo) && std::isfinite(hi))) lo = 0, hi = 1;  // nothing to show
    if (hi <= lo) {  // one value: a unit either side of it
        const double w = std::max(std::fabs(lo) * 0.1, 1.0);
        lo -= w;
        hi += w;
    }
    Axis a{lo, hi, false};
    const double step = axis_step(a, whole);
    a.lo = std::floor(lo / step + 1e-9) * step;
    a.hi = std::ceil(hi / step - 1e-9) * step;
    return a;
}

static double text_width(const std::string& s, double size) {
    size_t chars = 0;
    for (unsigned char ch : s) chars += (ch & 0xC0) != 0x80;  // UTF-8: count the first byte of each character
    return PLOT_CHAR_EM * size * static_cast<double>(chars);
}

static DrawItem text(double x, double y, const std::string& s, double size, int anchor, Rgba color,
                     const std::string& role) {
    DrawItem t;
    t.kind = DRAW_TEXT;
    t.xy = {x, y};
    t.text = s;
    t.size = size;
    t.anchor = anchor;
    t.fill = color;
    t.series = role;
    return t;
}

static DrawItem polyline(std::vector<double> xy, Rgba color, double width, bool dashed, const std::string& role) {
    DrawItem l;
    l.kind = DRAW_POLYLINE;
    l.xy = std::move(xy);
    l.stroke = color;
    l.width = width;
    l.dashed = dashed;
    l.series = role;
    return l;
}

static DrawItem marker(double x, double y, const PlotSeries& s, const std::string& role) {
    DrawItem m;
    m.kind = DRAW_CIRCLE;
    m.xy = {x, y, s.marker};
    if (s.hollow) {
        m.stroke = s.color;
        m.width = 1.5;
    } else {
        m.fill = s.color;
    }
    m.series = role;
    return m;
}

static void draw_legend_sample(Drawing& d, const PlotSeries& s, double x, double y) {
    if (s.line > 0) d.items.push_back(polyline({x, y, x + 20, y}, s.color, s.line, s.dashed, "legend"));
    if (s.marker > 0) d.items.push_back(marker(x + 10, y, s, "legend"));
}

static void draw_panel(Drawing& d, const PlotChart& c, double x0, double y0) {
    const double ax0 = x0 + PLOT_MARGIN_LEFT, ax1 = x0 + PLOT_WIDTH - PLOT_MARGIN_RIGHT;
    const double ay0 = y0 + PLOT_MARGIN_TOP, ay1 = y0 + PLOT_HEIGHT - PLOT_MARGIN_BOTTOM;
    // the axes hold every finite point and every reference line
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (const PlotSeries& s : c.series)
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); i++)
            if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
                xlo = std::min(xlo, s.x[i]);
                xhi = std::max(xhi, s.x[i]);
                ylo = std::min(ylo, s.y[i]);
                yhi = std::max(yhi, s.y[i]);
            }
    for (const PlotRef& r : c.refs) {
        double& lo = r.vertical ? xlo : ylo;
        double& hi = r.vertical ? xhi : yhi;
        lo = std::min(lo, r.value);
        hi = std::max(hi, r.value);
    }
    if (c.y_top > 0) yhi = std::max(yhi, c.y_top);
    const Axis ax = plot_axis(xlo, xhi, c.x_from_zero, c.x_whole), ay = plot_axis(ylo, yhi, c.y_from_zero, false);
    auto px = [&](double v) { return ax0 + axis_to_unit(ax, v) * (ax1 - ax0); };
    auto py = [&](double v) { return ay1 - axis_to_unit(ay, v) * (ay1 - ay0); };

    DrawItem area;
    area.kind = DRAW_RECT;
    area.xy = {ax0, ay0, ax1, ay1};
    area.fill = PLOT_AREA;
    area.series = "area";
    d.items.push_back(area);
    // grid and tick labels at every step
    const double font = 12;
    const Rgba dim = {170, 170, 170, 255};
    for (int pass = 0; pass < 2; pass++) {
        const Axis& a = pass ? ay : ax;
        const double step = axis_step(a, !pass && c.x_whole);
        const long n = std::lround((a.hi - a.lo) / step);
        for (long k = 0; k <= n; k++) {
            const double v = a.lo + static_cast<double>(k) * step;
            const double at = pass ? py(v) : px(v);
            if (pass) {
                d.items.push_back(polyline({ax0, at, ax1, at}, PLOT_GRID, 1, false, "grid"));
                d.items.push_back(text(ax0 - 6, at + font * 0.35, tick_label(std::fabs(v) < step * 1e-9 ? 0 : v), font, 1, dim, "tick"));
            } else {
                d.items.push_back(polyline({at, ay0, at, ay1}, PLOT_GRID, 1, false, "grid"));
                d.items.push_back(text(at, ay1 + font + 4, tick_label(std::fabs(v) < step * 1e-9 ? 0 : v), font, 0, dim, "tick"));
            }
        }
    }
    DrawItem frame = area;
    frame.fill = {0, 0, 0, 0};
    frame.stroke = PLOT_FRAME;
    frame.series = "frame";
    // titles: the chart's above the area, x below the tick labels, y turned along the left edge
    d.items.push_back(text((ax0 + ax1) / 2, y0 + 22, c.title, 15, 0, PLOT_TEXT, "title"));
    d.items.push_back(text((ax0 + ax1) / 2, ay1 + 2 * font + 14, c.x_label, 13, 0, PLOT_TEXT, "x-label"));
    DrawItem yl = text(x0 + 18, (ay0 + ay1) / 2, c.y_label, 13, 0, PLOT_TEXT, "y-label");
    yl.vertical = true;
    d.items.push_back(yl);

    // reference lines under the data, labelled at their far end
    for (const PlotRef& r : c.refs) {
        if (r.vertical) {
            const double x = px(r.value);
            d.items.push_back(polyline({x, ay0, x, ay1}, r.color, 1.5, false, "slo"));
            const bool left = x < (ax0 + ax1) / 2;  // the label goes into the wider side
            d.items.push_back(text(left ? x + 4 : x - 4, ay0 + 14, r.label, font, left ? -1 : 1, r.color, "slo"));
        } else {
            const double y = py(r.value);
            d.items.push_back(polyline({ax0, y, ax1, y}, r.color, 1.5, false, "slo"));
            d.items.push_back(text(ax1 - 4, y - 4, r.label, font, 1, r.color, "slo"));
        }
    }
    // series: a polyline per run of finite points, then the markers
    for (const PlotSeries& s : c.series) {
        const std::string& role = s.label;
        std::vector<double> run;
        auto flush = [&] {
            if (s.line > 0 && run.size() >= 4) d.items.push_back(polyline(run, s.color, s.line, s.dashed, role));
            run.clear();
        };
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); i++) {
            if (!(std::isfinite(s.x[i]) && std::isfinite(s.y[i]))) {
                flush();
                continue;
            }
            run.push_back(px(s.x[i]));
            run.push_back(py(s.y[i]));
        }
        flush();
        if (s.marker > 0)
            for (size_t i = 0; i < s.x.size() && i < s.y.size(); i++)
                if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) d.items.push_back(marker(px(s.x[i]), py(s.y[i]), s, role));
    }
    d.items.push_back(frame);

    // the legend: the named series, then the chart's extra entries
    std::vector<const PlotSeries*> entries;
    for (const PlotSeries& s : c.series)
        if (s.legend) entries.push_back(&s);
    for (const PlotSeries& s : c.legend_extra) entries.push_back(&s);
    if (entries.empty()) return;
    double wmax = 0;
    for (const PlotSeries* s : entries) wmax = std::max(wmax, text_width(s->label, font));
    const double row = 18, pad = 6, w = 20 + 8 + wmax + 2 * pad, h = row * static_cast<double>(entries.size()) + 2 * pad;
    const bool right = c.legend == PLOT_TOP_RIGHT || c.legend == PLOT_BOTTOM_RIGHT;
    const bool top = c.legend == PLOT_TOP_RIGHT || c.legend == PLOT_TOP_LEFT;
    const double lx = right ? ax1 - 8 - w : ax0 + 8, ly = top ? ay0 + 8 : ay1 - 8 - h;
    DrawItem box;
    box.kind = DRAW_RECT;
    box.xy = {lx, ly, lx + w, ly + h};
    box.fill = {24, 24, 30, 225};
    box.stroke = {255, 255, 255, 50};
    box.series = "legend";
    d.items.push_back(box);
    for (size_t i = 0; i < entries.size(); i++) {
        const double y = ly + pad + row * (static_cast<double>(i) + 0.5);
        draw_legend_sample(d, *entries[i], lx + pad, y);
        d.items.push_back(text(lx + pad + 28, y + font * 0.35, entries[i]->label, font, -1, PLOT_TEXT, "legend"));
    }
}

Drawing plot_draw(const std::vector<PlotChart>& panels) {
    Drawing d;
    d.width = PLOT_WIDTH * static_cast<int>(std::max<size_t>(1, panels.size()));
    d.height = PLOT_HEIGHT;
    DrawItem bg;
    bg.kind = DRAW_RECT;
    bg.xy = {0, 0, static_cast<double>(d.width), static_cast<double>(d.height)};
    bg.fill = PLOT_BACKGROUND;
    bg.series = "background";
    d.items.push_back(bg);
    for (size_t i = 0; i < panels.size(); i++) draw_panel(d, panels[i], static_cast<double>(i) * PLOT_WIDTH, 0);
    return d;
}

}  // namespace sp
