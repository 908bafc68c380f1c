// panel_latency.cpp: what a user waits for, against load. TTFT p90 and TPOT
// p90 per policy with their SLO lines, and goodput (requests within the
// per-user speed and TTFT SLOs that are set, readout.h) as a rate and as a
// share of requests: the latency side of the
// frontier, where queueing shows up as a knee.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/app.h"
#include "gui/readout.h"

namespace sp {

// One curve per policy of `metric` against load.
static void latency_curves(const SweepOutput& s, double (*metric)(const PointResult&),
                           std::string (*tip)(const Scenario&, double load, const PointResult&)) {
    const SweepResult& r = s.result;
    const size_t nl = r.loads.size();
    std::vector<double> ys(nl);
    std::vector<std::string> tips(nl);
    for (size_t p = 0; p < s.scenario.policies.size(); p++) {
        for (size_t i = 0; i < nl; i++) {
            const PointResult& pt = r.points[p * nl + i];
            ys[i] = pt.n_requests > 0 ? metric(pt) : NAN;
            tips[i] = tip(s.scenario, r.loads[i], pt);
        }
        plot_line(s.scenario.policies[p].name.c_str(), r.loads.data(), ys.data(), static_cast<int>(nl),
                  plot_color(static_cast<int>(p)), tips.data());
    }
}

static double ttft_ms(const PointResult& p) { return p.ttft.p90 * 1e3; }
static double tpot_ms(const PointResult& p) { return p.tpot.p90 * 1e3; }
static double goodput_rate(const PointResult& p) { return p.goodput_rate; }
static double goodput_pct(const PointResult& p) { return p.goodput_fraction * 100; }

static std::string ttft_tip(const Scenario& sc, double load, const PointResult& p) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s: TTFT p50 %.0f ms, p90 %.0f ms, p99 %.0f ms",
                  load_text(sc, load).c_str(), p.ttft.p50 * 1e3, p.ttft.p90 * 1e3, p.ttft.p99 * 1e3);
    return buf;
}
static std::string tpot_tip(const Scenario& sc, double load, const PointResult& p) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s: TPOT p50 %.1f ms, p90 %.1f ms, p99 %.1f ms\nper-user p90 %.1f tok/s, %s %.2f %s",
                  load_text(sc, load).c_str(), p.tpot.p50 * 1e3, p.tpot.p90 * 1e3, p.tpot.p99 * 1e3,
                  p.per_user.p90, TAU_REQUEST, p.tau, TAU_REQUEST_WORDS);
    return buf;
}
static std::string goodput_tip(const Scenario& sc, double load, const PointResult& p) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s: %.2f of %.2f req/s count as goodput (%.0f%%)",
                  load_text(sc, load).c_str(), p.goodput_rate, p.request_rate, p.goodput_fraction * 100);
    return buf;
}

void panel_latency(AppState& app) {
    if (!app.sweep) {
        ImGui::TextDisabled("no results yet");
        const int total = app.progress.total, done = app.progress.done;
        if (total > 0)
            ImGui::ProgressBar(static_cast<float>(done) / static_cast<float>(total), ImVec2(300, 0));
        return;
    }
    const SweepOutput& s = *app.sweep;
    const Scenario& sc = s.scenario;
    const bool open = sc.workload.mode == WORKLOAD_OPEN;
    const char* x_label = open ? "arrival rate (req/s)" : "concurrent users";

    bool log_load = app.ttft.x_log;
    if (ImGui::Checkbox("log load axis", &log_load)) {
        for (PlotView* v : {&app.ttft, &app.tpot, &app.goodput, &app.goodput_share}) {
            v->x_log = log_load;
            v->fitted = false;
        }
    }
    ImGui::SameLine();
    if (ImGui::Checkbox("log TTFT axis", &app.ttft.y_log)) app.ttft.fitted = false;
    ImGui::SameLine();
    ImGui::TextDisabled("   %s", latency_slo_line(sc.slo).c_str());

    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float gap = ImGui::GetStyle().ItemSpacing.x;
    const ImVec2 cell((avail.x - gap) / 2, std::max((avail.y - ImGui::GetStyle().ItemSpacing.y) / 2, 240.0f));
    char buf[96];

    if (plot_begin("Time to first token, p90##ttft", app.ttft, cell, x_label, "TTFT p90 (ms)")) {
        latency_curves(s, ttft_ms, ttft_tip);
        if (sc.slo.ttft_s > 0) {
            std::snprintf(buf, sizeof buf, "TTFT SLO %s ms", value_label(sc.slo.ttft_s * 1e3).c_str());
            plot_hline(sc.slo.ttft_s * 1e3, buf, PLOT_SLO_COLOR);
        }
        plot_end();
    }
    ImGui::SameLine();
    if (plot_begin("Time per output token, p90##tpot", app.tpot, cell, x_label, "TPOT p90 (ms)")) {
        latency_curves(s, tpot_ms, tpot_tip);
        if (sc.slo.per_user_tok_s > 0) {
            // per-user speed p90 is about 1 / TPOT p90 (MLCommons), so the speed SLA reads as a TPOT bound
            std::snprintf(buf, sizeof buf, "1 / SLA = %.1f ms", 1e3 / sc.slo.per_user_tok_s);
            plot_hline(1e3 / sc.slo.per_user_tok_s, buf, PLOT_SLO_COLOR);
        }
        plot_end();
    }
    if (plot_begin("Goodput: requests within the SLOs##goodput", app.goodput, cell, x_label,
                   "goodput (req/s per replica)")) {
        latency_curves(s, goodput_rate, goodput_tip);
        plot_end();
    }
    ImGui::SameLine();
    if (plot_begin("Share of requests within the SLOs##goodput_share", app.goodput_share, cell, x_label,
                   "goodput share (%)")) {
        latency_curves(s, goodput_pct, goodput_tip);
        plot_end();
    }
}

}  // namespace sp
