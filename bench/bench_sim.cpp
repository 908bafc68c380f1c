// bench_sim.cpp: simulator speed in simulated output tokens per second of
// host time, one core. Target (issue 3): >= 10 M tokens/s for dspark at
// concurrency 256 with gamma 7.
//   build/bench/bench_sim --benchmark_out=bench/results/sim-<machine>-<date>.json
//
// Scenario: scenarios/default.toml (bundled synthetic trace, gamma 7, H100
// roofline, Qwen3-8B shape), one point at 256 users, 1,000 measured requests.
// The parametric variants draw every slot from the synth model instead.
#include <benchmark/benchmark.h>

#include "simulator/scenario.h"
#include "simulator/sim.h"

using namespace sp;

static void run_point(benchmark::State& state, const char* policy_text, bool parametric) {
    Scenario sc = scenario_load(SPECPLAN_SOURCE_DIR "/scenarios/default.toml");
    sc.workload.requests = 1000;
    sc.workload.warmup = 256;
    if (parametric) {
        sc.acceptance.kind = ACCEPT_PARAMETRIC;
        for (DomainMix& d : sc.workload.mix)
            d.alpha = d.domain == "code" ? std::vector<double>{0.92, 0.88, 0.85, 0.82, 0.80, 0.78, 0.76}
                                         : std::vector<double>{0.80, 0.72, 0.68, 0.65, 0.62, 0.60, 0.58};
    }
    AcceptanceData acc = acceptance_load(sc);
    Policy p;
    std::string err;
    policy_parse(policy_text, &p, &err);
    int64_t tokens = 0;
    for (auto _ : state) {
        PointResult r = sim_run_point(sc, acc, p, 256);
        // every token simulated, warm-up included, is work done: count the window's
        // and scale by the share of completions it holds
        tokens += static_cast<int64_t>(static_cast<double>(r.n_tokens) *
                                       (sc.workload.warmup + sc.workload.requests) / sc.workload.requests);
    }
    state.counters["sim_tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

#define POLICY_BENCH(name, text)                                                    \
    static void BM_Trace_##name(benchmark::State& s) { run_point(s, text, false); } \
    BENCHMARK(BM_Trace_##name)->Unit(benchmark::kMillisecond)->UseRealTime();       \
    static void BM_Param_##name(benchmark::State& s) { run_point(s, text, true); }  \
    BENCHMARK(BM_Param_##name)->Unit(benchmark::kMillisecond)->UseRealTime();

POLICY_BENCH(dspark, "dspark")
POLICY_BENCH(dspark_async, "dspark-async")
POLICY_BENCH(ar, "ar")
POLICY_BENCH(mtp1, "mtp1")
POLICY_BENCH(fixed7, "fixed:7")
POLICY_BENCH(threshold, "threshold:0.5")
POLICY_BENCH(goodput, "goodput")

BENCHMARK_MAIN();
