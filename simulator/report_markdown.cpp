// report_markdown.cpp: a sweep and a plan as Markdown tables (report.h).
#include <cstdio>
#include <string>

#include "simulator/report.h"

namespace sp {

// A table cell: '|' would end the cell, so it is escaped.
static std::string md_cell(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += '\\';
        out += c == '\n' ? ' ' : c;
    }
    return out;
}

static std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// One table: a header row, the alignment row (text left, numbers right), the rows.
static void md_table(std::ostream& out, const std::vector<std::string>& head, const std::vector<bool>& numeric,
                     const std::vector<std::vector<std::string>>& rows) {
    out << '|';
    for (const std::string& h : head) out << ' ' << md_cell(h) << " |";
    out << "\n|";
    for (bool n : numeric) out << (n ? " ---: |" : " :--- |");
    out << '\n';
    for (const std::vector<std::string>& row : rows) {
        out << '|';
        for (const std::string& c : row) out << ' ' << md_cell(c) << " |";
        out << '\n';
    }
}

void report_markdown(std::ostream& out, const Scenario& sc, const SweepResult& r, const std::string& version) {
    const bool closed = sc.workload.mode == WORKLOAD_CLOSED;
    out << "### " << md_cell(sc.name.empty() ? sc.path : sc.name) << "\n\n" << md_cell(report_context_line(sc, version))
        << "\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const PointResult& p : r.points) {
        std::string notes = p.unstable ? "UNSTABLE" : "";
        if (p.short_window) notes += notes.empty() ? "SHORT" : ", SHORT";
        rows.push_back({p.policy, fmt("%g", closed ? p.concurrency : p.rate), fmt("%.0f", p.throughput),
                        fmt("%.0f", p.input_throughput), fmt("%.1f", p.per_user.mean), fmt("%.1f", p.per_user.p90),
                        fmt("%.0f", p.ttft.p90 * 1e3), fmt("%.1f", p.tpot.p90 * 1e3), fmt("%.2f", p.tau),
                        fmt("%.1f", 100 * p.waste), fmt("%.0f", 100 * p.kv_use), notes});
    }
    md_table(out,
             {"policy", closed ? "users" : "req/s", "tok/s/GPU", "input tok/s/GPU", "tok/s/user mean",
              "tok/s/user p90", "TTFT p90 (ms)", "TPOT p90 (ms)", "τ (tok/step)", "waste (%)", "KV (%)", ""},
             {false, true, true, true, true, true, true, true, true, true, true, false}, rows);
    out << "\nCapacity at the SLO (" << md_cell(slo_text(sc.slo)) << "): the most " << (closed ? "users" : "req/s")
        << " meeting every SLO.\n\n";
    rows.clear();
    for (const Capacity& c : r.capacity) {
        if (!c.met) {
            rows.push_back({c.policy, "-", "-", "misses the SLO at every load"});
            continue;
        }
        rows.push_back({c.policy, fmt("%g", c.load), fmt("%.0f", c.throughput),
                        c.bounded ? std::string("one more misses ") + slo_miss_name(c.binding)
                                  : std::string("no load tried missed")});
    }
    md_table(out, {"policy", closed ? "users" : "req/s", "tok/s/GPU", "bound by"}, {false, true, true, false}, rows);
    const Headline& h = r.headline;
    if (!h.a.empty()) {
        out << "\n**" << md_cell(h.a) << " vs " << md_cell(h.b) << ":** throughput at SLA "
            << (h.throughput_gain > 0 ? fmt("x%.2f", h.throughput_gain) : "n/a") << ", per-user speed at matched "
            << "throughput " << (h.per_user_gain > 0 ? fmt("x%.2f", h.per_user_gain) : "n/a") << "\n";
    }
}

std::string plan_capacity_text(const FleetPlan& f) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.4g", f.capacity.bounded ? "" : ">=", f.capacity.load);
    return buf;
}

std::string plan_bound_text(const FleetPlan& f, const PlanQuery& q) {
    if (f.capacity.bounded) return slo_miss_name(f.capacity.binding);
    return f.capacity.load >= (q.rate > 0 ? q.rate : q.users) ? "(all fit)" : "(ceiling)";
}

std::string plan_fleet_check_text(const FleetPlan& f) {
    if (!f.checked) return "-";
    return f.check == SLO_MET ? "met" : std::string("misses ") + slo_miss_name(f.check);
}

void report_plan_markdown(std::ostream& out, const Scenario& sc, const PlanQuery& q, double price,
                          const std::vector<FleetPlan>& plans, const std::string& version) {
    const bool by_rate = q.rate > 0;
    out << "### Plan: " << (by_rate ? fmt("%g requests/s", q.rate) : fmt("%g users", q.users)) << ", SLO "
        << md_cell(slo_text(sc.slo)) << (price > 0 ? fmt(", $%.2f a GPU-hour", price) : std::string(", no GPU price"))
        << "\n\n"
        << md_cell(report_context_line(sc, version)) << "\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const FleetPlan& f : plans) {
        if (!f.feasible) {
            rows.push_back({f.policy, "", "", "", "misses the SLO at every configuration tried", "", "", "", "", "", "",
                            "", "", "", ""});
            continue;
        }
        rows.push_back({f.policy, f.draft_len == 0 ? "-" : std::to_string(f.gamma), std::to_string(f.tp),
                        plan_capacity_text(f), plan_bound_text(f, q), std::to_string(f.gpus),
                        std::to_string(f.replicas) + "x" + std::to_string(f.tp),
                        by_rate ? fmt("%.4g", f.rate_per_replica) : std::to_string(f.users_per_replica),
                        fmt("%.0f", f.point.throughput), fmt("%.1f", f.point.per_user.p50),
                        fmt("%.1f", f.point.per_user.p90), fmt("%.3f", f.point.ttft.p90),
                        price > 0 ? fmt("%.2f", f.usd_per_hour) : "-", price > 0 ? fmt("%.3f", f.usd_per_million_tokens) : "-",
                        plan_fleet_check_text(f)});
    }
    md_table(out,
             {"policy", "gamma", "tp", by_rate ? "capacity (req/s)" : "capacity (users)", "bound by", "GPUs",
              "replicas x tp", by_rate ? "req/s a replica" : "users a replica", "tok/s/GPU", "tok/s/user p50",
              "tok/s/user p90", "TTFT p90 (s)", "$/hour", "$/M tokens", "fleet check"},
             {false, true, true, true, false, true, false, true, true, true, true, true, true, true, false}, rows);
    const int b = plan_best(plans);
    if (b < 0) {
        out << "\nNo policy meets the SLO.\n";
        return;
    }
    const FleetPlan& best = plans[static_cast<size_t>(b)];
    out << "\n**Fewest GPUs:** " << md_cell(best.policy) << ", " << best.gpus << " GPU" << (best.gpus == 1 ? "" : "s")
        << " (" << best.replicas << " replica" << (best.replicas == 1 ? "" : "s") << " x tp " << best.tp
        << (best.draft_len > 0 ? ", gamma " + std::to_string(best.gamma) : std::string()) << ")";
    if (best.checked) out << "; fleet check: " << plan_fleet_check_text(best);
    out << "\n";
}

}  // namespace sp
