// live.h: one point of a scenario served for real. The engine (a Backend and
// a Drafter behind engine/speculative.h's Speculator) runs the scenario's
// workload in wall-clock time, and the simulator's own code draws the
// requests (workload.h), runs the policy (policy/) and measures the point
// (metrics.h's Window), so a live point and a simulated one differ only in
// what actually happened on the device.
//
// The loop, per iteration:
//   1. arrivals due by now join the FCFS queue: closed-loop users send their
//      next request a think time after their last reply, open-loop requests
//      arrive at the scenario's rate;
//   2. admission, as the simulator's: while running + prefilling < max_seqs
//      (and a slot is free) and the KV cache holds the head's reservation,
//      prompt + output + gamma tokens;
//   3. one Speculator::step(): drafts, the policy's verify lengths, one
//      forward with the verify blocks and the prompt chunks in the room the
//      token budget leaves;
//   4. the step and the requests that finished go into the window.
// With nothing to run the loop sleeps until the next arrival.
//
// Requests: the scenario draws each request's domain and output length by
// its key (workload_request); its prompt is the next prompt of that domain
// from the prompts file, taken round robin by key. Outputs run to the drawn
// length with EOS ignored, so lengths are the scenario's.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/speculative.h"
#include "simulator/acceptance.h"
#include "simulator/metrics.h"
#include "simulator/report_perfetto.h"
#include "simulator/scenario.h"

namespace sp {

struct LivePrompt {
    std::string domain;
    std::vector<int> ids;            // >= 1 token
};

// What a live point measured beyond the simulator's fields.
struct LiveStats {
    int64_t iterations = 0;          // step() calls over the whole run
    int64_t completed = 0;           // requests finished over the whole run
    // Host time per iteration in the window, ns: the loop's own work
    // (arrivals, admission, accounting) plus the Speculator's outside its
    // draft call and forward. The simulator must model it.
    Summary host_ns;
    double draft_fraction = 0;       // share of the window's busy time in draft calls
    // The target's CUDA graphs captured during the point (Backend::graphs_captured):
    // each costs its iteration a capture and an instantiation (milliseconds at
    // qwen3-8b's shape), which the simulator does not model.
    int64_t graph_captures = 0;
};

// One finished request, for tests and traces.
struct LiveRequest {
    uint64_t key = 0;
    int domain = 0;                  // index into the scenario's mix
    int prompt_index = 0;            // into the prompts
    std::vector<int> prompt, output;
    std::vector<Step> steps;
    int64_t arrival_ns = 0, admitted_ns = 0, first_token_ns = 0, done_ns = 0;  // the run's clock
};

struct LiveOptions {
    uint64_t seed = 1;               // RNG of the draws (the scenario's seed is the workload's)
    float temperature = 0;
    StepTime step_time;              // policy_needs_step_time's policies
    bool step_time_adds_draft = false;  // SpecOptions::step_time_adds_draft
    int max_seqs = 0;                // slots of the backend and drafter; the scenario's max_seqs is capped by it
    std::function<void(const LiveRequest&)> on_complete;   // every finished request, in completion order
    std::function<void(int64_t done, int64_t total)> progress;  // measured completions
    double time_limit_s = 0;         // > 0: give up (Error) when the window has not closed by then
    // Accept decisions from the scenario's trace instead of the verifier's:
    // each request replays the positions of the trace request the workload
    // drew for it (Speculator's SpecRequest::replay), so that random weights
    // at a production shape cost what they cost and accept what the trace
    // accepted; draft-prob reads the trace's draft probabilities too, so it
    // decides as the simulator does. Needs acceptance.source = "trace" (and
    // positions.draft_prob for draft-prob).
    bool replay = false;
    // When set, every iteration and finished request goes into this trace
    // (report_perfetto.h), after perfetto_point: the steps' draft, verify and
    // host times as measured, the requests' tracks in the run's clock.
    PerfettoTrace* trace = nullptr;
};

// Checks, before anything runs, that every domain of the scenario's mix has
// prompts and that the largest request fits the KV cache; throws sp::Error
// naming what is missing.
void live_check(const Scenario& sc, const AcceptanceData& acc, const std::vector<LivePrompt>& prompts,
                int max_position);

// Runs one point: `load` users (closed loop) or requests/s (open loop).
PointResult live_run_point(const Scenario& sc, const AcceptanceData& acc, Backend& target, Drafter* drafter,
                           const Policy& policy, double load, const std::vector<LivePrompt>& prompts,
                           const LiveOptions& o, LiveStats* stats = nullptr);

}  // namespace sp
