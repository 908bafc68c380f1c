// workload.h: who sends what, when. Each request's attributes are drawn by
// its key, never from a shared running stream, so the same key gives the
// same request under every policy (common random numbers):
//   closed loop  key = user << 32 | n-th request of that user
//   open loop    key = arrival index
// Streams: domain and trace request from STREAM_TRACE, lengths (or the
// request log's row, drawn as an empirical distribution) from STREAM_LENGTHS, think times from STREAM_THINK, open-loop gaps from one
// sequential arrivals stream (the arrival process does not depend on policy).
#pragma once

#include <cstdint>

#include "simulator/acceptance.h"
#include "traces/rng.h"

namespace sp {

struct RequestSpec {
    int domain = 0;
    int trace_idx = -1;          // index into AcceptanceData::requests, -1 without a trace
    int prompt_len = 0, output_len = 0;
};

RequestSpec workload_request(const Scenario& sc, const AcceptanceData& acc, uint64_t key);

// Closed loop: think time before the next request of the user whose request `key` just completed.
double workload_think_s(const Workload& w, uint64_t seed, uint64_t key);

// Open loop: the arrival process's stream, rng_seed(scenario seed,
// WORKLOAD_STREAM_ARRIVALS), drawn in arrival order by the simulator and the
// live engine alike.
inline constexpr uint64_t WORKLOAD_STREAM_ARRIVALS = 31;
// Open loop: the gap to the next arrival, mean 1/rate; gamma with shape
// `burstiness` (CV = 1/sqrt(shape)), exponential for Poisson.
double workload_gap_s(const Workload& w, double rate, Rng& arrivals);

// The measurement window of one point at `load` (users or requests/s).
// A set workload.warmup or workload.requests is honoured as given; one left
// out (or "auto") is sized by the load so that the window measures the
// steady state:
//   closed loop of N users: warmup max(100, 2 N) completions, so that every
//     user has had about two requests since the start, when all of them
//     arrived at once; then max(500, 10 N), ten completions a user;
//   open loop: warmup 100, then max(500, 10 L) where L is the number of
//     requests in the system as the window opens (sim.cpp), at most
//     WINDOW_OPEN_MAX.
// A window shorter than that (set, or an open loop's at its cap) is marked
// short (PointResult::short_window; the CLI warns): it may measure the
// start-up transient. Each point reports 95 % confidence intervals
// (metrics.h), so its precision is in plain sight.
struct WindowSize {
    int warmup = 0, requests = 0;  // completions discarded, then measured
    bool sized = false;            // requests sized by the load: an open loop's grows as its window opens
    bool short_window = false;     // set values below what the load needs
};
inline constexpr int WINDOW_PER_USER = 10, WARMUP_PER_USER = 10;  // completions a user (a request in the system)
inline constexpr int WINDOW_MIN = 500, WARMUP_MIN = 100;
inline constexpr int WINDOW_OPEN_MAX = 100'000;
WindowSize workload_window(const Workload& w, double load);

// Open loop, arrival replay or scaled: the time of arrival `index` after the
// first, seconds: the log's time stretched by (log rate / rate), so replay
// (rate = the log's) keeps it as it is. Past the log's last request the log
// starts over one period later, period = span x N / (N - 1), so that the
// mean gap, and the rate, stay the same across the seam.
double workload_log_arrival_s(const Workload& w, double rate, uint64_t index);
inline bool workload_log_arrivals(const Workload& w) {
    return w.mode == WORKLOAD_OPEN && (w.arrival == ARRIVAL_REPLAY || w.arrival == ARRIVAL_SCALED);
}

// One draw of a length distribution, tokens.
int length_draw(const LengthDist& d, Rng& r);

// The largest value a length distribution can produce.
int length_max(const LengthDist& d);

}  // namespace sp
