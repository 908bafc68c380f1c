// compare.cpp: see compare.h.
#include "simulator/compare.h"

#include <cmath>
#include <limits>

#include "traces/trace_db.h"  // Error

namespace sp {

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct MetricField {
    const char* name;   // --bound key and JSON key
    const char* label;  // table header
    const char* key;    // the point's field
    const char* sub;    // its member, or null
};
constexpr MetricField kFields[kCompareMetrics] = {
    {"throughput", "tok/s/GPU", "throughput_tok_s_gpu", nullptr},
    {"user_mean", "user mean", "per_user_tok_s", "mean"},
    {"user_p90", "user p90", "per_user_tok_s", "p90"},
    {"ttft_p50", "TTFT p50", "ttft_s", "p50"},
    {"ttft_p90", "TTFT p90", "ttft_s", "p90"},
    {"tpot_p90", "TPOT p90", "tpot_s", "p90"},
    {"tau", "tau", "tau", nullptr},
    {"verified", "verified", "mean_verified", nullptr},
    {"batch_tokens", "B/step", "mean_batch_tokens", nullptr},
};

std::string where(const std::string& file, size_t i, const char* field) {
    return file + ": points[" + std::to_string(i) + "]." + field;
}

// A metric of point i, NaN when absent or null.
double metric_value(const nlohmann::json& p, const MetricField& f, const std::string& file, size_t i) {
    auto it = p.find(f.key);
    if (it == p.end() || it->is_null()) return kNaN;
    const nlohmann::json* v = &*it;
    if (f.sub) {
        if (!v->is_object())
            throw Error(where(file, i, f.key) + ": expected an object with \"" + f.sub + "\", got " + v->type_name());
        auto s = v->find(f.sub);
        if (s == v->end() || s->is_null()) return kNaN;
        v = &*s;
    }
    if (!v->is_number())
        throw Error(where(file, i, f.key) + (f.sub ? std::string(".") + f.sub : "") + ": expected a number, got " +
                    v->type_name());
    return v->get<double>();
}

struct Side {
    std::string load_kind;
    std::vector<ComparePoint> points;  // live or sim filled
};

Side read_side(const nlohmann::json& j, const std::string& file, bool live) {
    if (!j.is_object()) throw Error(file + ": expected a report JSON object (specplan sweep or live --json)");
    Side s;
    auto kind = j.find("load_kind");
    if (kind == j.end() || !kind->is_string() || (*kind != "concurrency" && *kind != "rate"))
        throw Error(file + ": load_kind: expected \"concurrency\" or \"rate\"");
    s.load_kind = kind->get<std::string>();
    auto pts = j.find("points");
    if (pts == j.end() || !pts->is_array()) throw Error(file + ": points: expected an array");
    for (size_t i = 0; i < pts->size(); i++) {
        const nlohmann::json& p = (*pts)[i];
        if (!p.is_object()) throw Error(file + ": points[" + std::to_string(i) + "]: expected an object");
        auto pol = p.find("policy");
        if (pol == p.end() || !pol->is_string()) throw Error(where(file, i, "policy") + ": expected a string");
        auto load = p.find(s.load_kind);
        if (load == p.end() || !load->is_number())
            throw Error(where(file, i, s.load_kind.c_str()) + ": expected a number");
        ComparePoint c;
        c.policy = pol->get<std::string>();
        c.load = load->get<double>();
        for (int m = 0; m < kCompareMetrics; m++) {
            const double v = metric_value(p, kFields[m], file, i);
            (live ? c.live : c.sim)[m] = v;
        }
        s.points.push_back(c);
    }
    return s;
}

bool same_load(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(a)); }

std::string point_name(const ComparePoint& p) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " at %g", p.load);
    return p.policy + buf;
}

}  // namespace

std::vector<ComparePoint> compare_read_points(const nlohmann::json& j, const std::string& file,
                                              std::string* load_kind) {
    Side s = read_side(j, file, true);
    for (ComparePoint& p : s.points)
        for (int m = 0; m < kCompareMetrics; m++) p.sim[m] = p.error[m] = kNaN;
    if (load_kind) *load_kind = s.load_kind;
    return s.points;
}

const char* compare_metric_name(CompareMetric m) { return kFields[static_cast<int>(m)].name; }
const char* compare_metric_label(CompareMetric m) { return kFields[static_cast<int>(m)].label; }

