// metrics.cpp: the percentile sketch; see metrics.h for its error bound.
#include "simulator/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace sp {

static const double LOG_GROWTH = std::log(Sketch::GROWTH);
static const int N_BUCKETS = static_cast<int>(std::ceil(std::log(Sketch::HI / Sketch::LO) / LOG_GROWTH)) + 1;

static int bucket_of(double v) {
    if (!(v > Sketch::LO)) return 0;
    int b = static_cast<int>(std::log(v / Sketch::LO) / LOG_GROWTH);
    return std::min(b, N_BUCKETS - 1);
}

void sketch_add(Sketch& s, double v, int64_t count) {
    assert(count >= 0 && "sketch_add: a count >= 0");
    if (count == 0) return;
    if (s.counts.empty()) s.counts.assign(static_cast<size_t>(N_BUCKETS), 0);
    s.counts[static_cast<size_t>(bucket_of(v))] += static_cast<uint32_t>(count);
    if (s.n == 0 || v < s.min) s.min = v;
    if (s.n == 0 || v > s.max) s.max = v;
    s.n += count;
    s.sum += v * static_cast<double>(count);
}

double sketch_quantile(const Sketch& s, double q) {
    if (s.n == 0) return 0;
    // nearest rank: the smallest value with at least ceil(q n) values <= it
    int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(s.n))));
    int64_t seen = 0;
    for (int b = 0; b < N_BUCKETS; b++) {
        seen += s.counts[static_cast<size_t>(b)];
        if (seen >= rank) {
            double mid = Sketch::LO * std::exp((b + 0.5) * LOG_GROWTH);
            return std::clamp(mid, s.min, s.max);
        }
    }
    return s.max;
}

double sketch_mean(const Sketch& s) { return s.n ? s.sum / static_cast<double>(s.n) : 0; }

Summary summary_latency(const Sketch& s) {
    return {sketch_mean(s), sketch_quantile(s, 0.5), sketch_quantile(s, 0.9), sketch_quantile(s, 0.99)};
}

Summary summary_speed(const Sketch& s) {
    return {sketch_mean(s), sketch_quantile(s, 0.5), sketch_quantile(s, 0.1), sketch_quantile(s, 0.01)};
}

// [SECTION] the measurement window ---------------------------------------------

Window window_init(int warmup, int requests, double slo_speed, double slo_ttft_s) {
    Window w;
    w.warmup = warmup;
    w.requests = requests;
    w.slo_speed = slo_speed;
    w.slo_ttft_s = slo_ttft_s;
    if (warmup == 0) w.start = 0;
    return w;
}

void window_stop(Window& w, int64_t now) {
    if (w.open()) w.end = now;
}

void window_complete(Window& w, int64_t now, int64_t arrival_ns, int64_t admitted_ns, int64_t first_token_ns,
                     int output_len) {
    w.n_done++;
    if (w.start < 0) {
        if (w.n_done >= w.warmup) w.start = now;
        return;
    }
    if (now <= w.start || w.end >= 0) return;
    const double ttft = static_cast<double>(first_token_ns - arrival_ns) * 1e-9;
    sketch_add(w.ttft, ttft);
    sketch_add(w.e2e, static_cast<double>(now - arrival_ns) * 1e-9);
    sketch_add(w.queue, static_cast<double>(admitted_ns - arrival_ns) * 1e-9);
    bool fast = true;
    if (output_len > 1) {
        const double tpot = static_cast<double>(now - first_token_ns) * 1e-9 / (output_len - 1);
        sketch_add(w.tpot, tpot);
        sketch_add(w.speed, 1 / tpot);
        fast = 1 / tpot >= w.slo_speed;
    }
    w.n_requests++;
    w.output_tokens += output_len;
    if (fast && (w.slo_ttft_s <= 0 || ttft <= w.slo_ttft_s)) w.good++;
    if (w.n_requests == w.requests) w.end = now;
}

bool window_step(Window& w, int64_t start, int64_t end, int R, int batch_tokens, int64_t kv_used) {
    if (!w.open()) return false;
    w.kv_used += kv_used;
    w.busy_ns += end - std::max(start, w.start);  // the part of the step inside the window
    w.steps++;
    w.batch_tokens += batch_tokens;
    w.running += R;
    return true;
}

void window_request_step(Window& w, int verified_drafts, int accepted, int64_t gap_ns) {
    sketch_add(w.itl, static_cast<double>(gap_ns) * 1e-9);
    sketch_add(w.itl, 0.0, accepted);  // the accepted drafts come with it
    w.req_steps++;
    w.emitted += accepted + 1;
    w.verified += 1 + verified_drafts;
    w.rejected += verified_drafts - accepted;
}

void window_tokens(Window& w, int64_t emitted) { w.tokens += emitted; }

void window_result(const Window& w, int tp, PointResult* res) {
    const double window = w.start >= 0 && w.end >= 0 ? static_cast<double>(w.end - w.start) * 1e-9 : 0;
    res->window_s = window;
    res->n_requests = w.n_requests;
    res->n_steps = w.steps;
    res->n_tokens = w.tokens;
    if (window > 0) {
        res->throughput = static_cast<double>(w.tokens) / window / tp;
        res->request_rate = static_cast<double>(w.n_requests) / window;
        res->goodput_rate = static_cast<double>(w.good) / window;
        res->busy_fraction = static_cast<double>(w.busy_ns) * 1e-9 / window;
    }
    res->per_user = summary_speed(w.speed);
    res->ttft = summary_latency(w.ttft);
    res->tpot = summary_latency(w.tpot);
    res->e2e = summary_latency(w.e2e);
    res->queue_wait = summary_latency(w.queue);
    res->itl = summary_latency(w.itl);
    if (w.n_requests) {
        res->goodput_fraction = static_cast<double>(w.good) / static_cast<double>(w.n_requests);
        res->mean_output_len = static_cast<double>(w.output_tokens) / static_cast<double>(w.n_requests);
    }
    if (w.req_steps) {
        res->tau = static_cast<double>(w.emitted) / static_cast<double>(w.req_steps);
        res->mean_verified = static_cast<double>(w.verified) / static_cast<double>(w.req_steps);
    }
    if (w.verified) res->waste = static_cast<double>(w.rejected) / static_cast<double>(w.verified);
    if (w.steps) {
        res->mean_batch_tokens = static_cast<double>(w.batch_tokens) / static_cast<double>(w.steps);
        res->mean_running = static_cast<double>(w.running) / static_cast<double>(w.steps);
        if (w.kv_capacity > 0)
            res->kv_use = static_cast<double>(w.kv_used) / static_cast<double>(w.steps) / static_cast<double>(w.kv_capacity);
    }
}

}  // namespace sp
