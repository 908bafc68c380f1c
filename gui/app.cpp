// app.cpp: AppState's lifecycle (open, save, submit, poll) and the window's
// layout: a menu bar, the Scenario column on the left, the other panels as
// tabs on the right, a status bar at the bottom.
#include "gui/app.h"

#include <imgui.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "gui/readout.h"
#include "gui/scenario_edit.h"

namespace sp {

static constexpr double DEBOUNCE_S = 0.3;   // quiet time after the last edit before a sweep starts

static const char* const PANEL_NAMES[PANEL_COUNT] = {"frontier", "latency", "plan",    "acceptance",
                                                     "timeline", "traces",  "explain", "fidelity"};
static const char* const PANEL_TITLES[PANEL_COUNT] = {"Frontier",      "Latency", "Plan",    "Acceptance",
                                                      "Step timeline", "Traces",  "Explain", "Fidelity"};

const char* panel_name(Panel p) { return PANEL_NAMES[p]; }

bool panel_parse(const std::string& s, Panel* out) {
    for (int i = 0; i < PANEL_COUNT; i++)
        if (s == PANEL_NAMES[i]) {
            *out = static_cast<Panel>(i);
            return true;
        }
    return false;
}

AppState::AppState() : draft(std::make_unique<ScenarioDraft>()) {
    frontier.x_log = false;
    ttft.x_log = tpot.x_log = goodput.x_log = goodput_share.x_log = true;  // loads are roughly geometric (1, 2, 4, ... 256)
    ttft.y_log = true;   // TTFT spans 20 ms at low load to seconds once requests queue
    worker_start(sweep_worker);
    worker_start(timeline_worker);
    worker_start(plan_worker);
}

AppState::~AppState() {
    worker_stop(sweep_worker);
    worker_stop(timeline_worker);
    worker_stop(plan_worker);
}

std::string load_text(const Scenario& sc, double load) {
    char buf[48];
    if (sc.workload.mode == WORKLOAD_OPEN)
        std::snprintf(buf, sizeof buf, "%s req/s", value_label(load).c_str());
    else
        std::snprintf(buf, sizeof buf, "%.0f user%s", load, load == 1 ? "" : "s");
    return buf;
}

// --- files

bool app_open_scenario(AppState& app, const std::string& path) {
    try {
        ScenarioDraft d = draft_load(path);
        *app.draft = std::move(d);
    } catch (const std::exception& e) {
        app.file_error = e.what();
        return false;
    }
    app.scenario_path = path;
    app.file_error.clear();
    app.status = "opened " + path;
    app_submit_now(app);
    return true;
}

bool app_save_scenario(AppState& app, const std::string& path) {
    try {
        draft_save(*app.draft, path);
    } catch (const std::exception& e) {
        app.file_error = e.what();
        return false;
    }
    app.scenario_path = path;
    app.file_error.clear();
    app.status = "saved " + path;
    return true;
}

bool app_open_traces(AppState& app, const std::string& path) {
    TracesView v;
    v.path = path;
    try {
        TraceDb db = trace_db_open(path, TRACE_READ);
        v.counts = trace_db_counts(db);
        for (Run& r : trace_db_runs(db)) {
            TraceRunInfo info;
            info.n_requests = static_cast<int64_t>(trace_db_requests(db, r.id).size());
            info.stats = trace_acceptance_stats(db, r.id);
            info.steps = trace_step_stats(db, r.id);
            info.run = std::move(r);
            v.runs.push_back(std::move(info));
        }
    } catch (const std::exception& e) {
        app.traces.error = e.what();   // the database shown before stays
        return false;
    }
    app.traces = std::move(v);
    app.status = "opened " + path;
    return true;
}

bool app_open_live(AppState& app, const std::string& path) {
    try {
        app.live = std::make_shared<const LiveRun>(live_run_load(path));
    } catch (const std::exception& e) {
        app.live_error = e.what();  // the live run shown before stays
        return false;
    }
    app.live_error.clear();
    app.live_loads++;
    app.status = "opened live results " + path;
    return true;
}

void app_fidelity_update(AppState& app) {
    if (!app.sweep || !app.live) return;
    if (app.fidelity_sweep == app.sweep.get() && app.fidelity_live_loads == app.live_loads) return;
    app.fidelity_sweep = app.sweep.get();
    app.fidelity_live_loads = app.live_loads;
    app.fidelity = Comparison{};
    app.fidelity_error.clear();
    try {
        app.fidelity = fidelity_compare(app.sweep->scenario, app.sweep->result, *app.live);
    } catch (const std::exception& e) {
        app.fidelity_error = e.what();
    }
}

// --- the sweep and the timeline workers

void app_mark_edited(AppState& app) {
    app.generation++;
    app.dirty = true;
    app.edit_time = ImGui::GetCurrentContext() ? ImGui::GetTime() : 0.0;
}

void app_submit_now(AppState& app) {
    app.dirty = false;
    const uint64_t gen = ++app.generation;
    const std::string text = draft_text(*app.draft), path = app.draft->path;
    AppState* a = &app;
    worker_submit(app.sweep_worker, [a, gen, text, path](const std::atomic<bool>& cancel) {
        try {
            auto out = std::make_shared<SweepOutput>();
            out->generation = gen;
            out->scenario = scenario_parse(text, path);
            const Scenario& sc = out->scenario;
            mailbox_put(a->error_box, std::make_shared<const std::string>());   // it loads: clear the error
            out->acceptance = acceptance_load(sc, /*with_logits=*/true);
            const uint64_t digest = reliability_digest(out->acceptance);
            if (!a->reliability_cached || a->reliability_cache_digest != digest) {
                a->reliability_cache = reliability_compute(out->acceptance);   // the STS fit: seconds on a big run
                a->reliability_cache_digest = digest;
                a->reliability_cached = true;
            }
            out->reliability = a->reliability_cache;
            std::vector<float>().swap(out->acceptance.conf_logit);   // binned; nothing else reads them
            if (sc.workload.mode == WORKLOAD_CLOSED)
                for (int c : sc.workload.concurrency) out->loads.push_back(c);
            else
                out->loads = sc.workload.rates;
            if (sc.acceptance.kind == ACCEPT_TRACE) {
                TraceDb db = trace_db_open(sc.acceptance.trace_path, TRACE_READ);
                out->trace_stats = trace_acceptance_stats(db, sc.acceptance.run_id);
            }
            if (cancel) return;
            a->progress.done = 0;
            a->progress.total = static_cast<int>(sc.policies.size() * out->loads.size());
            // one core fewer than the machine has, so the UI thread keeps one to draw on
            const int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
            out->result = sweep_run(sc, out->acceptance, sc.policies, out->loads, threads, &a->progress.done, &cancel);
            a->progress.total = 0;
            if (out->result.cancelled) return;
            mailbox_put(a->sweep_box, std::shared_ptr<const SweepOutput>(std::move(out)));
        } catch (const std::exception& e) {
            a->progress.total = 0;
            mailbox_put(a->error_box, std::make_shared<const std::string>(e.what()));
        }
    });
}

// The timeline's default choice: DSpark's scheduler (the view exists to show
// it cutting verification) at the middle load.
void app_timeline_defaults(AppState& app) {
    const SweepOutput& s = *app.sweep;
    const int np = static_cast<int>(s.scenario.policies.size()), nl = static_cast<int>(s.loads.size());
    if (app.timeline_policy < 0 || app.timeline_policy >= np) {
        app.timeline_policy = np - 1;
        for (int p = 0; p < np; p++)
            if (s.scenario.policies[p].kind == POLICY_DSPARK) app.timeline_policy = p;
    }
    if (app.timeline_load < 0 || app.timeline_load >= nl) app.timeline_load = nl / 2;
}

void app_request_timeline(AppState& app) {
    if (!app.sweep || app.sweep->loads.empty()) return;
    app_timeline_defaults(app);
    std::shared_ptr<const SweepOutput> s = app.sweep;
    const int p = app.timeline_policy, l = app.timeline_load;
    AppState* a = &app;
    app.timeline_pending = true;
    worker_submit(app.timeline_worker, [a, s, p, l](const std::atomic<bool>& cancel) {
        auto out = std::make_shared<TimelineOutput>(timeline_capture(*s, p, l, cancel));
        if (!cancel) mailbox_put(a->timeline_box, std::shared_ptr<const TimelineOutput>(std::move(out)));
    });
}

// plan_fleets (simulator/plan.h) for the current sweep's scenario with the
// panel's users, SLOs and price, on the plan worker. plan_fleets cannot be
// interrupted: a stale plan runs to its end and the worker drops it.
void app_request_plan(AppState& app) {
    if (!app.sweep) return;
    std::shared_ptr<const SweepOutput> s = app.sweep;
    const PlanInputs in = app.plan_inputs;
    app.plan_requested = in;
    app.plan_requested_generation = s->generation;
    app.plan_pending = true;
    AppState* a = &app;
    worker_submit(app.plan_worker, [a, s, in](const std::atomic<bool>& cancel) {
        if (cancel) return;
        auto out = std::make_shared<PlanOutput>();
        out->generation = s->generation;
        out->inputs = in;
        const auto t0 = std::chrono::steady_clock::now();
        Scenario sc = s->scenario;
        sc.slo = in.slo;
        out->error = plan_refusal(sc, in.users);
        if (out->error.empty()) {
            try {
                const int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
                out->fleets = plan_fleets(sc, s->acceptance, sc.policies, in.users, in.gpu_hour_usd, threads);
            } catch (const std::exception& e) {
                out->error = e.what();
            }
        }
        out->wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!cancel) mailbox_put(a->plan_box, std::shared_ptr<const PlanOutput>(std::move(out)));
    });
}

