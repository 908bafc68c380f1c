// cost_fit.h: the roofline calibrated to measured step times (issue 12). A
// datasheet roofline with assumed efficiencies was 2.3x more optimistic than
// our engine's measured H100 profile at the default scenario's capacity;
// fitting its three free numbers to the profile's verify and prefill cells
// makes it answer for shapes the profile never timed (other contexts, tp,
// larger batches) from a measured anchor.
//
// The fit: bw_efficiency and flops_efficiency on a grid of 0.01 in
// [0.05, 1], the overhead for each pair by golden-section search in [0,
// the fastest cell's time], minimising the sum over cells of
// log(model / measured)^2, so that a 5 ms decode and a 60 ms prefill count
// alike. A coarse pass (0.04) then a fine one (0.01 around its best), for
// each overlap exponent of kCostFitOverlaps; the best of those is kept.
#pragma once

#include <string>
#include <vector>

#include "simulator/cost.h"

namespace sp {

struct CostFitCell {
    Phase phase = PHASE_VERIFY;
    int n_seqs = 0, n_tokens = 0, context = 0;
    double measured_s = 0;   // the profile's median
    double before_s = 0;     // the roofline as given
    double after_s = 0;      // the fitted roofline
};

struct CostErrors {
    int n = 0;
    double mape = 0;          // mean |model / measured - 1|
    double worst = 0;         // the signed error of the largest magnitude
};

// The overlap exponents the fit tries (Roofline::overlap_n; 0 is the max).
inline constexpr double kCostFitOverlaps[] = {0, 1, 1.25, 1.5, 2, 3, 4};

struct CostFit {
    Roofline fitted;                 // the input roofline with the three fitted numbers
    std::vector<CostFitCell> cells;  // verify then prefill, the profile's order
    CostErrors before, after;        // over every cell
};

// Fits `r` (its model shape and GPU spec are kept; tp must be 1, as the
// profile's cells are one GPU's) to the verify and prefill cells of `m`.
// sp::Error when m has neither, or a cell's latency is not positive.
CostFit cost_fit_roofline(const Roofline& r, const MeasuredCost& m);

// Errors over the cells that pass `keep` (all: keep null).
CostErrors cost_fit_errors(const std::vector<CostFitCell>& cells, bool after,
                           bool (*keep)(const CostFitCell&, const void*) = nullptr, const void* ctx = nullptr);

}  // namespace sp
