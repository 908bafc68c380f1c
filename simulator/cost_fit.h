// cost_fit.h: the roofline calibrated to measured step times (issue 12). A
// datasheet roofline with assumed efficiencies was 2.3x more optimistic than
// our engine's measured H100 profile at the default scenario's capacity;
// fitting its free numbers to the profile's verify, prefill and draft cells
// makes it answer for shapes the profile never timed (other contexts, tp,
// larger batches) from a measured anchor.
//
// The fit minimises the sum over cells of log(model / measured)^2, so that a
// 2 ms draft, a 5 ms decode and a 60 ms prefill count alike:
//   efficiencies  bw_efficiency and flops_efficiency on a grid of 0.01 in
//                 [0.05, 1]: a coarse pass (0.04), then a fine one (0.01
//                 around its best), for each overlap exponent of
//                 kCostFitOverlaps; the best of those is kept.
//   overheads     for each grid point, overhead_s_per_layer by golden
//                 section in [0, the least of a cell's time over its layers],
//                 and for each of its values overhead_s by golden section in
//                 [0, the fastest cell's time] (nested 1-D searches).
// The two overheads can only be told apart by cells whose steps run other
// numbers of layers: a target forward pays overhead_s + L * per-layer, a
// DSpark draft (1 + gamma) overhead_s + its layers * per-layer. Without
// draft cells (or with DRAFTER_NONE) every cell has the target's mix, and
// the per-layer overhead is kept as given (0 in the presets): the fitted
// overhead_s then holds the whole launch cost, as before the split.
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
    Roofline fitted;                 // the input roofline with the fitted numbers
    DrafterSpec drafter;             // what priced the draft cells (DRAFTER_NONE: none were fitted)
    bool per_layer_fitted = false;   // false: overhead_s_per_layer kept as given (no cells to tell it apart)
    std::vector<CostFitCell> cells;  // verify, prefill, then draft, each in the profile's order
    CostErrors before, after;        // over every cell
};

// Fits `r` (its model shape and GPU spec are kept; tp must be 1, as the
// profile's cells are one GPU's) to the verify and prefill cells of `m`,
// and to its draft cells priced as `drafter` drafts (cost_draft_s at R =
// n_seqs, gamma = n_tokens / n_seqs, as the measured model reads them)
// unless drafter.kind is DRAFTER_NONE. sp::Error when m has no verify or
// prefill cell, a cell's latency is not positive, or a draft cell's tokens
// are not a multiple of its sequences.
CostFit cost_fit_roofline(const Roofline& r, const MeasuredCost& m, const DrafterSpec& drafter = {});

// Errors over the cells that pass `keep` (all: keep null).
CostErrors cost_fit_errors(const std::vector<CostFitCell>& cells, bool after,
                           bool (*keep)(const CostFitCell&, const void*) = nullptr, const void* ctx = nullptr);

}  // namespace sp
