// golden.h: golden-section search for the minimum of a unimodal function on
// [a, b]. Shared by the STS temperature fit (calibrate.cpp) and the roofline
// fit (simulator/cost_fit.cpp).
#pragma once

#include <cmath>

namespace sp {

// Shrinks [*a, *b] by 0.618 a step for `steps` steps around the minimum of
// f, evaluating f once a step after the first two. f may record the best
// point it sees; the caller reads the final bracket from *a and *b.
template <typename F>
void golden_section(double* a, double* b, int steps, F f) {
    const double phi = (std::sqrt(5.0) - 1) / 2;
    double x1 = *b - phi * (*b - *a), x2 = *a + phi * (*b - *a);
    double f1 = f(x1), f2 = f(x2);
    for (int it = 0; it < steps; it++) {
        if (f1 <= f2) {
            *b = x2, x2 = x1, f2 = f1;
            x1 = *b - phi * (*b - *a), f1 = f(x1);
        } else {
            *a = x1, x1 = x2, f1 = f2;
            x2 = *a + phi * (*b - *a), f2 = f(x2);
        }
    }
}

}  // namespace sp
