// panel_timeline.cpp: "Step timeline: what the GPU does". A few consecutive
// iterations of one (policy, load) point side by side, one grid each: rows
// are the running requests (the same request on the same row in every
// iteration shown), columns the target's own token and draft slots 1..gamma,
// each cell coloured by what the forward did with it. Above the grids, a strip
// of every captured iteration's verified tokens (useful, wasted, prefill)
// shows the window's place in the capture; click it to jump.
//
// The point of the view: under load, a batch-aware scheduler (DSpark) stops
// verifying the drafts unlikely to survive, because every verified token
// costs forward time the whole batch pays. Rising load turns grey cells
// (drafted, not verified) from the exception into the rule, and red cells
// (verified, rejected: wasted compute) shrink.
//
// [SECTION] capture
// [SECTION] colours and legend
// [SECTION] controls
// [SECTION] overview strip
// [SECTION] iteration grids
// [SECTION] panel
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "gui/app.h"

namespace sp {

// [SECTION] capture --------------------------------------------------------------

TimelineOutput timeline_capture(const SweepOutput& sweep, int policy, int load, const std::atomic<bool>& cancel) {
    TimelineOutput out;
    out.generation = sweep.generation;
    const int np = static_cast<int>(sweep.scenario.policies.size()), nl = static_cast<int>(sweep.loads.size());
    if (policy < 0 || policy >= np || load < 0 || load >= nl) return out;
    // sim_run_point has no cancel flag: a stale capture runs to the end of its
    // point (tens of ms to a few s) and the worker drops its result.
    if (cancel) return out;
    out = timeline_capture_point(sweep.scenario, sweep.acceptance, sweep.scenario.policies[static_cast<size_t>(policy)],
                                 sweep.loads[static_cast<size_t>(load)]);
    out.generation = sweep.generation;
    return out;
}

// [SECTION] colours and legend ---------------------------------------------------

enum CellState { CELL_EMPTY, CELL_DRAFTED, CELL_ACCEPTED, CELL_REJECTED, CELL_DISCARDED, CELL_TARGET, CELL_COUNT };

static const ImU32 CELL_COLORS[CELL_COUNT] = {
    IM_COL32(255, 255, 255, 14),   // not drafted
    IM_COL32(92, 94, 102, 255),    // drafted, not verified
    IM_COL32(64, 178, 92, 255),    // verified, accepted
    IM_COL32(224, 72, 60, 255),    // verified, the first rejected
    IM_COL32(138, 52, 48, 255),    // verified after a rejection: computed, thrown away
    IM_COL32(72, 128, 228, 255),   // the target's own token: bonus or correction
};
static const char* const CELL_NAMES[CELL_COUNT] = {
    "not drafted", "drafted, not verified", "verified, accepted", "verified, rejected",
    "verified after a rejection (wasted)", "bonus / correction token",
};
static constexpr ImU32 PREFILL_COLOR = IM_COL32(150, 112, 200, 255);

// State of draft slot j (1-based) of a request that verified ell drafts and
// accepted the first `acc` of them, with draft_len drafted.
static CellState cell_state(int j, int ell, int acc, int draft_len) {
    if (j <= acc) return CELL_ACCEPTED;
    if (j <= ell) return j == acc + 1 ? CELL_REJECTED : CELL_DISCARDED;
    if (j <= draft_len) return CELL_DRAFTED;
    return CELL_EMPTY;
}

static void legend_item(ImU32 color, const char* text) {
    const float h = ImGui::GetTextLineHeight();
    ImVec2 p = ImGui::GetCursorScreenPos();
    ImGui::GetWindowDrawList()->AddRectFilled(ImVec2(p.x, p.y + 2), ImVec2(p.x + h - 4, p.y + h - 2), color, 2);
    ImGui::Dummy(ImVec2(h - 2, h));
    ImGui::SameLine(0, 4);
    ImGui::TextUnformatted(text);
    ImGui::SameLine(0, 16);
}

// The bar along the bottom of a drafted cell: its prefix survival, what
// DSpark's scheduler ranks drafts by (drawn only when the policy reads
// confidences and the cells are tall enough).
static constexpr ImU32 SURVIVAL_BAR_COLOR = IM_COL32(255, 255, 255, 150);

static void legend_survival_item() {
    const float h = ImGui::GetTextLineHeight();
    ImVec2 p = ImGui::GetCursorScreenPos();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 a(p.x, p.y + 2), b(p.x + h - 4, p.y + h - 2);
    dl->AddRectFilled(a, b, CELL_COLORS[CELL_DRAFTED], 2);
    dl->AddRectFilled(ImVec2(a.x, b.y - 2), ImVec2(a.x + (b.x - a.x) * 0.6f, b.y), SURVIVAL_BAR_COLOR);
    ImGui::Dummy(ImVec2(h - 2, h));
    ImGui::SameLine(0, 4);
    ImGui::TextUnformatted("bar: prefix survival a = Π c (length 0..1)");
    ImGui::SameLine(0, 16);
}

static void draw_legend(bool conf_read) {
    for (int s : {CELL_ACCEPTED, CELL_REJECTED, CELL_DISCARDED, CELL_TARGET, CELL_DRAFTED, CELL_EMPTY})
        legend_item(CELL_COLORS[s], CELL_NAMES[s]);
    legend_item(PREFILL_COLOR, "prefill (strip)");
    ImGui::NewLine();
    if (conf_read) legend_survival_item();
    ImGui::TextDisabled("Στ: expected tokens per batch step (τ, tokens per request per step, summed over the R "
                        "requests); Θ = Στ / step time");
}

// [SECTION] controls -------------------------------------------------------------

static std::string load_label(const SweepOutput& s, int i) { return load_text(s.scenario, s.loads[static_cast<size_t>(i)]); }

// Policy and load combos; true when the selection changed.
static bool draw_selection(AppState& app) {
    const SweepOutput& s = *app.sweep;
    bool changed = false;
    ImGui::SetNextItemWidth(170);
    const std::string& pname = s.scenario.policies[static_cast<size_t>(app.timeline_policy)].name;
    if (ImGui::BeginCombo("policy", pname.c_str())) {
        for (size_t p = 0; p < s.scenario.policies.size(); p++) {
            bool sel = static_cast<int>(p) == app.timeline_policy;
            if (ImGui::Selectable(s.scenario.policies[p].name.c_str(), sel) && !sel) {
                app.timeline_policy = static_cast<int>(p);
                changed = true;
            }
            if (sel) ImGui::SetItemDefaultFocus();
        }
        ImGui::EndCombo();
    }
    ImGui::SameLine();
    ImGui::SetNextItemWidth(130);
    if (ImGui::BeginCombo("load", load_label(s, app.timeline_load).c_str())) {
        for (int l = 0; l < static_cast<int>(s.loads.size()); l++) {
            bool sel = l == app.timeline_load;
            if (ImGui::Selectable(load_label(s, l).c_str(), sel) && !sel) {
                app.timeline_load = l;
                changed = true;
            }
            if (sel) ImGui::SetItemDefaultFocus();
        }
        ImGui::EndCombo();
    }
    return changed;
}

// Step back / forward / play. `n` captured iterations, `shown` side by side.
static void draw_transport(AppState& app, int n, int shown) {
    const int last = std::max(0, n - shown);
    if (ImGui::ArrowButton("##back", ImGuiDir_Left)) app.timeline_step--;
    ImGui::SameLine();
    if (ImGui::ArrowButton("##fwd", ImGuiDir_Right)) app.timeline_step++;
    ImGui::SameLine();
    if (ImGui::Button(app.timeline_playing ? "Pause" : "Play", ImVec2(56, 0))) {
        app.timeline_playing = !app.timeline_playing;
        app.timeline_last_advance = ImGui::GetTime();
    }
    // Playing advances one iteration every half second and wraps at the end.
    if (app.timeline_playing && ImGui::GetTime() - app.timeline_last_advance >= 0.5) {
        app.timeline_step = app.timeline_step >= last ? 0 : app.timeline_step + 1;
        app.timeline_last_advance = ImGui::GetTime();
    }
    app.timeline_step = std::clamp(app.timeline_step, 0, last);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(160);
    int first = app.timeline_step + 1;  // 1-based, as the iterations are numbered below
    if (ImGui::SliderInt("##first", &first, 1, last + 1, "first shown: %d")) app.timeline_step = std::clamp(first - 1, 0, last);
    ImGui::SameLine();
    ImGui::TextDisabled("iterations %d-%d of %d captured", app.timeline_step + 1, std::min(n, app.timeline_step + shown), n);
}

// [SECTION] overview strip -------------------------------------------------------

// One stacked bar per captured iteration: emitted tokens (green), wasted
// verified tokens (red), prefill (purple), scaled to the largest batch.
static void draw_overview(AppState& app, const TimelineOutput& t, int shown, float height) {
    const int n = static_cast<int>(t.steps.size());
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    const float w = ImGui::GetContentRegionAvail().x;
    ImGui::InvisibleButton("##overview", ImVec2(w, height));
    const bool hovered = ImGui::IsItemHovered();
    dl->AddRectFilled(p0, ImVec2(p0.x + w, p0.y + height), IM_COL32(255, 255, 255, 10));
    int max_b = 1;
    for (const TimelineStep& s : t.steps) max_b = std::max(max_b, s.batch_tokens);
    const float bw = w / static_cast<float>(std::max(1, n));
    const float y1 = p0.y + height;
    for (int i = 0; i < n; i++) {
        const TimelineStep& s = t.steps[static_cast<size_t>(i)];
        const float x0 = p0.x + bw * static_cast<float>(i) + 1, x1 = x0 + std::max(1.0f, bw - 2);
        const float scale = (height - 2) / static_cast<float>(max_b);
        float y = y1;
        auto seg = [&](int64_t tokens, ImU32 col) {
            float h = static_cast<float>(tokens) * scale;
            dl->AddRectFilled(ImVec2(x0, y - h), ImVec2(x1, y), col);
            y -= h;
        };
        seg(timeline_emitted(s), CELL_COLORS[CELL_ACCEPTED]);
        seg(timeline_wasted(s), CELL_COLORS[CELL_REJECTED]);
        seg(s.prefill_tokens, PREFILL_COLOR);
    }
    // the iterations shown below
    const float sx0 = p0.x + bw * static_cast<float>(app.timeline_step);
    const float sx1 = p0.x + bw * static_cast<float>(std::min(n, app.timeline_step + shown));
    dl->AddRect(ImVec2(sx0, p0.y), ImVec2(sx1, y1), IM_COL32(255, 255, 255, 200), 0, 0, 1.5f);
    if (hovered && n > 0) {
        const int i = std::clamp(static_cast<int>((ImGui::GetIO().MousePos.x - p0.x) / bw), 0, n - 1);
        const TimelineStep& s = t.steps[static_cast<size_t>(i)];
        ImGui::SetTooltip("iteration %d: R %d, B %d (prefill %d)\nemitted %lld, wasted %lld verified tokens\nclick to show it",
                          i + 1, timeline_requests(s), s.batch_tokens, s.prefill_tokens,
                          static_cast<long long>(timeline_emitted(s)), static_cast<long long>(timeline_wasted(s)));
        if (ImGui::IsItemClicked()) {
            app.timeline_step = std::clamp(i - shown / 2, 0, std::max(0, n - shown));
            app.timeline_playing = false;
        }
    }
}

// [SECTION] iteration grids ------------------------------------------------------

// Prefix survival a(r, j) = prod_{i<=j} c(r, i) of a request's drafts.
static double prefix_survival(const TimelineStep& s, size_t r, int j) {
    double a = 1;
    const size_t G = static_cast<size_t>(s.gamma);
    for (int i = 0; i < j && i < s.gamma && r * G + static_cast<size_t>(i) < s.conf.size(); i++)
        a *= s.conf[r * G + static_cast<size_t>(i)];
    return a;
}

// The header lines of one iteration, drawn at p; returns the height used.
static float draw_header(ImDrawList* dl, ImVec2 p, const TimelineOutput& t, int index, int64_t t0_ns) {
    const TimelineStep& s = t.steps[static_cast<size_t>(index)];
    const float lh = ImGui::GetTextLineHeight();
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text), dim = ImGui::GetColorU32(ImGuiCol_TextDisabled);
    const double step_s = timeline_step_s(s);
    const int64_t emitted = timeline_emitted(s), wasted = timeline_wasted(s), verified = timeline_verified(s);
    char buf[128];
    float y = p.y;
    auto line = [&](ImU32 col) {
        dl->AddText(ImVec2(p.x, y), col, buf);
        y += lh;
    };
    std::snprintf(buf, sizeof buf, "iteration %d  (+%.1f ms)", index + 1, static_cast<double>(s.start_ns - t0_ns) * 1e-6);
    line(text);
    std::snprintf(buf, sizeof buf, "R %d   B %d / %d", timeline_requests(s), s.batch_tokens, t.token_budget);
    line(text);
    std::snprintf(buf, sizeof buf, "decode %lld + prefill %d", static_cast<long long>(verified), s.prefill_tokens);
    line(dim);
    std::snprintf(buf, sizeof buf, "step %.2f ms", step_s * 1e3);
    line(text);
    std::snprintf(buf, sizeof buf, "= draft %.2f + forward %.2f", s.draft_s * 1e3, s.forward_s * 1e3);
    line(dim);
    if (t.conf_read) {
        const double tau = timeline_tau(s);
        std::snprintf(buf, sizeof buf, "Στ %.1f   Θ %s tok/s", tau, tick_label(step_s > 0 ? tau / step_s : 0).c_str());
    } else {
        std::snprintf(buf, sizeof buf, "Στ, Θ: policy reads no confidences");
    }
    line(t.conf_read ? text : dim);
    std::snprintf(buf, sizeof buf, "emitted %lld   %s tok/s", static_cast<long long>(emitted),
                  tick_label(step_s > 0 ? static_cast<double>(emitted) / step_s : 0).c_str());
    line(CELL_COLORS[CELL_ACCEPTED]);
    std::snprintf(buf, sizeof buf, "wasted %lld of %lld (%.0f%%)", static_cast<long long>(wasted),
                  static_cast<long long>(verified), verified ? 100.0 * static_cast<double>(wasted) / static_cast<double>(verified) : 0.0);
    line(wasted ? CELL_COLORS[CELL_REJECTED] : dim);
    return y - p.y + lh * 0.4f;
}

