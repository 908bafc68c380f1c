// panel_fidelity.cpp: the simulator against a live run (issue 12). The sweep
// on screen is compared with a `specplan live --json` report point by point,
// by the code behind `specplan compare` (gui/fidelity.h): error = sim / live
// - 1 per metric, red past issue 12's bounds, then MAPE, the worst error and
// the misses per metric. The Frontier panel overlays the live points.
#include <imgui.h>

#include <cmath>
#include <cstdio>

#include "gui/app.h"
#include "gui/readout.h"

namespace sp {

static void error_cell(double err, double bound, double live, double sim) {
    ImGui::TableNextColumn();
    if (!std::isfinite(err)) {
        ImGui::TextDisabled("-");
        return;
    }
    const bool miss = bound > 0 && std::fabs(err) > bound;
    if (miss) ImGui::TextColored(ImVec4(1.0f, 0.45f, 0.4f, 1.0f), "%+.1f%%", err * 100);
    else ImGui::Text("%+.1f%%", err * 100);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("live %.4g, simulated %.4g%s", live, sim, miss ? " (past the bound)" : "");
}

void panel_fidelity(AppState& app) {
    if (!app.live) {
        ImGui::TextWrapped("No live run loaded. File > Open live results..., or specplan-gui --live FILE: the JSON "
                           "that `specplan live --json` writes. Its points are compared with the sweep on screen, "
                           "point by point, and shown on the Frontier as hollow markers.");
        if (!app.live_error.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", app.live_error.c_str());
        return;
    }
    const LiveRun& live = *app.live;
    ImGui::Text("live: %s%s%s", live.path.c_str(), live.device.empty() ? "" : ", ", live.device.c_str());
    if (!app.sweep) {
        ImGui::TextDisabled("no sweep yet");
        return;
    }
    app_fidelity_update(app);
    if (!app.fidelity_error.empty()) {
        ImGui::TextWrapped("%s", app.fidelity_error.c_str());
        return;
    }
    const Comparison& c = app.fidelity;
    const CompareBounds bounds = compare_default_bounds();
    ImGui::TextDisabled("error = simulated / live - 1 (positive: the simulator is optimistic about a speed, "
                        "pessimistic about a latency); red: past issue 12's bounds (throughput and mean per-user "
                        "speed 3 %%, TPOT p90 8 %%, TTFT p90 10 %%)");
    if (!c.unmatched.empty()) {
        std::string u;
        for (size_t i = 0; i < c.unmatched.size() && i < 6; i++) u += (i ? ", " : "") + c.unmatched[i];
        ImGui::TextDisabled("without a partner: %s%s", u.c_str(), c.unmatched.size() > 6 ? ", ..." : "");
    }
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit |
                                  ImGuiTableFlags_ScrollY;
    if (!ImGui::BeginTable("fidelity", 2 + kCompareMetrics, flags, ImVec2(0, 0))) return;
    ImGui::TableSetupScrollFreeze(0, 1);
    ImGui::TableSetupColumn("policy");
    ImGui::TableSetupColumn(c.load_kind == "rate" ? "req/s" : "users");
    for (int m = 0; m < kCompareMetrics; m++) ImGui::TableSetupColumn(compare_metric_label(CompareMetric(m)));
    ImGui::TableHeadersRow();
    const Scenario& sc = app.sweep->scenario;
    for (const ComparePoint& p : c.points) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        int color = 0;
        for (size_t i = 0; i < sc.policies.size(); i++)
            if (sc.policies[i].name == p.policy) color = static_cast<int>(i);
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(plot_color(color)), "%s", p.policy.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%s", value_label(p.load).c_str());
        for (int m = 0; m < kCompareMetrics; m++) error_cell(p.error[m], bounds.max_abs[m], p.live[m], p.sim[m]);
    }
    auto summary = [&](const char* name, const double* v, bool percent) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(name);
        ImGui::TableNextColumn();
        for (int m = 0; m < kCompareMetrics; m++) {
            ImGui::TableNextColumn();
            if (!std::isfinite(v[m])) ImGui::TextDisabled("-");
            else if (percent) ImGui::Text("%.1f%%", v[m] * 100);
            else ImGui::Text("%.0f", v[m]);
        }
    };
    summary("MAPE", c.mape, true);
    summary("worst |error|", c.worst, true);
    double misses[kCompareMetrics];
    for (int m = 0; m < kCompareMetrics; m++) misses[m] = bounds.max_abs[m] > 0 ? double(c.misses[m]) : NAN;
    summary("misses", misses, false);
    ImGui::EndTable();
}

}  // namespace sp
