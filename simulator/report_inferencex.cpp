// report_inferencex.cpp: a sweep in InferenceX's per-point form, and the
// frontier read-outs its dashboard adds (report.h).
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "simulator/report.h"

namespace sp {

using ojson = nlohmann::ordered_json;

Frontier frontier_pareto(const std::vector<double>& x, const std::vector<double>& y) {
    assert(x.size() == y.size() && "one y per x");
    std::vector<std::pair<double, double>> pts;
    for (size_t i = 0; i < x.size(); i++)
        if (std::isfinite(x[i]) && std::isfinite(y[i])) pts.push_back({x[i], y[i]});
    // by x descending, y descending at equal x: a point is on the frontier when its y beats every
    // point of larger x (which come before it)
    std::sort(pts.begin(), pts.end(), [](auto a, auto b) { return a.first != b.first ? a.first > b.first : a.second > b.second; });
    Frontier f;
    double best = -INFINITY;
    for (const auto& [px, py] : pts) {
        if (py <= best) continue;
        best = py;
        f.x.push_back(px);
        f.y.push_back(py);
    }
    std::reverse(f.x.begin(), f.x.end());
    std::reverse(f.y.begin(), f.y.end());
    return f;
}

bool frontier_at(const Frontier& f, double x, double* y) {
    if (f.x.empty() || !(x >= f.x.front() && x <= f.x.back())) return false;
    size_t i = 0;  // the segment [x_i, x_i+1] holding x
    while (i + 1 < f.x.size() && f.x[i + 1] < x) i++;
    if (i + 1 == f.x.size()) {  // a frontier of one point
        *y = f.y[i];
        return true;
    }
    const double u = (x - f.x[i]) / (f.x[i + 1] - f.x[i]);
    *y = f.y[i] + u * (f.y[i + 1] - f.y[i]);
    return true;
}

double frontier_area(const Frontier& f) {
    double a = 0;
    for (size_t i = 1; i < f.x.size(); i++) a += (f.x[i] - f.x[i - 1]) * (f.y[i] + f.y[i - 1]) / 2;
    return a;
}

// The model's weights as InferenceX names precisions; a measured profile ran
// on the engine, which computes in bf16.
static std::string precision_of(const Scenario& sc) {
    if (sc.cost.kind == COST_MEASURED) return "bf16";
    const double b = sc.cost.roofline.model.bytes_per_weight;
    if (b == 4) return "fp32";
    if (b == 2) return "bf16";
    if (b == 1) return "fp8";
    if (b == 0.5) return "fp4";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g bytes", b);
    return buf;
}

// InferenceX's statistics, named as its files name them.
struct Stat {
    const char* name;
    double q;  // quantile; < 0: the mean
};
static const Stat INFERENCEX_STATS[] = {{"mean", -1}, {"median", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}};

static double stat_of(const Sketch& s, const Stat& st) { return st.q < 0 ? sketch_mean(s) : sketch_quantile(s, st.q); }

static double interactivity(const PointResult& p) {
    const double tpot = sketch_quantile(p.dist.tpot, 0.5);
    return tpot > 0 ? 1 / tpot : NAN;
}

void report_inferencex(std::ostream& out, const Scenario& sc, const std::vector<Policy>& policies, const SweepResult& r,
                       const std::string& version) {
    const bool closed = sc.workload.mode == WORKLOAD_CLOSED;
    const int gpus = sc.engine.tp * sc.fleet.replicas;
    ojson j;
    j["framework"] = INFERENCEX_FRAMEWORK;
    j["specplan"] = version.empty() ? ojson(nullptr) : ojson(version);
    j["scenario"] = sc.path;
    j["context"] = report_context_line(sc, version);
    ojson results = ojson::array();
    const std::string model = sc.cost.kind == COST_MEASURED ? sc.cost.measured.model : sc.cost.roofline.model.name;
    const std::string hw = sc.cost.kind == COST_MEASURED ? sc.cost.measured.gpu : sc.cost.roofline.gpu.name;
    for (const PointResult& p : r.points) {
        ojson q;
        q["hw"] = hw;
        q["conc"] = closed ? ojson(p.concurrency) : ojson(nullptr);
        q["request_rate"] = closed ? ojson(nullptr) : ojson(p.rate);  // an open loop's load
        q["model"] = model;
        q["framework"] = INFERENCEX_FRAMEWORK;
        q["precision"] = precision_of(sc);
        q["spec_decoding"] = p.policy == "ar" ? std::string("none") : p.policy;
        q["disagg"] = sc.engine.disaggregated_prefill;
        q["isl"] = p.mean_prompt_len;
        q["osl"] = p.mean_output_len;
        q["tp"] = sc.engine.tp;
        q["num_gpus"] = gpus;
        q["tput_per_gpu"] = p.input_throughput + p.throughput;
        q["output_tput_per_gpu"] = p.throughput;
        q["input_tput_per_gpu"] = p.input_throughput;
        const std::pair<const char*, const Sketch*> metrics[] = {
            {"ttft", &p.dist.ttft}, {"tpot", &p.dist.tpot}, {"itl", &p.dist.itl}, {"e2el", &p.dist.e2e}};
        for (const auto& [name, sketch] : metrics)
            for (const Stat& st : INFERENCEX_STATS) q[std::string(st.name) + "_" + name] = stat_of(*sketch, st);
        for (const Stat& st : INFERENCEX_STATS) {
            const double tpot = stat_of(p.dist.tpot, st);
            q[std::string(st.name) + "_intvty"] = tpot > 0 ? ojson(1 / tpot) : ojson(nullptr);  // 1000 / TPOT ms
        }
        q["unstable"] = p.unstable;
        q["short_window"] = p.short_window;
        results.push_back(q);
    }
    j["results"] = results;

    // every policy's frontier in InferenceX's axes, and its value on a common grid
    const size_t nl = r.loads.size();
    std::vector<Frontier> fronts;
    double x_max = 0;
    for (size_t pi = 0; pi < policies.size() && (pi + 1) * nl <= r.points.size(); pi++) {
        std::vector<double> xs, ys;
        for (size_t i = 0; i < nl; i++) {
            const PointResult& p = r.points[pi * nl + i];
            const bool ok = p.n_requests > 0 && !p.unstable;
            xs.push_back(ok ? interactivity(p) : NAN);
            ys.push_back(ok ? p.input_throughput + p.throughput : NAN);
        }
        fronts.push_back(frontier_pareto(xs, ys));
        if (!fronts.back().x.empty()) x_max = std::max(x_max, fronts.back().x.back());
    }
    std::vector<double> grid;
    for (int k = 1; k * INFERENCEX_GRID_STEP <= x_max; k++) grid.push_back(k * INFERENCEX_GRID_STEP);
    ojson fj;
    fj["x"] = "median_intvty";
    fj["y"] = "tput_per_gpu";
    fj["interpolation"] = "piecewise linear between the Pareto points of each policy (unstable points left out); "
                          "null outside the policy's own range";
    fj["area"] = "trapezoid rule under the same polyline, from its least to its greatest median_intvty; "
                 "units tok/s/GPU x tok/s/user";
    fj["intvty_grid"] = grid;
    ojson pols = ojson::array();
    for (size_t pi = 0; pi < fronts.size(); pi++) {
        const Frontier& f = fronts[pi];
        ojson e;
        e["policy"] = policies[pi].name;
        ojson pts = ojson::array();
        for (size_t i = 0; i < f.x.size(); i++) pts.push_back({{"median_intvty", f.x[i]}, {"tput_per_gpu", f.y[i]}});
        e["pareto"] = pts;
        e["area"] = f.x.empty() ? ojson(nullptr) : ojson(frontier_area(f));
        ojson at = ojson::array();
        for (double x : grid) {
            double y;
            at.push_back(frontier_at(f, x, &y) ? ojson(y) : ojson(nullptr));
        }
        e["tput_per_gpu_at_grid"] = at;
        pols.push_back(e);
    }
    fj["policies"] = pols;
    j["frontier"] = fj;
    out << j.dump(1) << "\n";
}

}  // namespace sp
