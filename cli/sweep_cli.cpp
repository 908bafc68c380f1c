// sweep_cli.cpp: the flags `sweep` and `live` share (sweep_cli.h).
#include "cli/sweep_cli.h"

#include "cli/args.h"

namespace sp {

// "1,2,4" -> {1, 2, 4}; each value must be > 0 and the list increasing.
std::vector<double> parse_loads(const std::string& text, const char* flag) {
    std::vector<double> out;
    for (const std::string& item : split_list(text)) {
        double v = parse_number(item, flag, text);
        if (!(v > 0)) throw Error(std::string(flag) + " '" + text + "': expected positive numbers");
        if (!out.empty() && v <= out.back()) throw Error(std::string(flag) + " '" + text + "': expected increasing values");
        out.push_back(v);
    }
    return out;
}

std::vector<Policy> parse_policies(const std::string& text, const Scenario& sc) {
    std::vector<Policy> out;
    for (const std::string& item : split_list(text)) {
        Policy p;
        std::string err;
        if (!policy_parse(item, &p, &err)) throw Error("--policies: " + err);
        if (p.kind == POLICY_BATCH_TABLE) {
            for (const Policy& q : sc.policies)
                if (q.kind == POLICY_BATCH_TABLE) p.batch_table = q.batch_table;
            if (p.batch_table.empty()) throw Error("--policies: batch-table needs policies.batch_table in the scenario");
        }
        out.push_back(p);
    }
    return out;
}

std::vector<double> scenario_loads(const Scenario& sc) {
    if (sc.workload.mode == WORKLOAD_OPEN) return sc.workload.rates;
    return std::vector<double>(sc.workload.concurrency.begin(), sc.workload.concurrency.end());
}

std::vector<double> loads_from_flag(const Scenario& sc, const std::string& text) {
    if (text.empty()) return scenario_loads(sc);
    const bool closed = sc.workload.mode == WORKLOAD_CLOSED;
    std::vector<double> loads = parse_loads(text, closed ? "--concurrency" : "--rates");
    if (closed)
        for (double l : loads)
            if (l != static_cast<int>(l)) throw Error("--concurrency: expected whole numbers of users");
    return loads;
}

void keep_headline_if_run(Scenario& sc, const std::vector<Policy>& policies) {
    auto has = [&](const std::string& n) {
        for (const Policy& p : policies)
            if (p.name == n) return true;
        return false;
    };
    if (!has(sc.compare_a) || !has(sc.compare_b)) sc.compare_a = sc.compare_b = "";
}

void window_add_flags(CLI::App* cmd, WindowFlags* w) {
    cmd->add_option("--requests", w->requests, "requests measured per point (default: the scenario's)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--warmup", w->warmup, "completions discarded before measuring (default: the scenario's)")
        ->check(CLI::NonNegativeNumber);
}

void window_apply(Scenario& sc, const WindowFlags& w) {
    if (w.requests > 0) sc.workload.requests = w.requests;
    if (w.warmup >= 0) sc.workload.warmup = w.warmup;
}

}  // namespace sp