static void cell_tooltip(const TimelineOutput& t, int index, size_t r, int col) {
    const TimelineStep& s = t.steps[static_cast<size_t>(index)];
    const int ell = s.ell[r], acc = s.accepted[r];
    ImGui::BeginTooltip();
    ImGui::Text("iteration %d, request %016llx", index + 1, static_cast<unsigned long long>(s.keys[r]));
    ImGui::Text("verified %d drafts, accepted %d: emits %d tokens", ell, acc, acc + 1);
    if (col == 0) {
        ImGui::TextUnformatted(acc == ell ? "bonus token: every verified draft was accepted, the target adds its own next token"
                                          : "correction token: the target's token replaces the first rejected draft");
    } else {
        ImGui::Text("draft slot %d: %s", col, CELL_NAMES[cell_state(col, ell, acc, s.draft_len)]);
        if (col <= s.draft_len && t.conf_read && s.gamma > 0)
            ImGui::Text("confidence c = %.2f, prefix survival a = %.3f", s.conf[r * static_cast<size_t>(s.gamma) + static_cast<size_t>(col - 1)],
                        prefix_survival(s, r, col));
    }
    ImGui::EndTooltip();
}

// The grids of iterations [first, first + shown) in a region of `size`.
static void draw_grids(const TimelineOutput& t, int first, int shown, ImVec2 size) {
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("##grids", size);
    const bool hovered = ImGui::IsItemHovered();
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    const int n = static_cast<int>(t.steps.size());
    const int gamma = t.steps.empty() ? 0 : t.steps.front().gamma;
    const int64_t t0 = t.steps.empty() ? 0 : t.steps.front().start_ns;

    // Rows: every request of the iterations shown, in order of first
    // appearance, so a request keeps its row across iterations.
    std::unordered_map<uint64_t, int> row_of;
    std::vector<uint64_t> rows;
    for (int i = first; i < first + shown && i < n; i++)
        for (uint64_t k : t.steps[static_cast<size_t>(i)].keys)
            if (row_of.emplace(k, static_cast<int>(rows.size())).second) rows.push_back(k);

    const float gap = 14, lh = ImGui::GetTextLineHeight();
    const float card_w = (size.x - gap * static_cast<float>(shown - 1)) / static_cast<float>(shown);
    const float header_h = lh * 8.4f;  // draw_header's 8 lines
    const float grid_h = size.y - header_h - lh * 2.5f;
    const int cols = gamma + 1;
    const float col_gap = 4;  // between the target's token and the drafts
    const float cell_w = std::min(36.0f, (card_w - col_gap) / static_cast<float>(std::max(1, cols)));
    // Cells shrink with R down to 4 px; beyond that the rest are summarised.
    const int max_rows = std::max(1, static_cast<int>(grid_h / 4));
    const int n_rows = std::min(static_cast<int>(rows.size()), max_rows);
    const float cell_h = n_rows ? std::min(18.0f, grid_h / static_cast<float>(n_rows)) : 0;
    const float pad = cell_h >= 6 && cell_w >= 6 ? 1 : 0;

    for (int c = 0; c < shown && first + c < n; c++) {
        const int index = first + c;
        const TimelineStep& s = t.steps[static_cast<size_t>(index)];
        const float x0 = p0.x + static_cast<float>(c) * (card_w + gap);
        // Clip to the card: long numbers must not run into the next one.
        dl->PushClipRect(ImVec2(x0, p0.y), ImVec2(x0 + card_w, p0.y + size.y), true);
        float y = p0.y + draw_header(dl, ImVec2(x0, p0.y), t, index, t0);
        // column captions
        dl->AddText(ImVec2(x0, y), ImGui::GetColorU32(ImGuiCol_TextDisabled), "+1");
        char buf[32];
        std::snprintf(buf, sizeof buf, "drafts 1..%d", gamma);
        dl->AddText(ImVec2(x0 + cell_w + col_gap, y), ImGui::GetColorU32(ImGuiCol_TextDisabled), buf);
        y += lh + 2;
        const float gy0 = y;
        for (size_t r = 0; r < s.keys.size(); r++) {
            const int row = row_of[s.keys[r]];
            if (row >= n_rows) continue;
            const float ry = gy0 + static_cast<float>(row) * cell_h;
            const int ell = s.ell[r], acc = s.accepted[r];
            for (int col = 0; col < cols; col++) {
                const float cx = x0 + static_cast<float>(col) * cell_w + (col > 0 ? col_gap : 0);
                const CellState st = col == 0 ? CELL_TARGET : cell_state(col, ell, acc, s.draft_len);
                const ImVec2 a(cx, ry), b(cx + cell_w - pad, ry + cell_h - pad);
                dl->AddRectFilled(a, b, CELL_COLORS[st]);
                // A drafted slot's prefix survival as a bar along its bottom:
                // what the scheduler ranks by.
                if (col > 0 && col <= s.draft_len && t.conf_read && cell_h >= 8) {
                    const float len = static_cast<float>(prefix_survival(s, r, col)) * (cell_w - pad);
                    dl->AddRectFilled(ImVec2(cx, b.y - 2), ImVec2(cx + len, b.y), SURVIVAL_BAR_COLOR);
                }
                if (hovered && mouse.x >= a.x && mouse.x < b.x + pad && mouse.y >= a.y && mouse.y < b.y + pad)
                    cell_tooltip(t, index, r, col);
            }
        }
        // rows of requests not running in this iteration: a faint outline
        std::vector<char> present(static_cast<size_t>(n_rows), 0);
        for (uint64_t k : s.keys)
            if (row_of[k] < n_rows) present[static_cast<size_t>(row_of[k])] = 1;
        for (int row = 0; row < n_rows; row++) {
            if (present[static_cast<size_t>(row)]) continue;
            const float ry = gy0 + static_cast<float>(row) * cell_h;
            dl->AddRect(ImVec2(x0, ry), ImVec2(x0 + cell_w * static_cast<float>(cols) + col_gap - pad, ry + cell_h - pad),
                        IM_COL32(255, 255, 255, 18));
        }
        if (static_cast<int>(rows.size()) > n_rows) {
            int more = 0;
            for (uint64_t k : s.keys) more += row_of[k] >= n_rows;
            std::snprintf(buf, sizeof buf, "+%d more requests", more);
            dl->AddText(ImVec2(x0, gy0 + static_cast<float>(n_rows) * cell_h + 2), ImGui::GetColorU32(ImGuiCol_TextDisabled), buf);
        }
        dl->PopClipRect();
    }
}

