// reliability.h: the reliability diagram of a trace's confidence head, the
// Acceptance panel's fourth plot, before and after calibration. Window-free,
// computed on the sweep worker.
//
// Every real slot (t, k) of the run (t + k < output_len, k <= gamma) has a
// predicted prefix survival a(t,k) = prod_{i<=k} c(t,i) and a realised one
// prod_{i<=k} beta(t,i) (beta is the acceptance probability the trace
// recorded, 0 or 1 under greedy decoding); traces/calibrate.h defines both
// and the ECE. Slots are binned by prediction into RELIABILITY_BINS
// equal-width bins on [0, 1], the bins of calibrate.h's ECE, so the title's
// ECE is the one `specplan calibrate` prints; a calibrated head puts each
// bin's mean realised value on its mean prediction.
//
// Which confidence c is, by what the run recorded:
//   raw logits z   two series. raw: c = sigma(z), temperature 1.
//                  calibrated: c = sigma(z / T_k), T_1..T_G fitted by
//                  sts_fit on this same run's slots 1..G (in-sample: what
//                  `specplan calibrate --heldout 0` fits, unrounded). When the
//                  run cannot be fitted (sts_unfittable_slot), raw alone.
//   conf_prob only one series, raw: the recorded c (older and synthetic
//                  traces without logits), whatever calibration the capture
//                  applied.
// G = min(engine gamma, trace gamma). The fit is sequential, T_k depends on
// slots 1..k only, so a smaller engine gamma changes no temperature.
#pragma once

#include <cstdint>
#include <vector>

#include "simulator/acceptance.h"
#include "traces/calibrate.h"

namespace sp {

constexpr int RELIABILITY_BINS = CALIB_BINS;

// The bins of one series.
struct ReliabilityBins {
    double pred[RELIABILITY_BINS] = {};        // mean predicted survival per bin
    double real[RELIABILITY_BINS] = {};        // mean realised survival per bin
    int64_t count[RELIABILITY_BINS] = {};      // slots per bin
    int64_t total = 0;                         // 0: the series is absent
    double ece = 0;
};

enum ReliabilitySource {
    RELIABILITY_NONE,        // not a trace run, or no confidence head
    RELIABILITY_CONF_PROB,   // raw = the recorded conf_prob; no calibrated series
    RELIABILITY_LOGITS,      // raw = sigma(z); calibrated = sigma(z / T_k) unless unfittable
};

struct Reliability {
    ReliabilitySource source = RELIABILITY_NONE;
    ReliabilityBins raw;
    ReliabilityBins calibrated;                // total 0 unless LOGITS and fitted
    std::vector<double> temperatures;          // (G) fitted T_k; empty unless calibrated
    int unfittable_slot = 0;                   // LOGITS: sts_unfittable_slot of the rows, 0 = fitted
};

// Bins every slot of the loaded run, slots 1..min(a.gamma, a.trace_gamma).
// Reads a.conf_logit when it is complete (acceptance_load(sc, true)), else a.conf.
// The STS fit dominates: about 0.7 s for the bundled trace's 269k slots.
Reliability reliability_compute(const AcceptanceData& a);

// A 64-bit digest of everything reliability_compute reads: equal digests,
// equal diagrams. The sweep worker keeps its last diagram under this digest,
// so an edit that leaves the trace alone (most do) skips the fit.
uint64_t reliability_digest(const AcceptanceData& a);

}  // namespace sp
