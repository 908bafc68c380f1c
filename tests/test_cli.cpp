// test_cli.cpp: the `specplan` executable as a user meets it. Bad input must
// exit non-zero with exactly one line on stderr naming the problem; --help
// works everywhere; the export/import round trip is exact through the CLI.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Result {
    int code = -1;
    std::string out, err;
    int err_lines() const {
        int n = 0;
        for (char c : err) n += c == '\n';
        return n;
    }
};

// One folder per test: ctest runs the tests of this file in parallel processes.
static fs::path scratch() {
    fs::path dir = fs::path(::testing::TempDir()) / "specplan_cli" /
                   ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir);
    return dir;
}

static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs `specplan ARGS` through the shell, in folder `cwd` when given; ARGS
// is shell-quoted by the caller.
static Result run(const std::string& args, const fs::path& cwd = {}) {
    fs::path out = scratch() / "stdout.txt", err = scratch() / "stderr.txt";
    std::string cmd = (cwd.empty() ? "" : "cd " + cwd.string() + " && ") + std::string(SPECPLAN_CLI) + " " + args +
                      " >" + out.string() + " 2>" + err.string();
    int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

static fs::path fresh(const std::string& name) {
    fs::path p = scratch() / name;
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(p.string() + ext);
    return p;
}

TEST(Cli, EverySubcommandHasHelp) {
    for (const char* sub : {"", "traces", "traces info", "traces synth", "traces export", "traces import", "sim", "sweep",
                            "profile", "calibrate"}) {
        Result r = run(std::string(sub) + " --help");
        EXPECT_EQ(r.code, 0) << sub;
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
    }
}

TEST(Cli, AMissingFileIsOneLineNamingTheFile) {
    Result r = run("traces info /nonexistent/x.specdb");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("/nonexistent/x.specdb"), std::string::npos) << r.err;
}

TEST(Cli, AFileThatIsNotADatabaseIsOneLine) {
    fs::path p = fresh("text.specdb");
    std::ofstream(p) << "this is a text file, not a trace database\n";
    Result r = run("traces info " + p.string());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("not a SQLite database"), std::string::npos) << r.err;
}

TEST(Cli, BadSynthFlagsAreOneLineNamingTheFlag) {
    fs::path p = fresh("bad.specdb");
    struct Case {
        std::string args, needle;
        int code;
    } cases[] = {
        {"--domain code=0.9,x", "--domain", 1},
        {"--domain =0.9", "--domain", 1},
        {"--domain code=0.9,0.8 --domain chat=0.7", "chat", 1},
        {"--alpha 0.7", "--gamma", 1},
        {"--alpha 1.5 --gamma 3", "--alpha", 2},
        {"--alpha 0.7 --gamma 3 --output-len 10:5", "output length", 1},
        {"--alpha 0.7 --gamma 3 --output-len ten", "--output-len", 1},
        {"--alpha 0.7 --gamma 3 --model gpt-5", "--model", 1},
        {"--alpha 0.7 --gamma 0", "gamma", 1},
        {"--gamma x --alpha 0.5", "--gamma", 2},
    };
    for (const Case& c : cases) {
        Result r = run("traces synth -o " + p.string() + " " + c.args);
        EXPECT_EQ(r.code, c.code) << c.args << ": " << r.err;
        EXPECT_EQ(r.err_lines(), 1) << c.args << ": " << r.err;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << ": " << r.err;
    }
    EXPECT_FALSE(fs::exists(p)) << "a refused synth must not create the database";
}

TEST(Cli, AnUnknownSubcommandExitsTwo) {
    Result r = run("traces frobnicate");
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
}

// End to end: synth, then info prints tau within bounds of the closed form
// 1 + sum_k alpha^k for i.i.d. alpha = 0.5, gamma = 3: 1 + .5 + .25 + .125 = 1.875.
TEST(Cli, InfoPrintsTauAndPerSlotAcceptanceOfASynthesizedRun) {
    fs::path p = fresh("iid.specdb");
    Result w = run("traces synth -o " + p.string() + " --alpha 0.5 --gamma 3 --requests 40 --output-len 300:300");
    ASSERT_EQ(w.code, 0) << w.err;
    Result r = run("traces info " + p.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("runs 1  requests 40  positions 40 (12000 anchors)"), std::string::npos) << r.out;
    // The "iid" row: requests, anchors (40 x (300 - 3)), tau, alpha1..3.
    std::istringstream rows(r.out.substr(r.out.find("  iid ")));
    std::string name;
    long requests = 0, anchors = 0;
    double tau = 0, a[3] = {};
    rows >> name >> requests >> anchors >> tau >> a[0] >> a[1] >> a[2];
    EXPECT_EQ(requests, 40);
    EXPECT_EQ(anchors, 40 * 297);
    // Var of X = P1 + P2 + P3 with E X^2 = sum (2k-1) 0.5^k = 1.375: var = 1.375 - 0.875^2
    EXPECT_NEAR(tau, 1.875, 5 * std::sqrt((1.375 - 0.875 * 0.875) / 11880.0));
    for (double v : a) EXPECT_NEAR(v, 0.5, 0.035);  // >= 5 sigma for the ~1500 trials of slot 3
    EXPECT_NE(r.out.find("draft_prob not recorded"), std::string::npos) << r.out;  // synthetic runs have none

    // --json: the same numbers (printed to 3 decimals), and survival = prod alpha
    const fs::path js = scratch() / "iid.json";
    Result j = run("traces info " + p.string() + " --json " + js.string());
    ASSERT_EQ(j.code, 0) << j.err;
    EXPECT_TRUE(j.out.empty()) << j.out;
    const json doc = json::parse(slurp(js));
    ASSERT_EQ(doc.at("runs").size(), 1u);
    const json& run0 = doc["runs"][0];
    EXPECT_EQ(run0.at("gamma"), 3);
    EXPECT_EQ(run0.at("producer"), "synthetic");
    const json& iid = run0.at("acceptance").at(1);
    EXPECT_EQ(iid.at("domain"), "iid");
    EXPECT_EQ(iid.at("anchors"), anchors);
    EXPECT_NEAR(iid.at("tau").get<double>(), tau, 5e-4);
    double surv = 1;
    for (int k = 0; k < 3; k++) {
        EXPECT_NEAR(iid["alpha"][k].get<double>(), a[k], 5e-4);
        surv *= iid["alpha"][k].get<double>();
        EXPECT_NEAR(iid["survival"][k].get<double>(), surv, 1e-12);
    }
    EXPECT_TRUE(run0.at("live_steps").at("tau").is_null());   // a synthetic run has no live steps
    EXPECT_EQ(iid.at("draft_prob_requests"), 0);
    Result bad = run("traces info " + p.string() + " --json /nonexistent/dir/x.json");
    EXPECT_EQ(bad.code, 1);
    EXPECT_EQ(bad.err_lines(), 1) << bad.err;
    EXPECT_NE(bad.err.find("/nonexistent/dir/x.json"), std::string::npos) << bad.err;
}

