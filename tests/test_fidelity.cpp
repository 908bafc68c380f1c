// test_fidelity.cpp: the dashboard's live overlay (gui/fidelity.h). A
// "live" report made from a simulated one with its throughput and mean
// per-user speed scaled by known factors must come back with the errors
// those factors give in closed form (sim / live - 1), at every point; bad
// files are one line naming the file and the field.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "gui/fidelity.h"
#include "simulator/report.h"
#include "sim_scenario.h"
#include "tests/scratch.h"

using namespace sp;

namespace {

struct Fixture {
    Scenario sc;
    SweepResult r;
    nlohmann::json report;
};

Fixture small_sweep() {
    Fixture f;
    f.sc = sim_scenario(0.7, 3, 60, 4, 16);
    f.sc.workload.concurrency = {1, 4};
    f.sc.policies = {sim_policy("ar"), sim_policy("fixed:3")};
    const AcceptanceData acc = acceptance_load(f.sc);
    f.r = sweep_run(f.sc, acc, f.sc.policies, {1, 4}, 1);
    std::ostringstream out;
    report_json(out, f.sc, f.sc.policies, f.r, "test");
    f.report = nlohmann::json::parse(out.str());
    return f;
}

std::string write(const ScratchDir& dir, const std::string& name, const std::string& text) {
    std::ofstream(dir.file(name)) << text;
    return dir.file(name);
}

}  // namespace

TEST(Fidelity, ScaledLivePointsGiveTheirClosedFormErrorsAtEveryPoint) {
    Fixture f = small_sweep();
    nlohmann::json live = f.report;
    for (auto& p : live["points"]) {
        p["throughput_tok_s_gpu"] = p["throughput_tok_s_gpu"].get<double>() * 1.25;
        p["per_user_tok_s"]["mean"] = p["per_user_tok_s"]["mean"].get<double>() * 0.8;
    }
    live["measured"] = {{"device", "cuda"}, {"gpu", "NVIDIA H100 80GB HBM3"}};
    ScratchDir dir;
    const LiveRun run = live_run_load(write(dir, "live.json", live.dump()));
    EXPECT_EQ(run.device, "cuda on NVIDIA H100 80GB HBM3");
    EXPECT_EQ(run.load_kind, "concurrency");
    ASSERT_EQ(run.points.size(), 4u);
    EXPECT_EQ(run.points[1].policy, "ar");
    EXPECT_EQ(run.points[1].load, 4);
    EXPECT_DOUBLE_EQ(run.points[1].live[int(CompareMetric::Throughput)],
                     1.25 * f.report["points"][1]["throughput_tok_s_gpu"].get<double>());

    const Comparison c = fidelity_compare(f.sc, f.r, run);
    ASSERT_EQ(c.points.size(), 4u);
    const int tput = int(CompareMetric::Throughput), mean = int(CompareMetric::UserMean),
              p90 = int(CompareMetric::UserP90);
    for (const ComparePoint& p : c.points) {
        EXPECT_NEAR(p.error[tput], 1 / 1.25 - 1, 1e-12) << p.policy << " " << p.load;
        EXPECT_NEAR(p.error[mean], 1 / 0.8 - 1, 1e-12) << p.policy << " " << p.load;
        EXPECT_EQ(p.error[p90], 0) << "untouched metrics agree exactly";
    }
    EXPECT_NEAR(c.mape[tput], 0.2, 1e-12);
    EXPECT_EQ(c.misses[tput], 4) << "every point is past the 3 % bound";
    EXPECT_EQ(c.misses[p90], 0);
}

TEST(Fidelity, ABadLiveFileIsOneLineNamingTheFileAndTheField) {
    ScratchDir dir;
    auto message = [&](const std::string& text) {
        const std::string path = write(dir, "bad.json", text);
        try {
            live_run_load(path);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string path = dir.file("bad.json");
    EXPECT_EQ(message("{not json"), path + ": expected a report JSON (specplan live --json), not JSON");
    EXPECT_EQ(message("{\"load_kind\": \"concurrency\"}"), path + ": points: expected an array");
    EXPECT_EQ(message("{\"load_kind\": \"concurrency\", \"points\": []}"), path + ": points: expected at least one point");
    EXPECT_EQ(message("{\"load_kind\": \"concurrency\", \"points\": [{\"policy\": \"ar\"}]}"),
              path + ": points[0].concurrency: expected a number");
    try {
        live_run_load(dir.file("missing.json"));
        ADD_FAILURE() << "a missing file loaded";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), dir.file("missing.json") + ": cannot open");
    }
}
