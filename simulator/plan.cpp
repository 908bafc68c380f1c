// plan.cpp: SLO checks, capacity by bisection, fleets (plan.h).
#include "simulator/plan.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <limits>

#include "simulator/parallel.h"
#include "simulator/workload.h"

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

static void price_plan(FleetPlan* f, double gpu_hour_usd) {
    if (gpu_hour_usd <= 0) return;
    f->usd_per_hour = gpu_hour_usd * f->gpus;
    const double tokens_per_hour = f->point.throughput * f->gpus * 3600;
    if (tokens_per_hour > 0) f->usd_per_million_tokens = f->usd_per_hour / tokens_per_hour * 1e6;
}

FleetPlan plan_fleet(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, int users,
                     double gpu_hour_usd) {
    assert(users >= 1 && sc.workload.mode == WORKLOAD_CLOSED && "plan_fleet: users of a closed loop");
    assert(sc.fleet.replicas == 1 && "plan_fleet: the capacity of one replica (plan_variant makes one)");
    FleetPlan f;
    f.policy = policy.name;
    f.gamma = sc.engine.gamma;
    f.tp = sc.engine.tp;
    f.draft_len = policy_draft_len(policy, sc.engine.gamma);
    // A replica never needs to be tried above the whole fleet's users.
    f.capacity = capacity_search(sc, acc, policy, {}, {}, std::min<double>(users, capacity_ceiling(sc)));
    if (!f.capacity.met) return f;
    const int cap = static_cast<int>(f.capacity.load);
    f.feasible = true;
    f.replicas = (users + cap - 1) / cap;
    f.users_per_replica = (users + f.replicas - 1) / f.replicas;  // <= cap, as replicas >= users / cap
    f.gpus = f.replicas * sc.engine.tp;
    f.point = f.users_per_replica == cap ? f.capacity.point : sim_run_point(sc, acc, policy, f.users_per_replica);
    price_plan(&f, gpu_hour_usd);
    return f;
}

FleetPlan plan_fleet_rate(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, double rate,
                          double gpu_hour_usd) {
    assert(rate > 0 && sc.workload.mode == WORKLOAD_OPEN && "plan_fleet_rate: requests/s of an open loop");
    assert(sc.fleet.replicas == 1 && "plan_fleet_rate: the capacity of one replica (plan_variant makes one)");
    FleetPlan f;
    f.policy = policy.name;
    f.gamma = sc.engine.gamma;
    f.tp = sc.engine.tp;
    f.draft_len = policy_draft_len(policy, sc.engine.gamma);
    // A replica never needs to be tried above the whole fleet's rate.
    f.capacity = capacity_search(sc, acc, policy, {}, {}, rate);
    if (!f.capacity.met) return f;
    f.feasible = true;
    // capacity.load meets every SLO; 1e-9 keeps a rate that is an exact multiple from rounding up
    f.replicas = std::max(1, static_cast<int>(std::ceil(rate / f.capacity.load * (1 - 1e-9))));
    f.rate_per_replica = rate / f.replicas;
    f.gpus = f.replicas * sc.engine.tp;
    f.point = f.rate_per_replica == f.capacity.load ? f.capacity.point
                                                    : sim_run_point(sc, acc, policy, f.rate_per_replica);
    price_plan(&f, gpu_hour_usd);
    return f;
}

std::vector<FleetPlan> plan_fleets(const Scenario& sc, const AcceptanceData& acc, const std::vector<Policy>& policies,
                                   int users, double gpu_hour_usd, int threads) {
    acceptance_check_policies(sc, acc, policies);  // here, not in a worker thread
    Scenario one = sc;
    one.fleet = Fleet{};
    std::vector<FleetPlan> out(policies.size());
    parallel_for(policies.size(), threads, [&](size_t i) { out[i] = plan_fleet(one, acc, policies[i], users, gpu_hour_usd); });
    return out;
}

// [SECTION] gamma and tp ------------------------------------------------------------

// The largest request the workload can send, prompt + output tokens.
static int64_t largest_request(const Scenario& sc, const AcceptanceData& acc) {
    if (sc.workload.lengths == LENGTHS_DIST)
        return int64_t(length_max(sc.workload.prompt_len)) + length_max(sc.workload.output_len);
    int64_t most = 0;
    if (sc.workload.lengths == LENGTHS_LOG)
        for (const LogRequest& r : sc.workload.log->requests)
            most = std::max<int64_t>(most, int64_t(std::max(r.prompt_len, 1)) + std::max(r.output_len, 1));
    for (const TraceRequest& r : acc.requests) most = std::max<int64_t>(most, int64_t(r.prompt_len) + r.output_len);
    return most;
}

