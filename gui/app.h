// app.h: the dashboard's whole state (AppState) and its panels, one function
// each. Everything the UI shows is derived from AppState; the simulator runs
// on background Workers and hands back immutable results through Mailboxes,
// so a frame never waits for it.
//
// Flow: the Scenario panel edits a draft (the scenario's TOML table, in
// gui/scenario_edit.h). An edit marks it dirty; 0.3 s after the last edit the
// draft is serialised and submitted to the sweep worker, which validates it
// with the simulator's own loader (scenario_parse), loads the acceptance data
// and runs the sweep, cancelling any stale run. A draft that fails to load
// publishes its error instead; the last good sweep stays on screen.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gui/fidelity.h"
#include "gui/plot.h"
#include "gui/reliability.h"
#include "gui/timeline.h"
#include "gui/worker.h"
#include "simulator/acceptance.h"
#include "simulator/sweep.h"
#include "traces/trace_stats.h"

namespace sp {

struct ScenarioDraft;  // gui/scenario_edit.h

enum Panel {
    PANEL_FRONTIER, PANEL_LATENCY, PANEL_PLAN, PANEL_ACCEPTANCE, PANEL_TIMELINE, PANEL_TRACES, PANEL_EXPLAIN,
    PANEL_FIDELITY, PANEL_COUNT
};

// The file dialog open, if any.
enum Dialog { DIALOG_NONE, DIALOG_OPEN_SCENARIO, DIALOG_SAVE_AS, DIALOG_OPEN_TRACES, DIALOG_OPEN_LIVE };
const char* panel_name(Panel p);             // "frontier", "latency", ... (the --panel names)
bool panel_parse(const std::string& s, Panel* out);

// One finished sweep of a validated scenario. Immutable once published.
struct SweepOutput {
    uint64_t generation = 0;                 // the draft edit it came from
    Scenario scenario;
    AcceptanceData acceptance;               // conf_logit freed once `reliability` is binned
    SweepResult result;                      // policies = scenario.policies, loads from the workload
    std::vector<double> loads;
    // Trace source: the run's statistics, "all" first then per domain
    // (trace_acceptance_stats); empty for parametric and iid sources.
    std::vector<AcceptanceStats> trace_stats;
    Reliability reliability;                 // the trace's confidence head, raw and calibrated; source NONE without one
};

// What the sweep worker reports while it runs and when it fails.
struct SweepProgress {
    std::atomic<int> done{0};                // points finished
    std::atomic<int> total{0};               // points in the running sweep; 0 = none
};

// The Plan panel's question and its answer (plan_fleets on the plan worker):
// how many GPUs each policy needs for `users` users at these SLOs.
struct PlanInputs {
    int users = 2000;
    Slo slo;                                 // the scenario's until edited in the panel
    double gpu_hour_usd = 0;                 // the scenario's plan.gpu_hour_usd until edited
    bool operator==(const PlanInputs& o) const {
        return users == o.users && slo.per_user_tok_s == o.slo.per_user_tok_s && slo.ttft_s == o.slo.ttft_s &&
               slo.tpot_s == o.slo.tpot_s && slo.percentile == o.slo.percentile && gpu_hour_usd == o.gpu_hour_usd;
    }
    bool operator!=(const PlanInputs& o) const { return !(*this == o); }
};
struct PlanOutput {
    uint64_t generation = 0;                 // the sweep whose scenario it planned
    PlanInputs inputs;
    std::vector<FleetPlan> fleets;           // one per policy, the scenario's order
    std::string error;                       // why it could not plan; fleets empty then
    double wall_s = 0;
};

// TimelineStep and TimelineOutput, the Step timeline's capture, are in
// gui/timeline.h (window-free, tested in CI).

// The trace database shown in the Traces panel.
struct TraceRunInfo {
    Run run;
    int64_t n_requests = 0;
    std::vector<AcceptanceStats> stats;      // "all" first, then per domain
    StepStats steps;
};
struct TracesView {
    std::string path;                        // empty: none open
    std::string error;                       // the last open's failure, shown in the panel
    TraceCounts counts;
    std::vector<TraceRunInfo> runs;
    int selected = 0;
};

struct AppState {
    AppState();
    ~AppState();

    // scenario
    std::string scenario_path;               // where the draft was loaded from and saves to
    std::unique_ptr<ScenarioDraft> draft;    // the edited scenario
    uint64_t generation = 0;                 // bumped by every edit
    bool dirty = false;                      // edited since the last submit
    double edit_time = 0;                    // ImGui time of the last edit, for the debounce
    std::string scenario_error;              // why the newest draft did not load; empty when it did
    std::string file_error;                  // the last open/save failure (file dialogs)

    // results
    std::shared_ptr<const SweepOutput> sweep;        // newest good sweep, null until one lands
    std::shared_ptr<const TimelineOutput> timeline;  // newest timeline capture
    Worker sweep_worker, timeline_worker;
    Mailbox<SweepOutput> sweep_box;
    Mailbox<TimelineOutput> timeline_box;
    Mailbox<std::string> error_box;          // the sweep worker's load errors
    SweepProgress progress;
    // The sweep worker's alone: its last reliability diagram, under the
    // reliability_digest of the acceptance data it came from.
    Reliability reliability_cache;
    uint64_t reliability_cache_digest = 0;
    bool reliability_cached = false;
    bool timeline_pending = false;           // a capture for the current selection is running

