// acceptance.cpp: the four acceptance sources; model in acceptance.h.
#include "simulator/acceptance.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <unordered_map>

#include "traces/rng.h"
#include "traces/trace_stats.h"

namespace sp {

// rng_hash streams of the acceptance draws.
enum { STREAM_COIN = 11, STREAM_SLOT = 12 };

static int domain_index(const std::vector<std::string>& domains, const std::string& name) {
    for (size_t i = 0; i < domains.size(); i++)
        if (domains[i] == name) return static_cast<int>(i);
    return -1;
}

// A pooled rate as a slot probability: NaN (no observed slot) is 0.
static double rate_or_zero(double alpha) { return std::isnan(alpha) ? 0.0 : alpha; }

// The steps source: the recorded steps of the run's requests in the mix,
// and each domain's pooled rates from the verified slots (acceptance.h).
static void load_steps(TraceDb& db, const Run& run, bool all, AcceptanceData& a) {
    std::unordered_map<int64_t, std::vector<std::pair<uint8_t, uint8_t>>> steps;  // request id -> (verified, accepted)
    trace_db_for_each_step(db, run.id, [&](const Step& st) {
        steps[st.request_id].emplace_back(static_cast<uint8_t>(st.verify_len), static_cast<uint8_t>(st.n_accepted));
    });
    std::vector<StepStats> stats(a.domains.size(), step_stats_start(run.gamma));
    for (const Request& q : trace_db_requests(db, run.id)) {
        const int d = all ? 0 : domain_index(a.domains, q.domain);
        auto it = steps.find(q.id);
        if (d < 0 || it == steps.end()) continue;
        TraceRequest tr{d, q.prompt_len, q.output_len, 0, a.step_v.size(), static_cast<int>(it->second.size())};
        a.by_domain[static_cast<size_t>(d)].push_back(static_cast<int>(a.requests.size()));
        a.requests.push_back(tr);
        for (auto [v, acc] : it->second) {
            a.step_v.push_back(v);
            a.step_a.push_back(acc);
            Step st;
            st.verify_len = v;
            st.n_accepted = acc;
            step_stats_add(stats[static_cast<size_t>(d)], st);
        }
    }
    for (StepStats& s : stats) {
        step_stats_finish(s);
        std::vector<double> al;
        std::vector<float> c;
        for (double x : s.alpha) {
            al.push_back(rate_or_zero(x));
            c.push_back(static_cast<float>(al.back()));
        }
        a.alpha.push_back(al);
        a.fallback_conf.push_back(c);
    }
}

AcceptanceData acceptance_load(const Scenario& sc, bool with_logits) {
    AcceptanceData a;
    a.kind = sc.acceptance.kind;
    a.gamma = sc.engine.gamma;
    a.seed = sc.seed;
    a.kappa = sc.acceptance.kappa;
    double total = 0;
    for (const DomainMix& d : sc.workload.mix) {
        a.domains.push_back(d.domain);
        total += d.weight;
        a.domain_cdf.push_back(total);
    }
    for (double& c : a.domain_cdf) c /= total;
    a.domain_cdf.back() = 1.0;

    if (a.kind == ACCEPT_PARAMETRIC)
        for (const DomainMix& d : sc.workload.mix) a.alpha.push_back(d.alpha);
    if (a.kind == ACCEPT_IID) a.alpha.assign(a.domains.size(), std::vector<double>(a.gamma, sc.acceptance.alpha));

    for (const std::vector<double>& alphas : a.alpha) {
        a.conf_tables.emplace_back();
        for (double al : alphas) a.conf_tables.back().push_back(conf_table(al, a.kappa));
    }

    bool need_trace = a.kind == ACCEPT_TRACE || a.kind == ACCEPT_STEPS || sc.workload.lengths == LENGTHS_TRACE;
    if (!need_trace) return a;

    TraceDb db = trace_db_open(sc.acceptance.trace_path, TRACE_READ);
    int64_t run_id = sc.acceptance.run_id;
    if (run_id == 0) {  // the scenario loader checked that one exists
        for (const Run& r : trace_db_runs(db))
            if (r.complete || run_id == 0) {
                run_id = r.id;
                if (r.complete) break;
            }
    }
    Run run = trace_db_run(db, run_id);
    a.trace_gamma = run.gamma;
    a.by_domain.assign(a.domains.size(), {});
    // A workload domain "all" with no such trace domain takes every request.
    bool all = a.domains.size() == 1 && domain_index(a.domains, "all") == 0;
    if (a.kind == ACCEPT_STEPS) {
        load_steps(db, run, all, a);
        return a;
    }
    std::vector<AcceptanceSums> sums(a.domains.size(), acceptance_sums(run.gamma));
    Positions p;
    std::vector<std::pair<size_t, std::vector<uint8_t>>> partial;  // (request index, verified) of rows with unobserved slots
    for (const Request& q : trace_db_requests(db, run_id)) {
        int d = all ? 0 : domain_index(a.domains, q.domain);
        if (d < 0 || !trace_db_positions(db, q.id, &p)) continue;
        TraceRequest tr{d, q.prompt_len, q.output_len, a.beta.size()};
        a.by_domain[static_cast<size_t>(d)].push_back(static_cast<int>(a.requests.size()));
        a.requests.push_back(tr);
        a.beta.insert(a.beta.end(), p.beta.begin(), p.beta.end());
        if (p.has_confidence()) a.conf.insert(a.conf.end(), p.conf_prob.begin(), p.conf_prob.end());
        if (with_logits) a.conf_logit.insert(a.conf_logit.end(), p.conf_logit.begin(), p.conf_logit.end());
        a.draft_prob.insert(a.draft_prob.end(), p.draft_prob.begin(), p.draft_prob.end());
        acceptance_add(sums[static_cast<size_t>(d)], p);
        if (!p.verified.empty()) partial.emplace_back(a.requests.size() - 1, p.verified);
    }
    // Unobserved slots are no rejections: they take the domain's pooled rate
    // of the observed ones, as probability and as confidence.
    for (auto& [i, verified] : partial) {
        const TraceRequest& tr = a.requests[i];
        const AcceptanceStats st = acceptance_finish(sums[static_cast<size_t>(tr.domain)], "");
        const size_t G = static_cast<size_t>(run.gamma);
        for (size_t t = 0; t < verified.size(); t++)
            for (size_t k = verified[t]; k < G; k++) {
                const float rate = static_cast<float>(rate_or_zero(st.alpha[k]));
                a.beta[tr.offset + t * G + k] = rate;
                if (a.conf.size() == a.beta.size()) a.conf[tr.offset + t * G + k] = rate;
            }
    }
    if (a.conf_logit.size() != a.beta.size()) std::vector<float>().swap(a.conf_logit);  // none, or a mixed run
    if (a.draft_prob.size() != a.beta.size()) std::vector<float>().swap(a.draft_prob);
    if (a.conf.size() != a.beta.size()) {
        // No confidence head (or a mixed run): confidence-driven policies see
        // each domain's pooled conditional acceptance instead.
        a.conf.clear();
        for (size_t d = 0; d < a.domains.size(); d++) {
            AcceptanceStats st = acceptance_finish(sums[d], a.domains[d]);
            std::vector<float> c(static_cast<size_t>(a.gamma));
            for (int k = 0; k < a.gamma; k++)
                c[static_cast<size_t>(k)] = std::isnan(st.alpha[static_cast<size_t>(k)])
                                                ? 0.0f
                                                : static_cast<float>(st.alpha[static_cast<size_t>(k)]);
            a.fallback_conf.push_back(c);
        }
    }
    return a;
}

void acceptance_draw(const AcceptanceData& a, uint64_t key, int domain, int trace_idx, int t, int step, int from,
                     int to, SlotDraws* out) {
    if (a.kind == ACCEPT_STEPS) {
        const TraceRequest& tr = a.requests[static_cast<size_t>(trace_idx)];
        const size_t at = tr.step_offset + static_cast<size_t>(step % tr.n_steps);
        const int v = a.step_v[at], acc = a.step_a[at];
        const std::vector<double>& alpha = a.alpha[static_cast<size_t>(tr.domain)];
        for (int k = from; k < to; k++) {
            const double rate = alpha[static_cast<size_t>(k)];
            // recorded accepts, then the recorded rejection, or past v the pooled rate
            out->beta[k] = k < acc ? 1.0f : acc < v ? 0.0f : static_cast<float>(rate);
            out->conf[k] = static_cast<float>(rate);
        }
        return;
    }
    if (a.kind == ACCEPT_TRACE) {
        const TraceRequest& tr = a.requests[static_cast<size_t>(trace_idx)];
        int row = tr.output_len > 0 ? t % tr.output_len : 0;
        size_t at = tr.offset + static_cast<size_t>(row) * static_cast<size_t>(a.trace_gamma);
        for (int k = from; k < to; k++) {
            out->beta[k] = a.beta[at + static_cast<size_t>(k)];
            out->conf[k] = a.conf.empty() ? a.fallback_conf[static_cast<size_t>(tr.domain)][static_cast<size_t>(k)]
                                          : a.conf[at + static_cast<size_t>(k)];
        }
        return;
    }
    const std::vector<ConfTable>& tables = a.conf_tables[static_cast<size_t>(domain)];
    for (int k = from; k < to; k++) {
        uint64_t tk = static_cast<uint64_t>(t) * 64 + static_cast<uint64_t>(k);
        // synth_slot_table's draw, without the raw logit the simulator never reads
        double c = conf_table_sample(tables[static_cast<size_t>(k)], rng_unit(rng_hash(a.seed, STREAM_SLOT, key, tk)));
        out->conf[k] = static_cast<float>(c);
        out->beta[k] = rng_unit(rng_hash(a.seed, STREAM_COIN, key, tk)) < c ? 1.0f : 0.0f;
    }
}

int acceptance_count(const AcceptanceData& a, uint64_t key, int t, int ell, const SlotDraws& d) {
    int n = 0;
    for (int k = 0; k < ell; k++) {
        float beta = d.beta[k];
        bool ok;
        if ((a.kind != ACCEPT_TRACE && a.kind != ACCEPT_STEPS) || beta <= 0.0f || beta >= 1.0f) {
            ok = beta >= 1.0f;  // 0/1 outcomes need no coin
        } else {
            uint64_t bits = rng_hash(a.seed, STREAM_COIN, key, static_cast<uint64_t>(t) * 64 + static_cast<uint64_t>(k));
            ok = rng_unit(bits) < beta;
        }
        if (!ok) break;
        n++;
    }
    return n;
}

void acceptance_draft_prob(const AcceptanceData& a, int trace_idx, int t, float* out) {
    assert(!a.draft_prob.empty() && "acceptance_draft_prob: the trace recorded no draft_prob");
    const TraceRequest& tr = a.requests[static_cast<size_t>(trace_idx)];
    int row = tr.output_len > 0 ? t % tr.output_len : 0;
    size_t at = tr.offset + static_cast<size_t>(row) * static_cast<size_t>(a.trace_gamma);
    std::copy_n(a.draft_prob.begin() + static_cast<long>(at), a.gamma, out);
}

void acceptance_check_policies(const Scenario& sc, const AcceptanceData& a, const std::vector<Policy>& policies) {
    for (const Policy& p : policies) {
        if (p.kind != POLICY_DRAFT_PROB || (a.kind == ACCEPT_TRACE && !a.draft_prob.empty())) continue;
        if (a.kind != ACCEPT_TRACE)
            throw Error(sc.path + ": acceptance.source: policy draft-prob reads each draft's recorded probability, "
                        "which only a trace has (source \"trace\" with positions.draft_prob); this source is \"" +
                        std::string(a.kind == ACCEPT_IID ? "iid" : a.kind == ACCEPT_STEPS ? "steps" : "parametric") + "\"");
        throw Error(sc.path + ": acceptance.trace: policy draft-prob reads positions.draft_prob, which " +
                    sc.acceptance.trace_path + " does not record for every request of its run (captured before "
                    "schema 3, synthetic or imported without it); capture it again");
    }
}

}  // namespace sp
