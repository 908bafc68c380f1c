// cost_fit.cpp: see cost_fit.h.
#include "simulator/cost_fit.h"

#include <algorithm>
#include <cmath>

#include "traces/golden.h"

namespace sp {

namespace {

// The forward a profile cell timed, as the simulator would price it.
BatchShape cell_batch(const CostFitCell& c) {
    BatchShape b;
    if (c.phase == PHASE_PREFILL) {
        b.n_prefill_seqs = c.n_seqs;
        b.n_prefill_tokens = c.n_tokens;
        b.prefill_context = c.context;
    } else {
        b.n_decode_seqs = c.n_seqs;
        b.n_decode_tokens = c.n_tokens;
        b.decode_context = c.context;
    }
    return b;
}

double cell_model_s(const Roofline& r, const CostFitCell& c) {
    CostModel m;
    m.roofline = r;
    return cost_forward_s(m, cell_batch(c));
}

double loss(const Roofline& r, const std::vector<CostFitCell>& cells) {
    double sum = 0;
    for (const CostFitCell& c : cells) {
        const double t = cell_model_s(r, c);
        if (!(t > 0)) return INFINITY;
        const double e = std::log(t / c.measured_s);
        sum += e * e;
    }
    return sum;
}

// The best overhead for fixed efficiencies: golden section on [0, hi]
// (the loss is unimodal in the overhead: each term is a convex function of
// log(a + overhead) around its own optimum, and their sum has one minimum
// in the tested range; 40 steps shrink the bracket by 0.618^40 ~ 1e-8).
double best_overhead(Roofline r, const std::vector<CostFitCell>& cells, double hi, double* out_loss) {
    auto f = [&](double o) {
        r.gpu.overhead_s = o;
        return loss(r, cells);
    };
    double a = 0, b = hi;
    golden_section(&a, &b, 40, f);
    const double o = (a + b) / 2;
    *out_loss = f(o);
    return o;
}

}  // namespace

CostErrors cost_fit_errors(const std::vector<CostFitCell>& cells, bool after,
                           bool (*keep)(const CostFitCell&, const void*), const void* ctx) {
    CostErrors e;
    double sum = 0;
    for (const CostFitCell& c : cells) {
        if (keep && !keep(c, ctx)) continue;
        const double err = (after ? c.after_s : c.before_s) / c.measured_s - 1;
        sum += std::fabs(err);
        if (std::fabs(err) > std::fabs(e.worst)) e.worst = err;
        e.n++;
    }
    e.mape = e.n ? sum / e.n : 0;
    return e;
}

CostFit cost_fit_roofline(const Roofline& r, const MeasuredCost& m) {
    if (r.tp != 1) throw Error("cost fit: tp " + std::to_string(r.tp) + ": a profile is one GPU's; fit at tp 1");
    CostFit fit;
    for (const std::vector<Profile>* table : {&m.verify, &m.prefill})
        for (const Profile& p : *table) {
            if (!(p.latency_us_p50 > 0))
                throw Error("cost fit: " + m.model + " on " + m.gpu + ": a " + phase_name(p.phase) +
                            " cell (R=" + std::to_string(p.n_seqs) + ", B=" + std::to_string(p.n_tokens) +
                            ") has latency " + std::to_string(p.latency_us_p50) + " us; expected > 0");
            CostFitCell c;
            c.phase = p.phase;
            c.n_seqs = p.n_seqs;
            c.n_tokens = p.n_tokens;
            c.context = p.context;
            c.measured_s = p.latency_us_p50 * 1e-6;
            fit.cells.push_back(c);
        }
    if (fit.cells.empty())
        throw Error("cost fit: " + m.model + " on " + m.gpu + ": no verify or prefill cells to fit to");
    double fastest = INFINITY;
    for (const CostFitCell& c : fit.cells) fastest = std::min(fastest, c.measured_s);

    // For each overlap exponent of the grid (0: the max), the efficiencies on a
    // grid of 0.04 then 0.01 around the best, the overhead by golden section.
    Roofline best = r;
    double best_loss = INFINITY;
    for (double n : kCostFitOverlaps) {
        Roofline best_n = r;
        best_n.overlap_n = n;
        double loss_n = INFINITY;
        auto search = [&](double bw_lo, double bw_hi, double fl_lo, double fl_hi, double step) {
            const Roofline base = best_n;
            for (double bw = bw_lo; bw <= bw_hi + 1e-9; bw += step)
                for (double fl = fl_lo; fl <= fl_hi + 1e-9; fl += step) {
                    Roofline t = base;
                    t.bw_efficiency = bw;
                    t.flops_efficiency = fl;
                    double l = 0;
                    t.gpu.overhead_s = best_overhead(t, fit.cells, fastest, &l);
                    if (l < loss_n) loss_n = l, best_n = t;
                }
        };
        search(0.08, 1.0, 0.08, 1.0, 0.04);
        const double bw0 = best_n.bw_efficiency, fl0 = best_n.flops_efficiency;
        search(std::max(0.05, bw0 - 0.04), std::min(1.0, bw0 + 0.04), std::max(0.05, fl0 - 0.04),
               std::min(1.0, fl0 + 0.04), 0.01);
        if (loss_n < best_loss) best_loss = loss_n, best = best_n;
    }
    fit.fitted = best;
    for (CostFitCell& c : fit.cells) {
        c.before_s = cell_model_s(r, c);
        c.after_s = cell_model_s(best, c);
    }
    fit.before = cost_fit_errors(fit.cells, false);
    fit.after = cost_fit_errors(fit.cells, true);
    return fit;
}

}  // namespace sp