Scenario plan_variant(const Scenario& sc, const AcceptanceData& acc, int gamma, int tp) {
    Scenario v = sc;
    v.fleet = Fleet{};  // capacity is one replica's; the fleet check makes the fleet
    if (tp != sc.engine.tp) {
        if (sc.cost.kind == COST_MEASURED)
            throw Error("--tp " + std::to_string(tp) + ": " + sc.path + ": cost.model = \"measured\" times " +
                        sc.cost.measured.model + " on " + sc.cost.measured.gpu + " at tp " +
                        std::to_string(sc.engine.tp) + " only; another tp needs cost.model = \"roofline\"");
        v.engine.tp = tp;
        v.cost.roofline.tp = tp;
        // the GPU must have all-reduce figures to price tp's collectives
        cost_validate(v.cost, false, "--tp " + std::to_string(tp) + ": " + sc.path + ": cost");
        if (sc.engine.kv_memory_fraction > 0) {
            v.engine.kv_capacity_tokens = scenario_kv_derive(v.cost.roofline, tp, sc.engine.kv_memory_fraction);
            if (v.engine.kv_capacity_tokens == 0)
                throw Error("--tp " + std::to_string(tp) + ": " + sc.path + ": the weights leave no KV cache on " +
                            std::to_string(tp) + " GPU(s)");
        }
    }
    if (gamma != sc.engine.gamma) {
        const std::string flag = "--gammas " + std::to_string(gamma) + ": " + sc.path + ": ";
        if ((sc.acceptance.kind == ACCEPT_TRACE || sc.acceptance.kind == ACCEPT_STEPS) && gamma > acc.trace_gamma)
            throw Error(flag + "expected at most the trace run's gamma " + std::to_string(acc.trace_gamma) +
                        " (acceptance.trace records no acceptance past it)");
        if (sc.acceptance.kind == ACCEPT_PARAMETRIC) {
            if (gamma > sc.engine.gamma)
                throw Error(flag + "expected at most engine.gamma " + std::to_string(sc.engine.gamma) +
                            " (the parametric mix lists alpha_k for that many slots)");
            for (DomainMix& d : v.workload.mix) d.alpha.resize(static_cast<size_t>(gamma));
        }
        v.engine.gamma = gamma;
        cost_validate(v.cost, true, flag + "cost");
    }
    const int64_t need = largest_request(v, acc) + v.engine.gamma;
    if (need > v.engine.kv_capacity_tokens)
        throw Error("--gammas/--tp: " + sc.path + ": gamma " + std::to_string(v.engine.gamma) + " at tp " +
                    std::to_string(v.engine.tp) + " needs a KV cache of at least " + std::to_string(need) +
                    " tokens for the largest request, expected within engine.kv_capacity_tokens = " +
                    std::to_string(v.engine.kv_capacity_tokens));
    return v;
}

void plan_check_query(const Scenario& sc, const AcceptanceData& acc, const PlanQuery& q) {
    const std::vector<int> gammas = q.gammas.empty() ? std::vector<int>{sc.engine.gamma} : q.gammas;
    const std::vector<int> tps = q.tps.empty() ? std::vector<int>{sc.engine.tp} : q.tps;
    for (int g : gammas)
        for (int tp : tps) (void)plan_variant(sc, acc, g, tp);
}

int plan_best(const std::vector<FleetPlan>& plans) {
    int best = -1;
    for (size_t i = 0; i < plans.size(); i++) {
        const FleetPlan& f = plans[i];
        if (!f.feasible) continue;
        const FleetPlan* b = best < 0 ? nullptr : &plans[static_cast<size_t>(best)];
        if (!b || f.gpus < b->gpus) {
            best = static_cast<int>(i);
            continue;
        }
        if (f.gpus > b->gpus) continue;
        // the same GPUs: the lower cost per million tokens (the higher throughput per GPU); within 1 %,
        // as equal fleets at one rate serve the same tokens, the faster per-user p90
        const double tf = f.point.throughput, tb = b->point.throughput;
        if (tf > 1.01 * tb || (tf * 1.01 >= tb && f.point.per_user.p90 > b->point.per_user.p90))
            best = static_cast<int>(i);
    }
    return best;
}