// What draft-prob can replay: runs whose every request recorded draft_prob.
TEST(Cli, InfoSaysWhetherARunRecordsDraftProbabilities) {
    const std::string shape = "{\"name\":\"m\",\"n_params\":1000,\"n_layers\":2,\"hidden\":64,\"n_heads\":4,"
                              "\"n_kv_heads\":2,\"head_dim\":16,\"ffn\":256,\"vocab\":100,\"bytes_per_weight\":2,"
                              "\"bytes_per_kv\":1}";
    auto run_line = [&](int id) {
        return "{\"type\":\"run\",\"id\":" + std::to_string(id) + ",\"producer\":\"engine\",\"target\":" + shape +
               ",\"drafter_kind\":\"ngram\",\"drafter_name\":\"ngram\",\"gpu\":\"none\",\"temperature\":0,"
               "\"gamma\":1,\"created_at\":\"2026-01-01T00:00:00Z\",\"git_rev\":\"r\",\"notes\":\"\","
               "\"complete\":true}\n";
    };
    auto request = [](int run, int id, int idx, bool with_q) {
        return "{\"type\":\"request\",\"id\":" + std::to_string(id) + ",\"run\":" + std::to_string(run) +
               ",\"idx\":" + std::to_string(idx) + ",\"domain\":\"code\",\"prompt_len\":3,\"output_len\":2}\n"
               "{\"type\":\"positions\",\"request\":" + std::to_string(id) + ",\"gamma\":1,\"n\":2,\"beta\":[1,0]" +
               (with_q ? ",\"draft_prob\":[1,0]" : "") + "}\n";
    };
    fs::path in = scratch() / "q.jsonl", db = fresh("q.specdb");
    std::ofstream(in) << "{\"type\":\"specplan-traces\",\"version\":1}\n" << run_line(1) << request(1, 1, 0, true)
                      << request(1, 2, 1, true) << run_line(2) << request(2, 3, 0, true) << request(2, 4, 1, false);
    Result imp = run("traces import " + in.string() + " " + db.string());
    ASSERT_EQ(imp.code, 0) << imp.err;
    Result r = run("traces info " + db.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const size_t run2 = r.out.find("\nrun 2");
    ASSERT_NE(run2, std::string::npos) << r.out;
    EXPECT_NE(r.out.substr(0, run2).find("draft_prob recorded: draft-prob can replay this run"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.substr(run2).find("draft_prob recorded for 1 of 2 requests"), std::string::npos) << r.out;
}

TEST(Cli, ExportImportExportIsByteIdentical) {
    fs::path db1 = fresh("rt1.specdb"), db2 = fresh("rt2.specdb");
    fs::path a = scratch() / "a.jsonl", b = scratch() / "b.jsonl";
    ASSERT_EQ(run("traces synth -o " + db1.string() + " --domain code=0.9,0.8 --domain chat=0.6,0.5 "
                  "--requests 5 --output-len 20:40").code, 0);
    ASSERT_EQ(run("traces export " + db1.string() + " -o " + a.string()).code, 0);
    Result imp = run("traces import " + a.string() + " " + db2.string());
    ASSERT_EQ(imp.code, 0) << imp.err;
    ASSERT_EQ(run("traces export " + db2.string() + " -o " + b.string()).code, 0);
    std::string ta = slurp(a), tb = slurp(b);
    EXPECT_GT(ta.size(), 1000u);
    EXPECT_TRUE(ta == tb) << "export of the imported database differs";
    // stdout export is the same bytes as the file export
    EXPECT_EQ(run("traces export " + db2.string()).out, tb);
}

TEST(Cli, AFailedImportLeavesTheDatabaseAsItWas) {
    fs::path db = fresh("keep.specdb");
    ASSERT_EQ(run("traces synth -o " + db.string() + " --alpha 0.7 --gamma 2 --requests 3").code, 0);
    std::string before = run("traces export " + db.string()).out;
    fs::path bad = scratch() / "bad.jsonl";
    std::ofstream(bad) << "{\"type\":\"specplan-traces\",\"version\":1}\n{\"type\":\"run\",\"id\":1}\n";
    Result r = run("traces import " + bad.string() + " " + db.string());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("bad.jsonl:2"), std::string::npos) << r.err;
    EXPECT_EQ(run("traces export " + db.string()).out, before);
}

// [SECTION] sim and sweep ------------------------------------------------------

static std::string scenario(const char* name) { return std::string(SPECPLAN_SOURCE_DIR) + "/scenarios/" + name; }

TEST(Cli, SweepWritesTheSameJsonAndCsvOnOneThreadAndOnTwo) {
    fs::path j1 = scratch() / "one.json", j2 = scratch() / "two.json", c1 = scratch() / "one.csv",
             c2 = scratch() / "two.csv";
    std::string args = "sweep " + scenario("teaching.toml") + " --concurrency 1,8,32 --policies ar,fixed:2,dspark";
    Result a = run(args + " --threads 1 --json " + j1.string() + " --csv " + c1.string());
    Result b = run(args + " --threads 2 --quiet --json " + j2.string() + " --csv " + c2.string());
    ASSERT_EQ(a.code, 0) << a.err;
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_EQ(b.out, "") << "--quiet prints nothing";
    std::string ja = slurp(j1), ca = slurp(c1);
    EXPECT_EQ(ja, slurp(j2));
    EXPECT_EQ(ca, slurp(c2));
    // 3 policies x 3 loads: a header and nine rows, and nine points in the JSON
    EXPECT_EQ(std::count(ca.begin(), ca.end(), '\n'), 10);
    EXPECT_NE(ja.find("\"capacity_at_slo\""), std::string::npos);
    EXPECT_NE(a.out.find("capacity at SLO"), std::string::npos) << a.out;
}

// --requests and --warmup replace the scenario's window: every point then
// measures exactly that many requests (the simulator measures the scenario's
// count to the request), and a window that is no number is one line.
TEST(Cli, SweepTakesItsMeasurementWindowFromFlags) {
    fs::path j = scratch() / "window.json";
    Result r = run("sweep " + scenario("teaching.toml") + " --concurrency 2,8 --policies ar --quiet --requests 37" +
                   " --warmup 3 --json " + j.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto out = nlohmann::json::parse(slurp(j));
    ASSERT_EQ(out.at("points").size(), 2u);
    for (const auto& p : out.at("points")) EXPECT_EQ(p.at("n_requests").get<int>(), 37);
    r = run("sweep " + scenario("teaching.toml") + " --requests 0");
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
}

// --percentiles picks the TTFT, TPOT, E2E and ITL percentiles, in ms, of
// the JSON, the CSV, sim's summary and sweep's latency table; the JSON
// holds the ITL distribution and the confidence half-widths. A bad list is
// one line. The ms figures are the seconds fields' times 1000 where both
// exist (p50, p99), so the flag changes the choice, not the measurement.
TEST(Cli, PercentilesChooseTheLatencyColumns) {
    fs::path j = scratch() / "pct.json", c = scratch() / "pct.csv";
    Result r = run("sweep " + scenario("teaching.toml") + " --concurrency 2,8 --policies ar,fixed:2" +
                   " --percentiles 50,99,99.9 --json " + j.string() + " --csv " + c.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("latency, ms"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ITL p99.9"), std::string::npos) << r.out;
    const json out = json::parse(slurp(j));
    EXPECT_EQ(out.at("percentiles"), json::parse("[50, 99, 99.9]"));
    for (const json& p : out.at("points")) {
        const json& lat = p.at("latency_ms");
        for (const char* m : {"ttft", "tpot", "e2e", "itl"}) {
            ASSERT_EQ(lat.at(m).size(), 4u) << m;  // mean and the three
            EXPECT_LE(lat.at(m).at("p50").get<double>(), lat.at(m).at("p99.9").get<double>()) << m;
        }
        EXPECT_DOUBLE_EQ(lat.at("ttft").at("p99").get<double>(), 1e3 * p.at("ttft_s").at("p99").get<double>());
        EXPECT_DOUBLE_EQ(lat.at("itl").at("p50").get<double>(), 1e3 * p.at("itl_s").at("p50").get<double>());
        const json& d = p.at("itl_distribution");
        ASSERT_EQ(d.at("percentiles").size(), d.at("ms").size());
        EXPECT_TRUE(std::is_sorted(d.at("ms").begin(), d.at("ms").end()));
        EXPECT_GT(p.at("throughput_ci95").get<double>(), 0);
        EXPECT_GT(p.at("per_user_tok_s").at("mean_ci95").get<double>(), 0);
        EXPECT_NEAR(p.at("total_throughput_tok_s_gpu").get<double>(),
                    p.at("input_throughput_tok_s_gpu").get<double>() + p.at("throughput_tok_s_gpu").get<double>(),
                    1e-9 * p.at("total_throughput_tok_s_gpu").get<double>());
    }
    const std::string csv = slurp(c);
    EXPECT_NE(csv.find(",ttft_ms_p50,ttft_ms_p99,ttft_ms_p99.9,tpot_ms_p50"), std::string::npos) << csv;
    EXPECT_NE(csv.find(",itl_ms_p99.9,warmup,short_window,n_requests,unstable\n"), std::string::npos) << csv;
    r = run("sim " + scenario("teaching.toml") + " --concurrency 2 --percentiles 75");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("ITL  ms        mean "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" p75 "), std::string::npos) << r.out;
    for (const char* bad : {"50,abc", "0", "101", "90,50", "nan", "50,,90"}) {
        r = run("sweep " + scenario("teaching.toml") + " --percentiles " + bad);
        EXPECT_NE(r.code, 0) << bad;
        EXPECT_EQ(r.err_lines(), 1) << bad << ": " << r.err;
        EXPECT_NE(r.err.find("--percentiles"), std::string::npos) << r.err;
    }
}

// 2000 users with 1000 measured requests is half a request a user: the
// start-up transient. Such a set window is kept, said on stderr, and
// marked short in every output; "auto" sizes it by the load instead.
TEST(Cli, ShortWindowForTheLoadIsWarnedAndMarked) {
    fs::path j = scratch() / "short.json";
    Result r = run("sweep " + scenario("teaching.toml") + " --concurrency 200 --policies ar --requests 300" +
                   " --warmup 20 --json " + j.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: at 200 users the window measures 300 requests after 20 of warm-up"),
              std::string::npos) << r.err;
    EXPECT_NE(r.out.find("SHORT"), std::string::npos) << r.out;
    json p = json::parse(slurp(j)).at("points").at(0);
    EXPECT_TRUE(p.at("short_window").get<bool>());
    EXPECT_EQ(p.at("n_requests").get<int>(), 300);  // kept as given
    r = run("sweep " + scenario("teaching.toml") + " --concurrency 200 --policies ar --requests auto" +
            " --warmup auto --json " + j.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    p = json::parse(slurp(j)).at("points").at(0);
    EXPECT_FALSE(p.at("short_window").get<bool>());
    EXPECT_EQ(p.at("warmup").get<int>(), 2000);
    EXPECT_GE(p.at("n_requests").get<int>(), 2000);
}

// plan: one row per policy, and its JSON holds the arithmetic of a fleet:
// replicas = ceil(users / capacity), GPUs = replicas x tp, users a replica
// = ceil(users / replicas) within capacity, $/hour = GPUs x price, $/M
// tokens from the replica's throughput; the fewest-GPU policy is named.
TEST(Cli, PlanAnswersHowManyGpusPerPolicy) {
    fs::path j = scratch() / "plan.json";
    Result r = run("plan " + scenario("teaching.toml") + " --users 300 --per-user-tok-s 50 --ttft-ms 3000" +
                   " --gpu-hour-usd 2 --policies ar,fixed:2,dspark --json " + j.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("300 users, SLO per-user p90 >= 50 tok/s, TTFT p90 <= 3000 ms"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fewest GPUs: "), std::string::npos) << r.out;
    const json out = json::parse(slurp(j));
    ASSERT_EQ(out.at("policies").size(), 3u);
    int fewest = 1 << 30;
    for (const json& p : out.at("policies")) {
        ASSERT_TRUE(p.at("feasible").get<bool>()) << p.dump();
        const int cap = int(p.at("capacity_users").get<double>()), reps = p.at("replicas"), gpus = p.at("gpus");
        const int per = p.at("users_per_replica");
        EXPECT_EQ(reps, (300 + cap - 1) / cap);
        EXPECT_EQ(gpus, reps * out.at("tp").get<int>());
        EXPECT_EQ(per, (300 + reps - 1) / reps);
        EXPECT_LE(per, cap);
        EXPECT_GE(p.at("per_user_p90").get<double>(), 50);
        EXPECT_LE(p.at("ttft_p90_s").get<double>(), 3.0);
        EXPECT_DOUBLE_EQ(p.at("usd_per_hour").get<double>(), 2.0 * gpus);
        EXPECT_NEAR(p.at("usd_per_million_tokens").get<double>(),
                    2.0 * gpus / (p.at("throughput_tok_s_gpu").get<double>() * gpus * 3600) * 1e6, 1e-12);
        EXPECT_NE(r.out.find(p.at("policy").get<std::string>() + " "), std::string::npos);
        fewest = std::min(fewest, gpus);
    }
    EXPECT_NE(r.out.find("fewest GPUs: "), std::string::npos);
    EXPECT_NE(r.out.find(", " + std::to_string(fewest) + " GPUs"), std::string::npos) << r.out;
    // bad input: one line each
    for (const std::string& bad : {"plan " + scenario("teaching.toml") + " --users 0",
                                   "plan " + scenario("roofline-h200-llama3.toml") + " --users 10",
                                   "plan " + scenario("teaching.toml") + " --users 10 --percentile 75"}) {
        Result b = run(bad);
        EXPECT_NE(b.code, 0) << bad;
        EXPECT_EQ(b.err_lines(), 1) << bad << ": " << b.err;
    }
}

// plan --rate on an open loop, searching gamma and tp: per policy its best
// configuration, replicas = ceil(rate / the replica's max stable rate
// meeting every SLO), GPUs = replicas x tp, the rate a replica carries
// within capacity, and the fleet check (the whole rate over those replicas
// behind least-loaded) in the JSON; the answer is the fewest GPUs.
TEST(Cli, PlanByRateSearchesGammaAndTpAndChecksTheFleet) {
    fs::path j = scratch() / "plan-rate.json";
    Result r = run("plan " + scenario("roofline-h200-llama3.toml") + " --rate 100 --gpu-hour-usd 2 --policies ar,dspark" +
                   " --gammas 3,5 --tp 1,2 --requests 200 --warmup 50 --json " + j.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("100 requests/s (open loop)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fleet check: "), std::string::npos) << r.out;
    const json out = json::parse(slurp(j));
    EXPECT_DOUBLE_EQ(out.at("rate").get<double>(), 100);
    EXPECT_TRUE(out.at("users").is_null());
    ASSERT_EQ(out.at("policies").size(), 2u);
    int fewest = 1 << 30;
    for (const json& p : out.at("policies")) {
        ASSERT_TRUE(p.at("feasible").get<bool>()) << p.dump();
        const double cap = p.at("capacity_rate_per_replica").get<double>();
        const int reps = p.at("replicas"), gpus = p.at("gpus"), tp = p.at("tp"), gamma = p.at("gamma");
        EXPECT_EQ(reps, int(std::ceil(100 / cap * (1 - 1e-9)))) << p.dump();
        EXPECT_EQ(gpus, reps * tp);
        EXPECT_TRUE(tp == 1 || tp == 2) << tp;
        EXPECT_TRUE(gamma == 3 || gamma == 5) << gamma;
        EXPECT_DOUBLE_EQ(p.at("rate_per_replica").get<double>(), 100.0 / reps);
        EXPECT_LE(p.at("rate_per_replica").get<double>(), cap);
        EXPECT_GE(p.at("per_user_p90").get<double>(), 50);
        EXPECT_LE(p.at("ttft_p90_s").get<double>(), 1.5);
        const json& c = p.at("fleet_check");
        EXPECT_EQ(c.at("router"), "least-loaded");
        EXPECT_EQ(c.at("replicas").get<int>(), reps);
        EXPECT_EQ(c.at("met").get<bool>(), c.at("missed_slo").is_null());
        fewest = std::min(fewest, gpus);
    }
    EXPECT_NE(r.out.find(", " + std::to_string(fewest) + " GPUs ("), std::string::npos) << r.out;
    EXPECT_FALSE(out.at("best").is_null());
}

// Every bad plan flag is one line on stderr and a non-zero exit.
TEST(Cli, BadPlanFlagsAreOneLine) {
    const std::string open = "plan " + scenario("roofline-h200-llama3.toml"), closed = "plan " + scenario("teaching.toml");
    for (const std::string& bad : {open + " --rate 0", open + " --rate -5", open + " --rate nan", open + " --rate abc",
                                   open + " --rate 1e9", closed + " --users 10 --rate 5", closed, closed + " --rate 5",
                                   open + " --users 10", open + " --rate 5 --gammas 0", open + " --rate 5 --gammas 3,3",
                                   open + " --rate 5 --gammas 9", open + " --rate 5 --gammas x",
                                   open + " --rate 5 --tp 0", open + " --rate 5 --tp 1,1.5", open + " --rate 5 --tp 2,1",
                                   "plan " + scenario("measured.toml") + " --users 10 --tp 1,2"}) {
        Result b = run(bad);
        EXPECT_NE(b.code, 0) << bad;
        EXPECT_EQ(b.err_lines(), 1) << bad << ": " << b.err;
        EXPECT_EQ(b.out, "") << bad;
    }
}

TEST(Cli, SimPrintsOnePointsSummary) {
    Result r = run("sim " + scenario("teaching.toml") + " --policy dspark --concurrency 4");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("policy dspark, 4 users"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("per-user tok/s"), std::string::npos) << r.out;
}

TEST(Cli, BadScenariosAndFlagsAreOneLineNamingTheProblem) {
    fs::path bad = scratch() / "bad.toml";
    std::ofstream(bad) << "[engine]\ngamma = 0\n";
    struct Case {
        std::string args, needle;
    } cases[] = {
        {"sweep /nonexistent.toml", "/nonexistent.toml"},
        {"sweep " + bad.string(), "engine.gamma"},
        {"sweep " + scenario("teaching.toml") + " --policies warp-speed", "--policies"},
        {"sweep " + scenario("teaching.toml") + " --concurrency 4,2", "--concurrency"},
        {"sweep " + scenario("teaching.toml") + " --concurrency 1.5", "--concurrency"},
        {"sim " + scenario("teaching.toml") + " --policy fixed:x", "fixed:K"},
        // draft-prob replays recorded draft probabilities: not from an i.i.d.
        // source, not from a trace captured before schema 3
        {"sweep " + scenario("teaching.toml") + " --policies ar,draft-prob", "teaching.toml: acceptance.source"},
        {"sim " + scenario("teaching.toml") + " --policy draft-prob", "teaching.toml: acceptance.source"},
        {"sweep " + scenario("default.toml") + " --policies draft-prob --concurrency 1", "demo.specdb"},
        {"sweep " + scenario("default.toml") + " --policies draft-prob --concurrency 1", "positions.draft_prob"},
    };
    for (const Case& c : cases) {
        Result r = run(c.args);
        EXPECT_EQ(r.code, 1) << c.args << ": " << r.err;
        EXPECT_EQ(r.err_lines(), 1) << c.args << ": " << r.err;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << ": " << r.err;
    }
}

// [SECTION] a CLI that never answers wrong quietly (issue 13) -------------------
//
// Each input below once ran something else than asked, or failed with more
// than one line; now each is one line on stderr naming the flag, the field or
// the file, and a non-zero exit (2 for a value CLI11 checks, 1 for the rest).

static void expect_one_line(const Result& r, const std::string& args, std::initializer_list<const char*> needles,
                            int code = 1) {
    EXPECT_EQ(r.code, code) << args << ": " << r.err;
    EXPECT_EQ(r.err_lines(), 1) << args << ": " << r.err;
    size_t digits = 0, longest = 0;  // no 300-digit numbers: 2^64 - 1 has 20 digits
    for (char ch : r.err) longest = std::max(longest, digits = std::isdigit(static_cast<unsigned char>(ch)) ? digits + 1 : 0);
    EXPECT_LE(longest, 20u) << args << ": " << r.err;
    for (const char* n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << args << ": " << r.err;
}

// teaching.toml as an open loop at 1 and 2 requests/s (its own load is users).
static std::string open_loop_scenario() {
    std::string text = slurp(scenario("teaching.toml"));
    const std::string closed = "mode = \"closed\"\nconcurrency = [1, 2, 4, 8, 16, 32, 64, 128]";
    const size_t at = text.find(closed);
    EXPECT_NE(at, std::string::npos) << "teaching.toml's workload changed: update this test";
    if (at != std::string::npos) text.replace(at, closed.size(), "mode = \"open\"\nrate = [1, 2]");
    const fs::path p = scratch() / "open.toml";
    std::ofstream(p) << text;
    return p.string();
}

// 0, -5 and nan users once ran the scenario's largest load (256 users in the
// default scenario) without a word.
TEST(Cli, ALoadThatIsNoWholeNumberOfUsersIsRefused) {
    const std::string t = scenario("teaching.toml");
    for (const char* load : {"0", "-5", "nan", "inf", "1.5", "1e300"})
        for (const std::string cmd : {"sim", "sweep"}) {
            const std::string args = cmd + " " + t + " --concurrency " + load;
            expect_one_line(run(args), args, {"--concurrency", "users", load});
        }
    expect_one_line(run("sim " + t + " --concurrency 2,4"), "sim --concurrency 2,4", {"--concurrency", "one value"});
    const std::string o = open_loop_scenario();
    for (const char* load : {"0", "-1", "nan", "inf"}) {
        expect_one_line(run("sim " + o + " --rate " + load), std::string("sim --rate ") + load, {"--rate", load});
        expect_one_line(run("sweep " + o + " --rates 1," + load), std::string("sweep --rates ") + load, {"--rates"});
    }
}

// --rate on a closed loop once ran that many users, and --concurrency on an
// open loop that many requests/s: the two are distinct options now, each
// refused on the other loop, naming the scenario's mode.
TEST(Cli, ALoadFlagOfTheOtherLoopIsRefused) {
    const std::string closed = scenario("teaching.toml"), open = open_loop_scenario();
    struct Case {
        std::string args;
        std::initializer_list<const char*> needles;
    } cases[] = {
        {"sim " + closed + " --rate 5", {"--rate", "teaching.toml", "closed loop", "--concurrency"}},
        {"sweep " + closed + " --rates 1,2", {"--rates", "closed loop", "--concurrency"}},
        {"sim " + open + " --concurrency 3", {"--concurrency", "open.toml", "open loop", "--rate"}},
        {"sweep " + open + " --concurrency 1,2", {"--concurrency", "open loop", "--rates"}},
    };
    for (const Case& c : cases) expect_one_line(run(c.args), c.args, c.needles);
    // each loop's own flag still runs, as that loop's load
    Result r = run("sim " + open + " --rate 1.5 --policy ar --requests 20 --warmup 0");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("policy ar, 1.5 req/s"), std::string::npos) << r.out;
    r = run("sim " + closed + " --concurrency 3 --policy ar --requests 20 --warmup 0");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("policy ar, 3 users"), std::string::npos) << r.out;
}

// Seeds are unsigned: -7 was ignored by sim and sweep (and wrapped to
// 2^64 - 7 by the other commands); "010" is ten, not CLI11's octal eight.
TEST(Cli, ANegativeSeedIsRefused) {
    const std::string t = scenario("teaching.toml");
    const fs::path db = fresh("seed.specdb");
    for (const std::string& args : {"sim " + t + " --seed -7", "sweep " + t + " --seed -7",
                                    "traces synth -o " + db.string() + " --alpha 0.5 --gamma 2 --seed -7",
                                    "calibrate " + db.string() + " -o " + (scratch() / "c.json").string() +
                                        " --seed -7",
                                    "sim " + t + " --seed 1x"})
        expect_one_line(run(args), args, {"--seed", "whole number"}, 2);
    EXPECT_FALSE(fs::exists(db));
    const std::string point = "sim " + t + " --policy fixed:2 --concurrency 2 --requests 20 --warmup 0 --seed ";
    const Result ten = run(point + "10"), octal = run(point + "010"), eight = run(point + "8");
    ASSERT_EQ(ten.code, 0) << ten.err;
    EXPECT_EQ(octal.out, ten.out);
    EXPECT_NE(eight.out, ten.out);
}

// fixed:99 at gamma 4 ran as fixed:4 under the name fixed:99.
TEST(Cli, FixedKAboveGammaIsRefusedNamingGamma) {
    const std::string t = scenario("teaching.toml");  // gamma 4
    for (const std::string& args : {"sim " + t + " --policy fixed:99", "sweep " + t + " --policies ar,fixed:5"})
        expect_one_line(run(args), args, {"fixed:", "engine.gamma = 4"});
    const fs::path bad = scratch() / "fixed.toml";
    std::string text = slurp(t);
    text.replace(text.find("\"fixed:4\""), 9, "\"fixed:9\"");
    std::ofstream(bad) << text;
    expect_one_line(run("sweep " + bad.string()), "policies.list fixed:9",
                    {"fixed.toml", "policies.list[4]", "engine.gamma = 4", "fixed:9"});
    Result ok = run("sim " + t + " --policy fixed:4 --concurrency 2 --requests 10 --warmup 0");
    EXPECT_EQ(ok.code, 0) << ok.err;
}

// CLI11's NonNegativeNumber printed its range with a 300-digit bound.
TEST(Cli, ANegativeThreadCountIsOneShortLine) {
    const std::string t = scenario("teaching.toml");
    expect_one_line(run("sweep " + t + " --threads -1"), "--threads -1", {"--threads", "whole number", "-1"}, 2);
    expect_one_line(run("sweep " + t + " --warmup -1"), "--warmup -1", {"--warmup", "-1"}, 2);
    expect_one_line(run("sweep " + t + " --requests 0"), "--requests 0", {"--requests", "'0'"}, 2);
}

// 100 million users died of std::bad_alloc; a load whose simulator state
// passes 16 GiB is refused before anything is allocated, naming the memory.
TEST(Cli, ALoadTooLargeForMemoryIsRefusedUpFront) {
    const std::string t = scenario("teaching.toml");
    expect_one_line(run("sim " + t + " --concurrency 100000000"), "sim 1e8 users",
                    {"--concurrency", "100000000 users", "GiB"});
    expect_one_line(run("sweep " + t + " --concurrency 1,100000000"), "sweep 1e8 users",
                    {"--concurrency", "GiB"});
}

// Without a GPU, profile printed CUDA_CHECK's source path and a CUDA error
// name; it says in one line that there is no CUDA device (or, in a build
// without CUDA, that it was built without). Where a GPU is present the
// smallest grid just runs.
TEST(Cli, ProfileWithoutAGpuIsOneLineSayingSo) {
    const fs::path db = fresh("profile.specdb");
    const std::string args = "profile --model qwen3-0.6b -o " + db.string() +
                             " --r 1 --q 1 --context 0 --prefill-b 16 --reps 1 --warmup 0 --draft-layers 0";
    Result r = run(args);
    if (r.code == 0) GTEST_SKIP() << "a CUDA device is present: profile ran";
    expect_one_line(r, args, {"profile: "});
    EXPECT_TRUE(r.err.find("no CUDA device") != std::string::npos ||
                r.err.find("built without CUDA") != std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find(".cpp"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(".cu:"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("cudaError"), std::string::npos) << r.err;
}

// Output files. "-" is stdout (it wrote a file named "-"); a symlink is
// written through and stays a symlink, and a FIFO is written as it is (the
// temporary file was renamed over both); a folder is one line, with no
// stray temporary beside it; a regular file is replaced whole, keeping its
// permissions and leaving no temporary.
static const std::string kSmallSweep = " --concurrency 1,2 --policies ar --requests 10 --warmup 0 --quiet";

// scratch(), emptied of what an earlier run (or an older binary) left there.
static fs::path empty_scratch() {
    fs::remove_all(scratch());
    return scratch();
}

TEST(Cli, DashIsStdoutForJsonAndCsv) {
    const std::string t = scenario("teaching.toml");
    empty_scratch();
    Result r = run("sweep " + t + kSmallSweep + " --json -", scratch());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(fs::exists(scratch() / "-"));
    EXPECT_EQ(json::parse(r.out).at("points").size(), 2u) << r.out;
    r = run("sweep " + t + kSmallSweep + " --csv -", scratch());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(fs::exists(scratch() / "-"));
    EXPECT_EQ(r.out.rfind("specplan,scenario,scenario_fnv1a,", 0), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
}

TEST(Cli, OutputFilesWriteThroughSymlinksAndFifos) {
    const std::string t = scenario("teaching.toml");
    const fs::path target = empty_scratch() / "target.csv", link = scratch() / "link.csv";
    std::ofstream(target) << "old\n";
    fs::create_symlink(target, link);
    Result r = run("sweep " + t + kSmallSweep + " --csv " + link.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::is_symlink(link)) << "the symlink was replaced by a file";
    EXPECT_EQ(slurp(target).rfind("specplan,scenario,scenario_fnv1a,", 0), 0u) << slurp(target);

    // /dev/stdout: the CSV goes to this process's stdout, and /dev/stdout stays a symlink
    r = run("sweep " + t + kSmallSweep + " --csv /dev/stdout");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::is_symlink("/dev/stdout"));
    EXPECT_EQ(r.out.rfind("specplan,scenario,scenario_fnv1a,", 0), 0u) << r.out;

    // a FIFO, read by a background cat
    const fs::path fifo = scratch() / "pipe.csv", got = scratch() / "got.csv";
    ASSERT_EQ(std::system(("mkfifo " + fifo.string()).c_str()), 0);
    const std::string cmd = "(timeout 60 cat " + fifo.string() + " > " + got.string() + " &) ; timeout 60 " +
                            SPECPLAN_CLI + " sweep " + t + kSmallSweep + " --csv " + fifo.string() +
                            "; s=$?; for i in 1 2 3 4 5 6 7 8 9 10; do [ -s " + got.string() +
                            " ] && break; sleep 0.2; done; exit $s";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_EQ(fs::status(fifo).type(), fs::file_type::fifo) << "the FIFO was replaced by a file";
    EXPECT_EQ(slurp(got).rfind("specplan,scenario,scenario_fnv1a,", 0), 0u) << slurp(got);
}

TEST(Cli, AFolderAsOutputIsOneLineAndLeavesNoTemporary) {
    const std::string t = scenario("teaching.toml");
    const fs::path dir = empty_scratch() / "outdir";
    fs::create_directories(dir);
    for (const char* flag : {"--json", "--csv"}) {
        const std::string args = "sweep " + t + kSmallSweep + " " + flag + " " + dir.string();
        expect_one_line(run(args), args, {dir.string().c_str(), "folder"});
    }
    for (const auto& e : fs::directory_iterator(scratch()))
        EXPECT_EQ(e.path().string().find("outdir."), std::string::npos) << "stray " << e.path();
    EXPECT_TRUE(fs::is_empty(dir));
}

TEST(Cli, ARegularOutputFileIsReplacedWholeKeepingItsMode) {
    const std::string t = scenario("teaching.toml");
    const fs::path out = empty_scratch() / "mode.json";
    std::ofstream(out) << "old\n";
    fs::permissions(out, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    Result r = run("sweep " + t + kSmallSweep + " --json " + out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(json::parse(slurp(out)).at("points").size(), 2u);
    EXPECT_EQ(fs::status(out).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    for (const auto& e : fs::directory_iterator(scratch()))
        EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "stray " << e.path();
}

// Importing one export twice doubled its runs. The same run (every field
// but its id, its requests, positions and steps) is refused in one line and
// nothing is imported; a run that differs in anything imports as a new run.
TEST(Cli, ImportingTheSameRunsTwiceIsRefused) {
    const fs::path src = fresh("dup-src.specdb"), db = fresh("dup.specdb"), a = scratch() / "dup.jsonl";
    ASSERT_EQ(run("traces synth -o " + src.string() + " --alpha 0.7 --gamma 2 --requests 3").code, 0);
    ASSERT_EQ(run("traces export " + src.string() + " -o " + a.string()).code, 0);
    ASSERT_EQ(run("traces import " + a.string() + " " + db.string()).code, 0);
    const std::string before = run("traces export " + db.string()).out;
    for (const fs::path& into : {db, src}) {
        const std::string args = "traces import " + a.string() + " " + into.string();
        expect_one_line(run(args), args, {"dup.jsonl", "already in", into.string().c_str(), "as run 1"});
    }
    EXPECT_EQ(run("traces export " + db.string()).out, before) << "a refused import changed the store";
    // the same file with other notes: a different run, imported
    std::string text = slurp(a);
    const size_t at = text.find("\"notes\":\"");
    ASSERT_NE(at, std::string::npos);
    text.insert(at + 9, "edited ");
    const fs::path b = scratch() / "edited.jsonl";
    std::ofstream(b) << text;
    Result r = run("traces import " + b.string() + " " + db.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(run("traces info " + db.string()).out.find("runs 2 "), std::string::npos);
}

// [SECTION] traces import and export: bad input and leftovers ----------------

// `traces import /dev/zero` grew to 5.1 GB in 10 s; a refused import left an
// empty store behind. A device is refused up front, and a store the import
// created is removed when the import is refused; one that existed stays.
TEST(Cli, ARefusedImportRefusesDevicesAndLeavesNoNewStore) {
    const fs::path db = fresh("never.specdb");
    Result r = run("traces import /dev/zero " + db.string());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "specplan: /dev/zero: not a regular file\n");
    const fs::path bad = scratch() / "bad.jsonl";
    std::ofstream(bad) << "{\"type\":\"specplan-traces\",\"version\":1}\n{\"type\":\"run\",\"id\":1}\n";
    r = run("traces import " + bad.string() + " " + db.string());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find("bad.jsonl:2"), std::string::npos) << r.err;
    for (const char* ext : {"", "-wal", "-shm"})
        EXPECT_FALSE(fs::exists(db.string() + ext)) << db.string() + ext << " left behind";
}

// A failed export said "<output>" and left a partial file. It names the file,
// leaves an old file as it was and no temporary beside it.
TEST(Cli, AFailedExportNamesItsFileAndLeavesNoPartialFile) {
    const fs::path db = fresh("latin1.specdb"), out = scratch() / "out.jsonl";
    // notes that are not UTF-8: the store takes them, JSON cannot
    ASSERT_EQ(run("traces synth -o " + db.string() + " --alpha 0.7 --gamma 2 --requests 3 --notes \"$(printf 'caf\\351')\"")
                  .code,
              0);
    fs::remove(out);
    Result r = run("traces export " + db.string() + " -o " + out.string());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_EQ(r.err.rfind("specplan: " + out.string() + ": ", 0), 0u) << r.err;
    EXPECT_EQ(r.err.find("<output>"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "partial file left";
    std::ofstream(out) << "old\n";
    EXPECT_EQ(run("traces export " + db.string() + " -o " + out.string()).code, 1);
    EXPECT_EQ(slurp(out), "old\n");
    for (const auto& e : fs::directory_iterator(scratch()))
        EXPECT_EQ(e.path().filename().string().rfind("out.jsonl.", 0), std::string::npos) << "stray " << e.path();
    // a device is written in place and named
    r = run("traces export " + db.string() + " -o /dev/full");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err.rfind("specplan: /dev/full: ", 0), 0u) << r.err;
}

// [SECTION] the GPU module -------------------------------------------------------

// Every library the dynamic loader maps for `specplan ARGS`, dlopen included
// (LD_DEBUG=files names each "file=NAME"), one per line.
static std::string libraries_loaded(const std::string& args) {
    const fs::path log = scratch() / "ld_debug.txt";
    const std::string cmd = "LD_DEBUG=files " + std::string(SPECPLAN_CLI) + " " + args + " >/dev/null 2>" + log.string();
    (void)std::system(cmd.c_str());
    std::istringstream in(slurp(log));
    std::string libs, line;
    while (std::getline(in, line)) {
        const size_t at = line.find("file=");
        if (at == std::string::npos) continue;
        libs += line.substr(at + 5, line.find_first_of(" \t;", at) - at - 5) + "\n";
    }
    return libs;
}

// The commands that need no GPU never map cudart or cuBLAS: `specplan
// --version` mapped them (221 MB, issue 13), and so did traces and sweep.
// The GPU part is a module (cli/gpu.h) only GPU commands open; a build
// without CUDA has none. The check's own control: the trace store's SQLite
// is in the list, and in a CUDA build, `profile` (which opens the module
// whether or not a GPU answers) maps cudart.
TEST(Cli, CommandsWithoutAGpuNeverMapCudaLibraries) {
    const std::string version = libraries_loaded("--version");
    ASSERT_NE(version.find("libsqlite3"), std::string::npos) << version;  // the check sees what is loaded
    const fs::path db = fresh("synth.specdb");
    ASSERT_EQ(run("traces synth -o " + db.string() + " --requests 4 --alpha 0.8 --gamma 4").code, 0);
    for (const std::string& args :
         {std::string("--version"), "traces info " + db.string(),
          "sweep " + scenario("teaching.toml") + kSmallSweep, "plan " + scenario("teaching.toml") + " --users 4"}) {
        const std::string libs = libraries_loaded(args);
        EXPECT_EQ(libs.find("libcudart"), std::string::npos) << args << " maps:\n" << libs;
        EXPECT_EQ(libs.find("libcublas"), std::string::npos) << args << " maps:\n" << libs;
        EXPECT_EQ(libs.find("libspecplan_gpu"), std::string::npos) << args << " maps:\n" << libs;
        EXPECT_EQ(libs.find("libcuda."), std::string::npos) << args << " maps:\n" << libs;
    }
    const fs::path gpu_module = fs::path(SPECPLAN_CLI).parent_path() / "libspecplan_gpu.so";
    if (!fs::exists(gpu_module)) return;  // built without CUDA: nothing could map them
    const std::string profile = libraries_loaded("profile --model qwen3-0.6b -o " + fresh("p.specdb").string() +
                                                 " --r 1 --q 1 --context 0 --prefill-b 16 --reps 1 --warmup 0 "
                                                 "--draft-layers 0");
    EXPECT_NE(profile.find("libspecplan_gpu"), std::string::npos) << profile;
    EXPECT_NE(profile.find("libcudart"), std::string::npos) << profile;
}

// `traces synth -o :memory:` hung (set_wal retried an in-memory journal forever).
TEST(Cli, AnInMemoryStoreNameIsOneLineNotAHang) {
    Result r = run("traces synth -o :memory: --alpha 0.5 --gamma 2 --requests 1");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find(":memory:: expected the path of a trace store file"), std::string::npos) << r.err;
}

// --device cuda where no GPU answers named CUDA_CHECK's source line and error
// code; now one line: no CUDA device (CUDA build) or built without CUDA.
TEST(Cli, DeviceCudaWithoutAGpuIsOneLineSayingSo) {
    const std::string args = "generate --model " + std::string(SPECPLAN_SOURCE_DIR) +
                             "/tests/fixtures/tiny-qwen3 --device cuda --drafter none --ids 1,2,3 --max-new 2";
    Result r = run(args);
    if (r.code == 0) GTEST_SKIP() << "a CUDA device is present: generate ran";
    expect_one_line(r, args, {"--device cuda: "});
    EXPECT_TRUE(r.err.find("no CUDA device") != std::string::npos ||
                r.err.find("built without CUDA") != std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find(".cpp"), std::string::npos) << r.err;
}
