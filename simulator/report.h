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

// A number for a CSV cell: `digits` significant digits in plain decimal (no
// exponent between 1e-9 and 1e15), trailing zeros dropped, the integer part
// never rounded (4439.7 -> "4440", 0.012345 -> "0.01235", 123456.7 -> "123457");
// "" for NaN or infinity (not available).
std::string csv_number(double v, int digits = 4);

}  // namespace sp
