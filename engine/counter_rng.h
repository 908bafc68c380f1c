// counter_rng.h: the engine's counter-based random numbers, one definition
// for the CPU reference and the CUDA kernels, so that both draw the same
// uniforms for the same key (the tests compare their samples, not only their
// distributions).
//
// A draw is a pure function of its key: (seed, stream, request, position)
// picks a row, an index i picks the uniform inside it. No state, the same for
// a request whatever batch it runs in, no host round trip. Three splitmix64
// rounds per draw.
//
// Streams keep the draws of a step independent of each other:
//   RNG_TARGET  the target's token at `position` (plain sampling, the
//               correction after a rejection, the bonus); used once per
//               position, when that token is committed
//   RNG_DRAFT   the drafter's samples of the block anchored at `position`:
//               index k * V + v for slot k, vocabulary entry v
//   RNG_ACCEPT  the accept coins of the block anchored at `position`: index k
// A key used by a block that was later rejected has not influenced anything
// committed, so the next block may draw from a fresh anchor without bias.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define SP_HOST_DEVICE __host__ __device__
#else
#define SP_HOST_DEVICE
#endif

namespace sp {

enum RngStream : uint64_t { RNG_TARGET = 0, RNG_DRAFT = 1, RNG_ACCEPT = 2 };

SP_HOST_DEVICE inline uint64_t counter_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// The row of draws of (seed, stream, request, position). RNG_TARGET's rows
// are those of sample_forward (sampling.cu) before streams existed.
SP_HOST_DEVICE inline uint64_t counter_row(uint64_t seed, RngStream stream, uint64_t request, int position) {
    const uint64_t s = stream == RNG_TARGET ? seed : counter_mix(seed ^ (0x5851f42d4c957f2dull * stream));
    return counter_mix(counter_mix(s ^ counter_mix(request)) ^ static_cast<uint64_t>(static_cast<uint32_t>(position)));
}

// Uniform on (0, 1), draw i of a row: (m + 0.5) / 2^23 for m the top 23
// bits of the hash, so every value is exact in fp32 (24 significant bits) and
// strictly inside (0, 1): Gumbel noise -log(-log u) stays finite (-2.81 ..
// 16.6) and the truncated tails weigh 2^-23. (Taking 24 bits rounded m + 0.5
// up to 2^24 for m = 2^24 - 1: u = 1, noise +inf, that entry drawn whatever
// its probability; 1 in 2^24 draws, about 1 % of sampled tokens at Qwen3's
// vocabulary. Found by tests/make_dspark_fixtures.py's author, 2026-12-07.)
SP_HOST_DEVICE inline float counter_uniform(uint64_t row, int i) {
    const uint64_t h = counter_mix(row ^ static_cast<uint64_t>(static_cast<uint32_t>(i)));
    return (static_cast<float>(h >> 41) + 0.5f) * (1.0f / 8388608.0f);
}

}  // namespace sp
