// metrics.cpp: the percentile sketch; see metrics.h for its error bound.
#include "simulator/metrics.h"

#include <algorithm>
#include <cmath>

namespace sp {

static const double LOG_GROWTH = std::log(Sketch::GROWTH);
static const int N_BUCKETS = static_cast<int>(std::ceil(std::log(Sketch::HI / Sketch::LO) / LOG_GROWTH)) + 1;

static int bucket_of(double v) {
    if (!(v > Sketch::LO)) return 0;
    int b = static_cast<int>(std::log(v / Sketch::LO) / LOG_GROWTH);
    return std::min(b, N_BUCKETS - 1);
}

void sketch_add(Sketch& s, double v) {
    if (s.counts.empty()) s.counts.assign(static_cast<size_t>(N_BUCKETS), 0);
    s.counts[static_cast<size_t>(bucket_of(v))]++;
    if (s.n == 0 || v < s.min) s.min = v;
    if (s.n == 0 || v > s.max) s.max = v;
    s.n++;
    s.sum += v;
}

double sketch_quantile(const Sketch& s, double q) {
    if (s.n == 0) return 0;
    // nearest rank: the smallest value with at least ceil(q n) values <= it
    int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(s.n))));
    int64_t seen = 0;
    for (int b = 0; b < N_BUCKETS; b++) {
        seen += s.counts[static_cast<size_t>(b)];
        if (seen >= rank) {
            double mid = Sketch::LO * std::exp((b + 0.5) * LOG_GROWTH);
            return std::clamp(mid, s.min, s.max);
        }
    }
    return s.max;
}

double sketch_mean(const Sketch& s) { return s.n ? s.sum / static_cast<double>(s.n) : 0; }

Summary summary_latency(const Sketch& s) {
    return {sketch_mean(s), sketch_quantile(s, 0.5), sketch_quantile(s, 0.9), sketch_quantile(s, 0.99)};
}

Summary summary_speed(const Sketch& s) {
    return {sketch_mean(s), sketch_quantile(s, 0.5), sketch_quantile(s, 0.1), sketch_quantile(s, 0.01)};
}

}  // namespace sp
