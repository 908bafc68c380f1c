// bench_traces.cpp: trace store throughput, which bounds how fast a GPU
// capture can record and how fast the simulator loads a trace.
//   build/bench/bench_traces --benchmark_out=bench/results/traces-<machine>-<date>.json
//
// Sizes: one request of 512 anchors x gamma 7 is 3 blobs of 14 KiB; a live
// engine step record is 9 integers.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <vector>

#include "traces/models.h"
#include "traces/synth.h"
#include "traces/trace_stats.h"

using namespace sp;
namespace fs = std::filesystem;

static std::string fresh_db(const char* name) {
    fs::path p = fs::temp_directory_path() / name;
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(p.string() + ext);
    return p.string();
}

static Run bench_run(TraceDb& db) {
    Run run;
    model_preset("qwen3-8b", &run.target);
    run.drafter_kind = "bench";
    run.gamma = 7;
    trace_db_begin_run(db, run);
    return run;
}

// One request with its positions per iteration, each its own transaction.
static void BM_AppendRequestWithPositions(benchmark::State& state) {
    TraceDb db = trace_db_open(fresh_db("bench_append.specdb"), TRACE_CREATE);
    Run run = bench_run(db);
    Rng rng = rng_seed(1);
    Positions pos;
    pos.gamma = 7;
    pos.n = 512;
    for (int i = 0; i < 512 * 7; i++) {
        SynthSlot s = synth_slot(rng, 0.8, 4, 1.5);
        pos.beta.push_back(s.beta);
        pos.conf_logit.push_back(s.conf_logit);
        pos.conf_prob.push_back(s.conf_prob);
    }
    int idx = 0;
    for (auto _ : state) {
        Request q{0, run.id, idx++, "bench", 100, 512};
        TraceTxn txn(db);
        trace_db_append_request(db, q);
        pos.request_id = q.id;
        trace_db_append_positions(db, pos);
        txn.commit();
    }
    state.SetItemsProcessed(state.iterations() * 512);  // anchors
    state.SetBytesProcessed(state.iterations() * 512 * 7 * 12);
}
BENCHMARK(BM_AppendRequestWithPositions)->Unit(benchmark::kMicrosecond);

// Live step records in batches of state.range(0) per transaction.
static void BM_AppendSteps(benchmark::State& state) {
    TraceDb db = trace_db_open(fresh_db("bench_steps.specdb"), TRACE_CREATE);
    Run run = bench_run(db);
    Request q{0, run.id, 0, "bench", 100, 1 << 30};
    trace_db_append_request(db, q);
    std::vector<Step> batch(static_cast<size_t>(state.range(0)));
    int step = 0;
    for (auto _ : state) {
        for (Step& s : batch) s = {q.id, step++, 64, 4, 2, false, 1000, 5000, int64_t(step) * 6000};
        trace_db_append_steps(db, batch);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AppendSteps)->Arg(1)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);

// Loading every request's positions of the bundled trace and pooling its statistics.
static void BM_AcceptanceStatsOfBundledTrace(benchmark::State& state) {
    std::string copy = fresh_db("bench_bundled.specdb");
    fs::copy_file(fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/synthetic.specdb", copy);
    TraceDb db = trace_db_open(copy, TRACE_READ);
    int64_t run = trace_db_runs(db).at(0).id;
    int64_t anchors = trace_db_counts(db).anchors;
    for (auto _ : state) benchmark::DoNotOptimize(trace_acceptance_stats(db, run));
    state.SetItemsProcessed(state.iterations() * anchors);
}
BENCHMARK(BM_AcceptanceStatsOfBundledTrace)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
