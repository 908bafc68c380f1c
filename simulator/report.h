// report.h: a sweep as a terminal table, JSON and CSV. The JSON and CSV hold
// only simulated quantities (no wall-clock times, no dates), so the same
// scenario and seed give byte-identical files. JSON fields: scenarios/README.md.
#pragma once

#include <cstdio>
#include <ostream>

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
void report_csv(std::ostream& out, const SweepResult& r);

}  // namespace sp
