// test_scenario_edit.cpp: the dashboard's scenario draft (gui/scenario_edit.h).
// A draft loaded and validated must equal what scenario_load reads from the
// same file; saved into another folder it must load to the same scenario
// (relative paths rebased); edits land on the right keys; bad edits fail with
// the loader's one-line message; a failed save leaves the old file whole;
// saves use a unique temporary, so concurrent saves of one path do not collide.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "gui/scenario_edit.h"
#include "scratch.h"
#include "traces/trace_db.h"

using namespace sp;
namespace fs = std::filesystem;

static const std::string SRC = SPECPLAN_SOURCE_DIR;

static std::string canonical(const std::string& p) { return p.empty() ? p : fs::weakly_canonical(p).string(); }

// The fields a sweep depends on.
static void expect_same(const Scenario& a, const Scenario& b) {
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.seed, b.seed);
    EXPECT_EQ(a.workload.mode, b.workload.mode);
    EXPECT_EQ(a.workload.concurrency, b.workload.concurrency);
    EXPECT_EQ(a.workload.rates, b.workload.rates);
    EXPECT_EQ(a.workload.requests, b.workload.requests);
    EXPECT_EQ(a.workload.warmup, b.workload.warmup);
    EXPECT_EQ(a.workload.lengths, b.workload.lengths);
    ASSERT_EQ(a.workload.mix.size(), b.workload.mix.size());
    for (size_t i = 0; i < a.workload.mix.size(); i++) {
        EXPECT_EQ(a.workload.mix[i].domain, b.workload.mix[i].domain);
        EXPECT_DOUBLE_EQ(a.workload.mix[i].weight, b.workload.mix[i].weight);
        EXPECT_EQ(a.workload.mix[i].alpha, b.workload.mix[i].alpha);
    }
    EXPECT_EQ(a.engine.gamma, b.engine.gamma);
    EXPECT_EQ(a.engine.max_seqs, b.engine.max_seqs);
    EXPECT_EQ(a.engine.kv_capacity_tokens, b.engine.kv_capacity_tokens);
    EXPECT_EQ(a.engine.disaggregated_prefill, b.engine.disaggregated_prefill);
    EXPECT_EQ(a.acceptance.kind, b.acceptance.kind);
    EXPECT_EQ(canonical(a.acceptance.trace_path), canonical(b.acceptance.trace_path));
    EXPECT_EQ(a.acceptance.run_id, b.acceptance.run_id);
    EXPECT_DOUBLE_EQ(a.acceptance.alpha, b.acceptance.alpha);
    EXPECT_EQ(a.cost.kind, b.cost.kind);
    EXPECT_EQ(a.cost.roofline.gpu.name, b.cost.roofline.gpu.name);
    EXPECT_EQ(a.cost.roofline.model.name, b.cost.roofline.model.name);
    EXPECT_DOUBLE_EQ(a.cost.roofline.bw_efficiency, b.cost.roofline.bw_efficiency);
    EXPECT_EQ(a.cost.measured.verify.size(), b.cost.measured.verify.size());
    EXPECT_EQ(a.cost.drafter.kind, b.cost.drafter.kind);
    EXPECT_EQ(a.cost.drafter.n_layers, b.cost.drafter.n_layers);
    ASSERT_EQ(a.policies.size(), b.policies.size());
    for (size_t i = 0; i < a.policies.size(); i++) EXPECT_EQ(a.policies[i].name, b.policies[i].name);
    EXPECT_EQ(a.compare_a, b.compare_a);
    EXPECT_EQ(a.compare_b, b.compare_b);
    EXPECT_DOUBLE_EQ(a.slo.per_user_tok_s, b.slo.per_user_tok_s);
    EXPECT_DOUBLE_EQ(a.slo.ttft_s, b.slo.ttft_s);
}

class EveryScenario : public ::testing::TestWithParam<const char*> {};

TEST_P(EveryScenario, ValidatesAndSavesToTheSameScenario) {
    const std::string path = SRC + "/scenarios/" + GetParam();
    Scenario want;
    try {
        want = scenario_load(path);
    } catch (const Error& e) {
        GTEST_SKIP() << "does not load here: " << e.what();
    }
    ScenarioDraft d = draft_load(path);
    expect_same(draft_validate(d), want);

    ScratchDir dir("scenario_edit");
    const std::string saved = dir.file("nested/copy.toml");
    fs::create_directories(dir.file("nested"));
    draft_save(d, saved);
    EXPECT_EQ(d.path, saved);
    expect_same(scenario_load(saved), want);
    // relative references were rewritten, not made absolute
    for (const char* key : {"acceptance.trace", "cost.profiles"}) {
        std::string p = draft_string(d, key, "");
        if (!p.empty()) {
            EXPECT_TRUE(fs::path(p).is_relative()) << key << " = " << p;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, EveryScenario,
                         ::testing::Values("default.toml", "teaching.toml", "roofline-h200-llama3.toml",
                                           "measured.toml", "measured-engine.toml", "measured-engine-32b.toml",
                                           "dspark-vs-mtp1.toml", "live-demo.toml"));

TEST(ScenarioEdit, EditsLandOnTheirKeys) {
    ScenarioDraft d = draft_load(SRC + "/scenarios/teaching.toml");
    draft_set(d, "engine.gamma", int64_t(3));
    draft_set(d, "acceptance.alpha", 0.55);
    draft_set(d, "cost.drafter.layers", int64_t(2));     // creates [cost.drafter] if missing
    draft_set_ints(d, "workload.concurrency", {1, 3, 9});
    draft_set(d, "policies.list", std::vector<std::string>{"ar", "fixed:2"});
    draft_erase(d, "policies.compare");
    Scenario s = draft_validate(d);
    EXPECT_EQ(s.engine.gamma, 3);
    EXPECT_DOUBLE_EQ(s.acceptance.alpha, 0.55);
    EXPECT_EQ(s.cost.drafter.n_layers, 2);
    EXPECT_EQ(s.workload.concurrency, (std::vector<int>{1, 3, 9}));
    ASSERT_EQ(s.policies.size(), 2u);
    EXPECT_EQ(s.policies[1].name, "fixed:2");
    EXPECT_TRUE(s.compare_a.empty());
    EXPECT_EQ(draft_int(d, "engine.gamma", -1), 3);
    EXPECT_EQ(draft_int(d, "no.such.key", -1), -1);
    EXPECT_DOUBLE_EQ(draft_number(d, "engine.gamma", -1), 3.0);   // integers read as numbers
    draft_erase(d, "no.such.key");                                 // absent: nothing happens
    EXPECT_FALSE(d.table.at_path("no"));
}

TEST(ScenarioEdit, BadEditsFailWithTheLoadersMessage) {
    ScenarioDraft d = draft_load(SRC + "/scenarios/teaching.toml");
    draft_set(d, "engine.gamma", int64_t(0));
    try {
        draft_validate(d);
        FAIL() << "gamma 0 validated";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(d.path + ": engine.gamma: expected", 0), 0u) << e.what();
    }
    EXPECT_THROW(draft_parse("[engine\ngamma = 1", "x.toml"), Error);
    try {
        draft_parse("a = 1\n[engine\n", "x.toml");
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("x.toml:2:", 0), 0u) << e.what();
    }
    EXPECT_THROW(draft_load("/nonexistent/s.toml"), Error);
}

