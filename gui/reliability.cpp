// reliability.cpp: see reliability.h.
#include "gui/reliability.h"

#include <algorithm>
#include <cmath>

namespace sp {

Reliability reliability_compute(const AcceptanceData& a) {
    Reliability rb;
    if (a.kind != ACCEPT_TRACE || a.conf.empty() || a.conf.size() != a.beta.size() || a.trace_gamma <= 0) return rb;
    rb.available = true;
    const size_t TG = static_cast<size_t>(a.trace_gamma);
    const int G = std::min(a.gamma, a.trace_gamma);
    for (size_t i = 0; i < a.requests.size(); i++) {
        const TraceRequest& q = a.requests[i];
        // Requests' rows are stored back to back; bound by the next one's start.
        const size_t end = std::min(i + 1 < a.requests.size() ? a.requests[i + 1].offset : a.beta.size(), a.beta.size());
        if (q.offset >= end) continue;
        const size_t rows = std::min(static_cast<size_t>(std::max(q.output_len, 0)), (end - q.offset) / TG);
        for (size_t t = 0; t < rows; t++) {
            const size_t at = q.offset + t * TG;
            double pred = 1, real = 1;
            for (int k = 1; k <= G && t + static_cast<size_t>(k) < static_cast<size_t>(q.output_len); k++) {
                pred *= a.conf[at + static_cast<size_t>(k - 1)];
                real *= a.beta[at + static_cast<size_t>(k - 1)];
                const int b = std::clamp(static_cast<int>(pred * RELIABILITY_BINS), 0, RELIABILITY_BINS - 1);
                rb.pred[b] += pred;
                rb.real[b] += real;
                rb.count[b]++;
            }
        }
    }
    for (int b = 0; b < RELIABILITY_BINS; b++) {
        rb.total += rb.count[b];
        if (rb.count[b] == 0) continue;
        rb.pred[b] /= static_cast<double>(rb.count[b]);
        rb.real[b] /= static_cast<double>(rb.count[b]);
    }
    for (int b = 0; b < RELIABILITY_BINS; b++)
        if (rb.total)
            rb.ece += static_cast<double>(rb.count[b]) / static_cast<double>(rb.total) * std::fabs(rb.real[b] - rb.pred[b]);
    return rb;
}

}  // namespace sp
