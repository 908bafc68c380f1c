// plan.cpp: SLO checks, capacity by bisection, fleets (plan.h).
#include "simulator/plan.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <limits>

#include "simulator/parallel.h"

namespace sp {

double slo_pick(const Summary& s, int percentile) {
    assert((percentile == 50 || percentile == 90 || percentile == 99) && "slo_pick: percentile 50, 90 or 99");
    return percentile == 50 ? s.p50 : percentile == 90 ? s.p90 : s.p99;
}

SloMiss slo_check(const Slo& slo, const PointResult& p) {
    if (p.unstable) return SLO_UNSTABLE;
    if (slo.per_user_tok_s > 0 && slo_pick(p.per_user, slo.percentile) < slo.per_user_tok_s) return SLO_SPEED;
    if (slo.ttft_s > 0 && slo_pick(p.ttft, slo.percentile) > slo.ttft_s) return SLO_TTFT;
    if (slo.tpot_s > 0 && slo_pick(p.tpot, slo.percentile) > slo.tpot_s) return SLO_TPOT;
    return SLO_MET;
}

const char* slo_miss_name(SloMiss m) {
    switch (m) {
        case SLO_MET: return "met";
        case SLO_UNSTABLE: return "stability";
        case SLO_SPEED: return "per-user speed";
        case SLO_TTFT: return "TTFT";
        case SLO_TPOT: return "TPOT";
    }
    return "?";
}

std::string slo_text(const Slo& slo) {
    std::string out;
    char buf[96];
    auto add = [&](const char* text) { out += (out.empty() ? "" : ", ") + std::string(text); };
    if (slo.per_user_tok_s > 0) {
        std::snprintf(buf, sizeof buf, "per-user p%d >= %g tok/s", slo.percentile, slo.per_user_tok_s);
        add(buf);
    }
    if (slo.ttft_s > 0) {
        std::snprintf(buf, sizeof buf, "TTFT p%d <= %g ms", slo.percentile, slo.ttft_s * 1e3);
        add(buf);
    }
    if (slo.tpot_s > 0) {
        std::snprintf(buf, sizeof buf, "TPOT p%d <= %g ms", slo.percentile, slo.tpot_s * 1e3);
        add(buf);
    }
    return out.empty() ? "none" : out;
}

std::string goodput_text(const Slo& slo) {
    char buf[96];
    std::string out;
    if (slo.per_user_tok_s > 0) {
        std::snprintf(buf, sizeof buf, "speed >= %g tok/s", slo.per_user_tok_s);
        out = buf;
    }
    if (slo.ttft_s > 0) {
        std::snprintf(buf, sizeof buf, "TTFT <= %g ms", slo.ttft_s * 1e3);
        out += (out.empty() ? "" : " and ") + std::string(buf);
    }
    return out.empty() ? "every request (no per-user speed or TTFT SLO set)" : "requests with " + out;
}

double capacity_ceiling(const Scenario& sc) {
    if (sc.workload.mode == WORKLOAD_OPEN) {
        double top = 0;
        for (double r : sc.workload.rates) top = std::max(top, r);
        return 8 * top;
    }
    return 8.0 * sc.engine.max_seqs;
}

CapacitySearch capacity_search(const Scenario& sc, const AcceptanceData& acc, const Policy& policy,
                               const std::vector<double>& known_loads, const std::vector<PointResult>& known,
                               double ceiling) {
    assert(known_loads.size() == known.size() && "capacity_search: a point per known load");
    const bool closed = sc.workload.mode == WORKLOAD_CLOSED;
    CapacitySearch c;
    auto run = [&](double load) {
        c.n_points++;
        return sim_run_point(sc, acc, policy, load);
    };
    // The bracket: lo meets (0: none known), hi fails (inf: none known).
    double lo = 0, hi = std::numeric_limits<double>::infinity();
    PointResult lo_point;
    SloMiss hi_miss = SLO_MET;
    for (size_t i = 0; i < known.size(); i++) {  // ascending: a meeting load above the first failure is ignored
        const SloMiss m = slo_check(sc.slo, known[i]);
        if (m == SLO_MET && known_loads[i] > lo && known_loads[i] < hi) {
            lo = known_loads[i];
            lo_point = known[i];
        } else if (m != SLO_MET && known_loads[i] < hi) {
            hi = known_loads[i];
            hi_miss = m;
        }
    }
    // No failing load yet: double from the largest meeting one (or the first load) to the ceiling.
    const double first = closed ? 1.0 : std::max(1e-3, ceiling / 1024);
    while (std::isinf(hi)) {
        const double load = std::min(ceiling, lo > 0 ? 2 * lo : first);
        if (load <= lo) break;  // at the ceiling
        const PointResult p = run(load);
        const SloMiss m = slo_check(sc.slo, p);
        if (m == SLO_MET) {
            lo = load;
            lo_point = p;
        } else {
            hi = load;
            hi_miss = m;
        }
    }
    // Nothing meets yet: the smallest load that could (1 user; or down to ceiling / 2^20 requests/s).
    if (lo == 0 && !std::isinf(hi)) {
        const double floor_load = closed ? 1.0 : ceiling / (1 << 20);
        if (hi > floor_load) {
            const PointResult p = run(floor_load);
            if (slo_check(sc.slo, p) == SLO_MET) {
                lo = floor_load;
                lo_point = p;
            } else {
                hi = floor_load;
                hi_miss = slo_check(sc.slo, p);
            }
        }
    }
    if (lo == 0) return c;  // no load meets every SLO
    // Bisection between a meeting lo and a failing hi.
    while (!std::isinf(hi) && (closed ? hi - lo > 1 : hi > lo * 1.01)) {
        const double mid = closed ? std::floor((lo + hi) / 2) : std::sqrt(lo * hi);
        const PointResult p = run(mid);
        const SloMiss m = slo_check(sc.slo, p);
        if (m == SLO_MET) {
            lo = mid;
            lo_point = p;
        } else {
            hi = mid;
            hi_miss = m;
        }
    }
    c.met = true;
    c.bounded = !std::isinf(hi);
    c.load = lo;
    c.point = lo_point;
    c.binding = c.bounded ? hi_miss : SLO_MET;
    return c;
}

FleetPlan plan_fleet(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, int users,
                     double gpu_hour_usd) {
    assert(users >= 1 && sc.workload.mode == WORKLOAD_CLOSED && "plan_fleet: users of a closed loop");
    FleetPlan f;
    f.policy = policy.name;
    // A replica never needs to be tried above the whole fleet's users.
    f.capacity = capacity_search(sc, acc, policy, {}, {}, std::min<double>(users, capacity_ceiling(sc)));
    if (!f.capacity.met) return f;
    const int cap = static_cast<int>(f.capacity.load);
    f.feasible = true;
    f.replicas = (users + cap - 1) / cap;
    f.users_per_replica = (users + f.replicas - 1) / f.replicas;  // <= cap, as replicas >= users / cap
    f.gpus = f.replicas * sc.engine.tp;
    f.point = f.users_per_replica == cap ? f.capacity.point : sim_run_point(sc, acc, policy, f.users_per_replica);
    if (gpu_hour_usd > 0) {
        f.usd_per_hour = gpu_hour_usd * f.gpus;
        const double tokens_per_hour = f.point.throughput * f.gpus * 3600;
        if (tokens_per_hour > 0) f.usd_per_million_tokens = f.usd_per_hour / tokens_per_hour * 1e6;
    }
    return f;
}

std::vector<FleetPlan> plan_fleets(const Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& policies,
                                   int users, double gpu_hour_usd, int threads) {
    acceptance_check_policies(sc, acc, policies);  // here, not in a worker thread
    std::vector<FleetPlan> out(policies.size());
    parallel_for(policies.size(), threads, [&](size_t i) { out[i] = plan_fleet(sc, acc, policies[i], users, gpu_hour_usd); });
    return out;
}

}  // namespace sp
