// test_little.cpp: Little's law at every load point of every bundled
// scenario (scenarios/*.toml), with the window sized by the load:
//   closed loop  N = X (E2E + think): users = completions/s x (mean E2E + mean think)
//   open loop    L = X E2E, L the time-average of requests in the system over
//                the window, integrated here from the simulator's states
// within 1 %. A window that measured the start-up transient, or too few
// requests for its load, breaks it (8 % at 256 users of default.toml with
// 500 requests). Each scenario runs its first and its last policy (the
// headline pair where it names one: they bracket the drafting effort);
// every policy at every load would take minutes.
//
// Points an open loop runs past saturation are skipped, and counted: their
// queue grows without bound, so no steady state exists for the law to hold
// in (the simulator marks them unstable).
//
// The live-* scenarios set short windows for wall-clock serving; simulated
// here, they get the load-sized window like the rest.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

#include "simulator/scenario.h"
#include "simulator/sim.h"
#include "simulator/workload.h"

using namespace sp;
namespace fs = std::filesystem;

// The states after each instant and the completion times, to integrate the
// requests in the system over the window afterwards.
struct InSystem : SimObserver {
    std::vector<std::pair<int64_t, int64_t>> states;  // (ns, arrived - done)
    std::vector<int64_t> done_ns;
    void on_state(const SimState& s) override { states.push_back({s.now_ns, s.arrived - s.done}); }
    void on_complete(const CompletedRequest& r) override { done_ns.push_back(r.done_ns); }
};

// Time-average of the requests in the system over the window: it opens at
// the warmup-th completion (0 without warm-up) and lasts window_s.
static double mean_in_system(const InSystem& o, const PointResult& p) {
    const int64_t start = p.warmup > 0 ? o.done_ns[static_cast<size_t>(p.warmup - 1)] : 0;
    const int64_t end = start + std::llround(p.window_s * 1e9);
    double area = 0;
    for (size_t i = 0; i + 1 < o.states.size(); i++) {
        const int64_t a = std::max(o.states[i].first, start), b = std::min(o.states[i + 1].first, end);
        if (b > a) area += static_cast<double>(b - a) * static_cast<double>(o.states[i].second);
    }
    return area / static_cast<double>(end - start);
}

struct Case {
    std::string file;
    Scenario sc;
    AcceptanceData acc;
    Policy policy;
    double load = 0;
};

TEST(Little, HoldsAtEveryLoadOfEveryBundledScenario) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(std::string(SPECPLAN_SOURCE_DIR) + "/scenarios"))
        if (e.path().extension() == ".toml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 9u);

    std::vector<Case> cases;
    for (const fs::path& f : files) {
        Scenario sc = scenario_load(f.string());
        sc.workload.requests = 0;  // sized by the load
        sc.workload.warmup = -1;
        AcceptanceData acc = acceptance_load(sc);
        std::vector<Policy> pols = {sc.policies.front(), sc.policies.back()};
        for (const Policy& p : sc.policies) {
            if (p.name == sc.compare_a) pols[0] = p;
            if (p.name == sc.compare_b) pols[1] = p;
        }
        if (pols[0].name == pols[1].name) pols.pop_back();
        const std::vector<double> loads = sc.workload.mode == WORKLOAD_CLOSED
                                              ? std::vector<double>(sc.workload.concurrency.begin(),
                                                                    sc.workload.concurrency.end())
                                              : sc.workload.rates;
        for (const Policy& p : pols)
            for (double load : loads) cases.push_back({f.filename().string(), sc, acc, p, load});
    }

    std::vector<PointResult> res(cases.size());
    std::vector<double> in_system(cases.size(), 0);
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next++) < cases.size();) {
            const Case& c = cases[i];
            InSystem obs;
            const bool open = c.sc.workload.mode == WORKLOAD_OPEN;
            res[i] = sim_run_point(c.sc, c.acc, c.policy, c.load, open ? &obs : nullptr);
            if (open && !res[i].unstable) in_system[i] = mean_in_system(obs, res[i]);
        }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < std::max(2u, std::thread::hardware_concurrency()); t++) pool.emplace_back(work);
    for (std::thread& t : pool) t.join();

    int checked = 0, skipped = 0;
    for (size_t i = 0; i < cases.size(); i++) {
        const Case& c = cases[i];
        const PointResult& p = res[i];
        const std::string where = c.file + " " + c.policy.name + " at " + std::to_string(c.load);
        if (p.unstable) {
            skipped++;
            continue;
        }
        EXPECT_FALSE(p.short_window) << where;
        double n = in_system[i];
        double x_w = p.request_rate * p.e2e.mean;
        if (c.sc.workload.mode == WORKLOAD_CLOSED) {
            n = c.load;
            x_w = p.request_rate * (p.e2e.mean + c.sc.workload.think_time_s);
        }
        EXPECT_NEAR(x_w, n, 0.01 * n) << where << ": " << p.n_requests << " requests";
        checked++;
    }
    std::printf("Little's law checked at %d points; %d open-loop points past saturation skipped\n", checked, skipped);
    EXPECT_EQ(checked + skipped, static_cast<int>(cases.size()));
    EXPECT_GE(checked, 150);  // 160 points, 6 of them past saturation
}
