// readout.cpp: see readout.h.
#include "gui/readout.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "simulator/plot_math.h"

namespace sp {

std::string latency_slo_line(const Slo& slo) {
    return "SLOs: " + slo_text(slo) + ". Goodput: " + goodput_text(slo);
}

static std::string load_words(double load, bool open_loop) {
    if (open_loop) return value_label(load) + " req/s";
    return value_label(load) + (load == 1 ? " user" : " users");
}

CapacityMark capacity_mark(const Capacity& c, bool open_loop) {
    CapacityMark m;
    if (!c.met) return m;
    m.shown = true;
    m.x = c.per_user_p90;
    m.y = c.throughput;
    m.label = (c.bounded ? "" : ">= ") + load_words(c.load, open_loop);
    char buf[96];
    std::snprintf(buf, sizeof buf, ", %s tok/s/GPU, per-user p90 %s tok/s", value_label(c.throughput).c_str(),
                  value_label(c.per_user_p90).c_str());
    m.tip = "capacity: " + m.label + buf;
    if (c.bounded) m.tip += std::string("; one more ") + (open_loop ? "step up" : "user") + " misses " + slo_miss_name(c.binding);
    else m.tip += "; the search stopped at its ceiling";
    return m;
}

CurveReach curve_reach(const std::vector<double>& ys, double y) {
    double lo = INFINITY, hi = -INFINITY;
    for (double v : ys)
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    if (lo > hi) return REACH_NONE;
    if (lo > y) return REACH_ABOVE;
    if (hi < y) return REACH_BELOW;
    return REACH_CROSSES;
}

std::string matched_miss_text(const std::string& policy, const std::vector<double>& ys, double matched) {
    double lo = INFINITY, hi = -INFINITY;
    for (double v : ys)
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    const std::string m = value_label(matched);
    switch (curve_reach(ys, matched)) {
        case REACH_CROSSES: return "";
        case REACH_NONE: return policy + " has no measured point";
        case REACH_BELOW:
            return policy + "'s curve stays below " + m + " tok/s/GPU (its highest point: " + value_label(hi) + ")";
        case REACH_ABOVE:
            return policy + "'s curve lies entirely above " + m + " tok/s/GPU (its lowest point: " + value_label(lo) +
                   "): no point of it runs that slowly";
    }
    return "";
}

std::string plan_refusal(const Scenario& sc, int users) {
    if (sc.workload.mode != WORKLOAD_CLOSED)
        return "plan by users needs a closed-loop scenario (workload.mode = \"closed\"); this one is open";
    if (users < 1) return "users: at least 1";
    if (sc.slo.per_user_tok_s <= 0 && sc.slo.ttft_s <= 0 && sc.slo.tpot_s <= 0)
        return "set at least one SLO (per-user speed, TTFT or TPOT): without one capacity has no bound";
    return "";
}

int plan_fewest(const std::vector<FleetPlan>& plans) {
    int best = -1;
    for (size_t i = 0; i < plans.size(); i++) {
        const FleetPlan& f = plans[i];
        if (!f.feasible) continue;
        if (best < 0) {
            best = static_cast<int>(i);
            continue;
        }
        const FleetPlan& b = plans[static_cast<size_t>(best)];
        const bool priced = f.usd_per_million_tokens > 0 && b.usd_per_million_tokens > 0;
        if (f.gpus < b.gpus || (f.gpus == b.gpus && priced && f.usd_per_million_tokens < b.usd_per_million_tokens))
            best = static_cast<int>(i);
    }
    return best;
}

}  // namespace sp