void app_poll(AppState& app) {
    if (app.dirty && ImGui::GetTime() - app.edit_time >= DEBOUNCE_S) app_submit_now(app);
    if (auto e = mailbox_take(app.error_box)) app.scenario_error = *e;
    if (auto s = mailbox_take(app.sweep_box)) {
        app.sweep = std::move(s);
        app.fidelity_sweep = nullptr;  // recompared at the next app_fidelity_update
        for (PlotView* v : {&app.frontier, &app.ttft, &app.tpot, &app.goodput, &app.goodput_share, &app.alpha, &app.tau,
                            &app.accepted_len, &app.reliability})
            v->fitted = false;
        if (app.compare_a >= static_cast<int>(app.sweep->scenario.policies.size())) app.compare_a = -1;
        if (app.compare_b >= static_cast<int>(app.sweep->scenario.policies.size())) app.compare_b = -1;
        app.timeline_step = 0;
        app_request_timeline(app);
        // The Traces panel follows the scenario's trace until a database is opened by hand.
        const Scenario& sc = app.sweep->scenario;
        if (app.traces.path.empty() && !sc.acceptance.trace_path.empty())
            app_open_traces(app, sc.acceptance.trace_path);
    }
    if (auto p = mailbox_take(app.plan_box)) {
        app.plan = std::move(p);
        app.plan_gpus.fitted = false;
        app.plan_pending = app.plan->inputs != app.plan_requested || app.plan->generation != app.plan_requested_generation;
    }
    if (auto t = mailbox_take(app.timeline_box)) {
        app.timeline = std::move(t);
        app.timeline_pending = false;
        app.accepted_len.fitted = false;
    }
}

