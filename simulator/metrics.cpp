// metrics.cpp: the percentile sketch; see metrics.h for its error bound.
#include "simulator/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

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
    if (v != s.last_v) {
        s.last_v = v;
        s.last_b = bucket_of(v);
    }
    s.counts[static_cast<size_t>(s.last_b)] += static_cast<uint32_t>(count);
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

// [SECTION] batch means ------------------------------------------------------------

double student_t95(int df) {
    assert(df >= 1 && "student_t95: df >= 1");
    // t(0.975, df) for df = 1 .. 30 (any statistics table); past 30 the
    // normal quantile plus its first correction, within 0.002 of the exact value
    static const double T[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (df <= 30) return T[df - 1];
    return 1.959964 + 2.37 / df;
}

// ratio_ci95 over any batches, x and y read by accessors: no copies on the simulator's path.
template <class T, class X, class Y>
static double batches_ratio_ci95(const std::vector<T>& b, X x, Y y) {
    const size_t k = b.size();
    if (k < 2) return 0;
    double sx = 0, sy = 0;
    for (const T& e : b) {
        sx += x(e);
        sy += y(e);
    }
    if (!(sy > 0)) return 0;
    const double r = sx / sy, ybar = sy / static_cast<double>(k);
    double ss = 0;
    for (const T& e : b) {
        const double z = x(e) - r * y(e);
        ss += z * z;
    }
    const double kd = static_cast<double>(k);
    return student_t95(static_cast<int>(k) - 1) * std::sqrt(ss / (kd * (kd - 1))) / ybar;
}

double ratio_ci95(const std::vector<double>& x, const std::vector<double>& y) {
    assert(x.size() == y.size() && "ratio_ci95: one y per x");
    std::vector<std::pair<double, double>> b(x.size());
    for (size_t i = 0; i < x.size(); i++) b[i] = {x[i], y[i]};
    return batches_ratio_ci95(b, [](const std::pair<double, double>& e) { return e.first; },
                              [](const std::pair<double, double>& e) { return e.second; });
}

static double tokens_of(const WindowBatch& b) { return static_cast<double>(b.tokens); }
static double ns_of(const WindowBatch& b) { return static_cast<double>(b.ns); }

// The batch filling closes at `now`: its time and tokens are those since the previous one closed.
static void batch_close(Window& w, int64_t now) {
    WindowBatch b = w.batch;
    b.ns = now - w.batch_t0;
    b.tokens = w.tokens - w.batch_tokens0;
    w.batches.push_back(b);
    w.batch = WindowBatch{};
    w.batch_t0 = now;
    w.batch_tokens0 = w.tokens;
    if (static_cast<int>(w.batches.size()) < WINDOW_BATCHES_MAX) return;
    for (size_t i = 0; i < w.batches.size() / 2; i++) {  // merge neighbours: half as many, twice as long
        WindowBatch& m = w.batches[i];
        m = w.batches[2 * i];
        const WindowBatch& o = w.batches[2 * i + 1];
        m.ns += o.ns;
        m.tokens += o.tokens;
        m.n += o.n;
        m.speed_sum += o.speed_sum;
        m.speed_n += o.speed_n;
    }
    w.batches.resize(w.batches.size() / 2);
    w.batch_size *= 2;
}

// The batches as the window ends: the partial last one (and the time after
// the last completion of a stopped window) folds into the one before.
static std::vector<WindowBatch> batches_final(const Window& w) {
    std::vector<WindowBatch> b = w.batches;
    if (b.empty() || w.end <= w.batch_t0) return b;
    WindowBatch& last = b.back();
    last.ns += w.end - w.batch_t0;
    last.tokens += w.tokens - w.batch_tokens0;
    last.n += w.batch.n;
    last.speed_sum += w.batch.speed_sum;
    last.speed_n += w.batch.speed_n;
    return b;
}

// [SECTION] the measurement window ---------------------------------------------

void window_arrive(Window& w, int64_t arrival_ns) {
    w.in_flight++;
    w.arrival_sum += static_cast<double>(arrival_ns);
}

// The time the requests in flight have spent in the system so far, ns.
static double ages(const Window& w, int64_t now) {
    return static_cast<double>(w.in_flight) * static_cast<double>(now) - w.arrival_sum;
}

// A sized window closes once the ages in flight match those at its opening
// (metrics.h), or at WINDOW_STRETCH_MAX times its requests.
static bool window_ends(const Window& w, int64_t now) {
    if (w.n_requests < w.requests) return false;
    if (!w.match_ages || w.n_requests >= int64_t(WINDOW_STRETCH_MAX) * w.requests) return true;
    return std::fabs(ages(w, now) - w.age_open) <= WINDOW_AGE_TOLERANCE * w.e2e.sum * 1e9;
}

void window_complete(Window& w, int64_t now, int64_t arrival_ns, int64_t admitted_ns, int64_t first_token_ns,
                     int output_len, int prompt_len) {
    w.n_done++;
    w.in_flight--;
    w.arrival_sum -= static_cast<double>(arrival_ns);
    if (w.start < 0) {
        if (w.n_done >= w.warmup) {
            w.start = w.batch_t0 = now;
            w.age_open = ages(w, now);
        }
        return;
    }
    if (w.end >= 0) return;
    if (now <= w.start) {  // completed as the window opened: not measured, so neither is its age
        w.age_open -= static_cast<double>(now - arrival_ns);
        return;
    }
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
        w.batch.speed_sum += 1 / tpot;
        w.batch.speed_n++;
    }
    w.n_requests++;
    w.output_tokens += output_len;
    w.prompt_tokens += prompt_len;
    if (fast && (w.slo_ttft_s <= 0 || ttft <= w.slo_ttft_s)) w.good++;
    if (++w.batch.n == w.batch_size) batch_close(w, now);
    if (window_ends(w, now)) w.end = now;
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
        res->input_throughput = static_cast<double>(w.prompt_tokens) / window / tp;
    }
    const std::vector<WindowBatch> b = batches_final(w);
    res->throughput_ci95 = batches_ratio_ci95(b, tokens_of, ns_of) * 1e9 / tp;
    res->per_user_mean_ci95 = batches_ratio_ci95(
        b, [](const WindowBatch& e) { return e.speed_sum; },
        [](const WindowBatch& e) { return static_cast<double>(e.speed_n); });
    res->warmup = w.warmup;
    res->per_user = summary_speed(w.speed);
    res->ttft = summary_latency(w.ttft);
    res->tpot = summary_latency(w.tpot);
    res->e2e = summary_latency(w.e2e);
    res->queue_wait = summary_latency(w.queue);
    res->itl = summary_latency(w.itl);
    res->dist = {w.ttft, w.tpot, w.e2e, w.itl};
    if (w.n_requests) {
        res->goodput_fraction = static_cast<double>(w.good) / static_cast<double>(w.n_requests);
        res->mean_output_len = static_cast<double>(w.output_tokens) / static_cast<double>(w.n_requests);
        res->mean_prompt_len = static_cast<double>(w.prompt_tokens) / static_cast<double>(w.n_requests);
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
