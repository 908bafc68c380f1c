// calibrate.cpp: see calibrate.h.
#include "traces/calibrate.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

#include "traces/golden.h"
#include "traces/rng.h"

namespace sp {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// The real slots at k as three aligned columns: the survival predicted up to
// k-1 under `temperatures` (1 at k = 1), the raw logit at k, and the realised
// survival up to k.
struct SlotColumns {
    std::vector<double> prefix;   // (n) prod_{i<k} sigma(z_i / T_i)
    std::vector<double> z;        // (n) z(t, k)
    std::vector<double> real;     // (n) prod_{i<=k} beta(t, i)
};

SlotColumns slot_columns(const CalibRows& rows, std::span<const double> temperatures, int k) {
    assert(k >= 1 && k <= rows.gamma && "slot_columns: slot out of range");
    assert(temperatures.size() + 1 >= size_t(k) && "slot_columns: too few temperatures");
    SlotColumns c;
    const size_t G = size_t(rows.gamma);
    for (size_t r = 0; r < rows.rows(); r++) {
        if (rows.n_real[r] < k) continue;
        const float* z = &rows.z[r * G];
        const float* beta = &rows.beta[r * G];
        double pre = 1, real = 1;
        for (int i = 0; i + 1 < k; i++) {
            pre *= sigmoid(double(z[i]) / temperatures[size_t(i)]);
            real *= double(beta[i]);
        }
        c.prefix.push_back(pre);
        c.z.push_back(double(z[k - 1]));
        c.real.push_back(real * double(beta[k - 1]));
    }
    return c;
}

int bin_of(double pred, int n_bins) { return std::clamp(int(pred * n_bins), 0, n_bins - 1); }

// ECE of prefix * sigma(z / T) against real, without building the predictions.
double ece_at(const SlotColumns& c, double T) {
    double pred_sum[CALIB_BINS] = {}, real_sum[CALIB_BINS] = {};
    const size_t n = c.z.size();
    for (size_t j = 0; j < n; j++) {
        const double a = c.prefix[j] * sigmoid(c.z[j] / T);
        const int b = bin_of(a, CALIB_BINS);
        pred_sum[b] += a;
        real_sum[b] += c.real[j];
    }
    double e = 0;
    for (int b = 0; b < CALIB_BINS; b++) e += std::fabs(pred_sum[b] - real_sum[b]);
    return n ? e / double(n) : 0.0;
}

}  // namespace

// [SECTION] rows --------------------------------------------------------------

void calib_rows_append(CalibRows& rows, const Positions& p) {
    assert(p.gamma == rows.gamma && "calib_rows_append: gamma differs");
    assert(p.conf_logit.size() == size_t(p.n) * size_t(p.gamma) && "calib_rows_append: no confidence logits");
    rows.z.insert(rows.z.end(), p.conf_logit.begin(), p.conf_logit.end());
    rows.beta.insert(rows.beta.end(), p.beta.begin(), p.beta.end());
    // the observed slots only: an unverified slot of an imported proposal is no rejection
    for (int t = 0; t < p.n; t++) rows.n_real.push_back(positions_observed(p, t));
}

int64_t calib_rows_count(const CalibRows& rows, int k) {
    return std::count_if(rows.n_real.begin(), rows.n_real.end(), [k](int n) { return n >= k; });
}

std::vector<double> survival_predict(const CalibRows& rows, std::span<const double> temperatures, int k) {
    SlotColumns c = slot_columns(rows, temperatures, k);
    for (size_t j = 0; j < c.z.size(); j++) c.prefix[j] *= sigmoid(c.z[j] / temperatures[size_t(k - 1)]);
    return c.prefix;
}

std::vector<double> survival_realise(const CalibRows& rows, int k) {
    const std::vector<double> ones(size_t(std::max(k, 0)), 1.0);
    return slot_columns(rows, ones, k).real;
}

// [SECTION] scores ------------------------------------------------------------

double ece_compute(std::span<const double> pred, std::span<const double> real, int n_bins) {
    assert(pred.size() == real.size() && n_bins >= 1);
    std::vector<double> pred_sum(size_t(n_bins), 0.0), real_sum(size_t(n_bins), 0.0);
    for (size_t j = 0; j < pred.size(); j++) {
        const int b = bin_of(pred[j], n_bins);
        pred_sum[size_t(b)] += pred[j];
        real_sum[size_t(b)] += real[j];
    }
    // sum_b n_b/N |mean pred - mean real| = sum_b |sum pred - sum real| / N
    double e = 0;
    for (int b = 0; b < n_bins; b++) e += std::fabs(pred_sum[size_t(b)] - real_sum[size_t(b)]);
    return pred.empty() ? 0.0 : e / double(pred.size());
}

double brier_compute(std::span<const double> pred, std::span<const double> real) {
    assert(pred.size() == real.size());
    double s = 0;
    for (size_t j = 0; j < pred.size(); j++) s += (pred[j] - real[j]) * (pred[j] - real[j]);
    return pred.empty() ? 0.0 : s / double(pred.size());
}

