// drafter_cuda.h: the drafters of the CUDA library (specplan_engine_cuda),
// as drafter.h declares the CPU ones. Their device() is "cuda": the
// DraftBatch::hidden they read and the DraftOutput::q they write live in
// device memory (drafter.h's contract otherwise).
#pragma once

#include <memory>
#include <string>

#include "engine/drafter.h"
#include "engine/kv_cache.h"

namespace sp {

// The DSpark / DFlash drafter of drafter_dspark_cpu, in bf16 on the GPU
// (drafter_dspark_cuda.cpp): the same computation, to bf16 rounding. Its
// context K/V lives in a paged KvCache of n_slots sequences made with `kv`
// (by default half of the device's free memory, as the target's). The
// batch's `hidden` must be complete when draft() is called: the drafter runs
// on a stream of its own (the CUDA backend's forward synchronises before it
// returns). `target` (its embedding and LM head) is read once, at
// construction.
std::unique_ptr<Drafter> drafter_dspark_cuda(const std::string& dir, const ModelWeights& target, int n_slots,
                                             int gamma, const KvCacheOptions& kv = {});

// The same drafter over random weights of cfg's shape, made on the device
// (benchmarks at a real model's shape without a checkpoint).
struct DSparkConfig;
std::unique_ptr<Drafter> drafter_dspark_cuda_random(const Config& target, const DSparkConfig& cfg, uint64_t seed,
                                                    int n_slots, int gamma, const KvCacheOptions& kv = {});

// The EAGLE-3 drafter of drafter_eagle3_cpu, in bf16 on the GPU
// (drafter_eagle3_cuda.cpp), under the same terms as drafter_dspark_cuda:
// the step-0 K/V of every committed position in a paged KvCache of the one
// draft layer made with `kv`, `hidden` complete when draft() is called, and
// `target`'s embedding and LM head read once, at construction.
std::unique_ptr<Drafter> drafter_eagle3_cuda(const std::string& dir, const ModelWeights& target, int n_slots,
                                             int gamma, const KvCacheOptions& kv = {});

// The same drafter over random weights of cfg's shape (cfg.layers: the
// target's, one layer), made on the device: benchmarks without a checkpoint.
struct Eagle3Config;
std::unique_ptr<Drafter> drafter_eagle3_cuda_random(const Config& target, const Eagle3Config& cfg, uint64_t seed,
                                                    int n_slots, int gamma, const KvCacheOptions& kv = {});

// drafter_open (drafter.h) with the CUDA makers: DSpark, DFlash and EAGLE-3
// on the GPU, a draft model on a CUDA backend of its own; n-gram lookup stays
// on the host (drafter_open_cuda.cpp).
std::unique_ptr<Drafter> drafter_open_cuda(const std::string& spec, const ModelWeights& target,
                                           const DrafterOptions& o);

}  // namespace sp
