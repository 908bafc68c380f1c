// step_cost.cpp: measuring SPS(B) (step_cost.h).
#include "engine/step_cost.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace sp {

StepCostTable step_cost_measure(Backend& b, int slot, int max_tokens, int context, int reps) {
    const Config& c = b.config();
    if (slot < 0 || slot >= b.n_seqs() || b.len(slot) != 0)
        throw Error("step_cost_measure: slot " + std::to_string(slot) + " is not a free sequence slot");
    if (max_tokens < 1 || context < 0 || reps < 1 || context + max_tokens > c.max_position)
        throw Error("step_cost_measure: expected max_tokens >= 1, reps >= 1 and context + max_tokens <= " +
                    std::to_string(c.max_position));
    StepCostTable t;
    t.context = context;
    // Token values do not change a forward's time; spread them over the vocabulary.
    auto tokens = [&](int n, int base) {
        std::vector<int> v(static_cast<size_t>(n));
        for (int i = 0; i < n; i++) v[size_t(i)] = int((uint64_t(base + i) * 2654435761u) % uint64_t(c.vocab));
        return v;
    };
    if (context > 0) b.forward(RaggedBatch{{slot}, {context}, tokens(context, 0)}, nullptr);
    for (int B = 1; B <= max_tokens; B++) {
        const RaggedBatch rb{{slot}, {B}, tokens(B, context)};
        std::vector<double> s;
        for (int r = 0; r <= reps; r++) {  // one untimed warm-up
            const auto t0 = std::chrono::steady_clock::now();
            b.forward(rb, nullptr);
            const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
            b.truncate(slot, context);
            if (r > 0) s.push_back(dt.count());
        }
        std::nth_element(s.begin(), s.begin() + long(s.size() / 2), s.end());
        t.seconds.push_back(s[s.size() / 2]);
    }
    b.truncate(slot, 0);
    for (size_t i = 1; i < t.seconds.size(); i++) t.seconds[i] = std::max(t.seconds[i], t.seconds[i - 1]);
    return t;
}

double step_cost_seconds(const StepCostTable& t, int n_tokens) {
    const int n = int(t.seconds.size());
    if (n_tokens <= n) return t.seconds[size_t(std::max(n_tokens, 1) - 1)];
    const double slope = n >= 2 ? t.seconds[size_t(n - 1)] - t.seconds[size_t(n - 2)] : 0.0;
    return t.seconds[size_t(n - 1)] + slope * (n_tokens - n);
}

StepTime step_cost_fn(const StepCostTable& t) {
    StepTime st;
    st.fn = [](const void* ctx, int n_tokens) {
        return step_cost_seconds(*static_cast<const StepCostTable*>(ctx), n_tokens);
    };
    st.ctx = &t;
    return st;
}

}  // namespace sp