bool compare_metric_parse(const std::string& name, CompareMetric* out) {
    for (int m = 0; m < kCompareMetrics; m++)
        if (name == kFields[m].name) {
            *out = static_cast<CompareMetric>(m);
            return true;
        }
    return false;
}

CompareBounds compare_default_bounds() {
    CompareBounds b;
    b.max_abs[static_cast<int>(CompareMetric::Throughput)] = 0.03;
    b.max_abs[static_cast<int>(CompareMetric::UserMean)] = 0.03;
    b.max_abs[static_cast<int>(CompareMetric::TpotP90)] = 0.08;
    b.max_abs[static_cast<int>(CompareMetric::TtftP90)] = 0.10;
    return b;
}

Comparison compare_reports(const nlohmann::json& live, const std::string& live_name, const nlohmann::json& sim,
                           const std::string& sim_name, const CompareBounds& bounds) {
    const Side l = read_side(live, live_name, true), s = read_side(sim, sim_name, false);
    if (l.load_kind != s.load_kind)
        throw Error(sim_name + ": load_kind: expected \"" + l.load_kind + "\" as in " + live_name + ", got \"" +
                    s.load_kind + "\"");
    Comparison c;
    c.load_kind = l.load_kind;
    std::vector<bool> sim_used(s.points.size(), false);
    for (const ComparePoint& lp : l.points) {
        size_t k = 0;
        while (k < s.points.size() && !(s.points[k].policy == lp.policy && same_load(s.points[k].load, lp.load))) k++;
        if (k == s.points.size()) {
            c.unmatched.push_back(live_name + ": " + point_name(lp));
            continue;
        }
        sim_used[k] = true;
        ComparePoint p = lp;
        for (int m = 0; m < kCompareMetrics; m++) {
            p.sim[m] = s.points[k].sim[m];
            p.error[m] = std::isfinite(p.live[m]) && std::isfinite(p.sim[m]) && p.live[m] != 0
                             ? p.sim[m] / p.live[m] - 1
                             : kNaN;
        }
        c.points.push_back(p);
    }
    for (size_t k = 0; k < s.points.size(); k++)
        if (!sim_used[k]) c.unmatched.push_back(sim_name + ": " + point_name(s.points[k]));
    if (c.points.empty())
        throw Error(sim_name + ": points: no (policy, " + c.load_kind + ") pair in common with " + live_name);
    for (int m = 0; m < kCompareMetrics; m++) {
        double sum = 0, worst = kNaN;
        int n = 0;
        for (const ComparePoint& p : c.points) {
            const double e = std::fabs(p.error[m]);
            if (!std::isfinite(e)) continue;
            sum += e;
            n++;
            if (!(e <= worst)) worst = e;  // NaN compares false: the first finite value replaces it
            if (bounds.max_abs[m] > 0 && e > bounds.max_abs[m]) c.misses[m]++;
        }
        c.mape[m] = n ? sum / n : kNaN;
        c.worst[m] = worst;
    }
    return c;
}

bool comparison_passes(const Comparison& c, const CompareBounds& bounds) {
    for (int m = 0; m < kCompareMetrics; m++)
        if (bounds.max_abs[m] > 0 && c.misses[m] > 0) return false;
    return true;
}

nlohmann::json comparison_json(const Comparison& c, const CompareBounds& bounds) {
    auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
    nlohmann::json pts = nlohmann::json::array();
    for (const ComparePoint& p : c.points) {
        nlohmann::json q = {{"policy", p.policy}, {c.load_kind, p.load}};
        for (int m = 0; m < kCompareMetrics; m++)
            q[kFields[m].name] = {{"live", num(p.live[m])}, {"sim", num(p.sim[m])}, {"error", num(p.error[m])}};
        pts.push_back(q);
    }
    nlohmann::json summary = nlohmann::json::object();
    for (int m = 0; m < kCompareMetrics; m++)
        summary[kFields[m].name] = {{"mape", num(c.mape[m])},
                                    {"worst", num(c.worst[m])},
                                    {"bound", bounds.max_abs[m] > 0 ? nlohmann::json(bounds.max_abs[m]) : nullptr},
                                    {"misses", c.misses[m]}};
    return {{"load_kind", c.load_kind},
            {"points", pts},
            {"metrics", summary},
            {"unmatched", c.unmatched},
            {"pass", comparison_passes(c, bounds)}};
}

}  // namespace sp
