// test_capture.cpp: `specplan generate` and `specplan capture` as a user runs
// them (the CLI binary, CPU reference, tiny fixtures), and the traces that
// capture writes, read back through the trace store.
//
//  - capture is exact under greedy: replaying a request's positions at
//    fixed:gamma (accept the leading run of beta = 1) gives exactly the accept
//    counts of its live steps;
//  - capture records every drafter's probability of its draft (draft_prob):
//    1 for n-gram, and for the target drafting for itself the target's own
//    top probability at that position, from a forward of the reference;
//  - a capture killed midway keeps its committed requests, and --resume
//    completes it to the same trace a single run writes;
//  - bad drafter folders (calibration.json included) and bad prompt files
//    give one line, exit 1, and write nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/model.h"
#include "tests/cli_run.h"
#include "tests/scratch.h"
#include "tests/spec_run.h"
#include "traces/trace_db.h"

namespace fs = std::filesystem;

namespace sp {
namespace {

const std::string kFixtures = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";

// n prompts of token ids, in two domains.
std::string write_prompts(const ScratchDir& dir, int n, const std::string& name = "prompts.jsonl") {
    std::ofstream f(dir.file(name));
    for (int i = 0; i < n; i++)
        f << "{\"prompt_ids\": [1, " << (17 * i + 5) % 500 << ", " << (31 * i + 9) % 500 << ", 23, 7], \"domain\": \""
          << (i % 2 ? "code" : "chat") << "\"}\n";
    return dir.file(name);
}

// Accept counts of a request's steps replayed from its positions at fixed:l:
// step i verifies l_i drafts at output anchor t_i; it accepts the leading run
// of beta(t_i, k) = 1, k < l_i.
void expect_replay_matches_live(TraceDb& db, int64_t run_id) {
    for (const Request& req : trace_db_requests(db, run_id)) {
        Positions pos;
        ASSERT_TRUE(trace_db_positions(db, req.id, &pos));
        ASSERT_EQ(pos.n, req.output_len);
        std::vector<Step> steps;
        trace_db_for_each_step(db, run_id, [&](const Step& s) {
            if (s.request_id == req.id) steps.push_back(s);
        });
        ASSERT_FALSE(steps.empty());
        int t = 0;  // the anchor's output index
        for (const Step& s : steps) {
            int n = 0;
            while (n < s.verify_len && pos.beta[size_t(t) * pos.gamma + size_t(n)] == 1.0f) n++;
            EXPECT_EQ(n, s.n_accepted) << "request " << req.idx << " step " << s.step << " anchor " << t;
            t += s.n_accepted + 1;
        }
        // every output token after the first came from a step (one fewer
        // when the last step ended on an accepted EOS)
        EXPECT_GE(t, req.output_len - 1) << "request " << req.idx;
        EXPECT_LE(t, req.output_len) << "request " << req.idx;
    }
}

// ---------------------------------------------------------------------------
// [SECTION] generate

TEST(Generate, PrintsTauSpeedAndTheSpeedupForEveryDrafter) {
    ScratchDir dir;
    for (const std::string& d : {std::string("ngram"), kFixtures + "tiny-llama", kFixtures + "tiny-qwen3"}) {
        CliResult r = cli_run(dir, "generate --device cpu --model " + kFixtures + "tiny-qwen3 --drafter " + d +
                                " --ids 1,5,9,23,7 --max-new 40 --gamma 3");
        ASSERT_EQ(r.code, 0) << d << ": " << r.err;
        EXPECT_NE(r.out.find("tau "), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("speedup"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find("WARNING"), std::string::npos) << r.out;  // greedy outputs equal
    }
}

TEST(Generate, DSparkWithItsOwnSchedulerOnTheCpuReference) {
    ScratchDir dir;
    CliResult r = cli_run(dir, "generate --device cpu --model " + kFixtures + "tiny-qwen3-4l --drafter " + kFixtures +
                            "tiny-dspark --policy dspark --ids 1,5,9,23,7 --max-new 40");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("policy dspark"), std::string::npos) << r.out;
}

// Forced acceptance: the accept decisions come from a trace's positions. The
// tiny-llama drafter alone gets almost nothing accepted (tau about 1.0); with
// the bundled trace's (tau 3.3 to 5.1 by domain, gamma 7) replayed, the
// request's tau must rise into that range.
TEST(Generate, AcceptanceReplayedFromATraceDrivesTau) {
    ScratchDir dir;
    auto tau_of = [](const std::string& out) {
        const size_t at = out.find("tau ");
        return at == std::string::npos ? -1.0 : std::stod(out.substr(at + 4));
    };
    const std::string base = "generate --device cpu --model " + kFixtures + "tiny-qwen3 --drafter " + kFixtures +
                             "tiny-llama --gamma 7 --ids 1,5,9,23,7 --max-new 200 --no-baseline";
    CliResult plain = cli_run(dir, base);
    ASSERT_EQ(plain.code, 0) << plain.err;
    CliResult replay = cli_run(dir, base + " --acceptance replay:" + std::string(SPECPLAN_SOURCE_DIR) +
                                 "/traces/data/synthetic.specdb");
    ASSERT_EQ(replay.code, 0) << replay.err;
    std::printf("  tau without replay %.3f, with the trace's acceptance %.3f\n", tau_of(plain.out), tau_of(replay.out));
    EXPECT_LT(tau_of(plain.out), 1.5);
    EXPECT_GT(tau_of(replay.out), 2.5);
    EXPECT_LT(tau_of(replay.out), 8.0);
}

// ---------------------------------------------------------------------------
// [SECTION] capture

TEST(Capture, IsExactUnderGreedyForEveryDrafter) {
    struct Case {
        std::string target, drafter, kind;
    } cases[] = {
        {"tiny-qwen3", kFixtures + "tiny-qwen3", "draft-model"},
        {"tiny-qwen3", "ngram", "ngram"},
        {"tiny-qwen3-4l", kFixtures + "tiny-dspark", "dspark"},
        {"tiny-qwen3-4l", kFixtures + "tiny-dflash", "dflash"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.drafter);
        ScratchDir dir;
        const std::string db_path = dir.file("trace.specdb");
        CliResult r = cli_run(dir, "capture --device cpu --model " + kFixtures + c.target + " --drafter " + c.drafter +
                                " --prompts " + write_prompts(dir, 4) + " -o " + db_path + " --max-new 48 --gamma 3");
        ASSERT_EQ(r.code, 0) << r.err;
        TraceDb db = trace_db_open(db_path, TRACE_READ);
        const std::vector<sp::Run> runs = trace_db_runs(db);
        ASSERT_EQ(runs.size(), 1u);
        EXPECT_TRUE(runs[0].complete);
        EXPECT_EQ(runs[0].producer, PRODUCER_ENGINE);
        EXPECT_EQ(runs[0].drafter_kind, c.kind);
        EXPECT_EQ(runs[0].gamma, 3);
        EXPECT_FALSE(runs[0].git_rev.empty());
        ASSERT_EQ(trace_db_requests(db, runs[0].id).size(), 4u);
        EXPECT_EQ(trace_db_requests(db, runs[0].id)[1].domain, "code");
        expect_replay_matches_live(db, runs[0].id);
        Positions pos;
        ASSERT_TRUE(trace_db_positions(db, trace_db_requests(db, runs[0].id)[0].id, &pos));
        EXPECT_EQ(pos.has_confidence(), c.kind == "dspark");
        // draft_prob for every drafter: a probability for each slot, positive
        // where a draft was accepted (so drafted), 1 there for n-gram lookup
        for (const Request& req : trace_db_requests(db, runs[0].id)) {
            ASSERT_TRUE(trace_db_positions(db, req.id, &pos));
            ASSERT_EQ(pos.draft_prob.size(), size_t(pos.n) * size_t(pos.gamma)) << "request " << req.idx;
            for (size_t i = 0; i < pos.draft_prob.size(); i++) {
                EXPECT_TRUE(pos.draft_prob[i] >= 0 && pos.draft_prob[i] <= 1) << i;
                if (pos.beta[i] != 1.0f) continue;
                EXPECT_GT(pos.draft_prob[i], 0.0f) << "request " << req.idx << " slot " << i;
                if (c.kind == "ngram") {
                    EXPECT_EQ(pos.draft_prob[i], 1.0f) << "request " << req.idx << " slot " << i;
                }
            }
        }
    }
}

// The target drafting greedily for itself: teacher-forced at anchor t, draft k
// (0-based) proposes output token t + k + 1 from the target's own
// distribution at prompt position P + t + k, so its draft_prob is that row's
// largest softmax probability (temperature 1), computed here from a
// reference forward over prompt + response; slots past the response are 0.
TEST(Capture, DraftProbOfTheTargetAsItsOwnDrafterIsItsTopProbability) {
    ScratchDir dir;
    const std::string db_path = dir.file("self.specdb");
    const int max_new = 24, gamma = 3;
    CliResult r = cli_run(dir, "capture --device cpu --model " + kFixtures + "tiny-qwen3 --drafter " + kFixtures +
                                   "tiny-qwen3 --prompts " + write_prompts(dir, 2) + " -o " + db_path +
                                   " --max-new " + std::to_string(max_new) + " --gamma " + std::to_string(gamma));
    ASSERT_EQ(r.code, 0) << r.err;
    const ModelWeights w = weights_load(kFixtures + "tiny-qwen3");
    auto target = backend_cpu(w, 1);
    const int V = w.cfg.vocab;
    TraceDb db = trace_db_open(db_path, TRACE_READ);
    const std::vector<Request> reqs = trace_db_requests(db, trace_db_runs(db).at(0).id);
    ASSERT_EQ(reqs.size(), 2u);
    for (const Request& req : reqs) {
        SCOPED_TRACE("request " + std::to_string(req.idx));
        const int i = req.idx;
        const std::vector<int> prompt = {1, (17 * i + 5) % 500, (31 * i + 9) % 500, 23, 7};  // write_prompts' line i
        const std::vector<int> output = ar_outputs(*target, {prompt}, max_new, w.cfg.eos_id).at(0);
        ASSERT_EQ(int(output.size()), req.output_len);
        std::vector<int> all = prompt;
        all.insert(all.end(), output.begin(), output.end());
        const int P = int(prompt.size()), n = int(output.size());
        std::vector<float> logits;
        target->truncate(0, 0);
        target->forward(RaggedBatch{{0}, {P + n}, all}, &logits);
        Positions pos;
        ASSERT_TRUE(trace_db_positions(db, req.id, &pos));
        ASSERT_EQ(pos.draft_prob.size(), size_t(n) * gamma);
        int compared = 0;
        for (int t = 0; t < n; t++)
            for (int k = 0; k < gamma; k++) {
                const float got = pos.draft_prob[size_t(t) * gamma + size_t(k)];
                if (t + k + 1 >= n) {
                    EXPECT_EQ(got, 0.0f) << "t " << t << " k " << k << ": past the response";
                    continue;
                }
                const float* row = logits.data() + size_t(P + t + k) * size_t(V);
                const double top = *std::max_element(row, row + V);
                double sum = 0;
                for (int v = 0; v < V; v++) sum += std::exp(double(row[v]) - top);
                EXPECT_NEAR(got, 1.0 / sum, 1e-5) << "t " << t << " k " << k;
                compared++;
            }
        EXPECT_GT(compared, 3 * gamma);
    }
}

TEST(Capture, SamplingWritesBetaAsMinOfOneAndPOverQ) {
    // The target drafting for itself: q = p, so beta = min(1, p/q) = 1 up to
    // rounding wherever a draft exists.
    ScratchDir dir;
    const std::string db_path = dir.file("t1.specdb");
    CliResult r = cli_run(dir, "capture --device cpu --model " + kFixtures + "tiny-qwen3 --drafter " + kFixtures +
                            "tiny-qwen3 --temperature 1 --prompts " + write_prompts(dir, 2) + " -o " + db_path +
                            " --max-new 32 --gamma 3");
    ASSERT_EQ(r.code, 0) << r.err;
    TraceDb db = trace_db_open(db_path, TRACE_READ);
    for (const Request& req : trace_db_requests(db, trace_db_runs(db)[0].id)) {
        Positions pos;
        ASSERT_TRUE(trace_db_positions(db, req.id, &pos));
        for (int t = 0; t < pos.n; t++)
            for (int k = 0; k < pos.gamma && t + k + 1 < pos.n; k++)
                EXPECT_NEAR(pos.beta[size_t(t) * pos.gamma + size_t(k)], 1.0f, 1e-5f) << t << " " << k;
    }
}

TEST(Capture, AKilledCaptureKeepsItsRequestsAndResumeCompletesIt) {
    ScratchDir dir;
    const int n = 60;
    const std::string prompts = write_prompts(dir, n);
    const std::string flags = "capture --quiet --device cpu --model " + kFixtures + "tiny-qwen3 --drafter " +
                              kFixtures + "tiny-llama --prompts " + prompts + " --max-new 100 --gamma 3";
    // the whole capture in one go, for comparison
    ASSERT_EQ(cli_run(dir, flags + " -o " + dir.file("whole.specdb")).code, 0);

    // the same, killed once a few requests are in
    const std::string killed = dir.file("killed.specdb");
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        const std::string cmd = std::string(SPECPLAN_CLI) + " " + flags + " -o " + killed + " >/dev/null 2>&1";
        execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
        _exit(127);
    }
    int committed = 0;
    for (int i = 0; i < 3000 && committed < 3; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        try {
            TraceDb db = trace_db_open(killed, TRACE_READ);
            committed = int(trace_db_counts(db).requests);
        } catch (const Error&) {
        }
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    int64_t kept = 0;
    {
        TraceDb db = trace_db_open(killed, TRACE_READ);
        kept = trace_db_counts(db).requests;
        ASSERT_FALSE(trace_db_runs(db).back().complete) << "the capture finished before it was killed";
    }
    ASSERT_GE(kept, 3);
    ASSERT_LT(kept, n);
    CliResult r = cli_run(dir, flags + " -o " + killed + " --resume");
    ASSERT_EQ(r.code, 0) << r.err;

    TraceDb a = trace_db_open(dir.file("whole.specdb"), TRACE_READ), b = trace_db_open(killed, TRACE_READ);
    const sp::Run ra = trace_db_runs(a)[0], rb = trace_db_runs(b)[0];
    EXPECT_TRUE(rb.complete);
    const std::vector<Request> qa = trace_db_requests(a, ra.id), qb = trace_db_requests(b, rb.id);
    ASSERT_EQ(qa.size(), qb.size());
    for (size_t i = 0; i < qa.size(); i++) {
        EXPECT_EQ(qa[i].idx, qb[i].idx);
        EXPECT_EQ(qa[i].output_len, qb[i].output_len);
        Positions pa, pb;
        ASSERT_TRUE(trace_db_positions(a, qa[i].id, &pa));
        ASSERT_TRUE(trace_db_positions(b, qb[i].id, &pb));
        EXPECT_EQ(pa.beta, pb.beta) << "request " << i;
    }
    // a second --resume finds nothing to continue
    CliResult again = cli_run(dir, flags + " -o " + killed + " --resume");
    EXPECT_EQ(again.code, 1);
    EXPECT_EQ(again.err_lines(), 1) << again.err;
}

// ---------------------------------------------------------------------------
// [SECTION] bad input: one line, exit 1, nothing written

// A copy of a drafter fixture with its config.json edited.
std::string edited_drafter(const ScratchDir& dir, const std::string& from, const std::string& name,
                           const std::function<void(nlohmann::json&)>& edit) {
    const fs::path to = dir.file(name);
    fs::create_directories(to);
    for (const auto& e : fs::directory_iterator(kFixtures + from))
        if (e.path().filename() != "config.json") fs::copy_file(e.path(), to / e.path().filename());
    nlohmann::json j = nlohmann::json::parse(slurp(kFixtures + from + "/config.json"));
    edit(j);
    std::ofstream(to / "config.json") << j.dump(2);
    return to.string();
}

// A copy of tiny-dspark whose calibration.json holds text.
std::string drafter_with_calibration(const ScratchDir& dir, const std::string& name, const std::string& text) {
    const std::string to = edited_drafter(dir, "tiny-dspark", name, [](auto&) {});
    std::ofstream(to + "/calibration.json") << text;
    return to;
}

TEST(CaptureBadInput, BadDrafterFoldersAreOneLineNamingTheMismatch) {
    ScratchDir dir;
    const std::string prompts = write_prompts(dir, 2);
    struct Case {
        std::string drafter, needle;
    } cases[] = {
        // bad calibration files (tiny-dspark's block is 4 slots)
        {drafter_with_calibration(dir, "cal-json", "{\"method\": \"sts\", "), "calibration.json: not valid JSON"},
        {drafter_with_calibration(dir, "cal-method", R"({"method": "platt", "temperatures": [1, 1, 1, 1]})"),
         "calibration.json: method"},
        {drafter_with_calibration(dir, "cal-count", R"({"method": "sts", "temperatures": [1, 1, 1]})"),
         "calibration.json: temperatures: expected a list of 4"},
        {drafter_with_calibration(dir, "cal-zero", R"({"method": "sts", "temperatures": [1, 0, 1, 1]})"),
         "calibration.json: temperatures"},
        {drafter_with_calibration(dir, "cal-text", R"({"method": "sts", "temperatures": [1, "1", 1, 1]})"),
         "calibration.json: temperatures"},
        {edited_drafter(dir, "tiny-dspark", "hidden", [](auto& j) { j["hidden_size"] = 96; }), "hidden_size"},
        {edited_drafter(dir, "tiny-dspark", "vocab", [](auto& j) { j["vocab_size"] = 1024; }), "vocab_size"},
        {edited_drafter(dir, "tiny-dspark", "layer", [](auto& j) { j["target_layer_ids"] = {0, 1, 3}; }),
         "target_layer_ids"},
        {edited_drafter(dir, "tiny-dspark", "gated", [](auto& j) { j["markov_head_type"] = "gated"; }),
         "markov_head_type"},
        {edited_drafter(dir, "tiny-dflash", "nohead", [](auto& j) { j["enable_confidence_head"] = true; }),
         "confidence_head.proj.weight"},
        {edited_drafter(dir, "tiny-dspark", "arch", [](auto& j) { j["architectures"] = {"Qwen3MedusaModel"}; }),
         "architectures"},
        {edited_drafter(dir, "tiny-eagle3", "deep", [](auto& j) { j["num_hidden_layers"] = 2; }),
         "num_hidden_layers"},
        {edited_drafter(dir, "tiny-eagle3", "e3layer", [](auto& j) { j["target_layer_ids"] = {0, 3}; }),
         "target_layer_ids"},
        {edited_drafter(dir, "tiny-eagle3", "e3hidden", [](auto& j) { j["hidden_size"] = 96; }), "hidden_size"},
        {kFixtures + "tiny-qwen3-4l/nonexistent", "nonexistent"},
        {"ngram:0", "ngram"},
    };
    for (const Case& c : cases) {
        const std::string out = dir.file("never.specdb");
        CliResult r = cli_run(dir, "capture --device cpu --model " + kFixtures + "tiny-qwen3-4l --drafter " + c.drafter +
                                " --prompts " + prompts + " -o " + out);
        EXPECT_EQ(r.code, 1) << c.drafter << ": " << r.err;
        EXPECT_EQ(r.err_lines(), 1) << c.drafter << ": " << r.err;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.drafter << ": " << r.err;
        EXPECT_FALSE(fs::exists(out)) << c.drafter;
    }
}

TEST(CaptureBadInput, BadPromptFilesAreOneLineNamingTheLineAndField) {
    ScratchDir dir;
    struct Case {
        std::string text, needle;
    } cases[] = {
        {"{\"prompt_ids\": [1, 2]}\nnot json\n", ":2: expected a JSON object"},
        {"{\"domain\": \"chat\"}\n", ":1: prompt"},
        {"{\"prompt_ids\": [1, 99999]}\n", ":1: prompt_ids"},
        {"{\"prompt_ids\": [1, 2], \"domain\": 3}\n", ":1: domain"},
        {"{\"prompt\": \"hello\"}\n", "tokenizer"},  // text, and the tiny model has no tokenizer.json
        {"", "no prompts"},
    };
    for (const Case& c : cases) {
        std::ofstream(dir.file("bad.jsonl")) << c.text;
        const std::string out = dir.file("never.specdb");
        CliResult r = cli_run(dir, "capture --device cpu --model " + kFixtures + "tiny-qwen3 --drafter ngram --prompts " +
                                dir.file("bad.jsonl") + " -o " + out);
        EXPECT_EQ(r.code, 1) << c.text << ": " << r.err;
        EXPECT_EQ(r.err_lines(), 1) << c.text << ": " << r.err;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.text << ": " << r.err;
        EXPECT_FALSE(fs::exists(out)) << c.text;
    }
}

TEST(CaptureBadInput, AFailedCaptureLeavesAnExistingStoreAsItWas) {
    ScratchDir dir;
    const std::string db_path = dir.file("trace.specdb");
    ASSERT_EQ(cli_run(dir, "capture --device cpu --model " + kFixtures + "tiny-qwen3 --drafter ngram --prompts " +
                           write_prompts(dir, 2) + " -o " + db_path + " --max-new 16")
                  .code,
              0);
    const std::string before = slurp(db_path);
    std::ofstream(dir.file("bad.jsonl")) << "{\"prompt_ids\": []}\n";
    CliResult r = cli_run(dir, "capture --device cpu --model " + kFixtures + "tiny-qwen3 --drafter ngram --prompts " +
                            dir.file("bad.jsonl") + " -o " + db_path);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(slurp(db_path), before);
}

}  // namespace
}  // namespace sp
