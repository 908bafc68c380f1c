// sweep_cli.h: what `specplan sweep` and `specplan live` share: loads and
// policies from flags or the scenario, the headline pair, atomic output files.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "policy/policy.h"
#include "simulator/scenario.h"
#include "traces/trace_db.h"  // Error

namespace sp {

// "1,2,4" -> {1, 2, 4}; each value must be > 0 and the list increasing.
std::vector<double> parse_loads(const std::string& text, const char* flag);
// "ar,fixed:3" -> policies; batch-table takes the scenario's table.
std::vector<Policy> parse_policies(const std::string& text, const Scenario& sc);
// The scenario's users (closed loop) or rates (open loop).
std::vector<double> scenario_loads(const Scenario& sc);
// --concurrency/--rates when given (whole users in a closed loop), else the scenario's.
std::vector<double> loads_from_flag(const Scenario& sc, const std::string& text);
// The compared pair must be among the policies run: else no headline.
void keep_headline_if_run(Scenario& sc, const std::vector<Policy>& policies);

// --requests and --warmup: the measurement window of every point, in place
// of the scenario's workload.requests and workload.warmup (a load grid
// split over runs can size each part's window to its loads).
struct WindowFlags {
    int requests = 0;  // > 0: override
    int warmup = -1;   // >= 0: override
};
void window_add_flags(CLI::App* cmd, WindowFlags* w);
void window_apply(Scenario& sc, const WindowFlags& w);

// Writes `fn`'s output to `path` through a temporary file and a rename, so a
// failed write never leaves half a file behind.
template <typename F>
void write_file(const std::string& path, F fn) {
    std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw Error(path + ": cannot open for writing");
        fn(out);
        out.close();
        if (!out) throw Error(path + ": write failed");
    }
    std::filesystem::rename(tmp, path);
}

}  // namespace sp