bool app_idle(AppState& app) {
    return !app.dirty && !app.sweep_worker.busy && !app.timeline_worker.busy && !app.timeline_pending &&
           !app.plan_worker.busy && !app.plan_pending;
}

// --- the window

static void file_dialog(AppState& app) {
    static const char* const titles[] = {"", "Open scenario", "Save scenario as", "Open trace database",
                                         "Open live results (specplan live --json)"};
    if (app.dialog == DIALOG_NONE) return;
    ImGui::OpenPopup(titles[app.dialog]);
    ImGui::SetNextWindowSize(ImVec2(560, 0), ImGuiCond_Appearing);
    if (!ImGui::BeginPopupModal(titles[app.dialog], nullptr, ImGuiWindowFlags_AlwaysAutoResize)) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", app.dialog_path.c_str());
    ImGui::SetNextItemWidth(520);
    bool enter = ImGui::InputText("##path", buf, sizeof buf, ImGuiInputTextFlags_EnterReturnsTrue);
    app.dialog_path = buf;
    // The files beside the current one, to pick with a click.
    namespace fs = std::filesystem;
    const char* ext = app.dialog == DIALOG_OPEN_TRACES ? ".specdb" : app.dialog == DIALOG_OPEN_LIVE ? ".json" : ".toml";
    fs::path dir = fs::path(app.dialog_path).parent_path();
    std::error_code ec;
    if (dir.empty()) dir = ".";
    if (fs::is_directory(dir, ec)) {
        std::vector<std::string> files;
        for (const fs::directory_entry& e : fs::directory_iterator(dir, ec))
            if (e.path().extension() == ext) files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        ImGui::BeginChild("files", ImVec2(520, 140), true);
        for (const std::string& f : files)
            if (ImGui::Selectable(f.c_str(), f == app.dialog_path)) app.dialog_path = f;
        ImGui::EndChild();
    }
    if (!app.file_error.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", app.file_error.c_str());
    bool ok = ImGui::Button("OK") || enter;
    ImGui::SameLine();
    if (ImGui::Button("Cancel")) {
        app.dialog = DIALOG_NONE;
        app.file_error.clear();
        ImGui::CloseCurrentPopup();
    } else if (ok) {
        bool done = false;
        switch (app.dialog) {
            case DIALOG_OPEN_SCENARIO: done = app_open_scenario(app, app.dialog_path); break;
            case DIALOG_SAVE_AS: done = app_save_scenario(app, app.dialog_path); break;
            case DIALOG_OPEN_TRACES:
                done = app_open_traces(app, app.dialog_path);
                if (!done) app.file_error = app.traces.error;
                break;
            case DIALOG_OPEN_LIVE:
                done = app_open_live(app, app.dialog_path);
                if (!done) app.file_error = app.live_error;
                break;
            case DIALOG_NONE: break;
        }
        if (done) {
            app.dialog = DIALOG_NONE;
            ImGui::CloseCurrentPopup();
        }
    }
    ImGui::EndPopup();
}

static void menu_bar(AppState& app) {
    if (!ImGui::BeginMenuBar()) return;
    if (ImGui::BeginMenu("File")) {
        if (ImGui::MenuItem("Open scenario...")) {
            app.dialog = DIALOG_OPEN_SCENARIO;
            app.dialog_path = app.scenario_path;
        }
        if (ImGui::MenuItem("Save scenario", nullptr, false, !app.scenario_path.empty()))
            app_save_scenario(app, app.scenario_path);
        if (ImGui::MenuItem("Save scenario as...")) {
            app.dialog = DIALOG_SAVE_AS;
            app.dialog_path = app.scenario_path;
        }
        if (ImGui::MenuItem("Open trace database...")) {
            app.dialog = DIALOG_OPEN_TRACES;
            app.dialog_path = app.traces.path;
        }
        if (ImGui::MenuItem("Open live results...")) {
            app.dialog = DIALOG_OPEN_LIVE;
            app.dialog_path = app.live ? app.live->path : "bench/results/";
        }
        ImGui::Separator();
        if (ImGui::MenuItem("Quit")) app.quit = true;
        ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("View")) {
        for (int i = 0; i < PANEL_COUNT; i++)
            if (ImGui::MenuItem(PANEL_TITLES[i], nullptr, app.panel == i)) {
                app.panel = static_cast<Panel>(i);
                app.select_panel = true;
            }
        ImGui::EndMenu();
    }
    ImGui::TextDisabled("|  %s", app.scenario_path.empty() ? "(no scenario)" : app.scenario_path.c_str());
    ImGui::EndMenuBar();
}

static void status_bar(AppState& app) {
    const int total = app.progress.total, done = app.progress.done;
    if (total > 0) {
        char label[64];
        snprintf(label, sizeof label, "sweep %d / %d points", done, total);
        ImGui::ProgressBar(static_cast<float>(done) / static_cast<float>(total), ImVec2(260, 0), label);
        ImGui::SameLine();
    } else if (app.dirty) {
        ImGui::TextDisabled("edited; re-running shortly");
        ImGui::SameLine();
    } else if (app.sweep) {
        const SweepOutput& s = *app.sweep;
        ImGui::TextDisabled("%s: %zu policies x %zu loads, %.2f s", s.scenario.name.c_str(),
                            s.scenario.policies.size(), s.loads.size(), s.result.wall_s);
        ImGui::SameLine();
    }
    if (!app.scenario_error.empty()) {
        ImGui::TextColored(ImVec4(1, 0.45f, 0.45f, 1), "%s", app.scenario_error.c_str());
        ImGui::SameLine();
    }
    const std::string& msg = plot_export_status.empty() ? app.status : plot_export_status;
    if (!msg.empty()) ImGui::TextDisabled("%s", msg.c_str());
}

void app_frame(AppState& app) {
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(vp->WorkPos);
    ImGui::SetNextWindowSize(vp->WorkSize);
    ImGui::Begin("specplan", nullptr,
                 ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoBringToFrontOnFocus |
                     ImGuiWindowFlags_MenuBar | ImGuiWindowFlags_NoSavedSettings);
    menu_bar(app);
    const float status_h = ImGui::GetFrameHeightWithSpacing() + 4;
    const float left_w = std::clamp(vp->WorkSize.x * 0.26f, 300.0f, 440.0f);
    ImGui::BeginChild("scenario", ImVec2(left_w, -status_h), true);
    panel_scenario(app);
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginChild("panels", ImVec2(0, -status_h), false);
    if (ImGui::BeginTabBar("tabs")) {
        for (int i = 0; i < PANEL_COUNT; i++) {
            ImGuiTabItemFlags f = app.select_panel && app.panel == i ? ImGuiTabItemFlags_SetSelected : 0;
            if (!ImGui::BeginTabItem(PANEL_TITLES[i], nullptr, f)) continue;
            if (!app.select_panel) app.panel = static_cast<Panel>(i);
            ImGui::BeginChild("panel");
            switch (static_cast<Panel>(i)) {
                case PANEL_FRONTIER: panel_frontier(app); break;
                case PANEL_LATENCY: panel_latency(app); break;
                case PANEL_PLAN: panel_plan(app); break;
                case PANEL_ACCEPTANCE: panel_acceptance(app); break;
                case PANEL_TIMELINE: panel_timeline(app); break;
                case PANEL_TRACES: panel_traces(app); break;
                case PANEL_EXPLAIN: panel_explain(app); break;
                case PANEL_FIDELITY: panel_fidelity(app); break;
                case PANEL_COUNT: break;
            }
            ImGui::EndChild();
            ImGui::EndTabItem();
        }
        ImGui::EndTabBar();
    }
    app.select_panel = false;
    ImGui::EndChild();
    status_bar(app);
    file_dialog(app);
    ImGui::End();
}

}  // namespace sp
