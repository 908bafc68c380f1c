// report.h: a sweep as a terminal table, JSON and CSV. The JSON and CSV hold
// only simulated quantities (no wall-clock times, no dates), so the same
// scenario and seed give byte-identical files. JSON fields: scenarios/README.md.
#pragma once

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "simulator/sweep.h"

namespace sp {

// What a result came from, in one line: the scenario file and its hash,
// model, GPU, gamma, tp, cost model, acceptance source, and "SYNTHETIC
// acceptance" when any of it is not measured. The JSON's "context" holds
// the same fields; `version` is the specplan build (its git revision).
std::string report_context_line(const Scenario& sc, const std::string& version);
// "all-reduce at 360 GB/s bus, 10 us a call (assumed, not measured)": the
// figures a roofline prices tp > 1's collectives from, none fitted to a
// measured tp cell yet; the context line carries it after "tp N" when tp > 1.
// "" for a measured model.
std::string report_comm_text(const CostModel& m);

// A load in words: "64 users" (closed loop) or "2.5 req/s" (open loop).
std::string report_load_text(const Scenario& sc, double load);

// The latency percentiles (TTFT, TPOT, E2E, ITL, in ms) reported when
// --percentiles is not given; each percentile is in (0, 100].
inline const std::vector<double> REPORT_PERCENTILES = {50, 90, 99};
// The percentiles of the ITL distribution in the JSON (itl_distribution).
inline const std::vector<double> REPORT_ITL_DISTRIBUTION = {1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.9, 100};
// "p50", "p99.9": a percentile's name in fields and headers.
std::string report_percentile_name(double pct);

// The table; with `latency` non-empty, a second table follows with TTFT,
// TPOT, E2E and ITL in ms at those percentiles.
void report_table(std::FILE* out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                  const std::string& version = "", const std::vector<double>& latency = {});
// `specplan sim`'s summary, latencies in ms at `percentiles`.
void report_point(std::FILE* out, const Scenario& sc, const PointResult& p,
                  const std::vector<double>& percentiles = REPORT_PERCENTILES);
void report_json(std::ostream& out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                 const std::string& version = "", const std::vector<double>& percentiles = REPORT_PERCENTILES);
// One row per point; the header names carry the units (tok_s_per_gpu,
// ttft_p90_ms, e2e_mean_s, ...) and the numbers are csv_number's.
// The context columns come first (specplan, scenario, scenario_fnv1a, model,
// gpu, cost_model, cost_calibration, acceptance, synthetic_acceptance: the
// JSON's "context"), on every row.
void report_csv(std::ostream& out, const Scenario& sc, const SweepResult& r, const std::string& version = "",
                const std::vector<double>& percentiles = REPORT_PERCENTILES);

// Markdown (report_markdown.cpp), for pasting into documents: the sweep as
// one table (a row per point), capacity at the SLO and the headline pair;
// plan's answer as one table (a row per policy) and the fewest GPUs. Text
// columns are left-aligned, numbers right; '|' in a cell is escaped.
void report_markdown(std::ostream& out, const Scenario& sc, const SweepResult& r, const std::string& version = "");
void report_plan_markdown(std::ostream& out, const Scenario& sc, const PlanQuery& q, double price,
                          const std::vector<FleetPlan>& plans, const std::string& version = "");
// plan's cells, shared with its terminal table: capacity (">=" where the
// search hit its ceiling), what bounds it, the fleet check.
std::string plan_capacity_text(const FleetPlan& f);
std::string plan_bound_text(const FleetPlan& f, const PlanQuery& q);
std::string plan_fleet_check_text(const FleetPlan& f);

// InferenceX (report_inferencex.cpp): InferenceX's per-point JSON (SemiAnalysis' dashboard): {"framework",
// "scenario", "context", "results": [one object per point], "frontier"}.
// A point carries the identity fields hw, conc (null for an open loop, whose
// load is request_rate), model, framework = "specplan-sim", precision (the
// roofline's bytes per weight: 2 bf16, 1 fp8, 0.5 fp4; bf16 for a measured
// profile), spec_decoding (the policy, "none" for ar), disagg, isl and osl
// (the measured requests' mean prompt and output tokens), tp; tput_per_gpu
// = input + output tokens/s per GPU, output_tput_per_gpu,
// input_tput_per_gpu; <stat>_<metric> in seconds for metric ttft, tpot, itl,
// e2el and stat mean, median, p90, p99, p99.9; and <stat>_intvty =
// 1000 / <stat>_tpot in ms (tokens/s/user). "frontier" holds, per policy in
// InferenceX's axes (x = median_intvty, y = tput_per_gpu): its Pareto points
// (frontier_pareto, unstable points left out), the area under them
// (frontier_area), and tput_per_gpu interpolated (frontier_at) at every
// INFERENCEX_GRID_STEP tok/s/user up to the largest x of any policy, null
// outside the policy's own range.
inline constexpr const char* INFERENCEX_FRAMEWORK = "specplan-sim";
inline constexpr double INFERENCEX_GRID_STEP = 10;  // tok/s/user
void report_inferencex(std::ostream& out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                       const std::string& version = "");

// A Pareto frontier as a polyline: x ascending, y strictly descending.
struct Frontier {
    std::vector<double> x, y;
};
// The points no other point beats in both x and y (ties in both: one kept;
// non-finite points left out), by ascending x.
Frontier frontier_pareto(const std::vector<double>& x, const std::vector<double>& y);
// y at x along the straight segments between frontier points; false outside
// [x.front(), x.back()] (no extrapolation).
bool frontier_at(const Frontier& f, double x, double* y);
// The area under the polyline by the trapezoid rule, sum (x_i+1 - x_i)
// (y_i + y_i+1) / 2, from its first x to its last (0 for one point).
double frontier_area(const Frontier& f);

// A number for a CSV cell: `digits` significant digits in plain decimal (no
// exponent between 1e-9 and 1e15), trailing zeros dropped, the integer part
// never rounded (4439.7 -> "4440", 0.012345 -> "0.01235", 123456.7 -> "123457");
// "" for NaN or infinity (not available).
std::string csv_number(double v, int digits = 4);

}  // namespace sp
