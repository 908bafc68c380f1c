// scenario.h: everything one simulation sweep needs, as loaded from a TOML
// scenario file (scenarios/README.md documents every key, unit and default).
//
// A Scenario is plain data. scenario_load validates it completely: after it
// returns, the simulator may assume every field is in range, every trace
// request fits in the KV cache, and the cost model can answer every phase the
// policies need. Bad input is one sp::Error line:
//   "<file>: <key>: expected <what>, got <what>"
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "simulator/cost.h"

namespace sp {

enum WorkloadMode { WORKLOAD_CLOSED, WORKLOAD_OPEN };
// Open-loop arrivals: drawn (poisson, gamma), or a request log's own times
// as they are (replay) or stretched to each swept rate (scaled).
enum ArrivalKind { ARRIVAL_POISSON, ARRIVAL_GAMMA, ARRIVAL_REPLAY, ARRIVAL_SCALED };
enum LengthSource { LENGTHS_TRACE, LENGTHS_DIST, LENGTHS_LOG };
enum DistKind { DIST_FIXED, DIST_UNIFORM, DIST_LOGNORMAL };

// A length distribution in tokens. fixed: `value`; uniform: integers in
// [min, max]; lognormal: exp(N(log(median), sigma)) rounded, clamped to [min, max].
struct LengthDist {
    DistKind kind = DIST_FIXED;
    int value = 0;
    int min = 1, max = 1;
    double median = 0, sigma = 0;
};

// One domain of the workload mix. `alpha` is the per-slot conditional
// acceptance used by the parametric source (length gamma); empty otherwise.
struct DomainMix {
    std::string domain;          // label, matched against trace request domains
    double weight = 1;           // relative share of requests, > 0
    std::vector<double> alpha;   // (gamma) parametric acceptance, each in [0, 1]
};

// One request of a request log ([workload] log), as the simulator keeps it:
// 24 bytes, so a log of 10 M requests takes 240 MB whatever its file size.
struct LogRequest {
    int64_t t_ns = 0;                 // arrival after the log's first, ns (0 when the log has no times)
    int32_t prompt_len = 0, output_len = 0;  // tokens
    int32_t domain = -1;              // index into Workload::mix from workload.log_domain; -1: drawn from the mix
};

// A request log read by scenario_load (traces/request_log.h reads the formats).
struct RequestLogData {
    std::string path;                 // resolved
    std::vector<LogRequest> requests; // in arrival order (a stable sort by time)
    double rate = 0;                  // mean arrival rate, (N - 1) / span, requests/s; 0 without times
    int64_t span_ns = 0;              // last arrival - first
    int64_t skipped = 0;              // ShareGPT records without a prompt answered
};

struct Workload {
    WorkloadMode mode = WORKLOAD_CLOSED;
    std::vector<int> concurrency;     // closed: users per sweep point, each >= 1
    std::vector<double> rates;        // open: requests/s per sweep point, each > 0
    double think_time_s = 0;          // closed: mean think time between a reply and the next request
    bool think_exponential = false;   // closed: think time exponential (true) or fixed (false)
    ArrivalKind arrival = ARRIVAL_POISSON;  // open
    double burstiness = 1;            // open, gamma: shape k (CV = 1/sqrt(k)); 1 = Poisson
    int requests = 0;                 // completed requests measured per point; 0: sized by the load
                                      // (workload_window)
    int warmup = -1;                  // completions discarded before measuring; -1: sized by the load
    bool window_from_log = false;     // requests (and warmup) were left out and cover the log's arrivals once
    LengthSource lengths = LENGTHS_TRACE;
    LengthDist prompt_len, output_len;   // LENGTHS_DIST
    // LENGTHS_LOG: the log's requests, shared by the copies of a scenario (read-only).
    // Each request is the log's row at its arrival index (arrival replay or
    // scaled, cycling), or a row drawn by its key (an empirical distribution).
    std::shared_ptr<const RequestLogData> log;
    std::vector<DomainMix> mix;       // at least one; weights normalised by the loader
};

struct EngineConfig {
    int gamma = 0;                    // block size: drafts per request per step, 1..TRACE_MAX_GAMMA
    int max_seqs = 256;               // running + prefilling requests at once
    int max_batch_tokens = 8192;      // tokens per forward: decode (1 + l_r each) plus prefill chunks
    int64_t kv_capacity_tokens = 0;   // KV cache, tokens; a request holds prompt + output + gamma
    int prefill_chunk_tokens = 2048;  // prefill tokens per iteration, at most
    // > 0: no iteration drafts while more requests than this decode (they
    // verify one token each, as ar), whatever the policy: speculation off
    // above a batch size, as TensorRT-LLM's max_concurrency does. 0: no limit.
    int draft_max_running = 0;
    int tp = 1;                       // GPUs per replica; throughput is reported per GPU
    // Prefill on separate GPUs (prefill/decode disaggregation, as DeepSeek and
    // large deployments serve): a request's prompt is prefilled on its own,
    // without queueing, in the time one forward of its chunks takes on this
    // replica's hardware; it then joins the decode replica with its first
    // token emitted, and decode steps carry no prefill. Throughput counts
    // the decode GPUs only.
    bool disaggregated_prefill = false;
    // > 0: kv_capacity_tokens was not given but derived, this fraction of the
    // HBM the weights leave (engine.kv_memory_fraction); 0: given. The
    // planner derives it again for another tp (scenario_kv_derive).
    double kv_memory_fraction = 0;
};

// [fleet]: identical replicas behind a router (sim.h says how each routes).
enum RouterKind { ROUTER_ROUND_ROBIN, ROUTER_LEAST_LOADED, ROUTER_AFFINITY };
const char* router_name(RouterKind r);  // "round-robin", "least-loaded", "affinity"
bool router_parse(const std::string& s, RouterKind* out);
struct Fleet {
    int replicas = 1;
    RouterKind router = ROUTER_ROUND_ROBIN;
};

enum AcceptanceKind { ACCEPT_TRACE, ACCEPT_PARAMETRIC, ACCEPT_IID, ACCEPT_STEPS };

struct AcceptanceConfig {
    AcceptanceKind kind = ACCEPT_TRACE;
    std::string trace_path;           // ACCEPT_TRACE, ACCEPT_STEPS (or LENGTHS_TRACE): resolved against the scenario's folder
    int64_t run_id = 0;               // run in the trace; 0 = the only run, or the first complete one;
                                      // scenario_load stores the resolved id
    std::string trace_producer;       // that run's producer ("engine", "importer", "synthetic"), set by
                                      // scenario_load: outputs say when acceptance is synthetic
    double alpha = 0;                 // ACCEPT_IID: every slot's conditional acceptance
    double kappa = 4;                 // confidence model of traces synth (parametric, iid)
    double raw_temperature = 1.5;
};

// Every SLO that is set bounds capacity (plan.h slo_check); 0 = not set.
struct Slo {
    double per_user_tok_s = 0;        // per-user speed: the speed met by `percentile` % of requests >= this
    double ttft_s = 0;                // TTFT at the percentile <= this, seconds (also goodput's bound)
    double tpot_s = 0;                // TPOT at the percentile <= this, seconds
    int percentile = 90;              // 50, 90 or 99
};

struct Scenario {
    std::string path;                 // the file it came from, for messages
    uint64_t text_hash = 0;           // FNV-1a 64 of the TOML text: which version of the file a result came from
    std::string name, description;
    uint64_t seed = 1;
    Workload workload;
    EngineConfig engine;
    Fleet fleet;
    double gpu_hour_usd = 0;          // plan.gpu_hour_usd: price of one GPU-hour for `specplan plan`; 0 = none
    AcceptanceConfig acceptance;
    CostModel cost;
    std::vector<Policy> policies;     // at least one
    std::string compare_a, compare_b; // headline ratios of policy a over policy b; empty = none
    Slo slo;
};

// KV tokens that fit beside the weights on tp GPUs of the roofline's GPU:
// fraction x (tp x HBM - weights) / KV bytes per token, at most the
// loader's bound; 0 when the weights leave no room.
int64_t scenario_kv_derive(const Roofline& r, int tp, double fraction);

// The fleet's measured completions, (warmup + requests) x replicas, must
// stay within this (scenario.cpp checks [fleet] against it; the planner too).
inline constexpr int64_t FLEET_MAX_COMPLETIONS = 100'000'000;

// Loads and validates a scenario file. Relative paths inside it resolve
// against the file's folder.
Scenario scenario_load(const std::string& path);

// The same from TOML text; `path` names it in messages and anchors relative paths.
Scenario scenario_parse(const std::string& toml_text, const std::string& path);

}  // namespace sp
