// workload.h: who sends what, when. Each request's attributes are drawn by
// its key, never from a shared running stream, so the same key gives the
// same request under every policy (common random numbers):
//   closed loop  key = user << 32 | n-th request of that user
//   open loop    key = arrival index
// Streams: domain and trace request from STREAM_TRACE, lengths from
// STREAM_LENGTHS, think times from STREAM_THINK, open-loop gaps from one
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

// One draw of a length distribution, tokens.
int length_draw(const LengthDist& d, Rng& r);

// The largest value a length distribution can produce.
int length_max(const LengthDist& d);

}  // namespace sp
