// panel_traces.cpp: "Traces", the runs of the open trace database
// (app.traces, filled by app_open_traces): one table row per run, and for the
// selected run its metadata, its per-domain acceptance (alpha_k and tau,
// trace_stats.h's definitions) as a table and a plot, and its live engine
// steps when it has any.
//
// [SECTION] run table
// [SECTION] selected run
// [SECTION] panel
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "gui/app.h"

namespace sp {

static std::string fmt_tau(double tau) {
    if (!std::isfinite(tau)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", tau);
    return buf;
}

// The run's domains, "all" left out: "code, chat".
static std::string run_domains(const TraceRunInfo& r) {
    std::string out;
    for (size_t i = 1; i < r.stats.size(); i++) out += (i > 1 ? ", " : "") + r.stats[i].domain;
    return out.empty() ? "-" : out;
}

// [SECTION] run table ------------------------------------------------------------

static void run_table(AppState& app, float height) {
    TracesView& v = app.traces;
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_Borders | ImGuiTableFlags_ScrollY |
                                  ImGuiTableFlags_ScrollX | ImGuiTableFlags_Resizable | ImGuiTableFlags_SizingFixedFit;
    if (!ImGui::BeginTable("runs", 12, flags, ImVec2(0, height))) return;
    ImGui::TableSetupScrollFreeze(1, 1);
    for (const char* h : {"run", "created (UTC)", "producer", "target", "drafter", "γ", "T", "domains", "requests",
                          "complete", "git rev", "τ"})
        ImGui::TableSetupColumn(h);
    ImGui::TableHeadersRow();
    for (int i = 0; i < static_cast<int>(v.runs.size()); i++) {
        const TraceRunInfo& r = v.runs[static_cast<size_t>(i)];
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        char id[32];
        std::snprintf(id, sizeof id, "%lld", static_cast<long long>(r.run.id));
        if (ImGui::Selectable(id, v.selected == i, ImGuiSelectableFlags_SpanAllColumns)) v.selected = i;
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(r.run.created_at.c_str());
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(producer_name(r.run.producer));
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(r.run.target.name.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%s: %s", r.run.drafter_kind.c_str(), r.run.drafter_name.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%d", r.run.gamma);
        ImGui::TableNextColumn();
        ImGui::Text("%g", r.run.temperature);
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(run_domains(r).c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%lld", static_cast<long long>(r.n_requests));
        ImGui::TableNextColumn();
        if (r.run.complete) ImGui::TextUnformatted("yes");
        else ImGui::TextColored(ImVec4(1, 0.7f, 0.3f, 1), "no");
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(r.run.git_rev.c_str());
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(fmt_tau(r.stats.empty() ? NAN : r.stats[0].tau).c_str());
    }
    ImGui::EndTable();
}

// [SECTION] selected run ---------------------------------------------------------

// One "label  value" line, values aligned in a column (the font is proportional).
static void kv(const char* label, const char* fmt, ...) IM_FMTARGS(2);
static void kv(const char* label, const char* fmt, ...) {
    ImGui::TextDisabled("%s", label);
    ImGui::SameLine(100);
    va_list args;
    va_start(args, fmt);
    ImGui::TextV(fmt, args);
    va_end(args);
}

static void run_metadata(const TraceRunInfo& r) {
    const Run& run = r.run;
    const ModelShape& m = run.target;
    ImGui::Text("Run %lld%s", static_cast<long long>(run.id), run.complete ? "" : "  (incomplete: its writer stopped early)");
    ImGui::Separator();
    kv("producer", "%s", producer_name(run.producer));
    kv("created", "%s", run.created_at.c_str());
    kv("git rev", "%s", run.git_rev.c_str());
    kv("GPU", "%s", run.gpu.c_str());
    kv("drafter", "%s: %s", run.drafter_kind.c_str(), run.drafter_name.c_str());
    kv("block γ", "%d", run.gamma);
    kv("temperature", "%g%s", run.temperature, run.temperature == 0 ? " (greedy: β is 0 or 1)" : "");
    kv("target", "%s", m.name.c_str());
    kv("", "%.2fB params, %d layers, d %d", static_cast<double>(m.n_params) * 1e-9, m.n_layers, m.hidden);
    kv("", "%d query / %d KV heads x %d, ffn %d, vocab %d", m.n_heads, m.n_kv_heads, m.head_dim, m.ffn, m.vocab);
    kv("requests", "%lld", static_cast<long long>(r.n_requests));
    if (r.steps.n_steps > 0)
        kv("live steps", "%lld: τ %.3f, mean verified %.2f, mean batch %.1f", static_cast<long long>(r.steps.n_steps),
           r.steps.tau, r.steps.mean_verify_len, r.steps.mean_batch);
    else
        kv("live steps", "none (teacher-forced positions only)");
    if (!run.notes.empty()) {
        ImGui::Spacing();
        ImGui::TextDisabled("notes");
        ImGui::TextWrapped("%s", run.notes.c_str());
    }
}

static void domain_table(const TraceRunInfo& r) {
    int gamma = 0;
    for (const AcceptanceStats& s : r.stats) gamma = std::max(gamma, static_cast<int>(s.alpha.size()));
    gamma = std::min(gamma, TRACE_MAX_GAMMA);
    const int ncol = 4 + gamma;
    // Wide blocks scroll sideways; a scrolling table needs its height given.
    const bool wide = gamma > 12;
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_Borders | ImGuiTableFlags_SizingFixedFit |
                                  (wide ? ImGuiTableFlags_ScrollX : 0);
    const float row_h = ImGui::GetTextLineHeight() + 2 * ImGui::GetStyle().CellPadding.y;
    const float h = wide ? row_h * static_cast<float>(r.stats.size() + 1) + ImGui::GetStyle().ScrollbarSize + 4 : 0;
    if (!ImGui::BeginTable("domains", ncol, flags, ImVec2(0, h))) return;
    ImGui::TableSetupColumn("domain");
    ImGui::TableSetupColumn("requests");
    ImGui::TableSetupColumn("anchors");
    ImGui::TableSetupColumn("τ");
    for (int k = 1; k <= gamma; k++) {
        char name[16];
        std::snprintf(name, sizeof name, "α_%d", k);
        ImGui::TableSetupColumn(name);
    }
    ImGui::TableHeadersRow();
    for (const AcceptanceStats& s : r.stats) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(s.domain.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%lld", static_cast<long long>(s.n_requests));
        ImGui::TableNextColumn();
        ImGui::Text("%lld", static_cast<long long>(s.n_anchors));
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(fmt_tau(s.tau).c_str());
        for (int k = 0; k < gamma; k++) {
            ImGui::TableNextColumn();
            const double a = static_cast<size_t>(k) < s.alpha.size() ? s.alpha[static_cast<size_t>(k)] : NAN;
            if (std::isfinite(a)) ImGui::Text("%.3f", a);
            else ImGui::TextDisabled("-");
        }
    }
    ImGui::EndTable();
}

static void domain_plot(AppState& app, const TraceRunInfo& r, ImVec2 size) {
    // Refit when another run is shown.
    if (app.traces_plotted_run != r.run.id) {
        app.traces_plotted_run = r.run.id;
        app.trace_alpha.fitted = false;
    }
    char id[64];
    std::snprintf(id, sizeof id, "α_k of run %lld##trace_run_alpha", static_cast<long long>(r.run.id));
    if (!plot_begin(id, app.trace_alpha, size, "draft slot k", "α_k")) return;
    for (size_t i = 0; i < r.stats.size(); i++) {
        const AcceptanceStats& s = r.stats[i];
        std::vector<double> x;
        for (size_t k = 0; k < s.alpha.size(); k++) x.push_back(static_cast<double>(k + 1));
        std::vector<std::string> tips;
        for (size_t k = 0; k < s.alpha.size(); k++) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "%s, slot %zu: α = %.3f, survival %.3f", s.domain.c_str(), k + 1, s.alpha[k],
                          k < s.survival.size() ? s.survival[k] : NAN);
            tips.push_back(buf);
        }
        plot_line(s.domain.c_str(), x.data(), s.alpha.data(), static_cast<int>(x.size()), plot_color(static_cast<int>(i)),
                  tips.data());
    }
    plot_end();
}

// [SECTION] panel ----------------------------------------------------------------

void panel_traces(AppState& app) {
    TracesView& v = app.traces;
    if (!v.error.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", v.error.c_str());
    if (v.path.empty()) {
        ImGui::TextWrapped("No trace database open. Open one with File > Open trace database, or start with "
                           "--db FILE. A scenario whose acceptance source is a trace opens its database here.");
        return;
    }
    ImGui::Text("Database: %s", v.path.c_str());
    const TraceCounts& c = v.counts;
    ImGui::TextDisabled("%lld runs, %lld requests, %lld positions (%lld anchor rows), %lld live steps, %lld cost profiles",
                        static_cast<long long>(c.runs), static_cast<long long>(c.requests), static_cast<long long>(c.positions),
                        static_cast<long long>(c.anchors), static_cast<long long>(c.steps), static_cast<long long>(c.profiles));
    if (v.runs.empty()) {
        ImGui::TextDisabled("The database holds no runs.");
        return;
    }
    const float row = ImGui::GetTextLineHeight() + 2 * ImGui::GetStyle().CellPadding.y;
    run_table(app, std::min(row * static_cast<float>(v.runs.size() + 1) + ImGui::GetStyle().ScrollbarSize + 2,
                            ImGui::GetContentRegionAvail().y * 0.35f));
    if (v.selected < 0 || v.selected >= static_cast<int>(v.runs.size())) v.selected = 0;
    const TraceRunInfo& r = v.runs[static_cast<size_t>(v.selected)];

    ImGui::Spacing();
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float left_w = std::min(520.0f, avail.x * 0.45f);
    ImGui::BeginChild("run_meta", ImVec2(left_w, avail.y), false);
    run_metadata(r);
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginGroup();
    ImGui::TextUnformatted("Acceptance by domain (full-block anchors, trace_stats.h)");
    domain_table(r);
    const ImVec2 rest = ImGui::GetContentRegionAvail();
    domain_plot(app, r, ImVec2(rest.x, std::max(160.0f, rest.y)));
    ImGui::EndGroup();
}

}  // namespace sp
