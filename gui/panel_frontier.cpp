// panel_frontier.cpp: the capacity planner's plot. Throughput per GPU
// against per-user speed p90, one curve per policy, one point per load; the
// per-user SLA as a vertical line, each policy's capacity on it; under the
// plot the capacity table and the headline ratios of a chosen pair. A live
// run loaded (File > Open live results, --live) shows as hollow markers.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/app.h"
#include "gui/readout.h"

namespace sp {

static std::string seconds_text(double s) {
    char buf[32];
    if (s < 1) std::snprintf(buf, sizeof buf, "%.0f ms", s * 1e3);
    else std::snprintf(buf, sizeof buf, "%.2f s", s);
    return buf;
}

static std::vector<PointResult> curve_of(const SweepResult& r, size_t p) {
    const size_t nl = r.loads.size();
    return std::vector<PointResult>(r.points.begin() + static_cast<long>(p * nl),
                                    r.points.begin() + static_cast<long>((p + 1) * nl));
}

static int policy_index(const Scenario& sc, const std::string& name) {
    for (size_t i = 0; i < sc.policies.size(); i++)
        if (sc.policies[i].name == name) return static_cast<int>(i);
    return -1;
}

// The pair the headline compares: the user's choice, else the scenario's
// compare pair, else the last policy (usually the newest idea) over the first.
static void compare_pair(const AppState& app, int* a, int* b) {
    const Scenario& sc = app.sweep->scenario;
    const int n = static_cast<int>(sc.policies.size());
    *a = app.compare_a >= 0 && app.compare_a < n ? app.compare_a : policy_index(sc, sc.compare_a);
    *b = app.compare_b >= 0 && app.compare_b < n ? app.compare_b : policy_index(sc, sc.compare_b);
    if (*a < 0) *a = n - 1;
    if (*b < 0) *b = 0;
}

static bool point_measured(const PointResult& p) { return p.n_requests > 0; }

static void frontier_plot(AppState& app, ImVec2 size, bool labels, bool pareto) {
    const SweepOutput& s = *app.sweep;
    const Scenario& sc = s.scenario;
    const SweepResult& r = s.result;
    const size_t nl = r.loads.size(), np = sc.policies.size();
    const double slo = sc.slo.per_user_tok_s;
    if (!plot_begin("Throughput per GPU against per-user speed##frontier", app.frontier, size,
                    "per-user tok/s (p90)", "output tok/s per GPU"))
        return;

    if (pareto && !r.pareto.empty()) {
        std::vector<double> xs, ys;
        for (int i : r.pareto) {
            xs.push_back(r.points[static_cast<size_t>(i)].per_user.p90);
            ys.push_back(r.points[static_cast<size_t>(i)].throughput);
        }
        plot_next_style({9.0f, 0.0f, false});
        plot_line("Pareto frontier", xs.data(), ys.data(), static_cast<int>(xs.size()), IM_COL32(255, 255, 255, 40));
    }
    // each policy's capacity, the largest load meeting every SLO (sweep.h), marked at its own point and
    // labelled with the load the capacity table shows; labelled before the loads, so it wins a crowded spot
    const bool open = sc.workload.mode == WORKLOAD_OPEN;
    for (size_t p = 0; p < np && p < r.capacity.size(); p++) {
        const CapacityMark m = capacity_mark(r.capacity[p], open);
        if (!m.shown) continue;
        const char* name = sc.policies[p].name.c_str();
        plot_next_style({0.0f, 7.0f, true});
        plot_scatter(name, &m.x, &m.y, 1, plot_color(static_cast<int>(p)), &m.tip);
        plot_labels(name, &m.x, &m.y, &m.label, 1, plot_color(static_cast<int>(p)));
    }
    std::vector<double> xs(nl), ys(nl);
    std::vector<std::string> tips(nl), texts(nl);
    for (size_t p = 0; p < np; p++) {
        for (size_t i = 0; i < nl; i++) {
            const PointResult& pt = r.points[p * nl + i];
            bool ok = point_measured(pt);
            xs[i] = ok ? pt.per_user.p90 : NAN;
            ys[i] = ok ? pt.throughput : NAN;
            char buf[256];
            std::snprintf(buf, sizeof buf,
                          "%s: %s tok/s/GPU, p90 %.1f tok/s/user (mean %.1f)\nTTFT p90 %s, %s %.2f %s, batch %.0f "
                          "tokens, waste %.0f%%",
                          load_text(sc, r.loads[i]).c_str(), value_label(pt.throughput).c_str(), pt.per_user.p90,
                          pt.per_user.mean, seconds_text(pt.ttft.p90).c_str(), TAU_REQUEST, pt.tau, TAU_REQUEST_WORDS,
                          pt.mean_batch_tokens, pt.waste * 100);
            tips[i] = buf;
            texts[i] = value_label(r.loads[i]);
        }
        const char* name = sc.policies[p].name.c_str();
        plot_line(name, xs.data(), ys.data(), static_cast<int>(nl), plot_color(static_cast<int>(p)), tips.data());
        if (labels) plot_labels(name, xs.data(), ys.data(), texts.data(), static_cast<int>(nl), plot_color(static_cast<int>(p)));
    }
    // a live run's points, hollow, in the colour of the policy they ran (issue 12's overlay)
    if (app.live)
        for (size_t p = 0; p < np; p++) {
            std::vector<double> lx, ly;
            std::vector<std::string> ltips;
            for (const ComparePoint& c : app.live->points) {
                if (c.policy != sc.policies[p].name) continue;
                lx.push_back(c.live[int(CompareMetric::UserP90)]);
                ly.push_back(c.live[int(CompareMetric::Throughput)]);
                char tip[160];
                std::snprintf(tip, sizeof tip, "live, %s: %s tok/s/GPU, p90 %.1f tok/s/user", load_text(sc, c.load).c_str(),
                              value_label(ly.back()).c_str(), lx.back());
                ltips.push_back(tip);
            }
            if (lx.empty()) continue;
            const std::string name = sc.policies[p].name + " (live)";
            plot_next_style({0.0f, 6.0f, true});
            plot_scatter(name.c_str(), lx.data(), ly.data(), static_cast<int>(lx.size()),
                         plot_color(static_cast<int>(p)), ltips.data());
        }
    char buf[96];
    std::snprintf(buf, sizeof buf, "SLA: p90 >= %s tok/s/user", value_label(slo).c_str());
    if (slo > 0) plot_vline(slo, buf, PLOT_SLO_COLOR);
    int a, b;
    compare_pair(app, &a, &b);
    Headline h = sweep_headline(r, sc.policies, sc.policies[static_cast<size_t>(a)].name,
                                sc.policies[static_cast<size_t>(b)].name);
    if (h.matched_throughput > 0 && a != b) {
        std::snprintf(buf, sizeof buf, "matched throughput %s tok/s/GPU", value_label(h.matched_throughput).c_str());
        plot_hline(h.matched_throughput, buf, IM_COL32(200, 200, 200, 160));
    }
    plot_end();
}

static void capacity_table(const AppState& app, int b) {
    const SweepOutput& s = *app.sweep;
    const Scenario& sc = s.scenario;
    const SweepResult& r = s.result;
    const bool open = sc.workload.mode == WORKLOAD_OPEN;
    ImGui::Text("Capacity at the SLO (%s)", slo_text(sc.slo).c_str());
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip("the most %s meeting every SLO, found by bisection", open ? "req/s" : "users");
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit;
    if (!ImGui::BeginTable("capacity", 5, flags)) return;
    ImGui::TableSetupColumn("policy");
    ImGui::TableSetupColumn("tok/s/GPU");
    ImGui::TableSetupColumn(open ? "req/s" : "users");
    char vs[64];
    std::snprintf(vs, sizeof vs, "vs %s", sc.policies[static_cast<size_t>(b)].name.c_str());
    ImGui::TableSetupColumn(vs);
    ImGui::TableSetupColumn("best measured point");
    ImGui::TableHeadersRow();
    double best = 0;
    for (const Capacity& c : r.capacity)
        if (c.met) best = std::max(best, c.throughput);
    const Capacity& cb = r.capacity[static_cast<size_t>(b)];
    for (size_t p = 0; p < r.capacity.size(); p++) {
        const Capacity& c = r.capacity[p];
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(plot_color(static_cast<int>(p))), "%s%s", c.policy.c_str(),
                           c.met && c.throughput == best ? "  (best)" : "");
        if (!c.met) {
            // how far it falls short: the fastest p90 any of its points reached
            double fastest = 0;
            const size_t nl = r.loads.size();
            for (size_t i = 0; i < nl; i++) fastest = std::max(fastest, r.points[p * nl + i].per_user.p90);
            ImGui::TableNextColumn();
            ImGui::TextDisabled("misses");
            ImGui::TableNextColumn();
            ImGui::TextDisabled("-");
            ImGui::TableNextColumn();
            ImGui::TextDisabled("-");
            ImGui::TableNextColumn();
            ImGui::TextDisabled("fastest p90 %.1f tok/s", fastest);
            continue;
        }
        ImGui::TableNextColumn();
        ImGui::Text("%s", value_label(c.throughput).c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%s%s", c.bounded ? "" : ">= ", value_label(c.load).c_str());
        ImGui::TableNextColumn();
        if (cb.met && cb.throughput > 0) ImGui::Text("%.2fx", c.throughput / cb.throughput);
        else ImGui::TextDisabled("-");
        ImGui::TableNextColumn();
        ImGui::Text("%s", value_label(c.best_point_throughput).c_str());
    }
    ImGui::EndTable();
}

static bool policy_combo(const char* id, const Scenario& sc, int* index) {
    bool changed = false;
    ImGui::SetNextItemWidth(150);
    if (ImGui::BeginCombo(id, sc.policies[static_cast<size_t>(*index)].name.c_str())) {
        for (size_t i = 0; i < sc.policies.size(); i++)
            if (ImGui::Selectable(sc.policies[i].name.c_str(), static_cast<int>(i) == *index)) {
                *index = static_cast<int>(i);
                changed = true;
            }
        ImGui::EndCombo();
    }
    return changed;
}

static void text_dim_wrapped(const char* text) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
    ImGui::TextWrapped("%s", text);
    ImGui::PopStyleColor();
}

