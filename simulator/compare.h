// compare.h: a live run against the simulation of the same scenario, point
// by point (issue 12's fidelity table). Both files are report JSON
// (report.h), `specplan live --json` and `specplan sweep --json`; points
// pair up by policy and load.
//
// The error of a metric at a point is sim / live - 1: positive when the
// simulator is optimistic about a throughput or a speed, pessimistic about a
// latency. MAPE is the mean of |error| over the points where both sides have
// the value.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sp {

// The compared metrics, in table order.
enum class CompareMetric { Throughput, UserMean, UserP90, TtftP50, TtftP90, TpotP90, Tau, Verified, BatchTokens, Count };
constexpr int kCompareMetrics = static_cast<int>(CompareMetric::Count);

const char* compare_metric_name(CompareMetric m);   // "throughput", "user_mean", ... (the --bound keys)
const char* compare_metric_label(CompareMetric m);  // the table's header: "tok/s/GPU", "user mean", ...
// Parses a --bound key; false when it names no metric.
bool compare_metric_parse(const std::string& name, CompareMetric* out);

// Bounds on |error| per metric (fractions; 0: unbounded). The defaults are
// issue 12's goals: throughput and mean per-user speed 3 %, TPOT p90 8 %,
// TTFT p90 10 %.
struct CompareBounds {
    double max_abs[kCompareMetrics] = {};
};
CompareBounds compare_default_bounds();

struct ComparePoint {
    std::string policy;
    double load = 0;                        // users (closed loop) or requests/s (open loop)
    double live[kCompareMetrics] = {};      // NaN: the file lacks it
    double sim[kCompareMetrics] = {};
    double error[kCompareMetrics] = {};     // sim / live - 1; NaN where either side lacks it or live is 0
};

struct Comparison {
    std::string load_kind;                   // "concurrency" or "rate"
    std::vector<ComparePoint> points;        // the live file's order
    std::vector<std::string> unmatched;      // "policy at load" of either file without a partner
    double mape[kCompareMetrics] = {};       // NaN: no point has the metric
    double worst[kCompareMetrics] = {};      // the largest |error|; NaN as mape
    int misses[kCompareMetrics] = {};        // points past the bound
};

// Pairs the points of two report JSONs. Throws sp::Error naming the file
// and the field when either is not a report (no "points" array, a point
// without "policy" or its load, a metric that is neither a number nor
// null), when the two use different load kinds, or when no point pairs up.
Comparison compare_reports(const nlohmann::json& live, const std::string& live_name, const nlohmann::json& sim,
                           const std::string& sim_name, const CompareBounds& bounds);

// The points of one report JSON with their metrics in `live` (sim and error
// NaN), checked as compare_reports checks them; *load_kind gets
// "concurrency" or "rate". The dashboard draws a live run's points from it.
std::vector<ComparePoint> compare_read_points(const nlohmann::json& j, const std::string& file,
                                              std::string* load_kind);

// The comparison as JSON: per point live, sim and error per metric; MAPE,
// worst and misses per metric; the bounds; "pass".
nlohmann::json comparison_json(const Comparison& c, const CompareBounds& bounds);

// Whether every bounded metric stays within its bound at every point.
bool comparison_passes(const Comparison& c, const CompareBounds& bounds);

}  // namespace sp
