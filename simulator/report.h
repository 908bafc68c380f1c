// report.h: a sweep as a terminal table, JSON and CSV. The JSON and CSV hold
// only simulated quantities (no wall-clock times, no dates), so the same
// scenario and seed give byte-identical files. JSON fields: scenarios/README.md.
#pragma once

#include <cstdio>
#include <ostream>
#include <string>

#include "simulator/sweep.h"

namespace sp {

// What a result came from, in one line: the scenario file and its hash,
// model, GPU, gamma, tp, cost model, acceptance source, and "SYNTHETIC
// acceptance" when any of it is not measured. The JSON's "context" holds
// the same fields; `version` is the specplan build (its git revision).
std::string report_context_line(const Scenario& sc, const std::string& version);

void report_table(std::FILE* out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                  const std::string& version = "");
void report_point(std::FILE* out, const Scenario& sc, const PointResult& p);  // `specplan sim`'s summary
void report_json(std::ostream& out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                 const std::string& version = "");
// One row per point; the header names carry the units (tok_s_per_gpu,
// ttft_p90_ms, e2e_mean_s, ...) and the numbers are csv_number's.
void report_csv(std::ostream& out, const SweepResult& r);

// A number for a CSV cell: `digits` significant digits in plain decimal (no
// exponent between 1e-9 and 1e15), trailing zeros dropped, the integer part
// never rounded (4439.7 -> "4440", 0.012345 -> "0.01235", 123456.7 -> "123457");
// "" for NaN or infinity (not available).
std::string csv_number(double v, int digits = 4);

}  // namespace sp