// [SECTION] panel ----------------------------------------------------------------

void panel_timeline(AppState& app) {
    if (!app.sweep || app.sweep->loads.empty() || app.sweep->scenario.policies.empty()) {
        ImGui::TextDisabled("Waiting for the first sweep...");
        return;
    }
    const SweepOutput& sw = *app.sweep;
    app_timeline_defaults(app);
    bool changed = draw_selection(app);

    // A capture for another selection or an older sweep: ask for a new one.
    const std::string& want_policy = sw.scenario.policies[static_cast<size_t>(app.timeline_policy)].name;
    const double want_load = sw.loads[static_cast<size_t>(app.timeline_load)];
    const TimelineOutput* t = app.timeline.get();
    const bool current = t && t->generation == sw.generation && t->policy == want_policy && t->load == want_load;
    if (changed || (!current && !app.timeline_pending)) {
        app.timeline_step = 0;
        app_request_timeline(app);
    }
    if (!t || t->steps.empty() || !current) {
        ImGui::SameLine();
        ImGui::TextDisabled(app.timeline_pending ? "capturing..." : "no decoding iterations at this point");
        if (!t || t->steps.empty()) return;
    }

    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const int n = static_cast<int>(t->steps.size());
    const int shown = std::clamp(static_cast<int>(avail.x / 230), 1, std::min(6, n));
    ImGui::SameLine(0, 24);
    draw_transport(app, n, shown);

    // The point these iterations come from, over its whole window.
    const size_t pi = static_cast<size_t>(app.timeline_policy) * sw.loads.size() + static_cast<size_t>(app.timeline_load);
    if (current && pi < sw.result.points.size()) {
        const PointResult& pt = sw.result.points[pi];
        ImGui::TextDisabled("%s at %s, whole window: τ %.2f tokens per request per step, %.1f verified, %.0f%% of them wasted, "
                            "R %.1f, B %.0f, per-user p90 %.1f tok/s, %s tok/s/GPU",
                            t->policy.c_str(), load_label(sw, app.timeline_load).c_str(), pt.tau, pt.mean_verified,
                            100 * pt.waste, pt.mean_running, pt.mean_batch_tokens, pt.per_user.p90, tick_label(pt.throughput).c_str());
    }
    ImGui::TextWrapped("As load rises the scheduler cuts verification: every verified token costs forward time the "
                       "whole batch pays, so it verifies only drafts likely to survive (grey: drafted, not verified; "
                       "red: verified and thrown away).");
    draw_legend(t->conf_read);
    draw_overview(app, *t, shown, 36);
    ImGui::Spacing();
    const ImVec2 rest = ImGui::GetContentRegionAvail();
    draw_grids(*t, app.timeline_step, shown, ImVec2(rest.x, std::max(rest.y, 200.0f)));
}

}  // namespace sp
