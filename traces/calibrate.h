// calibrate.h: Sequential Temperature Scaling of a DSpark confidence head
// (digest §2.3), fitted on a captured trace, and the scores that judge it.
// `specplan calibrate` is the command-line face; this file is the math.
//
// What is predicted (digest §2.4). Each real slot (t, k) of a request, anchor
// t, slot 1 <= k <= gamma with t + k < output_len (the slots
// gui/reliability.cpp bins), has
//   predicted survival  a(t,k) = prod_{i<=k} sigma(z(t,i) / T_i)
//   realised survival   r(t,k) = prod_{i<=k} beta(t,i)
// z the head's raw logit, T_i the slot's temperature (1 = raw). Under greedy
// decoding beta is 0 or 1, so r is the 0/1 event "drafts 1..k all accepted".
// Under sampling beta = min(1, p/q) is the acceptance probability of the
// drafted token, and r is the probability the prefix survives; every score
// below takes r as a probability (a soft label), which for 0/1 labels is the
// usual definition:
//   ECE    sum over CALIB_BINS equal-width bins of a on [0, 1] of
//          n_b/N |mean_b a - mean_b r|     (bin = clamp(floor(a * bins)),
//          as gui/reliability.cpp bins)
//   Brier  mean (a - r)^2. For soft labels this leaves out r(1-r), the
//          coin's own variance, which no prediction changes
//   AUROC  P(a of a surviving slot > a of a dying one), ties counting 1/2.
//          With soft labels, slot j survives with probability r_j, and the
//          AUROC is E[wins] / E[surviving-dying pairs] over those coins: the
//          weighted Mann-Whitney statistic, a slot never paired with itself.
//          NaN when there is no such pair (every r 0, or every r 1).
//
// The fit (STS). For k = 1..gamma, left to right, T_k minimises the ECE of
// a(t,k) against r(t,k) over the fit requests' real slots at k, with
// T_1..T_{k-1} frozen at their fitted values. ECE is piecewise constant in
// T, so the search uses no derivative: STS_GRID log-spaced points over
// [STS_T_MIN, STS_T_MAX], then golden-section steps (in log T) between the
// best grid point's neighbours, keeping the best point evaluated. Ties keep
// the smaller T. Deterministic: the same rows give the same temperatures.
//
// The split. A request is held out (scored, not fitted) when
// rng_unit(rng_hash(seed, CALIB_STREAM_SPLIT, idx)) < fraction, idx its
// 0-based order within its run. The order, not the database id, so a run
// exported and imported elsewhere splits the same way.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "traces/trace_db.h"

namespace sp {

inline constexpr int CALIB_BINS = 20;            // ECE bins on [0, 1], the DeepSpec evaluator's count
inline constexpr double STS_T_MIN = 0.05;        // temperature search range
inline constexpr double STS_T_MAX = 20.0;
inline constexpr int STS_GRID = 121;             // log-spaced grid points, ~5% apart
inline constexpr int STS_REFINE = 40;            // golden-section steps after the grid
inline constexpr int64_t STS_MIN_SLOTS = 100;    // real slots per k the fit needs
inline constexpr uint64_t CALIB_STREAM_SPLIT = 41;  // rng_hash stream of the fit/held-out split

// The real slots of some requests, row by row (one row per anchor t).
struct CalibRows {
    int gamma = 0;
    std::vector<float> z;         // (rows, gamma) raw confidence logits; slots >= n_real unread
    std::vector<float> beta;      // (rows, gamma) acceptance probability of the slot, in [0, 1]
    std::vector<int> n_real;      // (rows) real slots of the row, 0..gamma
    size_t rows() const { return n_real.size(); }
};

// Appends every row of p (p.n rows, n_real = positions_observed: min(gamma, n - 1 - t),
// or the recorded verified slots).
// Needs p.gamma == rows.gamma and conf_logit; the caller checks both.
void calib_rows_append(CalibRows& rows, const Positions& p);
// Real slots at slot k (1-based): rows with n_real >= k.
int64_t calib_rows_count(const CalibRows& rows, int k);

// a(t,k) and r(t,k) of every row with n_real >= k, in row order.
// temperatures: (>= k) T_1..T_k.
std::vector<double> survival_predict(const CalibRows& rows, std::span<const double> temperatures, int k);
std::vector<double> survival_realise(const CalibRows& rows, int k);

// Scores of predictions `pred` against realised survival `real` (same
// length, both in [0, 1]); definitions in the header comment. An empty set
// scores 0 (ECE, Brier) and NaN (AUROC).
double ece_compute(std::span<const double> pred, std::span<const double> real, int n_bins = CALIB_BINS);
double brier_compute(std::span<const double> pred, std::span<const double> real);
double auroc_compute(std::span<const double> pred, std::span<const double> real);

// STS over rows: (gamma) temperatures in [STS_T_MIN, STS_T_MAX]. The caller
// checks that every slot has enough real slots (calib_rows_count).
std::vector<double> sts_fit(const CalibRows& rows);
// The first slot k (1..gamma) whose T_k the rows cannot fit: fewer than
// STS_MIN_SLOTS real slots at k, or realised survival at k all 0 or all 1
// (nothing to calibrate against). 0 when every slot can be fitted.
// `specplan calibrate` refuses such rows, naming the slot; the dashboard's
// reliability diagram shows the raw series alone.
int sts_unfittable_slot(const CalibRows& rows);
// The 1-D search of one slot: the T minimising ECE(prefix * sigma(z / T), real).
// prefix, z, real: (n) one entry per real slot at k.
double temperature_fit(std::span<const double> prefix, std::span<const double> z, std::span<const double> real);

// True when request number idx of its run is held out for scoring.
bool request_heldout(int idx, uint64_t seed, double fraction);

// One slot's scores, raw (every T = 1) and calibrated.
struct SlotScores {
    int k = 0;                    // slot, 1-based; 0 = every slot pooled
    int64_t n = 0;                // real slots scored
    double temperature = 1;       // T_k (pooled row: unused)
    double ece_raw = 0, ece_cal = 0;
    double brier_raw = 0, brier_cal = 0;
    double auroc_raw = 0, auroc_cal = 0;  // NaN when undefined
};

// Scores of slot k (1..gamma) of rows under `temperatures` (gamma), and, with
// k = 0, of every real slot pooled (the reliability diagram's view).
SlotScores slot_scores_compute(const CalibRows& rows, std::span<const double> temperatures, int k);

}  // namespace sp
