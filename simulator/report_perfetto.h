// report_perfetto.h: a served point as a Chrome trace-event file, which
// Perfetto (ui.perfetto.dev) and chrome://tracing open: one JSON object
// {"traceEvents": [...]}, written as the point runs (memory holds only the
// steps of the requests in flight). The simulator feeds it through a SimObserver
// (PerfettoObserver, below: nothing is traced, and nothing is slower, unless
// one is passed to sim_run_point), a live run (serve/live.h) calls
// perfetto_step and perfetto_request itself, so both write the same tracks:
//
//   process "replica r" (pid: one per replica of each point)
//     thread "steps"       one complete slice ("ph": "X", ts and dur in µs)
//                          per iteration, args: decoding requests, batch and
//                          prefill tokens, drafts verified and accepted; inside
//                          it the phases laid end to end from its start:
//                          "draft", "verify" and (live) "host", the time left
//                          over. A phase of 0 ns is left out.
//     counters             "batch tokens" (B, prefill included), "running
//                          requests" (decoding), "KV use" (tokens reserved),
//                          sampled at each step's start
//     thread per request   "wait" (arrival to admission), "prefill" (admission
//                          to the first token; with disaggregated prefill
//                          "prefill (remote)" comes before "wait"), then one
//                          "decode" slice per step it took part in, args:
//                          verified, accepted and emitted tokens. Its slices
//                          are written together when it completes (or at
//                          perfetto_flush, steps only, for one still in flight)
//   metadata ("ph": "M")   process_name, thread_name and thread_sort_index, so
//                          tracks carry names and the steps come first
//
// Times are the server's clock in integer ns, written in µs with three
// decimals, so a simulated trace is exact and byte-identical run to run.
// On every track slices are written in time order and never overlap: a
// slice that would start before the previous one on its track ended (a live
// clock read twice around one event) starts at that end instead.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include "simulator/sim.h"

namespace sp {

struct PerfettoStep {
    int replica = 0;
    int64_t start_ns = 0;
    int64_t draft_ns = 0, verify_ns = 0, host_ns = 0;  // phases; the step ends at start + their sum
    int decoding = 0;            // R: requests verifying a block
    int batch_tokens = 0;        // B, prefill included
    int prefill_tokens = 0;
    int64_t kv_used = 0;         // tokens of KV reserved during the step
};

// One decoding request of a step.
struct PerfettoRequestStep {
    uint64_t key = 0;
    int verified = 0;            // drafts verified, l
    int accepted = 0;            // of them accepted; the step emits accepted + 1 tokens
};

// A finished request, in the same clock.
struct PerfettoRequest {
    uint64_t key = 0;
    int replica = 0;
    int domain = 0;              // index into perfetto_point's domains
    int prompt_len = 0, output_len = 0;
    int64_t arrival_ns = 0, admitted_ns = 0, first_token_ns = 0, done_ns = 0;
};

// What a point's tracks are named by.
struct PerfettoPoint {
    std::string title;           // its replicas' processes are "<title>: replica r"
    int replicas = 1;
    std::vector<std::string> domains;  // PerfettoRequest::domain's names
    bool closed_loop = true;     // request keys are (user << 32 | n): tracks "user u #n", else "request k"
    bool remote_prefill = false; // disaggregated prefill: prompts are prefilled before admission
};

struct PerfettoTrace {
    std::ostream* out = nullptr;
    bool any = false;            // an event was written (the next needs a comma)
    PerfettoPoint point;         // the current point
    int next_pid = 1, next_tid = 1;  // unique over the file: a viewer may key threads by tid alone
    int pid0 = 0;                // the current point's first pid (replica r: pid0 + r)
    std::vector<int> steps_tid;      // per replica
    std::vector<int64_t> steps_end;  // per replica: where its steps track ends, ns
    struct Slice {
        int64_t start, end;
        int verified, accepted;
    };
    struct Pending {
        int replica = 0;
        std::vector<Slice> steps;
    };
    std::unordered_map<uint64_t, Pending> pending;  // decode slices of requests in flight, by key
};

// Writes the opening of the file.
void perfetto_begin(PerfettoTrace& t, std::ostream& out);
// Starts a point.
void perfetto_point(PerfettoTrace& t, const PerfettoPoint& p);
// One iteration and its n decoding requests.
void perfetto_step(PerfettoTrace& t, const PerfettoStep& s, const PerfettoRequestStep* reqs, int n);
// A request completed: its track.
void perfetto_request(PerfettoTrace& t, const PerfettoRequest& r);
// Writes the tracks of the requests still in flight (their steps only), in
// the order of their first step; call after each point's last step.
void perfetto_flush(PerfettoTrace& t);
// Flushes and closes the file's JSON.
void perfetto_end(PerfettoTrace& t);

// The simulator's hook: sim_run_point(..., &observer) traces one point.
struct PerfettoObserver : SimObserver {
    explicit PerfettoObserver(PerfettoTrace* trace) : t(trace) {}
    void on_step(const StepView& v) override;
    void on_complete(const CompletedRequest& r) override;
    PerfettoTrace* t;
    std::vector<PerfettoRequestStep> reqs;  // scratch
};

}  // namespace sp
