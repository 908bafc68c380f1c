// trace_stats.cpp: definitions in trace_stats.h.
#include "traces/trace_stats.h"

#include <cassert>
#include <cmath>
#include <limits>

namespace sp {

void acceptance_add(AcceptanceSums& s, const Positions& p) {
    assert(s.gamma == p.gamma && "acceptance_add: positions of another gamma");
    s.n_requests++;
    if (!p.draft_prob.empty()) s.n_draft_prob++;
    const int G = p.gamma;
    for (int t = 0; t + G < p.n; t++) {
        double prefix = 1;
        for (int k = 0; k < G; k++) {
            prefix *= p.beta[static_cast<size_t>(t) * G + k];
            s.survival_sum[k] += prefix;
        }
        s.n_anchors++;
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
    double prev = static_cast<double>(s.n_anchors);
    for (int k = 0; k < s.gamma; k++) {
        a.survival[k] = s.survival_sum[k] / static_cast<double>(s.n_anchors);
        if (prev > 0) a.alpha[k] = s.survival_sum[k] / prev;
        prev = s.survival_sum[k];
        a.tau += a.survival[k];
    }
    return a;
}

std::vector<AcceptanceStats> trace_acceptance_stats(TraceDb& db, int64_t run_id) {
    Run run = trace_db_run(db, run_id);
    AcceptanceSums all{run.gamma, 0, 0, std::vector<double>(run.gamma, 0.0)};
    std::vector<std::string> names;
    std::vector<AcceptanceSums> by_domain;
    Positions p;
    for (const Request& q : trace_db_requests(db, run_id)) {
        if (!trace_db_positions(db, q.id, &p)) continue;
        size_t d = 0;
        while (d < names.size() && names[d] != q.domain) d++;
        if (d == names.size()) {
            names.push_back(q.domain);
            by_domain.push_back({run.gamma, 0, 0, std::vector<double>(run.gamma, 0.0)});
        }
        acceptance_add(all, p);
        acceptance_add(by_domain[d], p);
    }
    std::vector<AcceptanceStats> out{acceptance_finish(all, "all")};
    for (size_t d = 0; d < names.size(); d++) out.push_back(acceptance_finish(by_domain[d], names[d]));
    return out;
}

StepStats trace_step_stats(TraceDb& db, int64_t run_id) {
    StepStats s;
    double tokens = 0, verify = 0, batch = 0;
    trace_db_for_each_step(db, run_id, [&](const Step& st) {
        s.n_steps++;
        tokens += st.n_accepted + 1;
        verify += st.verify_len;
        batch += st.batch_size;
    });
    if (s.n_steps > 0) {
        double n = static_cast<double>(s.n_steps);
        s.tau = tokens / n;
        s.mean_verify_len = verify / n;
        s.mean_batch = batch / n;
    }
    return s;
}

}  // namespace sp
