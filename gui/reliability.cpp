// reliability.cpp: see reliability.h.
#include "gui/reliability.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sp {

// Calls row(at, n_real) for every stored row of the run: `at` its first float
// in beta / conf / conf_logit, n_real its real slots among 1..G. Requests'
// rows are stored back to back; a request is bound by the next one's start
// and by the arrays' end, whatever its output_len claims.
template <typename Fn>
static void for_each_row(const AcceptanceData& a, int G, Fn&& row) {
    const size_t TG = static_cast<size_t>(a.trace_gamma);
    for (size_t i = 0; i < a.requests.size(); i++) {
        const TraceRequest& q = a.requests[i];
        const size_t end = std::min(i + 1 < a.requests.size() ? a.requests[i + 1].offset : a.beta.size(), a.beta.size());
        if (q.offset >= end) continue;
        const size_t rows = std::min(static_cast<size_t>(std::max(q.output_len, 0)), (end - q.offset) / TG);
        for (size_t t = 0; t < rows; t++)
            row(q.offset + t * TG, std::clamp(q.output_len - 1 - static_cast<int>(t), 0, G));
    }
}

static ReliabilityBins bins_of(const std::vector<double>& pred, const std::vector<double>& real) {
    ReliabilityBins rb;
    for (size_t j = 0; j < pred.size(); j++) {
        const int b = std::clamp(static_cast<int>(pred[j] * RELIABILITY_BINS), 0, RELIABILITY_BINS - 1);
        rb.pred[b] += pred[j];
        rb.real[b] += real[j];
        rb.count[b]++;
    }
    rb.total = static_cast<int64_t>(pred.size());
    for (int b = 0; b < RELIABILITY_BINS; b++) {
        if (rb.count[b] == 0) continue;
        rb.pred[b] /= static_cast<double>(rb.count[b]);
        rb.real[b] /= static_cast<double>(rb.count[b]);
    }
    rb.ece = ece_compute(pred, real, RELIABILITY_BINS);
    return rb;
}

// Every real slot's predicted survival under `temperatures`, slots 1..G pooled
// in calibrate.h's order (slot by slot), and the realised survival alike.
static ReliabilityBins bins_at(const CalibRows& rows, const std::vector<double>& temperatures) {
    std::vector<double> pred, real;
    for (int k = 1; k <= rows.gamma; k++) {
        const std::vector<double> p = survival_predict(rows, temperatures, k), r = survival_realise(rows, k);
        pred.insert(pred.end(), p.begin(), p.end());
        real.insert(real.end(), r.begin(), r.end());
    }
    return bins_of(pred, real);
}

Reliability reliability_compute(const AcceptanceData& a) {
    Reliability rb;
    if (a.kind != ACCEPT_TRACE || a.trace_gamma <= 0) return rb;
    const int G = std::min(a.gamma, a.trace_gamma);
    const size_t g = static_cast<size_t>(std::max(G, 0));
    if (!a.conf_logit.empty() && a.conf_logit.size() == a.beta.size()) {
        // 1. raw logits: calibrate.h's rows, slots 1..G, fitted as `specplan calibrate` fits
        rb.source = RELIABILITY_LOGITS;
        CalibRows rows;
        rows.gamma = G;
        for_each_row(a, G, [&](size_t at, int n_real) {
            rows.z.insert(rows.z.end(), a.conf_logit.begin() + static_cast<ptrdiff_t>(at),
                          a.conf_logit.begin() + static_cast<ptrdiff_t>(at + g));
            rows.beta.insert(rows.beta.end(), a.beta.begin() + static_cast<ptrdiff_t>(at),
                             a.beta.begin() + static_cast<ptrdiff_t>(at + g));
            rows.n_real.push_back(n_real);
        });
        rb.raw = bins_at(rows, std::vector<double>(g, 1.0));
        rb.unfittable_slot = sts_unfittable_slot(rows);
        if (rb.unfittable_slot == 0) {
            rb.temperatures = sts_fit(rows);
            rb.calibrated = bins_at(rows, rb.temperatures);
        }
        return rb;
    }
    if (a.conf.empty() || a.conf.size() != a.beta.size()) return rb;
    // 2. the recorded confidences alone
    rb.source = RELIABILITY_CONF_PROB;
    std::vector<double> pred, real;
    for_each_row(a, G, [&](size_t at, int n_real) {
        double p = 1, r = 1;
        for (int k = 0; k < n_real; k++) {
            pred.push_back(p *= a.conf[at + static_cast<size_t>(k)]);
            real.push_back(r *= a.beta[at + static_cast<size_t>(k)]);
        }
    });
    rb.raw = bins_of(pred, real);
    return rb;
}

uint64_t reliability_digest(const AcceptanceData& a) {
    // FNV-1a over 32-bit words: a few ms for a million slots, beside a fit of seconds
    uint64_t h = 0xcbf29ce484222325ull;
    auto word = [&h](uint32_t w) { h = (h ^ w) * 0x100000001b3ull; };
    auto floats = [&](const std::vector<float>& v) {
        word(static_cast<uint32_t>(v.size()));
        for (float f : v) {
            uint32_t w;
            std::memcpy(&w, &f, sizeof w);
            word(w);
        }
    };
    word(static_cast<uint32_t>(a.kind));
    word(static_cast<uint32_t>(a.gamma));
    word(static_cast<uint32_t>(a.trace_gamma));
    word(static_cast<uint32_t>(a.requests.size()));
    for (const TraceRequest& q : a.requests) {
        word(static_cast<uint32_t>(q.output_len));
        word(static_cast<uint32_t>(q.offset));
        word(static_cast<uint32_t>(q.offset >> 32));
    }
    floats(a.beta);
    floats(a.conf);
    floats(a.conf_logit);
    return h;
}

}  // namespace sp