    // plan
    Worker plan_worker;
    Mailbox<PlanOutput> plan_box;
    std::shared_ptr<const PlanOutput> plan;  // newest answer
    PlanInputs plan_inputs;                  // what the panel asks
    bool plan_custom = false;                // the SLOs or price were edited: a new scenario keeps them
    uint64_t plan_inputs_generation = 0;     // the sweep plan_inputs took the scenario's SLOs from
    PlanInputs plan_requested;               // the last submitted question ...
    uint64_t plan_requested_generation = 0;  // ... and its sweep
    bool plan_pending = false;
    double plan_edit_time = 0;               // ImGui time of the last edit, for the debounce

    // traces
    TracesView traces;
    std::string acc_runs_path;               // the trace whose runs the Scenario panel lists
    std::vector<Run> acc_runs;               // its runs
    std::string acc_runs_error;

    // live run (Fidelity panel, Frontier overlay)
    std::shared_ptr<const LiveRun> live;     // null: none loaded
    std::string live_error;                  // the last load's failure
    uint64_t live_loads = 0;                 // bumped by every successful load
    // The sweep on screen against it, recomputed when either changes.
    Comparison fidelity;
    std::string fidelity_error;              // why they do not compare (no point pairs up, ...)
    const SweepOutput* fidelity_sweep = nullptr;  // what it was computed for; null: stale (a new sweep landed)
    uint64_t fidelity_live_loads = 0;

    // view state
    Panel panel = PANEL_FRONTIER;
    bool select_panel = true;                // select app.panel's tab at the next frame
    Dialog dialog = DIALOG_NONE;
    std::string dialog_path;                 // the path being typed in it
    PlotView frontier, ttft, tpot, goodput;
    PlotView goodput_share;
    PlotView plan_gpus;                      // Plan: GPUs per policy
    PlotView alpha, tau, accepted_len, reliability;
    bool frontier_labels = true, frontier_pareto = true;   // Frontier: label points by load, shade the Pareto set
    float loads_from = 1, loads_to = 256;    // Scenario: the load generator (geometric spacing)
    int loads_points = 12;
    int64_t traces_plotted_run = -1;         // Traces: the run app.trace_alpha was fitted to
    PlotView trace_alpha;                    // Traces panel: the selected run's alpha_k
    int compare_a = -1, compare_b = -1;      // policy indices for the headline; -1 = the scenario's pair
    int timeline_policy = -1, timeline_load = -1;  // indices into the sweep; -1 = default choice
    int timeline_step = 0;                   // first iteration shown
    bool timeline_playing = false;
    double timeline_last_advance = 0;        // ImGui time
    std::string status;                      // one line for the status bar
    bool quit = false;                       // File > Quit
};

// Lifecycle (app.cpp).
bool app_open_scenario(AppState& app, const std::string& path);  // false: app.file_error says why; state kept
bool app_save_scenario(AppState& app, const std::string& path);
bool app_open_traces(AppState& app, const std::string& path);    // false: app.traces.error says why
bool app_open_live(AppState& app, const std::string& path);      // false: app.live_error says why; the last kept
void app_fidelity_update(AppState& app);     // app.fidelity for the current sweep and live run
void app_mark_edited(AppState& app);         // call after changing the draft
void app_submit_now(AppState& app);          // submit the draft without waiting for the debounce
void app_poll(AppState& app);                // once per frame: debounce, take finished results
bool app_idle(AppState& app);                // nothing submitted, running or pending
void app_request_plan(AppState& app);        // plan app.plan_inputs for the current sweep on the plan worker
void app_request_timeline(AppState& app);    // (re)capture the timeline for the current selection
void app_timeline_defaults(AppState& app);   // an unset selection becomes dspark (else the last policy) at the middle load
void app_frame(AppState& app);               // the whole window: menu, scenario column, panel tabs, status

// "64 users" or "2.5 req/s": what one load of the sweep means.
std::string load_text(const Scenario& sc, double load);

// Panels: each draws into the current ImGui window region.
void panel_scenario(AppState& app);
void panel_frontier(AppState& app);
void panel_latency(AppState& app);
void panel_plan(AppState& app);
void panel_acceptance(AppState& app);
void panel_timeline(AppState& app);
void panel_traces(AppState& app);
void panel_explain(AppState& app);
void panel_fidelity(AppState& app);

// Captures the timeline of one point of the sweep (timeline_capture_point on
// its scenario; defined in panel_timeline.cpp); runs on the timeline worker.
// The simulator cannot be interrupted mid-point: cancel is only checked
// before the point starts.
TimelineOutput timeline_capture(const SweepOutput& sweep, int policy, int load, const std::atomic<bool>& cancel);

}  // namespace sp
