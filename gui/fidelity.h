// fidelity.h: a live run on the dashboard (issue 12): its points overlaid on
// the simulated frontier, and the error table of the sweep on screen against
// it, computed by `specplan compare`'s own code (simulator/compare.h) so the
// panel and the command cannot disagree. Window-free, tested in CI.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulator/compare.h"
#include "simulator/sweep.h"

namespace sp {

// A `specplan live --json` report, loaded.
struct LiveRun {
    std::string path;
    nlohmann::json report;
    std::string load_kind;             // "concurrency" or "rate"
    std::vector<ComparePoint> points;  // the report's order; metrics in `live` (frontier: UserP90, Throughput)
    std::string device;                // "cuda on NVIDIA H100 ..." from its measured block; empty without one
};

// Reads and checks a live report; throws sp::Error "PATH: field: expected
// ...", one line, when it is not one (not JSON, no points array, a point
// without its policy or load, a metric that is not a number).
LiveRun live_run_load(const std::string& path);

// The sweep against the live run, point by point, under issue 12's bounds
// (compare_default_bounds). Throws sp::Error as compare_reports does: no
// point pairs up, different load kinds.
Comparison fidelity_compare(const Scenario& sc, const SweepResult& r, const LiveRun& live);

}  // namespace sp
