// rng.h: the project's one random number generator, xoshiro256** seeded
// through splitmix64, with the few distributions we draw from.
//
// Why our own and not <random>: the standard distributions are implemented
// differently by each standard library, and specplan promises byte-identical
// output for the same seed. Every draw here is plain integer and IEEE double
// arithmetic, so a seed gives the same numbers on every platform.
//
// It lives in traces/ because traces/ is the bottom of the dependency graph:
// the synthetic trace generator, the simulator and the engine all use it.
// Independent streams: rng_seed(seed, stream) with a distinct stream number per
// purpose (arrivals, lengths, coins, ...), so that two policies simulated with
// the same seed see the same arrivals and the same coins.
#pragma once

#include <cassert>
#include <cmath>
#include <cstdint>

namespace sp {

struct Rng {
    uint64_t s[4];
};

__extension__ typedef unsigned __int128 rng_u128;  // GCC/Clang; for the 64x64 -> 128 multiply

inline uint64_t splitmix64(uint64_t* x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline Rng rng_seed(uint64_t seed, uint64_t stream = 0) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    Rng r;
    for (uint64_t& w : r.s) w = splitmix64(&x);
    return r;
}

inline uint64_t rng_u64(Rng& r) {
    auto rotl = [](uint64_t v, int k) { return (v << k) | (v >> (64 - k)); };
    uint64_t result = rotl(r.s[1] * 5, 7) * 9;
    uint64_t t = r.s[1] << 17;
    r.s[2] ^= r.s[0];
    r.s[3] ^= r.s[1];
    r.s[1] ^= r.s[2];
    r.s[0] ^= r.s[3];
    r.s[2] ^= t;
    r.s[3] = rotl(r.s[3], 45);
    return result;
}

// 53 random bits as a double in [0, 1).
inline double rng_unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Uniform in [0, 1).
inline double rng_uniform(Rng& r) { return rng_unit(rng_u64(r)); }

// A counter-based draw: the same (seed, stream, a, b) always gives the same
// 64 bits, whatever else was drawn. The simulator keys per-request draws by
// request identity this way, so two policies see the same request and the
// same acceptance coins however their runs diverge (common random numbers).
inline uint64_t rng_hash(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b = 0) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    x = splitmix64(&x) ^ (a * 0x9E3779B97F4A7C15ull);
    x = splitmix64(&x) ^ (b * 0xC2B2AE3D27D4EB4Full);
    return splitmix64(&x);
}

// Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject).
inline uint64_t rng_below(Rng& r, uint64_t n) {
    assert(n > 0 && "rng_below: empty range");
    rng_u128 m = static_cast<rng_u128>(rng_u64(r)) * n;
    uint64_t lo = static_cast<uint64_t>(m);
    if (lo < n) {
        uint64_t threshold = -n % n;
        while (lo < threshold) {
            m = static_cast<rng_u128>(rng_u64(r)) * n;
            lo = static_cast<uint64_t>(m);
        }
    }
    return static_cast<uint64_t>(m >> 64);
}

// Uniform integer in [lo, hi].
inline int64_t rng_range(Rng& r, int64_t lo, int64_t hi) {
    assert(lo <= hi && "rng_range: lo > hi");
    return lo + static_cast<int64_t>(rng_below(r, static_cast<uint64_t>(hi - lo) + 1));
}

// Standard normal, Marsaglia's polar method (no cached second value, so the
// stream position depends only on the number of calls).
inline double rng_normal(Rng& r) {
    for (;;) {
        double u = 2 * rng_uniform(r) - 1, v = 2 * rng_uniform(r) - 1;
        double s = u * u + v * v;
        if (s > 0 && s < 1) return u * std::sqrt(-2 * std::log(s) / s);
    }
}

inline double rng_exponential(Rng& r, double rate) { return -std::log1p(-rng_uniform(r)) / rate; }

// Gamma(shape, 1): Marsaglia and Tsang (2000); shape < 1 by the boost
// Gamma(a) = Gamma(a+1) * U^(1/a).
inline double rng_gamma(Rng& r, double shape) {
    assert(shape > 0 && "rng_gamma: shape must be > 0");
    if (shape < 1) return rng_gamma(r, shape + 1) * std::pow(rng_uniform(r), 1 / shape);
    double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
    for (;;) {
        double x = rng_normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = rng_uniform(r);
        if (u < 1 - 0.0331 * x * x * x * x) return d * v;
        if (std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
    }
}

// Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
inline double rng_beta(Rng& r, double a, double b) {
    double x = rng_gamma(r, a), y = rng_gamma(r, b);
    return x / (x + y);
}

}  // namespace sp
