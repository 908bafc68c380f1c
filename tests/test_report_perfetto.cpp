// test_report_perfetto.cpp: the Chrome/Perfetto trace (simulator/report_perfetto.h).
// A hand-built point with known steps gives exactly the events worked out
// below; a simulated point gives a file that keeps the trace-event format's
// rules (required fields per phase, slices in time order and properly nested
// on every track) and whose request tracks add up to each request's output.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "simulator/report_perfetto.h"
#include "tests/perfetto_check.h"
#include "tests/sim_scenario.h"

using namespace sp;

TEST(Perfetto, AHandBuiltPointGivesExactlyTheEventsWorkedOutByHand) {
    std::ostringstream out;
    PerfettoTrace t;
    perfetto_begin(t, out);
    perfetto_point(t, {"p", 1, {"chat"}, /*closed_loop=*/true, false});
    const uint64_t a = uint64_t(1) << 32, b = uint64_t(2) << 32;  // user 1's and user 2's first requests
    // step 1 at 1 us: 0.5 us of drafts, 1.5 us of verify; both requests verify 3 drafts, a keeps 2, b none;
    // B = 2 x (1 + 3) + 2 prefill tokens
    const PerfettoRequestStep s1[] = {{a, 3, 2}, {b, 3, 0}};
    perfetto_step(t, {0, 1000, 500, 1500, 0, 2, 10, 2, 300}, s1, 2);
    const PerfettoRequestStep s2[] = {{a, 3, 3}};
    perfetto_step(t, {0, 3000, 500, 1500, 0, 1, 4, 0, 300}, s2, 1);
    // a: arrived at 0, admitted at 0.2 us, first token at 0.9 us, done with step 2 at 5 us
    perfetto_request(t, {a, 0, 0, 5, 8, 0, 200, 900, 5000});
    perfetto_end(t);  // b is still in flight: its steps only

    const json expected = json::parse(R"js([
      {"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"p: replica 0"}},
      {"name":"process_sort_index","ph":"M","pid":1,"tid":0,"args":{"sort_index":1}},
      {"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{"name":"steps"}},
      {"name":"thread_sort_index","ph":"M","pid":1,"tid":1,"args":{"sort_index":0}},
      {"name":"step","ph":"X","pid":1,"tid":1,"ts":1.0,"dur":2.0,
       "args":{"decoding":2,"batch_tokens":10,"prefill_tokens":2,"verified":6,"accepted":2}},
      {"name":"draft","ph":"X","pid":1,"tid":1,"ts":1.0,"dur":0.5},
      {"name":"verify","ph":"X","pid":1,"tid":1,"ts":1.5,"dur":1.5},
      {"name":"batch tokens","ph":"C","pid":1,"ts":1.0,"args":{"tokens":10}},
      {"name":"running requests","ph":"C","pid":1,"ts":1.0,"args":{"decoding":2}},
      {"name":"KV use","ph":"C","pid":1,"ts":1.0,"args":{"tokens":300}},
      {"name":"step","ph":"X","pid":1,"tid":1,"ts":3.0,"dur":2.0,
       "args":{"decoding":1,"batch_tokens":4,"prefill_tokens":0,"verified":3,"accepted":3}},
      {"name":"draft","ph":"X","pid":1,"tid":1,"ts":3.0,"dur":0.5},
      {"name":"verify","ph":"X","pid":1,"tid":1,"ts":3.5,"dur":1.5},
      {"name":"batch tokens","ph":"C","pid":1,"ts":3.0,"args":{"tokens":4}},
      {"name":"running requests","ph":"C","pid":1,"ts":3.0,"args":{"decoding":1}},
      {"name":"KV use","ph":"C","pid":1,"ts":3.0,"args":{"tokens":300}},
      {"name":"thread_name","ph":"M","pid":1,"tid":2,"args":{"name":"user 1 #0 (chat)"}},
      {"name":"thread_sort_index","ph":"M","pid":1,"tid":2,"args":{"sort_index":2}},
      {"name":"wait","ph":"X","pid":1,"tid":2,"ts":0.0,"dur":0.2},
      {"name":"prefill","ph":"X","pid":1,"tid":2,"ts":0.2,"dur":0.7,"args":{"prompt_tokens":5,"output_tokens":8}},
      {"name":"decode","ph":"X","pid":1,"tid":2,"ts":1.0,"dur":2.0,"args":{"verified":3,"accepted":2,"emitted":3}},
      {"name":"decode","ph":"X","pid":1,"tid":2,"ts":3.0,"dur":2.0,"args":{"verified":3,"accepted":3,"emitted":4}},
      {"name":"thread_name","ph":"M","pid":1,"tid":3,"args":{"name":"user 2 #0 (in flight at the end)"}},
      {"name":"thread_sort_index","ph":"M","pid":1,"tid":3,"args":{"sort_index":3}},
      {"name":"decode","ph":"X","pid":1,"tid":3,"ts":1.0,"dur":2.0,"args":{"verified":3,"accepted":0,"emitted":1}}
    ])js");
    const json got = trace_of(out.str());
    ASSERT_EQ(got.size(), expected.size()) << got.dump(1);
    for (size_t i = 0; i < got.size(); i++) EXPECT_EQ(got[i], expected[i]) << "event " << i;
    EXPECT_EQ(check_valid(got), 11);
}

TEST(Perfetto, ADisaggregatedRequestIsPrefilledElsewhereBeforeItWaits) {
    std::ostringstream out;
    PerfettoTrace t;
    perfetto_begin(t, out);
    perfetto_point(t, {"p", 1, {"chat"}, /*closed_loop=*/false, /*remote_prefill=*/true});
    perfetto_request(t, {7, 0, 0, 5, 1, 100, 900, 600, 900});  // first token at 0.6 us, admitted at 0.9 us
    perfetto_end(t);
    const json ev = trace_of(out.str());
    ASSERT_EQ(ev.size(), 8u);
    EXPECT_EQ(ev[4]["args"]["name"], "request 7 (chat)");
    EXPECT_EQ(ev[6]["name"], "prefill (remote)");
    EXPECT_DOUBLE_EQ(ev[6]["ts"].get<double>(), 0.1);
    EXPECT_DOUBLE_EQ(ev[6]["dur"].get<double>(), 0.5);
    EXPECT_EQ(ev[7]["name"], "wait");
    EXPECT_DOUBLE_EQ(ev[7]["ts"].get<double>(), 0.6);
    EXPECT_DOUBLE_EQ(ev[7]["dur"].get<double>(), 0.3);
}

// Forwards to the trace and counts what the simulator handed over.
struct Counting : SimObserver {
    PerfettoObserver* trace;
    int steps = 0;
    std::map<uint64_t, int> output_len;  // completed requests
    void on_step(const StepView& v) override {
        steps++;
        trace->on_step(v);
    }
    void on_complete(const CompletedRequest& r) override {
        output_len[r.key] = r.output_len;
        trace->on_complete(r);
    }
};

TEST(Perfetto, ASimulatedPointIsAValidTraceWhoseRequestTracksAddUpToTheirOutputs) {
    for (bool disagg : {false, true}) {
        Scenario sc = sim_scenario(0.7, 4, /*output_len=*/60, /*warmup=*/5, /*requests=*/40);
        sc.engine.disaggregated_prefill = disagg;
        const AcceptanceData acc = acceptance_load(sc);
        const Policy policy = sim_policy("fixed:3");
        std::ostringstream out;
        PerfettoTrace t;
        perfetto_begin(t, out);
        perfetto_point(t, {"sim", 1, acc.domains, true, disagg});
        PerfettoObserver obs(&t);
        Counting counting;
        counting.trace = &obs;
        const PointResult traced = sim_run_point(sc, acc, policy, 4, &counting);
        perfetto_end(t);
        const json ev = trace_of(out.str());
        EXPECT_GT(check_valid(ev), counting.steps);

        // every step is one "step" slice; every completed request emitted its output: one token at
        // prefill, then accepted + 1 a decode step
        std::map<int, std::string> names;  // tid -> thread name
        std::map<int, int> emitted, outputs;
        int steps = 0;
        for (const json& e : ev) {
            if (e["name"] == "thread_name") names[e["tid"]] = e["args"]["name"];
            if (e["name"] == "step") steps++;
            if (e["name"] == "decode") emitted[e["tid"]] += e["args"]["emitted"].get<int>();
            if (e["name"] == (disagg ? "prefill (remote)" : "prefill")) outputs[e["tid"]] = e["args"]["output_tokens"];
        }
        EXPECT_EQ(steps, counting.steps);
        EXPECT_EQ(outputs.size(), counting.output_len.size()) << "one track with a prefill per completed request";
        for (const auto& [tid, n] : outputs) EXPECT_EQ(emitted[tid] + 1, n) << names[tid];

        // tracing changes nothing the point reports
        const PointResult plain = sim_run_point(sc, acc, policy, 4);
        EXPECT_EQ(traced.throughput, plain.throughput);
        EXPECT_EQ(traced.n_steps, plain.n_steps);
    }
}