static void headline(AppState& app) {
    const SweepOutput& s = *app.sweep;
    const Scenario& sc = s.scenario;
    const SweepResult& r = s.result;
    int a, b;
    compare_pair(app, &a, &b);
    ImGui::TextUnformatted("Compare");
    ImGui::SameLine();
    if (policy_combo("##a", sc, &a)) app.compare_a = a;
    ImGui::SameLine();
    ImGui::TextUnformatted("with");
    ImGui::SameLine();
    if (policy_combo("##b", sc, &b)) app.compare_b = b;
    const std::string& na = sc.policies[static_cast<size_t>(a)].name;
    const std::string& nb = sc.policies[static_cast<size_t>(b)].name;
    Headline h = sweep_headline(r, sc.policies, na, nb);
    const Capacity &ca = r.capacity[static_cast<size_t>(a)], &cb = r.capacity[static_cast<size_t>(b)];
    const std::string slo = value_label(sc.slo.per_user_tok_s);
    ImGui::Spacing();
    char buf[256];
    std::snprintf(buf, sizeof buf, "Throughput per GPU at the SLA (p90 >= %s tok/s/user)", slo.c_str());
    text_dim_wrapped(buf);
    if (h.throughput_gain > 0) {
        ImGui::Text("%.2fx   %s %s vs %s %s tok/s/GPU", h.throughput_gain, na.c_str(), value_label(ca.throughput).c_str(),
                    nb.c_str(), value_label(cb.throughput).c_str());
    } else {
        std::string who = !ca.met && !cb.met ? "neither policy" : !ca.met ? na : nb;
        ImGui::TextWrapped("-   %s never reaches %s tok/s/user at p90 in this sweep", who.c_str(), slo.c_str());
    }
    ImGui::Spacing();
    if (h.matched_throughput > 0) {
        std::snprintf(buf, sizeof buf, "Per-user speed p90 at matched throughput (%s tok/s/GPU, %s's capacity)",
                      value_label(h.matched_throughput).c_str(), nb.c_str());
        text_dim_wrapped(buf);
        double pa = 0, pb = 0;
        bool got_a = sweep_per_user_at(curve_of(r, static_cast<size_t>(a)), h.matched_throughput, &pa);
        bool got_b = sweep_per_user_at(curve_of(r, static_cast<size_t>(b)), h.matched_throughput, &pb);
        if (h.per_user_gain > 0 && got_a && got_b)
            ImGui::Text("%.2fx   %s %.1f vs %s %.1f tok/s/user", h.per_user_gain, na.c_str(), pa, nb.c_str(), pb);
        else {
            // why a's speed cannot be read there: its curve lies wholly above or below the matched throughput
            auto throughputs = [&](int p) {
                std::vector<double> ys;
                for (const PointResult& pt : curve_of(r, static_cast<size_t>(p)))
                    ys.push_back(point_measured(pt) ? pt.throughput : NAN);
                return ys;
            };
            std::string why = matched_miss_text(na, throughputs(a), h.matched_throughput);
            if (why.empty()) why = matched_miss_text(nb, throughputs(b), h.matched_throughput);
            if (why.empty()) why = na + "'s per-user speed there is not available";
            ImGui::TextWrapped("-   %s", why.c_str());
        }
    } else {
        std::snprintf(buf, sizeof buf, "Per-user speed at matched throughput: needs %s to meet the SLA", nb.c_str());
        text_dim_wrapped(buf);
    }
}

