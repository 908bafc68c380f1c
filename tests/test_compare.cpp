// test_compare: specplan compare's pairing and errors (simulator/compare.h)
// against values worked by hand, and the command's exit codes and one-line
// errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "simulator/compare.h"
#include "tests/cli_run.h"
#include "traces/trace_db.h"

namespace sp {
namespace {

using nlohmann::json;

json point(const std::string& policy, double users, double tput, double user_mean, double ttft_p90,
           double tpot_p90) {
    return {{"policy", policy},
            {"concurrency", users},
            {"rate", 0.0},
            {"throughput_tok_s_gpu", tput},
            {"per_user_tok_s", {{"mean", user_mean}, {"p90", user_mean * 0.9}}},
            {"ttft_s", {{"p50", ttft_p90 / 2}, {"p90", ttft_p90}}},
            {"tpot_s", {{"p90", tpot_p90}}},
            {"tau", 2.0},
            {"mean_verified", 3.0},
            {"mean_batch_tokens", nullptr}};
}

json report(std::vector<json> pts) { return {{"load_kind", "concurrency"}, {"points", pts}}; }

int idx(CompareMetric m) { return static_cast<int>(m); }

TEST(Compare, ErrorsAreSimOverLiveMinusOneAndMapeTheMeanOfTheirMagnitudes) {
    const json live = report({point("ar", 1, 100, 50, 0.010, 0.020), point("dspark", 1, 200, 80, 0.020, 0.010),
                              point("ar", 64, 1000, 20, 0.100, 0.050)});
    // ar@1: +2 % throughput; dspark@1: -4 %; ar@64: +1 %. The sim's order differs and it has one point more.
    const json sim = report({point("ar", 64, 1010, 20, 0.100, 0.050), point("ar", 1, 102, 50, 0.0115, 0.020),
                             point("dspark", 1, 192, 80, 0.020, 0.0109), point("fixed:3", 1, 1, 1, 1, 1)});
    const CompareBounds b = compare_default_bounds();
    const Comparison c = compare_reports(live, "live.json", sim, "sim.json", b);
    ASSERT_EQ(c.points.size(), 3u);
    EXPECT_EQ(c.points[1].policy, "dspark");  // the live file's order
    const int T = idx(CompareMetric::Throughput);
    EXPECT_NEAR(c.points[0].error[T], 0.02, 1e-12);
    EXPECT_NEAR(c.points[1].error[T], -0.04, 1e-12);
    EXPECT_NEAR(c.points[2].error[T], 0.01, 1e-12);
    EXPECT_NEAR(c.mape[T], (0.02 + 0.04 + 0.01) / 3, 1e-12);
    EXPECT_NEAR(c.worst[T], 0.04, 1e-12);
    EXPECT_EQ(c.misses[T], 1);  // -4 % is past 3 %
    const int F = idx(CompareMetric::TtftP90), P = idx(CompareMetric::TpotP90);
    EXPECT_NEAR(c.points[0].error[F], 0.15, 1e-12);
    EXPECT_EQ(c.misses[F], 1);  // +15 % past 10 %
    EXPECT_NEAR(c.points[1].error[P], 0.09, 1e-12);
    EXPECT_EQ(c.misses[P], 1);  // +9 % past 8 %
    EXPECT_TRUE(std::isnan(c.mape[idx(CompareMetric::BatchTokens)]));  // null on both sides
    ASSERT_EQ(c.unmatched.size(), 1u);
    EXPECT_NE(c.unmatched[0].find("fixed:3"), std::string::npos);
    EXPECT_FALSE(comparison_passes(c, b));
    EXPECT_TRUE(comparison_passes(c, CompareBounds{}));  // no bounds: nothing to miss
    const json j = comparison_json(c, b);
    EXPECT_EQ(j["pass"], false);
    EXPECT_TRUE(j["metrics"]["batch_tokens"]["mape"].is_null());
    EXPECT_NEAR(j["points"][1]["throughput"]["error"].get<double>(), -0.04, 1e-12);
}

TEST(Compare, RefusesFilesThatAreNotReportsNamingTheField) {
    const json ok = report({point("ar", 1, 100, 50, 0.01, 0.02)});
    auto fails_with = [&](const json& live, const std::string& needle) {
        try {
            compare_reports(live, "live.json", ok, "sim.json", compare_default_bounds());
            ADD_FAILURE() << "accepted: " << needle;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    fails_with(json::array(), "live.json: expected a report");
    fails_with(json{{"load_kind", "users"}, {"points", json::array()}}, "live.json: load_kind");
    fails_with(json{{"load_kind", "concurrency"}}, "live.json: points: expected an array");
    json p = point("ar", 1, 100, 50, 0.01, 0.02);
    p["throughput_tok_s_gpu"] = "fast";
    fails_with(report({p}), "live.json: points[0].throughput_tok_s_gpu: expected a number");
    p = point("ar", 1, 100, 50, 0.01, 0.02);
    p.erase("concurrency");
    fails_with(report({p}), "live.json: points[0].concurrency");
    fails_with(report({point("dspark", 1, 1, 1, 1, 1)}), "no (policy, concurrency) pair in common");
    json rate = ok;
    rate["load_kind"] = "rate";
    fails_with(rate, "load_kind: expected \"rate\"");
}

TEST(CompareCli, ExitsOneOnAMissedBoundAndZeroWithinIt) {
    ScratchDir dir;
    auto write = [&](const std::string& name, const json& j) {
        std::ofstream(dir.file(name)) << j.dump();
        return dir.file(name);
    };
    const std::string live = write("live.json", report({point("ar", 8, 100, 50, 0.01, 0.02)}));
    const std::string close = write("close.json", report({point("ar", 8, 102, 51, 0.0105, 0.021)}));
    const std::string far = write("far.json", report({point("ar", 8, 110, 50, 0.01, 0.02)}));
    CliResult r = cli_run(dir, "compare " + live + " " + close + " --json " + dir.file("cmp.json"));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("+2.0%"), std::string::npos) << r.out;
    const json cmp = json::parse(slurp(dir.file("cmp.json")));
    EXPECT_EQ(cmp["pass"], true);
    r = cli_run(dir, "compare " + live + " " + far);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("throughput past 3.0% at 1 of 1 points (worst 10.0%)"), std::string::npos) << r.err;
    r = cli_run(dir, "compare " + live + " " + far + " --bound throughput=12");  // a looser bound passes
    EXPECT_EQ(r.code, 0) << r.err;
    for (const char* bad : {"--bound speed=3", "--bound throughput=-1", "--bound throughput=x"}) {
        r = cli_run(dir, "compare " + live + " " + far + " " + std::string(bad));
        EXPECT_EQ(r.code, 1) << bad;
        EXPECT_EQ(r.err_lines(), 1) << bad << ": " << r.err;
        EXPECT_NE(r.err.find("--bound"), std::string::npos) << r.err;
    }
    r = cli_run(dir, "compare " + dir.file("missing.json") + " " + far);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("missing.json: cannot open"), std::string::npos) << r.err;
    r = cli_run(dir, "compare " + dir.path() + " " + far);
    EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
    std::ofstream(dir.file("garbage.json")) << "{\"points\": [";
    r = cli_run(dir, "compare " + dir.file("garbage.json") + " " + far);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("garbage.json: not JSON"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sp
