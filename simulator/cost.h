// cost.h: how long one iteration of the serving engine takes on the GPU.
//
// Two models behind one interface (a CostModel is plain data; the free
// functions dispatch on its kind):
//   roofline  time = max(bytes / achievable bandwidth, flops / achievable rate)
//             + a launch overhead (fixed per step, plus one term per decoder
//             layer the step runs), from the model shape and a GPU datasheet
//             spec. Memory-bound below the ridge (time flat in B),
//             compute-bound above it (time linear in B).
//             At tp > 1 each forward also pays its tensor-parallel
//             collectives (roofline_comm_s), from the GPU spec's NCCL
//             figures.
//   measured  interpolation in the trace store's profiles table (cells of
//             latency at (R, B, context) per phase); the rule is documented
//             at cost_forward_s in cost.cpp and in scenarios/README.md.
//
// Units: seconds (double) at this interface; the simulator converts to
// integer nanoseconds. Token counts are tokens, bytes are bytes.
#pragma once

#include <string>
#include <vector>

#include "traces/trace_db.h"

namespace sp {

// A GPU's datasheet numbers (dense, no sparsity). The two overheads are not
// datasheet numbers: they are the host/launch cost of one GPU step, a model
// assumption stated with the preset (or fitted by calibrate-cost). A step
// over n decoder layers pays overhead_s + n * overhead_s_per_layer: an
// engine launches a fixed set of kernels per layer, so a 36-layer target
// forward launches about seven times the kernels of a 5-layer drafter
// forward, and one overhead fitted to target forwards alone is charged
// whole to each of the drafter's 1 + gamma dependent steps (fitted to our
// engine's live H100 verify and prefill cells of qwen3-8b: 972 us, and the
// DSpark draft at R = 1 priced at 9.1 ms against 1.7 ms measured). The
// per-layer term lives here beside overhead_s, not on Roofline, because the
// two are one launch cost split in two: set, overridden and fitted together.
// The two all-reduce figures are not datasheet numbers either: NCCL's bus
// bandwidth and per-call latency over the GPUs' NVLink, from published
// nccl-tests runs and NCCL's own latency model (sources at the presets,
// cost.cpp); no measured tp cells exist to fit them yet. A GPU without them
// (0, the default) cannot be priced at tp > 1.
struct GpuSpec {
    std::string name;            // preset key: "h100-sxm", "h200", "a100-80gb", "b200"
    std::string label;           // human label, says "datasheet"
    double hbm_bytes_per_s = 0;  // HBM bandwidth, bytes/s
    double allreduce_bus_bytes_per_s = 0;  // NCCL all-reduce bus bandwidth over the tp group, bytes/s
    double allreduce_latency_s = 0;        // fixed time of one collective call, s
    double bf16_flops = 0;       // dense BF16 tensor-core rate, FLOP/s
    double hbm_bytes = 0;        // HBM capacity, bytes
    double overhead_s = 0;       // fixed overhead of every GPU step (forward or Markov step), s
    double overhead_s_per_layer = 0;  // more overhead per decoder layer a forward runs, s (presets: 0)
};
bool gpu_preset(const std::string& name, GpuSpec* out);
std::vector<std::string> gpu_preset_names();

// Mixture-of-experts part of a model. n_experts == 0 means dense.
// expert_param_fraction is the share of n_params that sits in routed experts;
// a forward over B tokens reads each touched expert once, and the expected
// fraction of experts touched is 1 - (1 - experts_per_token/n_experts)^B.
struct MoeShape {
    int n_experts = 0;
    int experts_per_token = 0;
    double expert_param_fraction = 0;
};

enum DrafterKind {
    DRAFTER_NONE,    // no speculation: the draft phase costs nothing
    DRAFTER_MTP,     // autoregressive: gamma sequential forwards of n_layers target-width layers over R tokens
    DRAFTER_DSPARK,  // parallel block: one forward of n_layers over R*gamma tokens, then gamma sequential
                     // Markov-head steps, each an (R x markov_rank) by (markov_rank x vocab) GEMM
    DRAFTER_COUNT
};
const char* drafter_kind_name(DrafterKind k);  // "none", "mtp", "dspark"
bool drafter_kind_parse(const std::string& s, DrafterKind* out);
// The draft layers [cost.drafter] assumes when it names none: 5 for DSpark
// (DeepSpec's Qwen3-8B drafter, and the one `specplan live --drafter dspark`
// builds), 1 otherwise (an MTP module is one layer).
int drafter_default_layers(DrafterKind k);

struct DrafterSpec {
    DrafterKind kind = DRAFTER_NONE;
    int n_layers = 1;            // draft decoder layers, each the size of one target layer
    int markov_rank = 256;       // DSpark Markov head rank r
};

struct Roofline {
    ModelShape model;            // target shape (n_params, layers, hidden, heads, ...)
    MoeShape moe;
    GpuSpec gpu;
    int tp = 1;                  // GPUs in the tensor-parallel group: bandwidth and rate scale by tp,
                                 // and each forward pays its collectives (roofline_comm_s)
    double bw_efficiency = 0.8;  // achievable fraction of datasheet bandwidth (model assumption)
    double flops_efficiency = 0.6;  // achievable fraction of datasheet BF16 rate (model assumption)
    // How a kernel family's memory and math times combine, (t_mem^n +
    // t_math^n)^(1/n): 0 (the default) takes the max, the classic roofline
    // whose kernels overlap the two perfectly; 1 adds them (no overlap); in
    // between, the skinny GEMMs near the ridge that neither stream nor
    // compute at full rate. calibrate-cost fits it to a measured profile.
    double overlap_n = 0;
};

// A measured cost table: the profile cells of one (gpu, model) from a trace
// store, split by phase. Each phase's cells lie on a grid of (R, B, context).
struct MeasuredCost {
    std::string gpu, model;      // what the cells were measured on, for messages
    std::vector<Profile> draft, verify, prefill;
};

enum CostKind { COST_ROOFLINE, COST_MEASURED };

struct CostModel {
    CostKind kind = COST_ROOFLINE;
    Roofline roofline;           // COST_ROOFLINE
    MeasuredCost measured;       // COST_MEASURED
    DrafterSpec drafter;         // roofline draft cost; measured uses the draft phase table
    std::string calibration;     // roofline: what its efficiencies were fitted to (specplan calibrate-cost
                                 // prints it); empty: datasheet rates with assumed efficiencies, uncalibrated
    // The serving loop's own host time per iteration (admission, metadata,
    // sampling bookkeeping), seconds: host_s + host_s_per_seq * R for an
    // iteration of R running requests, added to its duration but not to the
    // price the policies see (the engine's step-cost table has no host time
    // either). `specplan live` reports it per point (host_loop_us); measured
    // cells hold none of it. Per request because the loop's bookkeeping is:
    // on the H100 the demo pair's loop took 1 us at 1 user and 136 us at 256.
    double host_s = 0;
    double host_s_per_seq = 0;
    // Measured only: the forward's duration is that of its tokens rounded up
    // to the next power of two up to token_tile, and to a multiple of
    // token_tile above it (0: as they are). The engine's projections run in
    // token tiles (gemv.cu: 8 tokens a tile up to 16; cuBLAS's tiles up to
    // 128 tokens high), so its step time is a staircase in B, and a grid
    // measured at B = R q (powers of two) sits on the treads: on the H100,
    // qwen3-8b verify of 63 blocks of 8 plus a 64-token prompt chunk (568
    // tokens) took 19.0 ms against 15.9 ms for 512, and 2 requests of 9
    // tokens 6.41 ms against 5.95 ms for 8 (live iterations, 2026-12-07).
    // Not in the policies' price: the engine's step-cost table, which its
    // policies read, is smooth too.
    int token_tile = 0;
};

// The host loop's seconds for an iteration of n_seqs running requests.
inline double cost_host_s(const CostModel& m, int n_seqs) { return m.host_s + m.host_s_per_seq * n_seqs; }

// What one forward pass of the target processes in one iteration.
struct BatchShape {
    int n_decode_seqs = 0;       // R: running requests, each verifying 1 + l_r tokens
    int n_decode_tokens = 0;     // sum over them of (1 + l_r)
    double decode_context = 0;   // mean tokens already in the KV cache per decoding request
    int n_prefill_seqs = 0;      // requests with a prefill chunk in this forward
    int n_prefill_tokens = 0;    // prompt tokens of those chunks, in all
    double prefill_context = 0;  // mean tokens already cached per prefilling request (earlier chunks)
};

// Seconds for one target forward over `b`, fixed overhead included: the
// price the policies compare.
double cost_forward_s(const CostModel& m, const BatchShape& b);
// What the forward takes when the iteration runs: cost_forward_s with, for
// a measured model, its tokens rounded up as m.token_tile says (the extra
// tokens priced as more prompt tokens when a chunk rides along, else as more
// decode tokens) and a prompt chunk beside decode tokens costing at least
// its rise in the verify table and the prefill table's price of the whole
// batch (cost.cpp, measured_chunk_us).
double cost_forward_run_s(const CostModel& m, const BatchShape& b);

// Seconds for the draft phase: the drafter proposes gamma tokens for each of
// n_seqs requests whose mean context is `context`. 0 when gamma == 0 or the
// drafter is DRAFTER_NONE.
double cost_draft_s(const CostModel& m, int n_seqs, int gamma, double context);

// Throws sp::Error naming `where` (e.g. the scenario file and key) when the
// model cannot answer what a run needs: a measured model without cells for a
// phase the run uses (draft when gamma > 0, verify, prefill when prefill
// tokens occur), or non-positive roofline numbers.
// Every run prefills prompts, so prefill cells are always required; with
// needs_draft a roofline model must name a drafter (mtp or dspark), since
// DRAFTER_NONE would make drafting free. The message is one line, starting
// with `where`.
void cost_validate(const CostModel& m, bool needs_draft, const std::string& where);

// Loads the profile cells of (gpu, model name) from an open trace store;
// both empty: the only (gpu, model) present, or an error if there are several.
// An empty name matches any (so one name alone must still pick one pair).
// sp::Error, naming the store, when nothing matches (the message lists what
// is there), when several pairs match, or when the matching cells come from
// two different shapes under one model name.
MeasuredCost measured_cost_load(TraceDb& db, const std::string& gpu, const std::string& model);

// Roofline pieces, exposed for tests and the dashboard's Explain panel.
double roofline_weight_bytes(const Roofline& r, int n_tokens);  // weights read by one forward over n_tokens
double roofline_kv_bytes_per_token(const ModelShape& m);         // K and V of one token, all layers
double roofline_ridge_tokens(const Roofline& r);                 // B where weight-read time = weight-flop time (dense)
// Tensor-parallel communication, seconds; 0 at tp 1. One ring all-reduce of
// a `bytes` message: latency + bytes * 2 (tp - 1) / tp / bus bandwidth.
double roofline_allreduce_s(const Roofline& r, double bytes);
// The collectives of one forward over n_layers decoder layers and n_tokens
// tokens, n_logits of them through the LM head: 2 n_layers + 1 all-reduces
// (two a layer, one for the embedding) of n_tokens * hidden bf16
// activations, and one all-gather of the n_logits x vocab fp32 logits
// (latency + their bytes * (tp - 1) / tp / bus bandwidth).
double roofline_comm_s(const Roofline& r, double n_layers, double n_tokens, double n_logits);

}  // namespace sp
