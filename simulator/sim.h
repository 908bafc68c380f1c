// sim.h: the discrete-event simulation of a fleet of identical serving
// replicas behind a router (one replica unless the scenario's [fleet] says
// more) under one policy at one load: one point of a sweep.
//
// Event core. Time is integer nanoseconds. Events are ordered by (time,
// class, sequence number): at equal times a step's end is handled before
// arrivals, and arrivals in the order they were scheduled. Every event of one
// instant is handled before the engine decides its next step, and the engine
// starts a step whenever it is idle and work is waiting (work-conserving).
//
// Engine model, per iteration:
//   1. admit waiting requests FCFS while running + prefilling < max_seqs and
//      the KV cache holds their reservation (prompt + output + gamma tokens:
//      TensorRT-LLM's guaranteed-no-evict policy, so nothing is ever evicted);
//   2. the policy picks l_r for each decoding request (l_r <= remaining - 1);
//   3. the draft phase drafts policy_draft_len_at tokens for each decoding request;
//   4. one forward verifies B = sum (1 + l_r) tokens and carries prefill chunks
//      that fill the rest of max_batch_tokens, at most prefill_chunk_tokens
//      (decode first, as in vLLM's chunked prefill);
//   5. at its end each decoding request advances by accepted + 1 tokens, a
//      request whose prefill completes emits its first token, finished
//      requests leave and free their KV.
//
// Fleet. One event loop runs every replica; each arriving request is routed
// to one replica as it arrives (a closed loop's user is routed anew for each
// request, except under affinity), so imbalance and burstiness between
// replicas show, which N / replicas independent copies would hide:
//   round-robin   the n-th arrival goes to replica n mod replicas;
//   least-loaded  the replica with the fewest outstanding requests (routed to
//                 it and not completed: waiting, prefilling, decoding), ties
//                 to the first after the last one chosen, in index order;
//   affinity      a closed loop's user u always goes to the same replica,
//                 hash(seed, u) mod replicas (fleet_affinity_replica), so
//                 the users per replica are as uneven as a hash makes them.
// Events of one instant are handled before any replica decides its next
// step; idle replicas with work then start steps in index order. Equal-time
// events of different replicas keep the (time, class, sequence) order, so a
// fleet is as deterministic as one replica, and a fleet of one is the
// single-replica simulation byte for byte.
//
// Measurement: the first `warmup` completions are discarded; the window runs
// from the warmup-th completion to the (warmup + requests)-th, both sized
// by the load unless the scenario sets them (workload.h workload_window),
// and every rate is over that window. A fleet sizes the window per replica
// (its share of the users) and counts completions across its replicas,
// replicas x warmup and replicas x requests of them, so each replica is
// measured about as long as one alone; throughput is per GPU (tp x
// replicas), request and goodput rates and the busy fraction per replica,
// KV use per replica step.
//
// Overload (open loop; a closed loop's queue is bounded by its users). A
// point is marked unstable (PointResult::unstable) when
//   - more than sim_queue_cap requests wait for admission at once (the FIFO
//     plus prompts being prefilled elsewhere): the point stops there, so its
//     time and memory stay bounded, and its window closes early; or
//   - over its window the requests in the system (arrived, not completed)
//     grew by more than 10 % of the window's completions and by more than
//     3 sqrt(completions), the arrivals' own noise: arrivals outpace service.
#pragma once

#include <cstdint>

#include "simulator/acceptance.h"
#include "simulator/metrics.h"

namespace sp {

// One iteration as the GUI's step timeline and the tests see it.
struct StepView {
    int64_t start_ns = 0, end_ns = 0;
    int gamma = 0;
    int n_decode = 0;              // R
    const uint64_t* keys = nullptr;   // (R) request keys
    const int* ell = nullptr;         // (R) verified drafts
    const int* accepted = nullptr;    // (R) accepted drafts (< ell: the next token is a correction)
    const float* conf = nullptr;      // (R, gamma) calibrated confidences of the drafts
    int draft_len = 0;             // drafts produced per request (slots past ell were drafted, not verified)
    int batch_tokens = 0;          // B including prefill
    int prefill_tokens = 0;
    double draft_s = 0, forward_s = 0;
    int replica = 0;               // the fleet's replica that ran it
    int64_t kv_used = 0;           // tokens of KV reserved while it ran
};

// One replica's state counts after each instant, for invariant checks (a
// fleet reports each replica in turn; arrived and done count the requests
// routed to it).
struct SimState {
    int64_t now_ns = 0;
    int64_t arrived = 0, done = 0;
    int waiting = 0, prefilling = 0, running = 0;
    int remote_prefill = 0;        // disaggregated prefill: prompts being prefilled elsewhere
    int64_t kv_used = 0, kv_capacity = 0;
    bool busy = false;
    int replica = 0;
};

// One finished request, measured or not.
struct CompletedRequest {
    uint64_t key = 0;
    int domain = 0, prompt_len = 0, output_len = 0;
    int64_t arrival_ns = 0, first_token_ns = 0, done_ns = 0;
    int replica = 0;               // the replica the router sent it to
    int64_t admitted_ns = 0;       // when it got its slot and KV (with disaggregated prefill after the first
                                   // token; done_ns for a one-token output, which never takes a slot)
};

struct SimObserver {
    virtual ~SimObserver() = default;
    virtual void on_step(const StepView&) {}
    virtual void on_state(const SimState&) {}
    virtual void on_complete(const CompletedRequest&) {}
};

// The open loop's cap on waiting requests: 16 x max_seqs, at least 4096 and
// at most 262144 (each holds about 100 B + 12 gamma B); per replica.
int sim_queue_cap(const EngineConfig& e);

// Affinity's replica for closed-loop user `user`: hash(seed, user) mod replicas.
inline constexpr uint64_t FLEET_STREAM_AFFINITY = 41;
int fleet_affinity_replica(const Scenario& sc, int user);

// Runs one point: `load` is the number of users (closed loop) or the arrival
// rate in requests/s (open loop). Deterministic in (scenario, seed, policy, load).
// Throws sp::Error when the acceptance source cannot feed the policy
// (acceptance_check_policies: draft-prob without recorded draft probabilities).
PointResult sim_run_point(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, double load,
                          SimObserver* observer = nullptr);

}  // namespace sp
