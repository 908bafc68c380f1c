// cmd_compare.cpp: `specplan compare LIVE.json SIM.json`, the simulator's
// error against a live run of the same scenario (simulator/compare.h): the
// error table, MAPE per metric, and a non-zero exit when a bounded metric
// misses its bound at any point.
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/output_file.h"
#include "simulator/compare.h"
#include "traces/trace_db.h"

namespace sp {

namespace {

constexpr size_t kMaxReportBytes = 256ull << 20;  // a sweep of thousands of points is a few MB

struct CompareArgs {
    std::string live, sim, json;
    std::vector<std::string> bounds;  // METRIC=PERCENT
    bool no_bounds = false;
};

nlohmann::json read_report(const std::string& path) {
    struct stat st{};
    if (stat(path.c_str(), &st) != 0) throw Error(path + ": cannot open");
    if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
    if (static_cast<size_t>(st.st_size) > kMaxReportBytes)
        throw Error(path + ": larger than " + std::to_string(kMaxReportBytes) + " bytes: not a report JSON");
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in && !in.eof()) throw Error(path + ": read failed");
    nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_discarded()) throw Error(path + ": not JSON (expected specplan sweep or live --json output)");
    return j;
}

CompareBounds parse_bounds(const CompareArgs& a) {
    CompareBounds b = a.no_bounds ? CompareBounds{} : compare_default_bounds();
    for (const std::string& s : a.bounds) {
        const size_t eq = s.find('=');
        CompareMetric m{};
        if (eq == std::string::npos || !compare_metric_parse(s.substr(0, eq), &m))
            throw Error("--bound " + s + ": expected METRIC=PERCENT with METRIC one of throughput, user_mean, "
                        "user_p90, ttft_p50, ttft_p90, tpot_p90, tau, verified, batch_tokens");
        char* end = nullptr;
        const std::string v = s.substr(eq + 1);
        const double pct = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || !std::isfinite(pct) || pct < 0 || pct > 1e6)
            throw Error("--bound " + s + ": expected a percentage >= 0 after '=' (0: no bound)");
        b.max_abs[static_cast<int>(m)] = pct / 100;
    }
    return b;
}

std::string pct(double e) {
    if (!std::isfinite(e)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%+.1f%%", 100 * e);
    return buf;
}

void print_comparison(const CompareArgs& a, const Comparison& c, const CompareBounds& b) {
    std::printf("simulated %s against live %s: error = sim / live - 1, %zu points\n", a.sim.c_str(), a.live.c_str(),
                c.points.size());
    std::printf("%-14s %8s", "policy", c.load_kind == "rate" ? "req/s" : "users");
    for (int m = 0; m < kCompareMetrics; m++) std::printf(" %10s", compare_metric_label(static_cast<CompareMetric>(m)));
    std::printf("\n");
    for (const ComparePoint& p : c.points) {
        std::printf("%-14s %8g", p.policy.c_str(), p.load);
        for (int m = 0; m < kCompareMetrics; m++) std::printf(" %10s", pct(p.error[m]).c_str());
        std::printf("\n");
    }
    auto row = [&](const char* name, auto cell) {
        std::printf("%-14s %8s", name, "");
        for (int m = 0; m < kCompareMetrics; m++) std::printf(" %10s", cell(m).c_str());
        std::printf("\n");
    };
    auto abs_pct = [](double e) {
        if (!std::isfinite(e)) return std::string("-");
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f%%", 100 * e);
        return std::string(buf);
    };
    row("MAPE", [&](int m) { return abs_pct(c.mape[m]); });
    row("worst |error|", [&](int m) { return abs_pct(c.worst[m]); });
    row("bound", [&](int m) { return b.max_abs[m] > 0 ? abs_pct(b.max_abs[m]) : std::string("-"); });
    row("misses", [&](int m) { return b.max_abs[m] > 0 ? std::to_string(c.misses[m]) : std::string("-"); });
    for (const std::string& u : c.unmatched) std::printf("unmatched: %s\n", u.c_str());
}

// Prints the table; a bounded metric past its bound at any point throws
// sp::Error, one line naming each such metric (exit 1).
void run_compare(const CompareArgs& a) {
    const CompareBounds b = parse_bounds(a);
    const Comparison c = compare_reports(read_report(a.live), a.live, read_report(a.sim), a.sim, b);
    print_comparison(a, c, b);
    if (!a.json.empty()) {
        OutputFile f(a.json);
        f.stream() << comparison_json(c, b).dump(1) << "\n";
        f.commit();
    }
    if (comparison_passes(c, b)) return;
    std::string why;
    for (int m = 0; m < kCompareMetrics; m++)
        if (b.max_abs[m] > 0 && c.misses[m] > 0) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "%s%s past %.1f%% at %d of %zu points (worst %.1f%%)", why.empty() ? "" : "; ",
                          compare_metric_name(static_cast<CompareMetric>(m)), 100 * b.max_abs[m], c.misses[m],
                          c.points.size(), 100 * c.worst[m]);
            why += buf;
        }
    throw Error(a.sim + ": misses the bounds: " + why);
}

}  // namespace

void compare_commands(CLI::App& app) {
    auto a = std::make_shared<CompareArgs>();
    CLI::App* cmd = app.add_subcommand(
        "compare", "The simulator's error against a live run of the same scenario, point by point; exits 1 when a "
                   "bounded metric misses its bound");
    cmd->add_option("LIVE", a->live, "specplan live --json output")->required();
    cmd->add_option("SIM", a->sim, "specplan sweep --json output of the same scenario")->required();
    cmd->add_option("--bound", a->bounds,
                    "METRIC=PERCENT, repeatable (defaults: throughput=3 user_mean=3 tpot_p90=8 ttft_p90=10; 0: none)");
    cmd->add_flag("--no-bounds", a->no_bounds, "start from no bounds (only --bound's count)");
    cmd->add_option("--json", a->json, "write the comparison as JSON ('-': stdout)");
    cmd->callback([a] { run_compare(*a); });
}

}  // namespace sp
