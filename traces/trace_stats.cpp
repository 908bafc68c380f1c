// trace_stats.cpp: definitions in trace_stats.h.
#include "traces/trace_stats.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace sp {

AcceptanceSums acceptance_sums(int gamma) {
    AcceptanceSums s;
    s.gamma = gamma;
    s.survival_sum.assign(static_cast<size_t>(gamma), 0.0);
    s.at_risk.assign(static_cast<size_t>(gamma), 0.0);
    return s;
}

void acceptance_add(AcceptanceSums& s, const Positions& p) {
    assert(s.gamma == p.gamma && "acceptance_add: positions of another gamma");
    s.at_risk.resize(static_cast<size_t>(s.gamma), 0.0);  // sums built without acceptance_sums start here
    s.n_requests++;
    if (!p.draft_prob.empty()) s.n_draft_prob++;
    const int G = p.gamma;
    // Teacher-forced rows pool full blocks only (the paper's Fig 2 pooling);
    // rows with recorded verified slots pool every slot they observed.
    const int rows = p.verified.empty() ? p.n - G : p.n;
    for (int t = 0; t < rows; t++) {
        const int observed = p.verified.empty() ? G : p.verified[static_cast<size_t>(t)];
        if (observed == 0) continue;
        double prefix = 1;
        for (int k = 0; k < observed; k++) {
            s.at_risk[k] += prefix;
            prefix *= p.beta[static_cast<size_t>(t) * G + k];
            s.survival_sum[k] += prefix;
        }
        s.n_anchors++;
        if (observed < G) s.n_partial++;
    }
}

AcceptanceStats acceptance_finish(const AcceptanceSums& s, const std::string& domain) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    AcceptanceStats a;
    a.domain = domain;
    a.gamma = s.gamma;
    a.n_requests = s.n_requests;
    a.n_anchors = s.n_anchors;
    a.n_draft_prob = s.n_draft_prob;
    a.survival.assign(s.gamma, nan);
    a.alpha.assign(s.gamma, nan);
    a.tau = nan;
    if (s.n_anchors == 0) return a;
    a.tau = 1;
    double product = 1;
    assert(s.at_risk.size() == static_cast<size_t>(s.gamma) && "acceptance_finish: sums without acceptance_add");
    for (int k = 0; k < s.gamma; k++) {
        if (s.at_risk[k] > 0) a.alpha[k] = s.survival_sum[k] / s.at_risk[k];
        // Without partial rows the mean survival is exact and equals the
        // product; with them only the product counts each row where observed.
        product *= s.at_risk[k] > 0 ? a.alpha[k] : 0.0;
        a.survival[k] = s.n_partial == 0 ? s.survival_sum[k] / static_cast<double>(s.n_anchors) : product;
        a.tau += a.survival[k];
    }
    return a;
}

std::vector<AcceptanceStats> trace_acceptance_stats(TraceDb& db, int64_t run_id) {
    Run run = trace_db_run(db, run_id);
    AcceptanceSums all = acceptance_sums(run.gamma);
    std::vector<std::string> names;
    std::vector<AcceptanceSums> by_domain;
    Positions p;
    for (const Request& q : trace_db_requests(db, run_id)) {
        if (!trace_db_positions(db, q.id, &p)) continue;
        size_t d = 0;
        while (d < names.size() && names[d] != q.domain) d++;
        if (d == names.size()) {
            names.push_back(q.domain);
            by_domain.push_back(acceptance_sums(run.gamma));
        }
        acceptance_add(all, p);
        acceptance_add(by_domain[d], p);
    }
    std::vector<AcceptanceStats> out{acceptance_finish(all, "all")};
    for (size_t d = 0; d < names.size(); d++) out.push_back(acceptance_finish(by_domain[d], names[d]));
    return out;
}

// While adding, tau, mean_verify_len and mean_batch hold sums and alpha
// holds the accept counts; step_stats_finish turns them into means and rates.
StepStats step_stats_start(int gamma) {
    StepStats s;
    s.alpha.assign(static_cast<size_t>(gamma), 0.0);
    s.at_risk.assign(static_cast<size_t>(gamma), 0);
    return s;
}

void step_stats_add(StepStats& s, const Step& st) {
    assert(st.verify_len <= static_cast<int>(s.alpha.size()) && "step_stats_add: verify_len above gamma");
    s.n_steps++;
    s.tau += st.n_accepted + 1;
    s.mean_verify_len += st.verify_len;
    s.mean_batch += st.batch_size;
    s.drafted += st.drafted > 0 ? st.drafted : st.verify_len;
    s.verified += st.verify_len;
    s.accepted += st.n_accepted;
    // slots 1..a accepted, slot a+1 rejected when verified; slots past v unobserved
    const int reached = std::min(st.verify_len, st.n_accepted + 1);
    for (int k = 0; k < reached; k++) s.at_risk[static_cast<size_t>(k)]++;
    for (int k = 0; k < st.n_accepted; k++) s.alpha[static_cast<size_t>(k)] += 1;
}

void step_stats_finish(StepStats& s) {
    for (size_t k = 0; k < s.alpha.size(); k++)
        s.alpha[k] = s.at_risk[k] > 0 ? s.alpha[k] / static_cast<double>(s.at_risk[k])
                                      : std::numeric_limits<double>::quiet_NaN();
    if (s.n_steps > 0) {
        double n = static_cast<double>(s.n_steps);
        s.tau /= n;
        s.mean_verify_len /= n;
        s.mean_batch /= n;
    }
}

StepStats trace_step_stats(TraceDb& db, int64_t run_id) {
    StepStats s = step_stats_start(trace_db_run(db, run_id).gamma);
    trace_db_for_each_step(db, run_id, [&](const Step& st) { step_stats_add(s, st); });
    step_stats_finish(s);
    return s;
}

}  // namespace sp
