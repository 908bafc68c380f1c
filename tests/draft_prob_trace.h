// draft_prob_trace.h: a greedy trace whose positions record draft_prob,
// written through the trace store's API, for the suites that run the
// draft-prob policy on replayed acceptance (test_sim, test_live). No
// committed trace records draft_prob yet (they predate schema 3).
#pragma once

#include <cmath>
#include <string>

#include "traces/rng.h"
#include "traces/trace_db.h"

// One complete run of n_requests requests (domain "code", prompt_len tokens,
// outputs of output_min..output_max, gamma 4). Each draft records a draft
// probability q from {0.55, 0.9, 0.99, 0.999} and is accepted with a chance
// that q does not predict (0.7, 0.9, 0.5, 0.3), so an estimator has to learn
// that the surest-looking drafts fail most. Deterministic in its arguments.
// With conf, the run is a DSpark's and its positions also record
// confidences c from {0.2, 0.5, 0.8, 0.95} drawn apart from q, for the
// confidence policies replayed (conf_logit = logit(c)).
inline void write_draft_prob_trace(const std::string& path, int n_requests, int prompt_len, int output_min,
                                   int output_max, bool conf = false) {
    using namespace sp;
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    Run run;
    run.producer = PRODUCER_ENGINE;
    run.target.name = "tiny";
    run.drafter_kind = conf ? "dspark" : "dflash";
    run.drafter_name = "test";
    run.gpu = "none";
    run.gamma = 4;
    trace_db_begin_run(db, run);
    const float q_of[] = {0.55f, 0.9f, 0.99f, 0.999f};
    const double accept_of[] = {0.7, 0.9, 0.5, 0.3};
    for (int i = 0; i < n_requests; i++) {
        Request req;
        req.run_id = run.id;
        req.idx = i;
        req.domain = "code";
        req.prompt_len = prompt_len;
        req.output_len = output_min + int(rng_hash(5, 1, uint64_t(i)) % uint64_t(output_max - output_min + 1));
        trace_db_append_request(db, req);
        Positions p;
        p.request_id = req.id;
        p.gamma = run.gamma;
        p.n = req.output_len;
        p.beta.assign(size_t(p.n) * size_t(p.gamma), 0.0f);
        p.draft_prob = p.beta;
        if (conf) p.conf_prob = p.conf_logit = p.beta;
        for (int t = 0; t < p.n; t++)
            for (int k = 0; k < p.gamma && t + k + 1 < p.n; k++) {
                const size_t at = size_t(t) * size_t(p.gamma) + size_t(k);
                const int b = int(rng_hash(5, 2, uint64_t(i), at) % 4);
                p.draft_prob[at] = q_of[b];
                p.beta[at] = rng_unit(rng_hash(5, 3, uint64_t(i), at)) < accept_of[b] ? 1.0f : 0.0f;
                if (conf) {
                    const float c_of[] = {0.2f, 0.5f, 0.8f, 0.95f};
                    const float c = c_of[rng_hash(5, 4, uint64_t(i), at) % 4];
                    p.conf_prob[at] = c;
                    p.conf_logit[at] = std::log(c / (1 - c));
                }
            }
        trace_db_append_positions(db, p);
    }
    trace_db_finish_run(db, run.id);
}
