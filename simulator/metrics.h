// metrics.h: what one simulated point reports, and the fixed-memory
// percentile sketch behind it.
//
// Percentiles come from a log-bucketed histogram: bucket i holds values in
// [G^i, G^(i+1)) with G = 1.01, and a quantile is answered with the geometric
// middle of its bucket (clamped to the observed min and max). Any reported
// quantile is within a relative error of sqrt(1.01) - 1 < 0.5 % of the exact
// nearest-rank quantile, and memory does not grow with the number of values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sp {

struct Sketch {
    static constexpr double GROWTH = 1.01;
    static constexpr double LO = 1e-9, HI = 1e12;  // values outside are clamped into the end buckets
    std::vector<uint32_t> counts;  // lazily sized on the first add
    int64_t n = 0;
    double sum = 0, min = 0, max = 0;
};

// Adds `count` (>= 0) copies of v; v > 0, non-positive values count in the lowest bucket.
void sketch_add(Sketch& s, double v, int64_t count = 1);
double sketch_quantile(const Sketch& s, double q);  // nearest rank, q in [0, 1]; 0 when empty
double sketch_mean(const Sketch& s);

// Mean and tail of one latency or speed metric. For latencies pXX is the
// XXth percentile (higher is worse). For per-user speed pXX is the speed met
// by XX % of requests, i.e. the (100-XX)th percentile (lower is worse), the
// convention of MLCommons' tokens/s/user = 1 / TPOT_p90.
struct Summary {
    double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};
Summary summary_latency(const Sketch& s);
Summary summary_speed(const Sketch& s);

// One point of a sweep: one policy at one load.
struct PointResult {
    std::string policy;
    int concurrency = 0;         // closed loop users (0 for open loop)
    double rate = 0;             // open loop requests/s (0 for closed loop)
    double throughput = 0;       // output tokens/s per GPU over the measurement window
    double request_rate = 0;     // completed requests/s per replica
    Summary per_user;            // decode-phase tokens/s of each request (speed convention)
    Summary ttft, tpot, e2e;     // seconds
    double goodput_fraction = 0; // share of measured requests meeting both SLOs
    double goodput_rate = 0;     // such requests per second per replica
    double tau = 0;              // tokens emitted per request-step (accepted + bonus/correction)
    double mean_verified = 0;    // verified tokens (1 + l) per request per step
    double waste = 0;            // rejected verified drafts / verified tokens
    double mean_batch_tokens = 0;// tokens per forward, prefill included
    double busy_fraction = 0;    // GPU busy time / window
    double mean_running = 0;     // decoding requests per step
    double kv_use = 0;           // KV reserved / kv_capacity_tokens, mean over steps (admission reserves
                                 // prompt + output + gamma): near 1, admission waits for memory
    Summary queue_wait;          // seconds from arrival to admission (a slot and KV room), per request
    Summary itl;                 // seconds between consecutive output tokens after the first: a step's
                                 // first token waits since the request's last, the tokens it accepted
                                 // besides come at once (0), so speculation makes it bursty
    double mean_output_len = 0;  // tokens per measured request
    int64_t n_requests = 0, n_steps = 0, n_tokens = 0;
    double window_s = 0;         // measured simulated time
    bool unstable = false;       // open loop past saturation: the queue hit its cap or grew over the
                                 // window (sim.h); the fields above then describe an overloaded server
};

// The measurement window of one point, fed in the server's own clock (ns) by
// whoever serves the load: the simulator's event loop (sim.cpp) or the live
// engine (serve/). One implementation, so a simulated and a live point are
// measured alike. The window opens at the warmup-th completion (at 0 when
// warmup is 0) and closes at the `requests`-th completion after it; a request
// counts when it completes strictly inside it, so requests finishing in the
// very step that opened it count neither their tokens nor themselves. A step
// counts when the window is open as it ends, before that step's completions
// are handed in.
struct Window {
    int warmup = 0, requests = 0;           // completions discarded, then measured (Workload)
    double slo_speed = 0, slo_ttft_s = 0;   // goodput: decode tokens/s at least, TTFT at most (0: none)
    int64_t n_done = 0;                     // completions seen
    int64_t start = -1, end = -1;           // ns; -1 until opened / closed
    int64_t tokens = 0, steps = 0, req_steps = 0, emitted = 0, verified = 0, rejected = 0;
    int64_t batch_tokens = 0, busy_ns = 0, running = 0, n_requests = 0, good = 0, output_tokens = 0;
    Sketch ttft, tpot, e2e, speed, queue, itl;  // seconds; speed in tokens/s
    int64_t kv_capacity = 0, kv_used = 0;   // tokens: the engine's KV capacity; the sum over counted steps of
                                            // the KV reserved during the step
    bool open() const { return start >= 0 && end < 0; }
    bool closed() const { return end >= 0; }
};
Window window_init(int warmup, int requests, double slo_speed, double slo_ttft_s);
// Closes an open window early at `now` (a point stopped as unstable); a
// window not yet opened stays empty and reports zeros.
void window_stop(Window& w, int64_t now);
// A request completed at `now`; its arrival, admission and first token in the same clock.
void window_complete(Window& w, int64_t now, int64_t arrival_ns, int64_t admitted_ns, int64_t first_token_ns,
                     int output_len);
// A step [start, end) that ran R decoding requests and batch_tokens tokens
// (prefill included) while kv_used tokens of KV were reserved; true when it
// counts (then hand in its requests and tokens below).
bool window_step(Window& w, int64_t start, int64_t end, int R, int batch_tokens, int64_t kv_used);
// One decoding request of a counted step: its verified drafts, how many it
// accepted, and the time since it last emitted a token (ns).
void window_request_step(Window& w, int verified_drafts, int accepted, int64_t gap_ns);
void window_tokens(Window& w, int64_t emitted);   // output tokens a counted step emitted, first tokens included
// The measured fields of a PointResult (throughput per GPU over tp GPUs);
// policy and load are the caller's.
void window_result(const Window& w, int tp, PointResult* res);

}  // namespace sp
