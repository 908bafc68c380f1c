// step_cost.cpp: measuring SPS(R, B) (step_cost.h).
#include "engine/step_cost.h"

#include "engine/speculative.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <string>

namespace sp {

std::vector<int> step_cost_grid(int n) {
    assert(n >= 1 && "step_cost_grid: n >= 1");
    std::vector<int> g;
    for (int v = 1; v < n; v *= 2) g.push_back(v);
    g.push_back(n);
    return g;
}

// Token values do not change a forward's time; spread them over the vocabulary.
static std::vector<int> spread_tokens(int n, int base, int vocab) {
    std::vector<int> v(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) v[size_t(i)] = int((uint64_t(base + i) * 2654435761u) % uint64_t(vocab));
    return v;
}

static bool ascending_from_one(const std::vector<int>& g) {
    if (g.empty() || g.front() < 1) return false;
    for (size_t i = 1; i < g.size(); i++)
        if (g[i] <= g[i - 1]) return false;
    return true;
}

StepCostTable step_cost_measure(Backend& b, int max_seqs, int max_per_seq, int context, int reps) {
    if (max_seqs < 1 || max_per_seq < 1)
        throw Error("step_cost_measure: expected max_seqs >= 1 and max_per_seq >= 1");
    return step_cost_measure_grid(b, step_cost_grid(max_seqs), step_cost_grid(max_per_seq), context, reps);
}

StepCostTable step_cost_measure_grid(Backend& b, const std::vector<int>& seqs, const std::vector<int>& per_seq,
                                     int context, int reps) {
    const Config& c = b.config();
    if (!ascending_from_one(seqs) || !ascending_from_one(per_seq))
        throw Error("step_cost_measure: expected ascending grids of values >= 1");
    const int max_seqs = seqs.back(), max_per_seq = per_seq.back();
    if (max_seqs > b.n_seqs())
        throw Error("step_cost_measure: " + std::to_string(max_seqs) + " sequences, the backend has slots for " +
                    std::to_string(b.n_seqs()));
    for (int s = 0; s < max_seqs; s++)
        if (b.len(s) != 0) throw Error("step_cost_measure: slot " + std::to_string(s) + " is not a free sequence slot");
    if (context < 0 || reps < 1 || context + max_per_seq > c.max_position)
        throw Error("step_cost_measure: expected reps >= 1 and context + max_per_seq <= " +
                    std::to_string(c.max_position));
    StepCostTable t;
    t.context = context;
    t.seqs = seqs;
    t.per_seq = per_seq;
    auto tokens = [&](int n, int base) { return spread_tokens(n, base, c.vocab); };
    if (context > 0)
        for (int s = 0; s < max_seqs; s++) b.forward(RaggedBatch{{s}, {context}, tokens(context, s)}, nullptr);
    for (int R : t.seqs)
        for (int q : t.per_seq) {
            RaggedBatch rb;
            for (int s = 0; s < R; s++) {
                rb.seq.push_back(s);
                rb.q_len.push_back(q);
            }
            rb.tokens = tokens(R * q, context);
            std::vector<double> sec;
            for (int r = 0; r <= reps; r++) {  // one untimed warm-up (and a graph's capture)
                const auto t0 = std::chrono::steady_clock::now();
                b.forward(rb, nullptr);
                const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
                for (int s = 0; s < R; s++) b.truncate(s, context);
                if (r > 0) sec.push_back(dt.count());
            }
            std::nth_element(sec.begin(), sec.begin() + long(sec.size() / 2), sec.end());
            t.seconds.push_back(sec[sec.size() / 2]);
        }
    for (int s = 0; s < max_seqs; s++) b.truncate(s, 0);
    const size_t nq = t.per_seq.size();
    for (size_t i = 0; i < t.seqs.size(); i++)
        for (size_t j = 0; j < nq; j++) {
            double& v = t.seconds[i * nq + j];
            if (j > 0) v = std::max(v, t.seconds[i * nq + j - 1]);
            if (i > 0) v = std::max(v, t.seconds[(i - 1) * nq + j]);
        }
    return t;
}

std::vector<double> draft_cost_measure(Backend& target, Drafter& d, const std::vector<int>& seqs, int gamma,
                                       int context, int reps) {
    if (!ascending_from_one(seqs) || seqs.back() > target.n_seqs() || seqs.back() > d.n_slots())
        throw Error("draft_cost_measure: expected an ascending R grid of at most " +
                    std::to_string(std::min(target.n_seqs(), d.n_slots())) + " sequences");
    for (int s = 0; s < seqs.back(); s++)
        if (target.len(s) != 0 || d.len(s) != 0)
            throw Error("draft_cost_measure: slot " + std::to_string(s) + " is not free");
    const int max_pos = target.config().max_position;
    if (gamma < 1 || gamma > d.gamma() || context < 1 || reps < 1 || context + (reps + 2) * (gamma + 1) > max_pos)
        throw Error("draft_cost_measure: expected 1 <= gamma <= " + std::to_string(d.gamma()) +
                    ", context >= 1, reps >= 1 and context + (reps + 2) (gamma + 1) <= " + std::to_string(max_pos));
    SpecOptions so;
    std::string err;
    const bool ok = policy_parse("fixed:" + std::to_string(gamma), &so.policy, &err);
    assert(ok && "draft_cost_measure: fixed:gamma parses");
    (void)ok;
    so.gamma = gamma;
    so.token_budget = 8192;
    so.prefill_chunk = 8192;
    std::vector<double> out;
    for (int R : seqs) {
        Speculator spec(target, &d, so);
        // Outputs long enough for reps + 1 steps of all R whatever is
        // accepted (a step emits at most gamma + 1 tokens), counting the
        // steps the first requests decode while later prompts prefill.
        const int prefill_steps = int((int64_t(R) * context + so.token_budget - 1) / so.token_budget);
        const int max_new = std::min((reps + 2 + prefill_steps) * (gamma + 1), max_pos - context);
        std::vector<SpecRequest> req(static_cast<size_t>(R));
        for (int r = 0; r < R; r++) {
            req[size_t(r)].id = uint64_t(r);
            req[size_t(r)].prompt = spread_tokens(context, 7919 * r, target.config().vocab);
            req[size_t(r)].max_new = max_new;
            spec.submit(&req[size_t(r)]);
        }
        std::vector<double> sec;
        while (!spec.idle() && int(sec.size()) <= reps) {
            spec.step();
            const IterationInfo& it = spec.last_iteration();
            if (it.decode_seqs == R && it.prefill_tokens == 0) sec.push_back(double(it.draft_ns) * 1e-9);
        }
        while (!spec.idle()) spec.step();  // the rest; a finished request's slot keeps its cache
        for (int r = 0; r < R; r++) {
            target.truncate(r, 0);
            d.reset(r);
        }
        if (int(sec.size()) <= reps)
            throw Error("draft_cost_measure: " + std::to_string(sec.size()) + " full steps at R = " +
                        std::to_string(R) + ", expected " + std::to_string(reps + 1));
        sec.erase(sec.begin());  // the first: a graph's capture, the drafter's first sight of the prompts
        std::nth_element(sec.begin(), sec.begin() + long(sec.size() / 2), sec.end());
        out.push_back(std::max(sec[sec.size() / 2], out.empty() ? 0.0 : out.back()));
    }
    return out;
}

namespace {
// Row i at q tokens per sequence: linear between the q grid's points, the
// last segment's line past its end (one point: flat).
double row_seconds(const StepCostTable& t, size_t i, double q) {
    const std::vector<int>& g = t.per_seq;
    const double* row = t.seconds.data() + i * g.size();
    if (g.size() == 1 || q <= g.front()) return row[0];
    size_t j = 1;
    while (j + 1 < g.size() && q > g[j]) j++;
    const double f = (q - g[j - 1]) / double(g[j] - g[j - 1]);
    return row[j - 1] + f * (row[j] - row[j - 1]);
}
}  // namespace

double step_cost_seconds(const StepCostTable& t, int n_seqs, int n_tokens) {
    assert(!t.seqs.empty() && t.seconds.size() == t.seqs.size() * t.per_seq.size() && "step_cost_seconds: no table");
    const int R = std::clamp(n_seqs, t.seqs.front(), t.seqs.back());
    const double q = double(std::max(n_tokens, 1)) / double(std::max(n_seqs, 1));
    size_t i = 0;
    while (i + 1 < t.seqs.size() && t.seqs[i + 1] < R) i++;
    if (i + 1 == t.seqs.size() || t.seqs[i] == R) return row_seconds(t, i, q);
    const double f = double(R - t.seqs[i]) / double(t.seqs[i + 1] - t.seqs[i]);
    return (1 - f) * row_seconds(t, i, q) + f * row_seconds(t, i + 1, q);
}

StepTime step_cost_fn(const StepCostTable& t) {
    StepTime st;
    st.fn = [](const void* ctx, int n_seqs, int n_tokens) {
        return step_cost_seconds(*static_cast<const StepCostTable*>(ctx), n_seqs, n_tokens);
    };
    st.ctx = &t;
    return st;
}

}  // namespace sp
