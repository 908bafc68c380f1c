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
    double last_v = -1;            // the last value added and its bucket: a step's ITL gaps repeat, and
    int last_b = 0;                // the log per add was a tenth of a sweep's time
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

// The latency distributions of a point, kept whole so that a report can
// answer any percentile (--percentiles) and the ITL distribution.
struct LatencySketches {
    Sketch ttft, tpot, e2e, itl;  // seconds
};

// One point of a sweep: one policy at one load.
struct PointResult {
    std::string policy;
    int concurrency = 0;         // closed loop users (0 for open loop)
    double rate = 0;             // open loop requests/s (0 for closed loop)
    double throughput = 0;       // output tokens/s per GPU over the measurement window
    double throughput_ci95 = 0;  // its 95 % confidence half-width by batch means (window_result); 0: too
                                 // few batches to say
    double input_throughput = 0; // prompt tokens/s per GPU: the prompts of the requests measured
                                 // (vLLM's benchmark counts input tokens so); total = input + output
    double request_rate = 0;     // completed requests/s per replica
    Summary per_user;            // decode-phase tokens/s of each request (speed convention)
    double per_user_mean_ci95 = 0;  // 95 % confidence half-width of per_user.mean, batch means
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
    LatencySketches dist;        // the distributions behind ttft, tpot, e2e and itl
    double mean_output_len = 0;  // tokens per measured request
    double mean_prompt_len = 0;  // prompt tokens per measured request
    int64_t n_requests = 0, n_steps = 0, n_tokens = 0;
    double window_s = 0;         // measured simulated time
    int warmup = 0;              // completions discarded before the window (workload_window)
    bool short_window = false;   // the window was set shorter than the load needs for steady state
                                 // (workload_window): it may hold the start-up transient
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
//
// Matched edges (match_ages, set for a window sized by the load): such a
// window closes at the first completion from the `requests`-th on at which
// the requests in flight have spent as long in the system (their ages
// summed) as those in flight when it opened, to within
// WINDOW_AGE_TOLERANCE of the measured E2E time, and at most at
// WINDOW_STRETCH_MAX times `requests`. Why: the measured requests' E2E sum
// is the window's request-time (the integral of requests in the system)
// plus the ages at its opening less the ages at its close. With N users that
// difference is of order N E2E, which at ten completions a user tilts E2E
// against throughput by up to 4 % (Little's law, default.toml); matched, the
// mean E2E agrees with the window's throughput and load to within the
// tolerance, and the window is about a request per user longer.
inline constexpr double WINDOW_AGE_TOLERANCE = 0.0025;
inline constexpr int WINDOW_STRETCH_MAX = 2;
//
// Confidence intervals by batch means: the measured completions fall into
// consecutive batches of batch_size completions each, a batch's time and
// tokens running from the completion that closed the previous one. When
// WINDOW_BATCHES_MAX batches are full, neighbours merge pairwise and
// batch_size doubles, so a window of any length ends with between
// WINDOW_BATCHES_MAX / 2 and WINDOW_BATCHES_MAX batches (the partial last
// one folds into the one before). Batches that span many requests are
// nearly independent; the ratio estimators (tokens / time, speed sum /
// requests) then get Student's t half-width over the batches.
inline constexpr int WINDOW_BATCHES_MAX = 20;

struct WindowBatch {
    int64_t ns = 0, tokens = 0, n = 0;  // time, output tokens and completions in the batch
    double speed_sum = 0;               // per-user speed of its requests, tokens/s
    int64_t speed_n = 0;                // requests with a speed (output_len > 1)
};

struct Window {
    int warmup = 0, requests = 0;           // completions discarded, then measured (Workload)
    double slo_speed = 0, slo_ttft_s = 0;   // goodput: decode tokens/s at least, TTFT at most (0: none)
    int64_t n_done = 0;                     // completions seen
    int64_t start = -1, end = -1;           // ns; -1 until opened / closed
    int64_t tokens = 0, steps = 0, req_steps = 0, emitted = 0, verified = 0, rejected = 0;
    int64_t batch_tokens = 0, busy_ns = 0, running = 0, n_requests = 0, good = 0, output_tokens = 0;
    int64_t prompt_tokens = 0;              // prompts of the measured requests
    bool match_ages = false;                // close on matched edges (above)
    int64_t in_flight = 0;                  // requests arrived and not completed (window_arrive)
    double arrival_sum = 0;                 // their arrival times summed, ns
    double age_open = 0;                    // the ages in flight as the window opened, summed, ns
    Sketch ttft, tpot, e2e, speed, queue, itl;  // seconds; speed in tokens/s
    std::vector<WindowBatch> batches;       // closed batches (at most WINDOW_BATCHES_MAX)
    WindowBatch batch;                      // the one filling (its n and speeds)
    int64_t batch_t0 = 0, batch_tokens0 = 0;  // ns and tokens when it began
    int64_t batch_size = 1;                 // completions per closed batch
    int64_t kv_capacity = 0, kv_used = 0;   // tokens: the engine's KV capacity; the sum over counted steps of
                                            // the KV reserved during the step
    bool open() const { return start >= 0 && end < 0; }
    bool closed() const { return end >= 0; }
};
Window window_init(int warmup, int requests, double slo_speed, double slo_ttft_s);
// Closes an open window early at `now` (a point stopped as unstable); a
// window not yet opened stays empty and reports zeros.
void window_stop(Window& w, int64_t now);
// A request arrived (every request, measured or not: the window's edges need the ones in flight).
void window_arrive(Window& w, int64_t arrival_ns);
// A request completed at `now`; its arrival, admission and first token in the same clock.
void window_complete(Window& w, int64_t now, int64_t arrival_ns, int64_t admitted_ns, int64_t first_token_ns,
                     int output_len, int prompt_len = 0);
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

// Student's t quantile t(0.975, df) for a two-sided 95 % interval; df >= 1.
double student_t95(int df);
// The 95 % half-width of sum(x) / sum(y) over batches (x_b, y_b) by the
// ratio estimator's batch means: t95(K - 1) sqrt(sum (x_b - R y_b)^2 /
// (K (K - 1))) / mean(y); 0 with fewer than 2 batches.
double ratio_ci95(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace sp