std::vector<FleetPlan> plan_search(const Scenario& sc, const std::vector<Policy>& policies, const PlanQuery& q) {
    assert((q.users > 0) != (q.rate > 0) && "plan_search: users or a rate");
    const std::vector<int> gammas = q.gammas.empty() ? std::vector<int>{sc.engine.gamma} : q.gammas;
    const std::vector<int> tps = q.tps.empty() ? std::vector<int>{sc.engine.tp} : q.tps;
    // the configurations, each with its own acceptance data (gamma sets its slots)
    struct Config {
        Scenario sc;
        AcceptanceData acc;
    };
    const AcceptanceData base_acc = acceptance_load(sc);
    std::vector<Config> configs;
    for (int g : gammas)
        for (int tp : tps) {
            Scenario v = plan_variant(sc, base_acc, g, tp);
            AcceptanceData a = g == sc.engine.gamma ? base_acc : acceptance_load(v);
            acceptance_check_policies(v, a, policies);  // here, not in a worker thread
            configs.push_back({std::move(v), std::move(a)});
        }
    // the tasks: (policy, configuration), skipping what a policy cannot vary
    struct Task {
        size_t policy, config;
    };
    std::vector<Task> tasks;
    const int home_gamma =
        std::find(gammas.begin(), gammas.end(), sc.engine.gamma) != gammas.end() ? sc.engine.gamma : gammas.front();
    for (size_t p = 0; p < policies.size(); p++)
        for (size_t c = 0; c < configs.size(); c++) {
            const int g = configs[c].sc.engine.gamma;
            // a policy whose drafts do not depend on gamma (ar, mtp1, fixed:K) runs at one gamma
            if (g != home_gamma && policy_draft_len(policies[p], g) == policy_draft_len(policies[p], home_gamma))
                continue;
            if (policies[p].kind == POLICY_FIXED && policies[p].k > g) continue;
            tasks.push_back({p, c});
        }
    std::vector<FleetPlan> runs(tasks.size());
    parallel_for(tasks.size(), q.threads, [&](size_t i) {
        const Config& c = configs[tasks[i].config];
        const Policy& pol = policies[tasks[i].policy];
        runs[i] = q.users > 0 ? plan_fleet(c.sc, c.acc, pol, q.users, q.gpu_hour_usd)
                              : plan_fleet_rate(c.sc, c.acc, pol, q.rate, q.gpu_hour_usd);
    });
    // each policy's best
    std::vector<FleetPlan> out(policies.size());
    std::vector<int> chosen(policies.size(), -1);
    for (size_t p = 0; p < policies.size(); p++) {
        std::vector<FleetPlan> mine;
        std::vector<size_t> where;
        for (size_t i = 0; i < tasks.size(); i++)
            if (tasks[i].policy == p) {
                mine.push_back(runs[i]);
                where.push_back(i);
            }
        const int b = plan_best(mine);
        if (b >= 0) {
            out[p] = mine[static_cast<size_t>(b)];
            chosen[p] = static_cast<int>(tasks[where[static_cast<size_t>(b)]].config);
        } else {
            out[p] = mine.empty() ? FleetPlan{} : mine.front();
            out[p].policy = policies[p].name;
            out[p].gamma = sc.engine.gamma;
            out[p].tp = sc.engine.tp;
        }
    }
    if (!q.fleet_check) return out;
    // the fleet check: each policy's answer as one fleet behind the least-loaded router
    parallel_for(policies.size(), q.threads, [&](size_t p) {
        if (chosen[p] < 0) return;
        const Config& c = configs[static_cast<size_t>(chosen[p])];
        FleetPlan& f = out[p];
        const double load = q.users > 0 ? double(q.users) : q.rate;
        const WindowSize ws = workload_window(c.sc.workload, load / f.replicas);  // as sim_run_point sizes it
        if ((int64_t(ws.warmup) + ws.requests) * f.replicas > FLEET_MAX_COMPLETIONS)
            return;  // too large a fleet to simulate whole: not checked
        Scenario fleet = c.sc;
        fleet.fleet.replicas = f.replicas;
        fleet.fleet.router = ROUTER_LEAST_LOADED;
        f.check_point = sim_run_point(fleet, c.acc, policies[p], load);
        f.check = slo_check(fleet.slo, f.check_point);
        f.checked = true;
    });
    return out;
}

}  // namespace sp
