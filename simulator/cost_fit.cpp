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

double cell_model_s(const Roofline& r, const DrafterSpec& d, const CostFitCell& c) {
    CostModel m;
    m.roofline = r;
    m.drafter = d;
    if (c.phase == PHASE_DRAFT) return cost_draft_s(m, c.n_seqs, c.n_tokens / c.n_seqs, c.context);
    return cost_forward_s(m, cell_batch(c));
}

// A cell's model time is linear in the two overheads, as every step adds
// overhead_s once and overhead_s_per_layer once per layer it runs:
//   t = base + steps * overhead_s + layers * overhead_s_per_layer
// steps and layers are counts fixed by the cell's phase and shape (1 and L
// for a target forward, 1 + gamma and the drafter's layers for a DSpark
// draft); base moves with the efficiencies and the overlap. They are read
// off the model (cost.cpp) rather than restated here, so that the search
// over the overheads costs one log per cell and evaluation.
struct CellLine {
    double base = 0, steps = 0, layers = 0;
    double log_measured = 0;
};

double line_loss(const std::vector<CellLine>& lines, double overhead, double per_layer) {
    double sum = 0;
    for (const CellLine& l : lines) {
        const double t = l.base + l.steps * overhead + l.layers * per_layer;
        if (!(t > 0)) return INFINITY;
        const double e = std::log(t) - l.log_measured;
        sum += e * e;
    }
    return sum;
}

// The counts of each cell: the model's time with an overhead of 1 s, less
// its time without (rounded: they are whole numbers of steps and layers).
void lines_count(std::vector<CellLine>* lines, const Roofline& r, const DrafterSpec& d,
                 const std::vector<CostFitCell>& cells) {
    Roofline zero = r, step = r, layer = r;
    zero.gpu.overhead_s = zero.gpu.overhead_s_per_layer = 0;
    step.gpu.overhead_s = 1, step.gpu.overhead_s_per_layer = 0;
    layer.gpu.overhead_s = 0, layer.gpu.overhead_s_per_layer = 1;
    for (size_t i = 0; i < cells.size(); i++) {
        const double base = cell_model_s(zero, d, cells[i]);
        (*lines)[i].steps = std::round(cell_model_s(step, d, cells[i]) - base);
        (*lines)[i].layers = std::round(cell_model_s(layer, d, cells[i]) - base);
        (*lines)[i].log_measured = std::log(cells[i].measured_s);
    }
}

void lines_base(std::vector<CellLine>* lines, const Roofline& r, const DrafterSpec& d,
                const std::vector<CostFitCell>& cells) {
    Roofline zero = r;
    zero.gpu.overhead_s = zero.gpu.overhead_s_per_layer = 0;
    for (size_t i = 0; i < cells.size(); i++) (*lines)[i].base = cell_model_s(zero, d, cells[i]);
}

// Whether some cell's mix of steps and layers differs from the first's, so
// that the two overheads are told apart (otherwise only one sum is seen).
bool lines_split_overheads(const std::vector<CellLine>& lines) {
    for (const CellLine& a : lines)
        if (std::fabs(a.steps * lines.front().layers - a.layers * lines.front().steps) > 0.5) return true;
    return false;
}

// Golden-section steps: 40 (0.618^40 ~ 1e-8 of the bracket) for overhead_s
// alone. For both, nested, 16 (4.5e-4 of the bracket, ~1 us) at the coarse
// grid, which only picks where the fine one looks, and 30 (5e-7) at the fine
// one: 0.95 s for the 102 cells of a live H100 store (2.4 s for the bundled
// profile's 266 of qwen3-8b), where 40 throughout took 3.6 s.
constexpr int STEPS_ONE = 40, STEPS_COARSE = 16, STEPS_FINE = 30;

struct Overheads {
    double overhead = 0, per_layer = 0, loss = INFINITY;
};

// The best overhead_s at a fixed per-layer overhead: golden section on
// [0, hi] for `steps` steps. The loss is unimodal in it: each term
// (log t - log measured)^2 is convex in t while the model is below e times
// the measurement, and t is linear in the overhead.
Overheads best_overhead(const std::vector<CellLine>& lines, double per_layer, double hi, int steps) {
    auto f = [&](double o) { return line_loss(lines, o, per_layer); };
    double a = 0, b = hi;
    golden_section(&a, &b, steps, f);
    Overheads out;
    out.overhead = (a + b) / 2;
    out.per_layer = per_layer;
    out.loss = f(out.overhead);
    return out;
}

// Both overheads: golden section on the per-layer one in [0, hi_layer], each
// of its values scored by the best overhead_s there (the loss is jointly
// convex in the pair in the same region, so its minimum over overhead_s is
// unimodal in the per-layer one). `steps` in each: the search costs about
// steps^2 evaluations of the loss.
Overheads best_overheads(const std::vector<CellLine>& lines, double hi, double hi_layer, int steps) {
    auto f = [&](double p) { return best_overhead(lines, p, hi, steps).loss; };
    double a = 0, b = hi_layer;
    golden_section(&a, &b, steps, f);
    return best_overhead(lines, (a + b) / 2, hi, steps);
}

