// report.h: a sweep as a terminal table, JSON and CSV. The JSON and CSV hold
// only simulated quantities (no wall-clock times, no dates), so the same
// scenario and seed give byte-identical files. JSON fields: scenarios/README.md.
#pragma once

#include <cstdio>
#include <ostream>

#include "simulator/sweep.h"

namespace sp {

void report_table(std::FILE* out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r);
void report_point(std::FILE* out, const Scenario& sc, const PointResult& p);  // `specplan sim`'s summary
void report_json(std::ostream& out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r);
void report_csv(std::ostream& out, const SweepResult& r);

}  // namespace sp
