// workload.cpp: request attributes, think times and arrival gaps; see workload.h.
#include "simulator/workload.h"

#include <algorithm>
#include <cassert>
#include <climits>
#include <cmath>

namespace sp {

enum { STREAM_TRACE = 21, STREAM_LENGTHS = 22, STREAM_THINK = 23 };

int length_draw(const LengthDist& d, Rng& r) {
    switch (d.kind) {
    case DIST_FIXED: return d.value;
    case DIST_UNIFORM: return static_cast<int>(rng_range(r, d.min, d.max));
    case DIST_LOGNORMAL: {
        double v = std::round(d.median * std::exp(d.sigma * rng_normal(r)));
        return static_cast<int>(std::clamp(v, static_cast<double>(d.min), static_cast<double>(d.max)));
    }
    }
    return d.value;
}

WindowSize workload_window(const Workload& w, double load) {
    WindowSize ws;
    const int64_t users = w.mode == WORKLOAD_CLOSED ? static_cast<int64_t>(load) : 0;
    const int64_t warmup_need = std::max<int64_t>(WARMUP_MIN, WARMUP_PER_USER * users);
    const int64_t requests_need = std::max<int64_t>(WINDOW_MIN, WINDOW_PER_USER * users);
    ws.warmup = w.warmup >= 0 ? w.warmup : static_cast<int>(std::min<int64_t>(warmup_need, INT32_MAX));
    ws.requests = w.requests > 0 ? w.requests : static_cast<int>(std::min<int64_t>(requests_need, INT32_MAX));
    ws.sized = w.requests <= 0;
    ws.short_window = ws.warmup < WARMUP_PER_USER * users || ws.requests < WINDOW_PER_USER * users;
    return ws;
}

int length_max(const LengthDist& d) { return d.kind == DIST_FIXED ? d.value : d.max; }

RequestSpec workload_request(const Scenario& sc, const AcceptanceData& acc, uint64_t key) {
    const Workload& w = sc.workload;
    RequestSpec spec;
    // A request log's row: the arrival's own under the log's arrivals (the
    // key is the arrival index), else a draw from the rows, each equally likely.
    const LogRequest* row = nullptr;
    if (w.lengths == LENGTHS_LOG) {
        const std::vector<LogRequest>& rows = w.log->requests;
        Rng len = rng_seed(rng_hash(sc.seed, STREAM_LENGTHS, key));
        row = &rows[workload_log_arrivals(w) ? key % rows.size() : rng_below(len, rows.size())];
    }
    Rng pick = rng_seed(rng_hash(sc.seed, STREAM_TRACE, key));
    double u = rng_uniform(pick);
    if (row && row->domain >= 0) {
        spec.domain = row->domain;
    } else {
        while (spec.domain + 1 < static_cast<int>(acc.domain_cdf.size()) &&
               u >= acc.domain_cdf[static_cast<size_t>(spec.domain)])
            spec.domain++;
    }
    if (!acc.requests.empty()) {
        const std::vector<int>& pool = acc.by_domain[static_cast<size_t>(spec.domain)];
        spec.trace_idx = pool[rng_below(pick, pool.size())];
    }
    if (row) {
        // An empty prompt is prefilled as one token, as an empty output emits one.
        spec.prompt_len = std::max(row->prompt_len, 1);
        spec.output_len = row->output_len;
    } else if (w.lengths == LENGTHS_TRACE) {
        const TraceRequest& tr = acc.requests[static_cast<size_t>(spec.trace_idx)];
        spec.prompt_len = tr.prompt_len;
        spec.output_len = tr.output_len;
    } else {
        Rng len = rng_seed(rng_hash(sc.seed, STREAM_LENGTHS, key));
        spec.prompt_len = length_draw(w.prompt_len, len);
        spec.output_len = length_draw(w.output_len, len);
    }
    // A request emits at least its first token; a zero-length trace output counts as one.
    spec.output_len = std::max(spec.output_len, 1);
    return spec;
}

double workload_log_arrival_s(const Workload& w, double rate, uint64_t index) {
    assert(workload_log_arrivals(w) && w.log->rate > 0 && rate > 0 && "a log's arrivals, at a rate > 0");
    const RequestLogData& log = *w.log;
    const uint64_t n = log.requests.size();
    const double span_s = double(log.span_ns) * 1e-9;
    const double period_s = span_s * double(n) / double(n - 1);
    const double t = double(index / n) * period_s + double(log.requests[index % n].t_ns) * 1e-9;
    return t * (log.rate / rate);
}

double workload_think_s(const Workload& w, uint64_t seed, uint64_t key) {
    if (w.think_time_s <= 0) return 0;
    if (!w.think_exponential) return w.think_time_s;
    Rng r = rng_seed(rng_hash(seed, STREAM_THINK, key));
    return rng_exponential(r, 1 / w.think_time_s);
}

double workload_gap_s(const Workload& w, double rate, Rng& arrivals) {
    if (w.arrival == ARRIVAL_POISSON) return rng_exponential(arrivals, rate);
    return rng_gamma(arrivals, w.burstiness) / (w.burstiness * rate);
}

}  // namespace sp