void panel_frontier(AppState& app) {
    if (!app.sweep) {
        ImGui::TextDisabled("no results yet");
        const int total = app.progress.total, done = app.progress.done;
        if (total > 0) {
            char label[64];
            std::snprintf(label, sizeof label, "%d / %d points", done, total);
            ImGui::ProgressBar(static_cast<float>(done) / static_cast<float>(total), ImVec2(300, 0), label);
        }
        if (!app.scenario_error.empty()) ImGui::TextWrapped("%s", app.scenario_error.c_str());
        return;
    }
    const Scenario& sc = app.sweep->scenario;
    const SweepResult& r = app.sweep->result;
    if (sc.policies.empty() || r.loads.empty() || r.capacity.size() != sc.policies.size() ||
        r.points.size() != sc.policies.size() * r.loads.size()) {
        ImGui::TextDisabled("the last sweep is incomplete");
        return;
    }
    bool& labels = app.frontier_labels;
    bool& pareto = app.frontier_pareto;
    ImGui::Checkbox(sc.workload.mode == WORKLOAD_OPEN ? "label points by rate" : "label points by users", &labels);
    ImGui::SameLine();
    ImGui::Checkbox("Pareto frontier", &pareto);
    ImGui::SameLine();
    if (ImGui::Checkbox("log x", &app.frontier.x_log)) app.frontier.fitted = false;
    ImGui::SameLine();
    ImGui::TextDisabled("  %s: each point is one %s; hover a point for its numbers", sc.name.c_str(),
                        sc.workload.mode == WORKLOAD_OPEN ? "arrival rate" : "number of users");

    const float row = ImGui::GetTextLineHeightWithSpacing() + 4;
    const float readout_h = row * (static_cast<float>(sc.policies.size()) + 3);
    ImVec2 avail = ImGui::GetContentRegionAvail();
    float plot_h = std::max(avail.y - readout_h, 320.0f);
    frontier_plot(app, ImVec2(0, plot_h), labels, pareto);

    int a, b;
    compare_pair(app, &a, &b);
    float table_w = std::min(ImGui::GetContentRegionAvail().x * 0.55f, 620.0f);
    ImGui::BeginChild("capacity", ImVec2(table_w, 0), false);
    capacity_table(app, b);
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginChild("headline", ImVec2(0, 0), false);
    headline(app);
    ImGui::EndChild();
}

}  // namespace sp
