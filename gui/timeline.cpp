// timeline.cpp: the Step timeline's capture and per-iteration arithmetic
// (model in timeline.h).
#include "gui/timeline.h"

#include <algorithm>
#include <deque>

#include "simulator/sim.h"
#include "simulator/workload.h"

namespace sp {

// Copies iterations out of a running point. StepView's arrays belong to the
// simulator and change at the next step, so every field is copied here.
struct TimelineObserver : SimObserver {
    int64_t completions = 0;
    int64_t start_after = 0;                 // completions before recording starts
    int n_steps = 0;
    int gamma = 0;
    std::vector<TimelineStep> steps;         // the recording, once started
    std::deque<TimelineStep> recent;         // the last n_steps before it, for a point that ends early
    std::vector<int64_t> hist;

    void on_complete(const CompletedRequest&) override { completions++; }

    void on_step(const StepView& v) override {
        for (int r = 0; r < v.n_decode; r++) hist[static_cast<size_t>(std::clamp(v.accepted[r], 0, gamma))]++;
        // Prefill-only iterations have nothing to draw on the grid.
        if (v.n_decode == 0 || static_cast<int>(steps.size()) >= n_steps) return;
        TimelineStep s;
        s.start_ns = v.start_ns;
        s.end_ns = v.end_ns;
        s.gamma = v.gamma;
        s.draft_len = v.draft_len;
        s.batch_tokens = v.batch_tokens;
        s.prefill_tokens = v.prefill_tokens;
        s.draft_s = v.draft_s;
        s.forward_s = v.forward_s;
        const size_t R = static_cast<size_t>(v.n_decode);
        s.keys.assign(v.keys, v.keys + R);
        s.ell.assign(v.ell, v.ell + R);
        s.accepted.assign(v.accepted, v.accepted + R);
        s.conf.assign(v.conf, v.conf + R * static_cast<size_t>(v.gamma));
        if (completions >= start_after) {
            steps.push_back(std::move(s));
        } else {
            recent.push_back(std::move(s));
            if (static_cast<int>(recent.size()) > n_steps) recent.pop_front();
        }
    }
};

TimelineOutput timeline_capture_point(const Scenario& sc, const AcceptanceData& acc, const Policy& policy,
                                      double load, int n_steps) {
    TimelineObserver obs;
    obs.n_steps = std::max(1, n_steps);
    obs.gamma = sc.engine.gamma;
    const WindowSize ws = workload_window(sc.workload, load);  // the window's first requests, at least
    obs.start_after = static_cast<int64_t>(ws.warmup) + ws.requests / 2;
    obs.hist.assign(static_cast<size_t>(sc.engine.gamma + 1), 0);
    sim_run_point(sc, acc, policy, load, &obs);

    TimelineOutput out;
    out.policy = policy.name;
    out.load = load;
    out.token_budget = sc.engine.max_batch_tokens;
    out.conf_read = policy.kind == POLICY_THRESHOLD || policy.kind == POLICY_DSPARK ||
                    policy.kind == POLICY_DSPARK_ASYNC;
    out.accepted_hist = std::move(obs.hist);
    // A short point (few requests) may end before n_steps iterations follow
    // the middle; the ones just before it fill the view, still consecutive.
    const size_t missing = static_cast<size_t>(obs.n_steps) - std::min(obs.steps.size(), static_cast<size_t>(obs.n_steps));
    const size_t take = std::min(missing, obs.recent.size());
    out.steps.assign(obs.recent.end() - static_cast<std::ptrdiff_t>(take), obs.recent.end());
    for (TimelineStep& s : obs.steps) out.steps.push_back(std::move(s));
    return out;
}

int timeline_requests(const TimelineStep& s) { return static_cast<int>(s.ell.size()); }

double timeline_step_s(const TimelineStep& s) { return s.draft_s + s.forward_s; }

double timeline_tau(const TimelineStep& s) {
    double tau = 0;
    const size_t G = static_cast<size_t>(s.gamma);
    for (size_t r = 0; r < s.ell.size(); r++) {
        double survival = 1, sum = 1;
        const int ell = std::min(s.ell[r], s.gamma);
        for (int j = 0; j < ell && (r + 1) * G <= s.conf.size(); j++) {
            survival *= s.conf[r * G + static_cast<size_t>(j)];
            sum += survival;
        }
        tau += sum;
    }
    return tau;
}

int64_t timeline_emitted(const TimelineStep& s) {
    int64_t n = 0;
    for (int a : s.accepted) n += a + 1;
    return n;
}

int64_t timeline_verified(const TimelineStep& s) {
    int64_t n = 0;
    for (int l : s.ell) n += 1 + l;
    return n;
}

int64_t timeline_wasted(const TimelineStep& s) {
    int64_t n = 0;
    for (size_t r = 0; r < s.ell.size() && r < s.accepted.size(); r++) n += s.ell[r] - s.accepted[r];
    return n;
}

}  // namespace sp
