// test_workload_log.cpp: a scenario whose workload is a request log
// ([workload] log): arrivals replayed as they are or scaled to a rate, the
// log's rows as an empirical distribution, domains from a field, and the
// scenario's refusals. Fixtures: tests/fixtures/logs/ (values worked by
// hand in test_request_log.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "simulator/acceptance.h"
#include "simulator/scenario.h"
#include "simulator/sim.h"

using namespace sp;

namespace {

const std::string LOGS = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/logs/";

std::string toml(const std::string& workload, const std::string& extra = "") {
    return "seed = 3\n[workload]\n" + workload +
           "\n[engine]\ngamma = 2\n[acceptance]\nsource = \"iid\"\nalpha = 0.7\n[policies]\nlist = [\"fixed:2\"]\n" +
           extra;
}

std::string error_of(const std::string& text) {
    try {
        scenario_parse(text, "x.toml");
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

struct Collect : SimObserver {
    std::map<uint64_t, CompletedRequest> done;  // by key
    void on_complete(const CompletedRequest& r) override { done[r.key] = r; }
};

Collect run(const Scenario& sc, double load) {
    AcceptanceData acc = acceptance_load(sc);
    Policy p;
    std::string err;
    EXPECT_TRUE(policy_parse("fixed:2", &p, &err)) << err;
    Collect c;
    sim_run_point(sc, acc, p, load, &c);
    return c;
}

// mooncake.jsonl: arrivals at 0, 1, 1.5, 4, 6 s; (prompt, output) 6758 500,
// 120 7, 64 0, 9 30, 300 12. Its rate is 4 gaps in 6 s = 2/3 requests/s.
const double MOONCAKE_T[5] = {0, 1, 1.5, 4, 6};
const int MOONCAKE_PROMPT[5] = {6758, 120, 64, 9, 300};
const int MOONCAKE_OUTPUT[5] = {500, 7, 1, 30, 12};  // the empty output emits one token

}  // namespace

TEST(WorkloadLog, ReplayKeepsTheLogsTimesAndStartsOverOnePeriodLater) {
    Scenario sc = scenario_parse(
        toml("mode = \"open\"\narrival = \"replay\"\nrequests = 7\nwarmup = 0\nlog = \"" + LOGS +
             "mooncake.jsonl\"\nlog_format = \"mooncake\""),
        "x.toml");
    ASSERT_EQ(sc.workload.rates.size(), 1u);
    EXPECT_NEAR(sc.workload.rates[0], 2.0 / 3, 1e-12);
    Collect c = run(sc, sc.workload.rates[0]);
    ASSERT_GE(c.done.size(), 7u);
    // The period is the span and one mean gap: 6 + 6/4 = 7.5 s.
    for (const auto& [k, r] : c.done) {
        const double t = double(k / 5) * 7.5 + MOONCAKE_T[k % 5];
        EXPECT_NEAR(double(r.arrival_ns), t * 1e9, 2) << k;
        EXPECT_EQ(r.prompt_len, MOONCAKE_PROMPT[k % 5]) << k;
        EXPECT_EQ(r.output_len, MOONCAKE_OUTPUT[k % 5]) << k;
    }
}

TEST(WorkloadLog, ScaledStretchesTheTimesToTheRate) {
    Scenario sc = scenario_parse(toml("mode = \"open\"\narrival = \"scaled\"\nrate = [2.0]\nrequests = 10\nwarmup = 0\n"
                                      "log = \"" + LOGS + "mooncake.jsonl\"\nlog_format = \"mooncake\""),
                                 "x.toml");
    Collect c = run(sc, 2.0);
    ASSERT_GE(c.done.size(), 10u);
    // At 2 requests/s instead of 2/3 every time is a third: factor (2/3) / 2.
    for (const auto& [k, r] : c.done) {
        const double t = (double(k / 5) * 7.5 + MOONCAKE_T[k % 5]) / 3;
        EXPECT_NEAR(double(r.arrival_ns), t * 1e9, 2) << k;
    }
}

TEST(WorkloadLog, TheWholeLogOnceIsTheDefaultWindowOfItsArrivals) {
    Scenario sc = scenario_parse(
        toml("mode = \"open\"\narrival = \"replay\"\nlog = \"" + LOGS + "mooncake.jsonl\"\nlog_format = \"mooncake\""),
        "x.toml");
    EXPECT_EQ(sc.workload.warmup, 0);  // min(100, 5 / 10)
    EXPECT_EQ(sc.workload.requests, 5);
}

TEST(WorkloadLog, ClosedLoopDrawsTheLogsRowsEquallyOften) {
    Scenario sc = scenario_parse(toml("concurrency = [4]\nrequests = 1000\nwarmup = 0\nlog = \"" + LOGS +
                                      "mooncake.jsonl\"\nlog_format = \"mooncake\""),
                                 "x.toml");
    Collect c = run(sc, 4);
    ASSERT_GE(c.done.size(), 1000u);
    std::map<int, int> by_prompt;
    for (const auto& [key, r] : c.done) {
        int row = -1;
        for (int i = 0; i < 5; i++)
            if (r.prompt_len == MOONCAKE_PROMPT[i] && r.output_len == MOONCAKE_OUTPUT[i]) row = i;
        ASSERT_GE(row, 0) << "a request that is no row of the log: " << r.prompt_len << " + " << r.output_len;
        by_prompt[row]++;
    }
    // Each row with probability 1/5: n/5 +- 5 standard deviations sqrt(n 0.2 0.8).
    const double n = double(c.done.size()), sd = std::sqrt(n * 0.2 * 0.8);
    for (int i = 0; i < 5; i++) EXPECT_NEAR(by_prompt[i], n / 5, 5 * sd) << i;
}

TEST(WorkloadLog, DomainsComeFromTheNamedField) {
    Scenario sc = scenario_parse(
        toml("mode = \"open\"\narrival = \"replay\"\nrequests = 6\nwarmup = 0\nlog = \"" + LOGS +
             "burstgpt.csv\"\nlog_format = \"burstgpt\"\nlog_domain = \"Model\"\n"
             "[[workload.domain]]\nname = \"GPT-4\"\n[[workload.domain]]\nname = \"ChatGPT\""),
        "x.toml");
    // Arrivals at 5, 45, 118 s: 2 gaps in 113 s.
    EXPECT_NEAR(sc.workload.rates[0], 2.0 / 113, 1e-12);
    Collect c = run(sc, sc.workload.rates[0]);
    const int want[3] = {1, 1, 0};  // ChatGPT, ChatGPT, GPT-4 as indices of the domains above
    ASSERT_GE(c.done.size(), 6u);
    for (const auto& [k, r] : c.done) EXPECT_EQ(r.domain, want[k % 3]) << k;
}

TEST(WorkloadLog, AShareGptLogIsTokenized) {
    Scenario sc = scenario_parse(toml("concurrency = [1]\nrequests = 20\nwarmup = 0\nlog = \"" + LOGS +
                                      "sharegpt.json\"\nlog_format = \"sharegpt\"\nlog_tokenizer = \"" + LOGS +
                                      "bytes_tokenizer.json\""),
                                 "x.toml");
    ASSERT_EQ(sc.workload.log->requests.size(), 2u);
    EXPECT_EQ(sc.workload.log->skipped, 1);
    EXPECT_EQ(sc.workload.log->requests[0].prompt_len, 8);
    EXPECT_EQ(sc.workload.log->requests[1].output_len, 4);
}

TEST(WorkloadLog, ScenarioRefusals) {
    const std::string mc = "log = \"" + LOGS + "mooncake.jsonl\"\nlog_format = \"mooncake\"\n";
    EXPECT_EQ(error_of(toml("mode = \"open\"\narrival = \"replay\"\nrate = [1.0]\n" + mc)),
              "x.toml: workload.rate: expected no rate with workload.arrival = \"replay\" (the log's own rate is the "
              "one point), got an array");
    EXPECT_EQ(error_of(toml("concurrency = [1]\narrival = \"replay\"\n" + mc)),
              "x.toml: workload.arrival: expected \"poisson\" or \"gamma\" in a closed loop (a log's arrivals need "
              "mode = \"open\"), got \"replay\"");
    EXPECT_EQ(error_of(toml("mode = \"open\"\narrival = \"scaled\"\nrate = [1.0]\n")),
              "x.toml: workload.log: expected a request log (workload.arrival = \"scaled\"), got nothing");
    EXPECT_EQ(error_of(toml("concurrency = [1]\nlog = \"a.jsonl\"\n")),
              "x.toml: workload.log_format: expected \"mooncake\", \"azure\", \"burstgpt\" or \"sharegpt\", got nothing");
    EXPECT_EQ(error_of(toml("concurrency = [1]\nlog = \"" + LOGS + "sharegpt.json\"\nlog_format = \"sharegpt\"\n")),
              "x.toml: workload.log_tokenizer: expected a tokenizer.json (ShareGPT logs are text), got nothing");
    EXPECT_EQ(error_of(toml("concurrency = [1]\nlengths = \"distribution\"\n" + mc)),
              "x.toml: workload.lengths: expected \"log\" with a workload.log, got \"distribution\"");
    EXPECT_EQ(error_of(toml("concurrency = [1]\nlog = \"" + LOGS + "burstgpt.csv\"\nlog_format = \"burstgpt\"\n"
                            "log_domain = \"Model\"\n[[workload.domain]]\nname = \"ChatGPT\"")),
              LOGS + "burstgpt.csv:4: Model: expected a domain of [[workload.domain]] (\"ChatGPT\"), got \"GPT-4\"");
}

TEST(WorkloadLog, TheLargestRequestMustFitTheKvCache) {
    std::string text = toml("concurrency = [1]\nlog = \"" + LOGS + "mooncake.jsonl\"\nlog_format = \"mooncake\"");
    text.replace(text.find("gamma = 2"), 9, "gamma = 2\nkv_capacity_tokens = 7000");
    // The first row: 6758 + 500, and gamma 2.
    EXPECT_EQ(error_of(text), "x.toml: engine.kv_capacity_tokens: expected at least 7260 tokens for the largest request of " +
                                  LOGS + "mooncake.jsonl (prompt 6758 + output 500 + gamma 2), got 7000");
}
