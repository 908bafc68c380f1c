// panel_plan.cpp: "Plan", the capacity planner's question asked
// interactively: how many GPUs does each policy need for N users at these
// SLOs, and what does that cost? The answer is simulator/plan.h's
// plan_fleets, the same as `specplan plan`, run on the plan worker 0.3 s
// after the last edit (and whenever a new sweep lands), so the window keeps
// drawing meanwhile. Per policy: one replica's capacity (the most users
// meeting every SLO, by bisection) and what bound it, the replicas and GPUs
// (replicas x tp), the point each replica then runs (tok/s/GPU, per-user
// p50/p90, TTFT p90) and, with a price, $/hour and $ per million tokens.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/app.h"
#include "gui/readout.h"

namespace sp {

static constexpr double PLAN_DEBOUNCE_S = 0.3;

// The scenario's SLOs and price, until the user edits them here.
static void plan_sync_inputs(AppState& app) {
    const SweepOutput& s = *app.sweep;
    if (app.plan_inputs_generation == s.generation) return;
    app.plan_inputs_generation = s.generation;
    if (app.plan_custom) return;
    app.plan_inputs.slo = s.scenario.slo;
    app.plan_inputs.gpu_hour_usd = s.scenario.gpu_hour_usd;
}

// One float field bound to a double; true when edited.
static bool input_double(const char* label, double* v, double scale, const char* fmt, float width, const char* tip) {
    float f = static_cast<float>(*v * scale);
    ImGui::SetNextItemWidth(width);
    const bool changed = ImGui::InputFloat(label, &f, 0, 0, fmt);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", tip);
    if (changed) *v = std::max(0.0, static_cast<double>(f)) / scale;
    return changed;
}

static bool plan_inputs_row(AppState& app) {
    PlanInputs& in = app.plan_inputs;
    bool edited = false;
    ImGui::AlignTextToFramePadding();
    ImGui::TextUnformatted("users");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(90);
    if (ImGui::InputInt("##plan_users", &in.users, 0)) {
        in.users = std::clamp(in.users, 1, 10000000);
        edited = true;
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("concurrent users the fleet must serve (closed loop)");
    ImGui::SameLine(0, 18);
    char label[64];
    std::snprintf(label, sizeof label, "per-user p%d >= (tok/s)", in.slo.percentile);
    bool slo_edit = false;
    slo_edit |= input_double("##plan_speed", &in.slo.per_user_tok_s, 1, "%g", 60,
                             "per-user speed SLO: the speed met by this percentile of requests; 0 = not set");
    ImGui::SameLine(0, 4);
    ImGui::TextUnformatted(label);
    ImGui::SameLine(0, 18);
    slo_edit |= input_double("##plan_ttft", &in.slo.ttft_s, 1e3, "%g", 60, "TTFT SLO at the percentile, ms; 0 = not set");
    ImGui::SameLine(0, 4);
    ImGui::Text("TTFT p%d <= (ms)", in.slo.percentile);
    ImGui::SameLine(0, 18);
    slo_edit |= input_double("##plan_tpot", &in.slo.tpot_s, 1e3, "%g", 60, "TPOT SLO at the percentile, ms; 0 = not set");
    ImGui::SameLine(0, 4);
    ImGui::Text("TPOT p%d <= (ms)", in.slo.percentile);
    ImGui::SameLine(0, 18);
    ImGui::SetNextItemWidth(60);
    char pct[8];
    std::snprintf(pct, sizeof pct, "p%d", in.slo.percentile);
    if (ImGui::BeginCombo("percentile", pct)) {
        for (int p : {50, 90, 99}) {
            std::snprintf(pct, sizeof pct, "p%d", p);
            if (ImGui::Selectable(pct, p == in.slo.percentile)) {
                in.slo.percentile = p;
                slo_edit = true;
            }
        }
        ImGui::EndCombo();
    }
    ImGui::SameLine(0, 18);
    slo_edit |= input_double("##plan_usd", &in.gpu_hour_usd, 1, "%g", 60, "price of one GPU-hour, $; 0 = no price");
    ImGui::SameLine(0, 4);
    ImGui::TextUnformatted("$/GPU-hour");
    if (slo_edit) app.plan_custom = true;
    if (app.plan_custom) {
        ImGui::SameLine(0, 18);
        if (ImGui::SmallButton("scenario's SLOs")) {
            app.plan_custom = false;
            in.slo = app.sweep->scenario.slo;
            in.gpu_hour_usd = app.sweep->scenario.gpu_hour_usd;
            slo_edit = true;
        }
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("back to the scenario's SLOs and price");
    }
    return edited || slo_edit;
}

static void cell_text(const char* fmt, double v) {
    ImGui::TableNextColumn();
    if (std::isfinite(v)) ImGui::Text(fmt, v);
    else ImGui::TextDisabled("-");
}

static void plan_table(const SweepOutput& s, const PlanOutput& out, int fewest) {
    const bool priced = out.inputs.gpu_hour_usd > 0;
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit;
    if (!ImGui::BeginTable("plan", 12, flags)) return;
    for (const char* h : {"policy", "users/replica max", "bound by", "replicas", "GPUs", "users/replica", "tok/s/GPU",
                          "per-user p50", "per-user p90", "TTFT p90", "$/hour", "$/M tokens"})
        ImGui::TableSetupColumn(h);
    ImGui::TableHeadersRow();
    for (size_t i = 0; i < out.fleets.size(); i++) {
        const FleetPlan& f = out.fleets[i];
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(plot_color(static_cast<int>(i))), "%s%s", f.policy.c_str(),
                           static_cast<int>(i) == fewest ? "  (fewest GPUs)" : "");
        if (!f.feasible) {
            ImGui::TableNextColumn();
            ImGui::TextDisabled("none");
            ImGui::TableNextColumn();
            ImGui::TextDisabled("misses at 1 user: %s", slo_miss_name(f.capacity.binding));
            continue;
        }
        ImGui::TableNextColumn();
        ImGui::Text("%s%s", f.capacity.bounded ? "" : ">= ", value_label(f.capacity.load).c_str());
        ImGui::TableNextColumn();
        if (f.capacity.bounded) ImGui::TextUnformatted(slo_miss_name(f.capacity.binding));
        else ImGui::TextDisabled("the search's ceiling");
        cell_text("%.0f", f.replicas);
        ImGui::TableNextColumn();
        ImGui::Text("%d", f.gpus);
        if (ImGui::IsItemHovered())
            ImGui::SetTooltip("%d replicas x tp %d", f.replicas, s.scenario.engine.tp);
        cell_text("%.0f", f.users_per_replica);
        ImGui::TableNextColumn();
        ImGui::Text("%s", value_label(f.point.throughput).c_str());
        cell_text("%.1f", f.point.per_user.p50);
        cell_text("%.1f", f.point.per_user.p90);
        ImGui::TableNextColumn();
        ImGui::Text("%.0f ms", f.point.ttft.p90 * 1e3);
        cell_text("%.2f", priced ? f.usd_per_hour : NAN);
        cell_text("%.3f", priced && f.usd_per_million_tokens > 0 ? f.usd_per_million_tokens : NAN);
    }
    ImGui::EndTable();
}

// GPUs per policy as bars, the policy's name over each.
static void plan_bars(AppState& app, const PlanOutput& out, ImVec2 size) {
    char title[96];
    std::snprintf(title, sizeof title, "GPUs for %d users##plan_gpus", out.inputs.users);
    if (!plot_begin(title, app.plan_gpus, size, "policy", "GPUs (replicas x tp)")) return;
    for (size_t i = 0; i < out.fleets.size(); i++) {
        const FleetPlan& f = out.fleets[i];
        if (!f.feasible) continue;
        const double x = static_cast<double>(i), y = f.gpus;
        char tip[160];
        std::snprintf(tip, sizeof tip, "%s: %d GPUs, %d users a replica, %s tok/s/GPU", f.policy.c_str(), f.gpus,
                      f.users_per_replica, value_label(f.point.throughput).c_str());
        const std::string t = tip;
        plot_bars(f.policy.c_str(), &x, &y, 1, 0.7, plot_color(static_cast<int>(i)), &t);
        const std::string name = f.policy + " " + std::to_string(f.gpus);
        plot_labels(f.policy.c_str(), &x, &y, &name, 1, plot_color(static_cast<int>(i)));
    }
    plot_end();
}

void panel_plan(AppState& app) {
    if (!app.sweep) {
        ImGui::TextDisabled("Waiting for the first sweep...");
        return;
    }
    const SweepOutput& s = *app.sweep;
    plan_sync_inputs(app);
    ImGui::TextWrapped("How many GPUs for N users? Per policy: one replica's capacity (the most users meeting every "
                       "SLO, by bisection), the replicas that serve N users within it, and what each replica then "
                       "delivers. %s; tp %d.",
                       s.scenario.name.c_str(), s.scenario.engine.tp);
    if (plan_inputs_row(app)) app.plan_edit_time = ImGui::GetTime();

    Scenario asked = s.scenario;
    asked.slo = app.plan_inputs.slo;
    const std::string refusal = plan_refusal(asked, app.plan_inputs.users);
    if (!refusal.empty()) {
        ImGui::TextColored(ImVec4(1, 0.45f, 0.45f, 1), "%s", refusal.c_str());
        return;
    }
    const bool stale = app.plan_requested != app.plan_inputs || app.plan_requested_generation != s.generation;
    if (stale && ImGui::GetTime() - app.plan_edit_time >= PLAN_DEBOUNCE_S) app_request_plan(app);

    const PlanOutput* out = app.plan.get();
    const bool current = out && out->inputs == app.plan_inputs && out->generation == s.generation;
    if (app.plan_pending || stale) ImGui::TextDisabled("planning...");
    else if (out) ImGui::TextDisabled("planned in %.2f s (%s)", out->wall_s, slo_text(out->inputs.slo).c_str());
    if (!out) return;
    if (!current) ImGui::SameLine(), ImGui::TextDisabled("(showing the previous answer)");
    if (!out->error.empty()) {
        ImGui::TextColored(ImVec4(1, 0.45f, 0.45f, 1), "%s", out->error.c_str());
        return;
    }
    const int fewest = plan_fewest(out->fleets);
    if (fewest >= 0) {
        const FleetPlan& f = out->fleets[static_cast<size_t>(fewest)];
        if (out->inputs.gpu_hour_usd > 0)
            ImGui::Text("Fewest GPUs: %s, %d GPUs for %d users, $%.2f an hour, $%.3f per million tokens", f.policy.c_str(),
                        f.gpus, out->inputs.users, f.usd_per_hour, f.usd_per_million_tokens);
        else
            ImGui::Text("Fewest GPUs: %s, %d GPUs for %d users (set $/GPU-hour for the cost)", f.policy.c_str(), f.gpus,
                        out->inputs.users);
    } else {
        ImGui::TextColored(ImVec4(1, 0.45f, 0.45f, 1), "No policy meets these SLOs even at 1 user a replica.");
    }
    ImGui::Spacing();
    plan_table(s, *out, fewest);
    ImGui::Spacing();
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    plan_bars(app, *out, ImVec2(std::min(avail.x, 900.0f), std::max(avail.y, 220.0f)));
}

}  // namespace sp
