// reliability.h: the reliability diagram of a trace's confidence head, the
// Acceptance panel's fourth plot. Window-free, computed on the sweep worker.
//
// Every real slot (t, k) of the run (t + k < output_len, k <= gamma) has a
// predicted prefix survival a(t,k) = prod_{i<=k} conf(t,i) and a realised one
// prod_{i<=k} beta(t,i) (beta is the acceptance probability the trace
// recorded, 0 or 1 under greedy decoding). Slots are binned by prediction into
// RELIABILITY_BINS equal-width bins on [0, 1]; a calibrated head puts each
// bin's mean realised value on its mean prediction. ECE (expected
// calibration error) = sum_b n_b |real_b - pred_b| / N.
#pragma once

#include <cstdint>

#include "simulator/acceptance.h"

namespace sp {

constexpr int RELIABILITY_BINS = 10;

struct Reliability {
    bool available = false;                    // a trace source whose run has confidences
    double pred[RELIABILITY_BINS] = {};        // mean predicted survival per bin
    double real[RELIABILITY_BINS] = {};        // mean realised survival per bin
    int64_t count[RELIABILITY_BINS] = {};      // slots per bin
    int64_t total = 0;
    double ece = 0;
};

// Bins every slot of the loaded run, slots 1..min(a.gamma, a.trace_gamma).
Reliability reliability_compute(const AcceptanceData& a);

}  // namespace sp
