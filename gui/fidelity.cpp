// fidelity.cpp: a live run loaded for the dashboard (fidelity.h).
#include "gui/fidelity.h"

#include <fstream>
#include <sstream>

#include "simulator/report.h"

namespace sp {

LiveRun live_run_load(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw Error(path + ": cannot open");
    LiveRun run;
    run.path = path;
    run.report = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (run.report.is_discarded()) throw Error(path + ": expected a report JSON (specplan live --json), not JSON");
    run.points = compare_read_points(run.report, path, &run.load_kind);
    if (run.points.empty()) throw Error(path + ": points: expected at least one point");
    auto m = run.report.find("measured");
    if (m != run.report.end() && m->is_object()) {
        const std::string dev = m->value("device", ""), gpu = m->value("gpu", "");
        run.device = gpu.empty() ? dev : dev + " on " + gpu;
    }
    return run;
}

Comparison fidelity_compare(const Scenario& sc, const SweepResult& r, const LiveRun& live) {
    std::ostringstream sim;
    report_json(sim, sc, sc.policies, r, "dashboard");
    return compare_reports(live.report, live.path, nlohmann::json::parse(sim.str()), "the sweep on screen",
                           compare_default_bounds());
}

}  // namespace sp
