// sweep.cpp: parallel points and the planner's read-outs; see sweep.h.
#include "simulator/sweep.h"

#include <algorithm>
#include <chrono>

#include "simulator/parallel.h"

namespace sp {

// Each policy's capacity by bisection from the grid's bracket
// (capacity_search), one policy a task; best_point_throughput stays the
// grid's.
static void sweep_refine_capacity(const Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& policies,
                                  int threads, SweepResult* res) {
    const size_t L = res->loads.size();
    double ceiling = capacity_ceiling(sc);
    if (!res->loads.empty()) ceiling = std::max(ceiling, res->loads.back());
    parallel_for(policies.size(), threads, [&](size_t p) {
        const std::vector<PointResult> curve(res->points.begin() + static_cast<long>(p * L),
                                             res->points.begin() + static_cast<long>((p + 1) * L));
        const CapacitySearch s = capacity_search(sc, acc, policies[p], res->loads, curve, ceiling);
        Capacity& c = res->capacity[p];
        c.met = s.met;
        c.bounded = s.bounded;
        c.load = s.load;
        c.throughput = s.met ? s.point.throughput : 0;
        c.per_user_p90 = s.met ? s.point.per_user.p90 : 0;
        c.binding = s.binding;
    });
    if (!sc.compare_a.empty()) res->headline = sweep_headline(*res, policies, sc.compare_a, sc.compare_b);
}

SweepResult sweep_run(const Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& policies,
                      const std::vector<double>& loads, int threads, std::atomic<int>* done,
                      const std::atomic<bool>* cancel) {
    acceptance_check_policies(sc, acc, policies);  // here, not in a worker thread
    auto t0 = std::chrono::steady_clock::now();
    SweepResult res;
    res.loads = loads;
    res.points.resize(policies.size() * loads.size());
    parallel_for(res.points.size(), threads, [&](size_t i) {
        if (cancel && cancel->load(std::memory_order_relaxed)) return;
        res.points[i] = sim_run_point(sc, acc, policies[i / loads.size()], loads[i % loads.size()]);
        if (done) done->fetch_add(1);
    });
    sweep_finish(sc, policies, &res);
    res.cancelled = cancel && cancel->load();
    if (!res.cancelled) sweep_refine_capacity(sc, acc, policies, threads, &res);
    res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

void sweep_finish(const Scenario& sc, const std::vector<Policy>& policies, SweepResult* res) {
    const size_t L = res->loads.size();
    res->pareto = sweep_pareto(res->points);
    res->capacity.clear();
    for (size_t p = 0; p < policies.size(); p++) {
        std::vector<PointResult> curve(res->points.begin() + static_cast<long>(p * L),
                                       res->points.begin() + static_cast<long>((p + 1) * L));
        res->capacity.push_back(sweep_capacity(curve, res->loads, sc.slo));
        res->capacity.back().policy = policies[p].name;
    }
    if (!sc.compare_a.empty()) res->headline = sweep_headline(*res, policies, sc.compare_a, sc.compare_b);
}

Headline sweep_headline(const SweepResult& r, const std::vector<Policy>& policies, const std::string& a,
                        const std::string& b) {
    Headline h;
    const size_t nl = r.loads.size();
    size_t ia = policies.size(), ib = policies.size();
    for (size_t p = 0; p < policies.size(); p++) {
        if (policies[p].name == a) ia = p;
        if (policies[p].name == b) ib = p;
    }
    if (ia == policies.size() || ib == policies.size() || r.capacity.size() != policies.size()) return h;
    h.a = a;
    h.b = b;
    const Capacity &ca = r.capacity[ia], &cb = r.capacity[ib];
    if (ca.met && cb.met && cb.throughput > 0) h.throughput_gain = ca.throughput / cb.throughput;
    if (cb.met) {
        h.matched_throughput = cb.throughput;
        std::vector<PointResult> ca_pts(r.points.begin() + static_cast<long>(ia * nl),
                                        r.points.begin() + static_cast<long>((ia + 1) * nl));
        std::vector<PointResult> cb_pts(r.points.begin() + static_cast<long>(ib * nl),
                                        r.points.begin() + static_cast<long>((ib + 1) * nl));
        double pa = 0, pb = 0;
        if (sweep_per_user_at(ca_pts, h.matched_throughput, &pa) && sweep_per_user_at(cb_pts, h.matched_throughput, &pb) &&
            pb > 0)
            h.per_user_gain = pa / pb;
    }
    return h;
}

Capacity sweep_capacity(const std::vector<PointResult>& curve, const std::vector<double>& loads, const Slo& slo) {
    Capacity c;
    for (size_t i = 0; i < curve.size(); i++) {
        const SloMiss m = slo_check(slo, curve[i]);
        if (m != SLO_MET) {
            c.bounded = c.met;
            c.binding = c.met ? m : SLO_MET;
            break;
        }
        c.met = true;
        c.load = loads[i];
        c.throughput = curve[i].throughput;
        c.per_user_p90 = curve[i].per_user.p90;
        c.best_point_throughput = std::max(c.best_point_throughput, curve[i].throughput);
    }
    return c;
}

bool sweep_per_user_at(const std::vector<PointResult>& curve, double throughput, double* per_user) {
    for (size_t i = 0; i < curve.size(); i++) {
        if (curve[i].throughput == throughput) {
            *per_user = curve[i].per_user.p90;
            return true;
        }
        if (i + 1 == curve.size()) break;
        double lo = curve[i].throughput, hi = curve[i + 1].throughput;
        if ((lo < throughput && throughput < hi) || (hi < throughput && throughput < lo)) {
            double f = (throughput - lo) / (hi - lo);
            *per_user = curve[i].per_user.p90 + f * (curve[i + 1].per_user.p90 - curve[i].per_user.p90);
            return true;
        }
    }
    return false;
}

std::vector<int> sweep_pareto(const std::vector<PointResult>& points) {
    std::vector<int> idx(points.size());
    for (size_t i = 0; i < idx.size(); i++) idx[i] = static_cast<int>(i);
    // By per-user speed descending (throughput descending on ties); a point
    // is on the frontier when its throughput beats every faster point's.
    std::sort(idx.begin(), idx.end(), [&](int a, int b) {
        const PointResult &pa = points[static_cast<size_t>(a)], &pb = points[static_cast<size_t>(b)];
        if (pa.per_user.p90 != pb.per_user.p90) return pa.per_user.p90 > pb.per_user.p90;
        if (pa.throughput != pb.throughput) return pa.throughput > pb.throughput;
        return a < b;
    });
    std::vector<int> front;
    double best = -1;
    for (int i : idx)
        if (points[static_cast<size_t>(i)].throughput > best) {
            best = points[static_cast<size_t>(i)].throughput;
            front.push_back(i);
        }
    std::reverse(front.begin(), front.end());
    return front;
}

}  // namespace sp