// The names in `dir` other than `keep`: a save's leftovers.
static std::vector<std::string> others(const std::string& dir, const std::vector<std::string>& keep) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (std::find(keep.begin(), keep.end(), n) == keep.end()) out.push_back(n);
    }
    return out;
}

static std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(ScenarioEdit, AFailedSaveKeepsTheOldFile) {
    ScratchDir dir("scenario_edit");
    const std::string path = dir.file("s.toml");
    ScenarioDraft d = draft_load(SRC + "/scenarios/teaching.toml");
    draft_save(d, path);
    const std::string before = slurp(path);
    // A file-size limit below the scenario's size makes the write fail (as a
    // full disk would; root ignores permissions, so they cannot).
    struct rlimit old {};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 64;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    draft_set(d, "engine.gamma", int64_t(2));
    EXPECT_THROW(draft_save(d, path), Error);
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_EQ(before, slurp(path));
    EXPECT_EQ(draft_int(draft_load(path), "engine.gamma", 0), 4);
    EXPECT_EQ(others(dir.path(), {"s.toml"}), std::vector<std::string>{});  // no temporary left behind
}

// The temporary file's name is unique: a stray "s.toml.tmp" (the fixed name
// of an older build, or another writer's) neither blocks a save nor is touched.
TEST(ScenarioEdit, ASaveUsesItsOwnTemporary) {
    ScratchDir dir("scenario_edit");
    const std::string path = dir.file("s.toml");
    fs::create_directories(path + ".tmp");
    ScenarioDraft d = draft_load(SRC + "/scenarios/teaching.toml");
    draft_set(d, "engine.gamma", int64_t(3));
    ASSERT_NO_THROW(draft_save(d, path));
    EXPECT_EQ(draft_int(draft_load(path), "engine.gamma", 0), 3);
    EXPECT_TRUE(fs::is_directory(path + ".tmp"));
    EXPECT_EQ(others(dir.path(), {"s.toml", "s.toml.tmp"}), std::vector<std::string>{});
}

// Saves of one path from several threads at once: every save succeeds, the
// file is always one whole draft, and no temporary is left behind.
TEST(ScenarioEdit, ConcurrentSavesOfOnePathDoNotCollide) {
    ScratchDir dir("scenario_edit");
    const std::string path = dir.file("s.toml");
    const ScenarioDraft base = draft_load(SRC + "/scenarios/teaching.toml");
    constexpr int THREADS = 4, SAVES = 25;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < THREADS; t++)
        threads.emplace_back([&, t] {
            ScenarioDraft d = base;
            draft_set(d, "engine.gamma", int64_t(4 + t));  // teaching.toml's fixed:4 needs gamma >= 4
            for (int i = 0; i < SAVES; i++) {
                try {
                    draft_save(d, path);
                } catch (const Error&) {
                    failures++;
                }
            }
        });
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    const int64_t gamma = draft_int(draft_load(path), "engine.gamma", 0);
    EXPECT_GE(gamma, 4);
    EXPECT_LE(gamma, 4 + THREADS - 1);
    EXPECT_NO_THROW(draft_validate(draft_load(path)));
    EXPECT_EQ(others(dir.path(), {"s.toml"}), std::vector<std::string>{});
}

// A new file gets the usual permissions (0666 less the umask), not mkstemp's
// 0600; a saved-over file keeps its own.
TEST(ScenarioEdit, ASaveKeepsTheFilesPermissions) {
    ScratchDir dir("scenario_edit");
    const std::string path = dir.file("s.toml");
    ScenarioDraft d = draft_load(SRC + "/scenarios/teaching.toml");
    const mode_t mask = ::umask(022);
    draft_save(d, path);
    EXPECT_EQ(fs::status(path).permissions(), fs::perms(0644));
    fs::permissions(path, fs::perms(0640));
    draft_save(d, path);
    ::umask(mask);
    EXPECT_EQ(fs::status(path).permissions(), fs::perms(0640));
}