double auroc_compute(std::span<const double> pred, std::span<const double> real) {
    assert(pred.size() == real.size());
    std::vector<size_t> order(pred.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pred[a] < pred[b]; });
    // Walk groups of equal prediction upwards: each group's surviving weight
    // beats every dying weight below it, and ties with its own half. A slot
    // never pairs with itself (it cannot both survive and die), so its own
    // r (1 - r) leaves the ties and the pair count.
    double neg_below = 0, wins = 0, pos_total = 0, self = 0;
    for (size_t g = 0; g < order.size();) {
        size_t h = g;
        double pos = 0, neg = 0, own = 0;
        for (; h < order.size() && pred[order[h]] == pred[order[g]]; h++) {
            const double r = real[order[h]];
            pos += r;
            neg += 1.0 - r;
            own += r * (1.0 - r);
        }
        wins += pos * neg_below + 0.5 * (pos * neg - own);
        neg_below += neg;
        pos_total += pos;
        self += own;
        g = h;
    }
    const double pairs = pos_total * neg_below - self;
    if (!(pairs > 0)) return std::numeric_limits<double>::quiet_NaN();
    return wins / pairs;
}

// [SECTION] the fit -----------------------------------------------------------

double temperature_fit(std::span<const double> prefix, std::span<const double> z, std::span<const double> real) {
    assert(prefix.size() == z.size() && z.size() == real.size());
    SlotColumns c{{prefix.begin(), prefix.end()}, {z.begin(), z.end()}, {real.begin(), real.end()}};
    double best_t = 1, best_e = std::numeric_limits<double>::infinity();
    auto consider = [&](double log_t) {
        const double t = std::exp(log_t), e = ece_at(c, t);
        if (e < best_e || (e == best_e && t < best_t)) best_t = t, best_e = e;
        return e;
    };
    // 1. the grid
    const double lo = std::log(STS_T_MIN), hi = std::log(STS_T_MAX), step = (hi - lo) / (STS_GRID - 1);
    int best_i = 0;
    double grid_best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < STS_GRID; i++) {
        const double e = consider(lo + step * i);
        if (e < grid_best) grid_best = e, best_i = i;
    }
    // 2. golden section between the best grid point's neighbours
    double a = lo + step * std::max(best_i - 1, 0), b = lo + step * std::min(best_i + 1, STS_GRID - 1);
    golden_section(&a, &b, STS_REFINE, consider);  // consider keeps the best point seen
    return best_t;
}

std::vector<double> sts_fit(const CalibRows& rows) {
    std::vector<double> t(size_t(rows.gamma), 1.0);
    for (int k = 1; k <= rows.gamma; k++) {
        const SlotColumns c = slot_columns(rows, t, k);  // T_1..T_{k-1} as fitted
        t[size_t(k - 1)] = temperature_fit(c.prefix, c.z, c.real);
    }
    return t;
}

int sts_unfittable_slot(const CalibRows& rows) {
    for (int k = 1; k <= rows.gamma; k++) {
        const std::vector<double> real = survival_realise(rows, k);
        const double survived = std::accumulate(real.begin(), real.end(), 0.0);
        if (int64_t(real.size()) < STS_MIN_SLOTS || !(survived > 0) || !(survived < double(real.size()))) return k;
    }
    return 0;
}

// [SECTION] split and report --------------------------------------------------

bool request_heldout(int idx, uint64_t seed, double fraction) {
    return rng_unit(rng_hash(seed, CALIB_STREAM_SPLIT, uint64_t(idx))) < fraction;
}

SlotScores slot_scores_compute(const CalibRows& rows, std::span<const double> temperatures, int k) {
    assert(temperatures.size() == size_t(rows.gamma));
    const std::vector<double> ones(size_t(rows.gamma), 1.0);
    std::vector<double> raw, cal, real;
    for (int s = k == 0 ? 1 : k; s <= (k == 0 ? rows.gamma : k); s++) {
        const std::vector<double> r = survival_predict(rows, ones, s), c = survival_predict(rows, temperatures, s),
                                  y = survival_realise(rows, s);
        raw.insert(raw.end(), r.begin(), r.end());
        cal.insert(cal.end(), c.begin(), c.end());
        real.insert(real.end(), y.begin(), y.end());
    }
    SlotScores sc;
    sc.k = k;
    sc.n = int64_t(real.size());
    sc.temperature = k == 0 ? 1.0 : temperatures[size_t(k - 1)];
    sc.ece_raw = ece_compute(raw, real);
    sc.ece_cal = ece_compute(cal, real);
    sc.brier_raw = brier_compute(raw, real);
    sc.brier_cal = brier_compute(cal, real);
    sc.auroc_raw = auroc_compute(raw, real);
    sc.auroc_cal = auroc_compute(cal, real);
    return sc;
}

}  // namespace sp