CostFitCell fit_cell(const Profile& p, const MeasuredCost& m) {
    if (!(p.latency_us_p50 > 0))
        throw Error("cost fit: " + m.model + " on " + m.gpu + ": a " + phase_name(p.phase) + " cell (R=" +
                    std::to_string(p.n_seqs) + ", B=" + std::to_string(p.n_tokens) + ") has latency " +
                    std::to_string(p.latency_us_p50) + " us; expected > 0");
    if (p.phase == PHASE_DRAFT && (p.n_seqs < 1 || p.n_tokens % p.n_seqs != 0))
        throw Error("cost fit: " + m.model + " on " + m.gpu + ": a draft cell (R=" + std::to_string(p.n_seqs) +
                    ", B=" + std::to_string(p.n_tokens) + "): expected B = R * gamma");
    CostFitCell c;
    c.phase = p.phase;
    c.n_seqs = p.n_seqs;
    c.n_tokens = p.n_tokens;
    c.context = p.context;
    c.measured_s = p.latency_us_p50 * 1e-6;
    return c;
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

CostFit cost_fit_roofline(const Roofline& r, const MeasuredCost& m, const DrafterSpec& drafter) {
    if (r.tp != 1) throw Error("cost fit: tp " + std::to_string(r.tp) + ": a profile is one GPU's; fit at tp 1");
    CostFit fit;
    for (const std::vector<Profile>* table : {&m.verify, &m.prefill})
        for (const Profile& p : *table) fit.cells.push_back(fit_cell(p, m));
    if (fit.cells.empty())
        throw Error("cost fit: " + m.model + " on " + m.gpu + ": no verify or prefill cells to fit to");
    if (drafter.kind != DRAFTER_NONE && !m.draft.empty()) {
        fit.drafter = drafter;
        for (const Profile& p : m.draft) fit.cells.push_back(fit_cell(p, m));
    }

    std::vector<CellLine> lines(fit.cells.size());
    lines_count(&lines, r, fit.drafter, fit.cells);
    fit.per_layer_fitted = lines_split_overheads(lines);
    // The brackets: no overhead exceeds the fastest cell's time, nor a
    // layer's the time of any cell over its layers.
    double hi = INFINITY, hi_layer = INFINITY;
    for (size_t i = 0; i < fit.cells.size(); i++) {
        hi = std::min(hi, fit.cells[i].measured_s);
        if (lines[i].layers > 0) hi_layer = std::min(hi_layer, fit.cells[i].measured_s / lines[i].layers);
    }

    // For each overlap exponent of the grid (0: the max), the efficiencies on a
    // grid of 0.04 then 0.01 around the best, the overheads at each point.
    Roofline best = r;
    double best_loss = INFINITY;
    for (double n : kCostFitOverlaps) {
        Roofline best_n = r;
        best_n.overlap_n = n;
        double loss_n = INFINITY;
        auto search = [&](double bw_lo, double bw_hi, double fl_lo, double fl_hi, double step, int steps) {
            const Roofline base = best_n;
            for (double bw = bw_lo; bw <= bw_hi + 1e-9; bw += step)
                for (double fl = fl_lo; fl <= fl_hi + 1e-9; fl += step) {
                    Roofline t = base;
                    t.bw_efficiency = bw;
                    t.flops_efficiency = fl;
                    lines_base(&lines, t, fit.drafter, fit.cells);
                    const Overheads o = fit.per_layer_fitted
                                            ? best_overheads(lines, hi, hi_layer, steps)
                                            : best_overhead(lines, r.gpu.overhead_s_per_layer, hi, STEPS_ONE);
                    if (o.loss < loss_n) {
                        loss_n = o.loss;
                        best_n = t;
                        best_n.gpu.overhead_s = o.overhead;
                        best_n.gpu.overhead_s_per_layer = o.per_layer;
                    }
                }
        };
        search(0.08, 1.0, 0.08, 1.0, 0.04, STEPS_COARSE);
        const double bw0 = best_n.bw_efficiency, fl0 = best_n.flops_efficiency;
        search(std::max(0.05, bw0 - 0.04), std::min(1.0, bw0 + 0.04), std::max(0.05, fl0 - 0.04),
               std::min(1.0, fl0 + 0.04), 0.01, STEPS_FINE);
        if (loss_n < best_loss) best_loss = loss_n, best = best_n;
    }
    fit.fitted = best;
    for (CostFitCell& c : fit.cells) {
        c.before_s = cell_model_s(r, fit.drafter, c);
        c.after_s = cell_model_s(best, fit.drafter, c);
    }
    fit.before = cost_fit_errors(fit.cells, false);
    fit.after = cost_fit_errors(fit.cells, true);
    return fit;
}

}  // namespace sp
