// chi_square.h: the losslessness test's pieces, shared by the CPU and GPU
// suites (test_speculative.cpp, test_speculative_cuda.cpp): the second output
// token drawn over many seeds, the target's exact distribution of it, and
// Pearson's chi-square of one against the other.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/speculative.h"
#include "engine/verify.h"

namespace sp {

// Counts of the second output token of n_trials requests at T = 1, request
// i keyed by id i: the first token comes from the prefill, the second from
// the first verify step, whose full block (fixed:gamma) is drafted; each
// request is left unfinished.
inline std::vector<int> second_tokens(Backend& target, Drafter* d, const std::vector<int>& prompt, int n_trials) {
    SpecOptions o;
    std::string err;
    policy_parse(d ? "fixed:" + std::to_string(d->gamma()) : "ar", &o.policy, &err);
    o.seed = 99;
    std::vector<int> counts(size_t(target.config().vocab), 0);
    for (int i = 0; i < n_trials; i++) {
        Speculator spec(target, d, o);
        SpecRequest r;
        r.id = uint64_t(i);
        r.prompt = prompt;
        r.max_new = 64;
        r.temperature = 1;
        spec.add(&r);
        spec.step();
        counts[size_t(r.output.at(1))]++;
    }
    return counts;
}

// The exact distribution of the second output token at temperature 1:
// m(v) = sum_o p(o | prompt) p(v | prompt, o), from the fp32 reference forward.
inline std::vector<double> second_token_marginal(const ModelWeights& w, const std::vector<int>& prompt) {
    const int V = w.cfg.vocab, P = int(prompt.size());
    auto b = backend_cpu(w, 1);
    std::vector<float> logits, p(static_cast<size_t>(V)), p2(static_cast<size_t>(V));
    b->forward(RaggedBatch{{0}, {P}, prompt}, &logits);
    softmax_row(p.data(), logits.data() + size_t(P - 1) * V, V, 1.0f);
    std::vector<double> m(static_cast<size_t>(V), 0.0);
    for (int o = 0; o < V; o++) {
        b->forward(RaggedBatch{{0}, {1}, {o}}, &logits);
        b->truncate(0, P);
        softmax_row(p2.data(), logits.data(), V, 1.0f);
        for (int v = 0; v < V; v++) m[size_t(v)] += double(p[size_t(o)]) * p2[size_t(v)];
    }
    return m;
}

// Pearson's chi-square of counts (n draws) against probabilities; bins with
// an expected count below 5 are pooled into one. Sets *dof.
inline double chi_square(const std::vector<int>& counts, const std::vector<double>& prob, int n, int* dof) {
    double stat = 0, pooled_e = 0, pooled_o = 0;
    int bins = 0;
    for (size_t v = 0; v < prob.size(); v++) {
        const double e = prob[v] * n;
        if (e < 5) {
            pooled_e += e;
            pooled_o += counts[v];
            continue;
        }
        stat += (counts[v] - e) * (counts[v] - e) / e;
        bins++;
    }
    if (pooled_e > 0) {
        stat += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
        bins++;
    }
    *dof = bins - 1;
    return stat;
}

// Upper 0.1 % point of chi-square with k degrees of freedom (Wilson-Hilferty).
inline double chi_square_critical(int k) {
    const double z = 3.090232;  // standard normal, upper 0.1 %
    const double a = 2.0 / (9.0 * k);
    return k * std::pow(1 - a + z * std::sqrt(a), 3);
}

}  // namespace sp
