// test_trace_jsonl.cpp: the JSON Lines export/import of a trace database.
//
// The reference is data built here by hand through the trace_db writers, not
// the exporter's own output: records read back after a round trip are
// compared with the records that were written, and key lines of the export
// with text written out in full below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/trace_db.h"
#include "traces/trace_jsonl.h"

namespace fs = std::filesystem;
using namespace sp;

namespace {

// Everything a database holds, in export order: runs by id, then per run its
// requests by idx (with positions and steps), then profiles by id.
struct Snapshot {
    std::vector<Run> runs;
    std::vector<Request> requests;
    std::vector<Positions> positions;
    std::vector<Step> steps;
    std::vector<Profile> profiles;
};

Snapshot snapshot(TraceDb& db) {
    Snapshot s;
    s.runs = trace_db_runs(db);
    std::sort(s.runs.begin(), s.runs.end(), [](const Run& a, const Run& b) { return a.id < b.id; });
    for (const Run& r : s.runs) {
        for (const Request& q : trace_db_requests(db, r.id)) {
            s.requests.push_back(q);
            Positions p;
            if (trace_db_positions(db, q.id, &p)) s.positions.push_back(p);
        }
        trace_db_for_each_step(db, r.id, [&](const Step& st) { s.steps.push_back(st); });
    }
    s.profiles = trace_db_profiles(db);
    return s;
}

// Ids replaced by ordinals (1-based, in snapshot order), so that two databases
// holding the same records under different ids compare equal.
Snapshot normalized(Snapshot s) {
    std::map<int64_t, int64_t> run, req;
    for (Run& r : s.runs) r.id = run[r.id] = static_cast<int64_t>(run.size()) + 1;
    for (Request& q : s.requests) {
        q.id = req[q.id] = static_cast<int64_t>(req.size()) + 1;
        q.run_id = run.at(q.run_id);
    }
    for (Positions& p : s.positions) p.request_id = req.at(p.request_id);
    for (Step& st : s.steps) st.request_id = req.at(st.request_id);
    int64_t n = 0;
    for (Profile& p : s.profiles) {
        p.id = ++n;
        p.run_id = p.run_id ? run.at(p.run_id) : 0;
    }
    return s;
}

void expect_same(const Snapshot& a, const Snapshot& b) {
    EXPECT_TRUE(a.runs == b.runs);
    EXPECT_TRUE(a.requests == b.requests);
    EXPECT_TRUE(a.positions == b.positions);
    EXPECT_TRUE(a.steps == b.steps);
    EXPECT_TRUE(a.profiles == b.profiles);
}

void expect_counts(TraceDb& db, const TraceCounts& c) {
    TraceCounts now = trace_db_counts(db);
    EXPECT_EQ(now.runs, c.runs);
    EXPECT_EQ(now.requests, c.requests);
    EXPECT_EQ(now.positions, c.positions);
    EXPECT_EQ(now.anchors, c.anchors);
    EXPECT_EQ(now.steps, c.steps);
    EXPECT_EQ(now.profiles, c.profiles);
}

ModelShape qwen() {
    return {"qwen3-8b", 8190735360, 36, 4096, 32, 8, 128, 12288, 151936, 2, 2};
}

ModelShape drafter() {
    return {"dspark-0.6b", 596049920, 28, 1024, 16, 8, 128, 3072, 151936, 0.5625, 1};
}

// One step; bonus exactly when every draft was accepted.
Step step(int i, int batch, int verify_len, int accepted) {
    Step s;
    s.step = i;
    s.batch_size = batch;
    s.verify_len = verify_len;
    s.n_accepted = accepted;
    s.bonus = accepted == verify_len;
    s.draft_ns = 1000 + i;
    s.verify_ns = 5000000000LL + i;  // past 2^32: must stay an int64
    s.t_ns = 7000000LL * i;
    s.batch_tokens = batch * (1 + verify_len) + i;
    s.host_ns = 3000 + i;
    return s;
}

const std::string UNICODE_DOMAIN = "code \"quoted\" ünï 日本 \\ back\ttab";

// Writes the reference data set through the trace_db writers and returns it as
// a Snapshot of what was written (ids as assigned). It covers: a complete run
// and an incomplete one, a run without requests, positions with and without
// confidences and with and without draft probabilities, a request without positions, requests appended out of idx
// order, profiles with and without a run.
Snapshot build_reference(TraceDb& db) {
    Snapshot s;
    // Run A: sampled (T = 0.7), gamma 2, complete.
    Run a;
    a.producer = PRODUCER_SYNTHETIC;
    a.target = qwen();
    a.drafter_kind = "dspark";
    a.drafter_name = "dspark-0.6b";
    a.gpu = "NVIDIA H100 80GB HBM3";
    a.temperature = 0.7;
    a.gamma = 2;
    a.created_at = "2026-01-02T03:04:05Z";
    a.git_rev = "0123456789ab";
    a.notes = "say \"hi\"";
    trace_db_begin_run(db, a);

    // A0: output 5 at gamma 2, so anchors t = 0..2 have both slots real, t = 3
    // only slot 1 and t = 4 none; unreal slots are 0.
    Request a0{0, a.id, 0, UNICODE_DOMAIN, 17, 5};
    trace_db_append_request(db, a0);
    Positions pa0;
    pa0.request_id = a0.id;
    pa0.gamma = 2;
    pa0.n = 5;
    pa0.beta = {1, 0.5f, 0.1f, 1.0f / 3, 0, 1e-7f, 0.75f, 0, 0, 0};
    pa0.conf_logit = {2.5f, -0.0f, -3.25f, 1e30f, 0.1f, -7, 0.125f, 0, 0, 0};
    pa0.conf_prob = {0.9f, 0.5f, 0.03f, 1, 0.52f, 0.001f, 0.6f, 0, 0, 0};
    trace_db_append_positions(db, pa0);
    std::vector<Step> sa0 = {step(0, 4, 2, 2), step(1, 4, 2, 0), step(2, 3, 2, 1)};
    for (Step& x : sa0) x.request_id = a0.id;
    trace_db_append_steps(db, sa0);

    // A1: positions without a confidence head but with draft probabilities, no steps.
    Request a1{0, a.id, 1, "chat", 40, 3};
    trace_db_append_request(db, a1);
    Positions pa1;
    pa1.request_id = a1.id;
    pa1.gamma = 2;
    pa1.n = 3;
    pa1.beta = {0.25f, 0.875f, 0.5f, 0, 0, 0};
    pa1.draft_prob = {0.75f, 1e-7f, 1, 0, 0, 0};
    trace_db_append_positions(db, pa1);

    // A2: steps but no positions.
    Request a2{0, a.id, 2, "gsm8k", 100, 4};
    trace_db_append_request(db, a2);
    std::vector<Step> sa2 = {step(0, 1, 2, 1), step(1, 1, 0, 0)};
    for (Step& x : sa2) x.request_id = a2.id;
    trace_db_append_steps(db, sa2);
    trace_db_finish_run(db, a.id);
    a.complete = true;

    // Run B: greedy engine run, gamma 1, never finished; idx 1 appended before idx 0.
    Run b;
    b.producer = PRODUCER_ENGINE;
    b.target = qwen();
    b.drafter_kind = "eagle3";
    b.drafter_name = "eagle3-qwen3-8b";
    b.gpu = "NVIDIA H200";
    b.temperature = 0;
    b.gamma = 1;
    b.created_at = "2026-02-03T04:05:06Z";
    b.git_rev = "fedcba987654-dirty";
    trace_db_begin_run(db, b);
    Request b1{0, b.id, 1, "chat", 8, 2};
    trace_db_append_request(db, b1);
    Request b0{0, b.id, 0, "code", 9, 3};
    trace_db_append_request(db, b0);
    Positions pb0;
    pb0.request_id = b0.id;
    pb0.gamma = 1;
    pb0.n = 3;
    pb0.beta = {1, 0, 0};
    pb0.conf_logit = {4, -4, 0};
    pb0.conf_prob = {0.98f, 0.02f, 0};
    trace_db_append_positions(db, pb0);
    std::vector<Step> sb1 = {step(0, 8, 1, 1), step(1, 8, 1, 0)};
    for (Step& x : sb1) x.request_id = b1.id;
    trace_db_append_steps(db, sb1);
    std::vector<Step> sb0 = {step(0, 8, 1, 0)};
    for (Step& x : sb0) x.request_id = b0.id;
    trace_db_append_steps(db, sb0);

    // Run C: no requests, complete, notes on two lines.
    Run c;
    c.producer = PRODUCER_IMPORTER;
    c.target = drafter();
    c.drafter_kind = "none";
    c.drafter_name = "";
    c.gpu = "none";
    c.temperature = 1;
    c.gamma = 4;
    c.created_at = "2026-03-04T05:06:07Z";
    c.git_rev = "unknown";
    c.notes = "line one\nline two";
    trace_db_begin_run(db, c);
    trace_db_finish_run(db, c.id);
    c.complete = true;

    Profile p1;
    p1.run_id = 0;
    p1.gpu = "NVIDIA H100 80GB HBM3";
    p1.model = qwen();
    p1.phase = PHASE_VERIFY;
    p1.n_seqs = 8;
    p1.n_tokens = 24;
    p1.context = 4096;
    p1.latency_us_p50 = 12.5;
    p1.latency_us_p10 = 10.25;
    p1.latency_us_p90 = 15.125;
    p1.n_samples = 50;
    trace_db_append_profile(db, p1);
    Profile p2 = p1;
    p2.run_id = a.id;
    p2.model = drafter();
    p2.phase = PHASE_PREFILL;
    p2.latency_us_p50 = 0.1;
    p2.latency_us_p10 = 1e-3;
    p2.latency_us_p90 = 123456.789;
    trace_db_append_profile(db, p2);
    Profile p3 = p1;
    p3.run_id = b.id;
    p3.phase = PHASE_DRAFT;
    p3.n_seqs = 1;
    trace_db_append_profile(db, p3);

    s.runs = {a, b, c};
    s.requests = {a0, a1, a2, b0, b1};
    s.positions = {pa0, pa1, pb0};
    s.steps = sa0;
    s.steps.insert(s.steps.end(), sa2.begin(), sa2.end());
    s.steps.insert(s.steps.end(), sb0.begin(), sb0.end());
    s.steps.insert(s.steps.end(), sb1.begin(), sb1.end());
    s.profiles = {p1, p2, p3};
    return s;
}

// A small unrelated data set: what a target database already held before an import.
void build_existing(TraceDb& db) {
    Run r;
    r.target = drafter();
    r.drafter_kind = "mtp";
    r.drafter_name = "mtp-head";
    r.gpu = "none";
    r.gamma = 3;
    trace_db_begin_run(db, r);
    Request q{0, r.id, 0, "existing", 5, 1};
    trace_db_append_request(db, q);
    Positions p;
    p.request_id = q.id;
    p.gamma = 3;
    p.n = 1;
    p.beta = {0, 0, 0};
    trace_db_append_positions(db, p);
    Step st = step(0, 2, 3, 3);
    st.request_id = q.id;
    trace_db_append_steps(db, std::span<const Step>(&st, 1));
    trace_db_finish_run(db, r.id);
    Profile pr;
    pr.gpu = "none";
    pr.model = drafter();
    pr.n_seqs = 1;
    pr.n_tokens = 1;
    pr.latency_us_p50 = pr.latency_us_p10 = pr.latency_us_p90 = 3;
    pr.n_samples = 1;
    trace_db_append_profile(db, pr);
}

std::string export_text(TraceDb& db, JsonlSummary* sum = nullptr) {
    std::ostringstream out;
    JsonlSummary s = trace_export_jsonl(db, out, "test.jsonl");
    if (sum) *sum = s;
    return out.str();
}

JsonlSummary import_text(TraceDb& db, const std::string& text, const std::string& name = "test.jsonl") {
    std::istringstream in(text);
    return trace_import_jsonl(db, in, name);
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string s;
    for (const std::string& l : lines) s += l + "\n";
    return s;
}

std::string type_of(const std::string& line) {
    return nlohmann::json::parse(line).at("type").get<std::string>();
}

class TraceJsonl : public ::testing::Test {
protected:
    fs::path dir;
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "specplan_jsonl_XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir = tmpl;
    }
    void TearDown() override { fs::remove_all(dir); }
    TraceDb create(const std::string& name) { return trace_db_open((dir / name).string(), TRACE_CREATE); }
};

TEST_F(TraceJsonl, ExportThenImportThenExportIsExactInBytesAndRecords) {
    TraceDb db1 = create("a.specdb");
    Snapshot ref = build_reference(db1);
    expect_same(snapshot(db1), ref);  // the store itself holds what was written

    JsonlSummary sa;
    std::string a = export_text(db1, &sa);
    EXPECT_EQ(sa, (JsonlSummary{3, 5, 3, 8, 3}));

    TraceDb db2 = create("b.specdb");
    JsonlSummary si = import_text(db2, a);
    EXPECT_EQ(si, sa);
    expect_same(normalized(snapshot(db2)), normalized(ref));
    // Into a fresh database even the ids come back, though run B's requests
    // were appended out of idx order.
    expect_same(snapshot(db2), ref);
    expect_counts(db2, trace_db_counts(db1));

    std::string b = export_text(db2);
    EXPECT_EQ(a, b);

    // The negative zero of a confidence logit keeps its sign through the text.
    Snapshot s2 = snapshot(db2);
    ASSERT_EQ(s2.positions.size(), 3u);
    EXPECT_TRUE(std::signbit(s2.positions[0].conf_logit[1]));
}

TEST_F(TraceJsonl, ExportWritesTheDocumentedLinesInTheDocumentedOrder) {
    TraceDb db = create("a.specdb");
    Snapshot ref = build_reference(db);
    std::vector<std::string> lines = split_lines(export_text(db));

    std::vector<std::string> types;
    for (const std::string& l : lines) types.push_back(type_of(l));
    std::vector<std::string> want = {
        "specplan-traces",
        "run", "request", "request", "request",  // A: A0 A1 A2
        "positions", "step", "step", "step",     // A0
        "positions",                             // A1
        "step", "step",                          // A2
        "run", "request", "request",             // B: B0 B1
        "positions", "step",                     // B0
        "step", "step",                          // B1
        "run",                                   // C
        "profile", "profile", "profile"};
    EXPECT_EQ(types, want);
    ASSERT_EQ(lines.size(), want.size());

    const sp::Run& a = ref.runs[0];  // sp::: gtest's Test::Run() hides the type in a test body
    const Request& a0 = ref.requests[0];
    auto id = [](int64_t x) { return std::to_string(x); };
    EXPECT_EQ(lines[0], R"({"type":"specplan-traces","version":1})");
    EXPECT_EQ(lines[1],
              R"({"type":"run","id":)" + id(a.id) +
                  R"(,"producer":"synthetic","target":{"name":"qwen3-8b","n_params":8190735360,"n_layers":36,)"
                  R"("hidden":4096,"n_heads":32,"n_kv_heads":8,"head_dim":128,"ffn":12288,"vocab":151936,)"
                  R"("bytes_per_weight":2.0,"bytes_per_kv":2.0},"drafter_kind":"dspark","drafter_name":"dspark-0.6b",)"
                  R"("gpu":"NVIDIA H100 80GB HBM3","temperature":0.7,"gamma":2,"created_at":"2026-01-02T03:04:05Z",)"
                  R"("git_rev":"0123456789ab","notes":"say \"hi\"","complete":true})");
    EXPECT_EQ(lines[2], R"({"type":"request","id":)" + id(a0.id) + R"(,"run":)" + id(a.id) +
                            R"(,"idx":0,"domain":"code \"quoted\" ünï 日本 \\ back\ttab","prompt_len":17,"output_len":5})");
    EXPECT_EQ(lines[5], R"({"type":"positions","request":)" + id(a0.id) +
                            R"(,"gamma":2,"n":5,"beta":[1,0.5,0.1,0.33333334,0,1e-07,0.75,0,0,0],)"
                            R"("conf_logit":[2.5,-0.0,-3.25,1e+30,0.1,-7,0.125,0,0,0],)"
                            R"("conf_prob":[0.9,0.5,0.03,1,0.52,0.001,0.6,0,0,0]})");
    EXPECT_EQ(lines[6], R"({"type":"step","request":)" + id(a0.id) +
                            R"(,"step":0,"batch_size":4,"verify_len":2,"n_accepted":2,"bonus":true,)"
                            R"("draft_ns":1000,"verify_ns":5000000000,"t_ns":0,"batch_tokens":12,"host_ns":3000})");
    // Positions without a confidence head: the conf arrays are left out;
    // draft_prob after them when recorded (A0 above has none: left out).
    EXPECT_EQ(lines[9], R"({"type":"positions","request":)" + id(ref.requests[1].id) +
                            R"(,"gamma":2,"n":3,"beta":[0.25,0.875,0.5,0,0,0],"draft_prob":[0.75,1e-07,1,0,0,0]})");
    // Run B is not finished.
    EXPECT_NE(lines[12].find(R"("notes":"","complete":false})"), std::string::npos) << lines[12];
    EXPECT_NE(lines[19].find(R"("notes":"line one\nline two","complete":true})"), std::string::npos) << lines[19];
    EXPECT_EQ(lines[20], R"({"type":"profile","id":)" + id(ref.profiles[0].id) +
                             R"(,"run":0,"gpu":"NVIDIA H100 80GB HBM3","model":{"name":"qwen3-8b","n_params":8190735360,)"
                             R"("n_layers":36,"hidden":4096,"n_heads":32,"n_kv_heads":8,"head_dim":128,"ffn":12288,)"
                             R"("vocab":151936,"bytes_per_weight":2.0,"bytes_per_kv":2.0},"phase":"verify","n_seqs":8,)"
                             R"("n_tokens":24,"context":4096,"latency_us_p50":12.5,"latency_us_p10":10.25,)"
                             R"("latency_us_p90":15.125,"n_samples":50})");
    EXPECT_NE(lines[21].find(R"(,"run":)" + id(a.id) + R"(,)"), std::string::npos) << lines[21];
}

TEST_F(TraceJsonl, HandWrittenFileImportsToTheExpectedRecords) {
    // Source ids that are neither 1-based nor contiguous, keys out of the
    // export's order, empty conf arrays, and blank lines at the end.
    std::string text =
        "{\"version\":1,\"type\":\"specplan-traces\"}\n"
        "{\"type\":\"run\",\"id\":40,\"producer\":\"engine\",\"target\":{\"name\":\"m\",\"n_params\":1000,"
        "\"n_layers\":2,\"hidden\":64,\"n_heads\":4,\"n_kv_heads\":2,\"head_dim\":16,\"ffn\":256,\"vocab\":100,"
        "\"bytes_per_weight\":2,\"bytes_per_kv\":1},\"drafter_kind\":\"mtp\",\"drafter_name\":\"d\",\"gpu\":\"g\","
        "\"temperature\":0,\"gamma\":2,\"created_at\":\"2020-01-01T00:00:00Z\",\"git_rev\":\"r\",\"notes\":\"\","
        "\"complete\":true}\n"
        "{\"type\":\"request\",\"run\":40,\"id\":77,\"idx\":0,\"domain\":\"x\",\"prompt_len\":3,\"output_len\":2}\n"
        "{\"type\":\"positions\",\"request\":77,\"gamma\":2,\"n\":2,\"beta\":[0.1,0,1,0],\"conf_logit\":[],"
        "\"conf_prob\":[],\"draft_prob\":[]}\n"
        "{\"type\":\"step\",\"request\":77,\"step\":0,\"batch_size\":1,\"verify_len\":2,\"n_accepted\":1,"
        "\"bonus\":false,\"draft_ns\":5,\"verify_ns\":6,\"t_ns\":7}\n"
        "{\"type\":\"profile\",\"id\":3,\"run\":40,\"gpu\":\"g\",\"model\":{\"name\":\"m\",\"n_params\":1000,"
        "\"n_layers\":2,\"hidden\":64,\"n_heads\":4,\"n_kv_heads\":2,\"head_dim\":16,\"ffn\":256,\"vocab\":100,"
        "\"bytes_per_weight\":2,\"bytes_per_kv\":1},\"phase\":\"draft\",\"n_seqs\":1,\"n_tokens\":2,\"context\":3,"
        "\"latency_us_p50\":4,\"latency_us_p10\":3.5,\"latency_us_p90\":4.5,\"n_samples\":9}\n"
        "\n\n";
    TraceDb db = create("a.specdb");
    EXPECT_EQ(import_text(db, text), (JsonlSummary{1, 1, 1, 1, 1}));

    ModelShape m{"m", 1000, 2, 64, 4, 2, 16, 256, 100, 2, 1};
    Snapshot s = snapshot(db);
    ASSERT_EQ(s.runs.size(), 1u);
    sp::Run r = s.runs[0];
    EXPECT_EQ(r.producer, PRODUCER_ENGINE);
    EXPECT_EQ(r.target, m);
    EXPECT_EQ(r.drafter_kind, "mtp");
    EXPECT_EQ(r.gamma, 2);
    EXPECT_EQ(r.created_at, "2020-01-01T00:00:00Z");
    EXPECT_EQ(r.git_rev, "r");
    EXPECT_TRUE(r.complete);
    ASSERT_EQ(s.requests.size(), 1u);
    EXPECT_EQ(s.requests[0], (Request{s.requests[0].id, r.id, 0, "x", 3, 2}));
    ASSERT_EQ(s.positions.size(), 1u);
    EXPECT_EQ(s.positions[0].request_id, s.requests[0].id);
    EXPECT_EQ(s.positions[0].beta, (std::vector<float>{0.1f, 0, 1, 0}));
    EXPECT_FALSE(s.positions[0].has_confidence());
    EXPECT_TRUE(s.positions[0].conf_logit.empty());
    EXPECT_TRUE(s.positions[0].draft_prob.empty()) << "an empty draft_prob array is not recorded";
    ASSERT_EQ(s.steps.size(), 1u);
    EXPECT_EQ(s.steps[0], (Step{s.requests[0].id, 0, 1, 2, 1, false, 5, 6, 7}));
    ASSERT_EQ(s.profiles.size(), 1u);
    Profile p = s.profiles[0];
    EXPECT_EQ(p.run_id, r.id);
    EXPECT_EQ(p.model, m);
    EXPECT_EQ(p.phase, PHASE_DRAFT);
    EXPECT_EQ(p.latency_us_p10, 3.5);
    EXPECT_EQ(p.n_samples, 9);
}

TEST_F(TraceJsonl, ImportIntoADatabaseWithDataAppendsAndLeavesTheOldDataAlone) {
    TraceDb src = create("a.specdb");
    Snapshot ref = build_reference(src);
    std::string a = export_text(src);

    TraceDb db = create("b.specdb");
    build_existing(db);
    Snapshot before = snapshot(db);
    TraceCounts c0 = trace_db_counts(db);

    import_text(db, a);
    import_text(db, a);  // twice: fresh ids each time, no clash
    Snapshot after = snapshot(db);

    // The old records come first (lowest ids) and are unchanged.
    ASSERT_EQ(after.runs.size(), before.runs.size() + 6);
    Snapshot old, added1, added2;
    auto split = [&](auto member) {
        auto& all = after.*member;
        size_t n0 = (before.*member).size(), n = (ref.*member).size();
        ASSERT_EQ(all.size(), n0 + 2 * n);
        old.*member = {all.begin(), all.begin() + n0};
        added1.*member = {all.begin() + n0, all.begin() + n0 + n};
        added2.*member = {all.begin() + n0 + n, all.end()};
    };
    split(&Snapshot::runs);
    split(&Snapshot::requests);
    split(&Snapshot::positions);
    split(&Snapshot::steps);
    split(&Snapshot::profiles);
    expect_same(old, before);
    // Profiles that referred to a run still refer to their own (new) run.
    Snapshot want = normalized(ref);
    expect_same(normalized(added1), want);
    expect_same(normalized(added2), want);
    EXPECT_EQ(added1.profiles[1].run_id, added1.runs[0].id);
    EXPECT_EQ(added2.profiles[1].run_id, added2.runs[0].id);
    EXPECT_EQ(added1.profiles[0].run_id, 0);

    TraceCounts c1 = trace_db_counts(src), c = trace_db_counts(db);
    EXPECT_EQ(c.runs, c0.runs + 2 * c1.runs);
    EXPECT_EQ(c.requests, c0.requests + 2 * c1.requests);
    EXPECT_EQ(c.positions, c0.positions + 2 * c1.positions);
    EXPECT_EQ(c.anchors, c0.anchors + 2 * c1.anchors);
    EXPECT_EQ(c.steps, c0.steps + 2 * c1.steps);
    EXPECT_EQ(c.profiles, c0.profiles + 2 * c1.profiles);
}

TEST_F(TraceJsonl, AnEmptyInputIsRefusedAsMissingTheHeader) {
    TraceDb db = create("a.specdb");
    try {
        import_text(db, "", "empty.jsonl");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "empty.jsonl:1: type: expected \"specplan-traces\" (the header line), got end of file");
    }
}

// Endless input without a newline, as /dev/zero: `served` counts the bytes
// handed out, so a test sees that reading stopped.
struct EndlessBuf : std::streambuf {
    char block[4096];
    size_t served = 0;
    EndlessBuf() { std::fill(std::begin(block), std::end(block), 'x'); }
    int_type underflow() override {
        served += sizeof block;
        setg(block, block, block + sizeof block);
        return traits_type::to_int_type(block[0]);
    }
};

// `traces import /dev/zero` grew to 5.1 GB in 10 s: a line is refused as
// soon as it passes the limit, naming its line, and the store is untouched.
TEST_F(TraceJsonl, ALineLongerThanTheLimitIsRefusedBeforeItIsReadWhole) {
    TraceDb db = create("a.specdb");
    build_existing(db);
    const Snapshot before = snapshot(db);
    EndlessBuf endless;
    std::istream in(&endless);
    try {
        trace_import_jsonl(db, in, "zero", 10000);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "zero:1: line longer than 10000 bytes");
    }
    EXPECT_LT(endless.served, 20000u);
    expect_same(snapshot(db), before);

    // Later lines are named; a line of exactly the limit is read.
    TraceDb src = create("b.specdb");
    build_reference(src);
    std::vector<std::string> lines = split_lines(export_text(src));
    size_t longest = 0;
    for (const std::string& l : lines) longest = std::max(longest, l.size());
    TraceDb ok = create("c.specdb");
    std::istringstream good(join_lines(lines));
    EXPECT_NO_THROW(trace_import_jsonl(ok, good, "good.jsonl", longest));
    lines[2] += std::string(longest, ' ');
    std::istringstream bad(join_lines(lines));
    try {
        trace_import_jsonl(db, bad, "long.jsonl", longest);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "long.jsonl:3: line longer than " + std::to_string(longest) + " bytes");
    }
    expect_same(snapshot(db), before);
}

// ---- a bad line in the middle of a valid export

// Index (0-based) of the nth (0-based) line of a type.
size_t nth(const std::vector<std::string>& lines, const std::string& type, int n) {
    for (size_t i = 0; i < lines.size(); i++)
        if (type_of(lines[i]) == type && n-- == 0) return i;
    throw std::runtime_error("no such line");
}

void replace_once(std::string& s, const std::string& from, const std::string& to) {
    size_t p = s.find(from);
    if (p == std::string::npos) throw std::runtime_error("not found: " + from + " in " + s);
    s.replace(p, from.size(), to);
}

// Changes the lines and returns the 1-based number of the line now bad.
using Mutation = std::function<size_t(std::vector<std::string>&)>;

struct BadCase {
    const char* name;
    Mutation mutate;
    const char* want;  // expected in the message after "bad.jsonl:<line>: "
};

// Replaces text in the nth line of a type.
Mutation edit(const char* type, int n, std::string from, std::string to) {
    return [=](std::vector<std::string>& lines) {
        size_t i = nth(lines, type, n);
        replace_once(lines[i], from, to);
        return i + 1;
    };
}

const BadCase BAD_CASES[] = {
    {"step_bool_as_integer", edit("step", 7, "\"bonus\":false", "\"bonus\":0"),
     "bonus: expected true or false, got 0"},
    {"string_as_array", edit("request", 4, "\"domain\":\"chat\"", "\"domain\":[\"chat\"]"),
     "domain: expected a string, got an array of 1 element"},
    {"integer_as_string", edit("step", 6, "\"batch_size\":8", "\"batch_size\":\"8\""),
     "batch_size: expected integer in [1, 2147483647], got \"8\""},
    {"integer_as_fraction", edit("request", 3, "\"prompt_len\":9", "\"prompt_len\":9.5"),
     "prompt_len: expected integer in [0, 2147483647], got 9.5"},
    {"bonus_without_full_accept", edit("step", 7, "\"bonus\":false", "\"bonus\":true"),
     "bonus: expected false when n_accepted < verify_len, got true"},
    {"step_repeated", edit("step", 2, "\"step\":2", "\"step\":1"),
     "step: expected a step index >= 2 (a request's steps in increasing order), got 1"},
    {"verify_len_above_run_gamma", edit("step", 6, "\"verify_len\":1,\"n_accepted\":1", "\"verify_len\":2,\"n_accepted\":2"),
     "verify_len: expected integer in [0, 1], got 2"},
    {"zero_bytes_per_weight", edit("profile", 1, "\"bytes_per_weight\":0.5625", "\"bytes_per_weight\":0"),
     "model.bytes_per_weight: expected a finite number > 0, got 0"},
    {"percentiles_out_of_order", edit("profile", 0, "\"latency_us_p50\":12.5", "\"latency_us_p50\":20"),
     "latency_us_p50: expected p10 <= p50 <= p90, got 10.25, 20.0, 15.125"},
    {"positions_gamma_not_run_gamma", edit("positions", 2, "\"gamma\":1", "\"gamma\":2"),
     "gamma: expected the run's gamma 1, got 2"},
    {"missing_field", edit("run", 2, ",\"gamma\":4", ""), "gamma: expected integer in [1, 64], got nothing"},
    {"missing_nested_field", edit("run", 1, "\"vocab\":151936,", ""),
     "target.vocab: expected integer in [0, 2147483647], got nothing"},
    {"unknown_key", edit("profile", 2, "\"n_samples\":50", "\"n_samples\":50,\"extra\":1"),
     "extra: expected no such key, got 1"},
    {"beta_too_short", edit("positions", 1, "0.5,0,0,0]", "0.5,0,0]"),
     "beta: expected an array of 6 numbers, got an array of 5 elements"},
    {"conf_prob_too_long", edit("positions", 2, "\"conf_prob\":[0.98,", "\"conf_prob\":[0.5,0.98,"),
     "conf_prob: expected an array of 3 numbers, got an array of 4 elements"},
    {"conf_prob_without_conf_logit", edit("positions", 2, "\"conf_logit\":[4,-4,0],", ""),
     "conf_logit: expected an array of 3 numbers, got nothing"},
    {"beta_out_of_range", edit("positions", 2, "\"beta\":[1,", "\"beta\":[1.5,"),
     "beta[0]: expected a number in [0, 1], got 1.5"},
    {"draft_prob_too_short", edit("positions", 1, "\"draft_prob\":[0.75,", "\"draft_prob\":["),
     "draft_prob: expected an array of 6 numbers, got an array of 5 elements"},
    {"draft_prob_out_of_range", edit("positions", 1, "\"draft_prob\":[0.75,", "\"draft_prob\":[1.75,"),
     "draft_prob[0]: expected a number in [0, 1], got 1.75"},
    {"conf_logit_out_of_float_range", edit("positions", 0, "1e+30", "1e+300"),
     "conf_logit[3]: expected a finite float32 number, got 1e+300"},
    {"negative_length", edit("request", 3, "\"output_len\":3", "\"output_len\":-3"),
     "output_len: expected integer in [0, 2147483647], got -3"},
    {"accepted_more_than_verified", edit("step", 7, "\"n_accepted\":0", "\"n_accepted\":2"),
     "n_accepted: expected integer in [0, 1], got 2"},
    {"positions_n_not_output_len", edit("positions", 2, "\"n\":3", "\"n\":4"),
     "n: expected the request's output_len 3, got 4"},
    {"unknown_phase", edit("profile", 1, "\"phase\":\"prefill\"", "\"phase\":\"decode\""),
     "phase: expected \"draft\", \"verify\" or \"prefill\", got \"decode\""},
    {"unknown_type", edit("step", 5, "{\"type\":\"step\"", "{\"type\":\"stepp\""),
     "type: expected \"run\", \"request\", \"positions\", \"step\" or \"profile\", got \"stepp\""},
    {"nan_as_a_bare_token", edit("positions", 2, "\"beta\":[1,", "\"beta\":[NaN,"),
     "json: expected a JSON object, got invalid JSON (column"},
    {"number_overflow", edit("step", 7, "\"t_ns\":", "\"t_ns\":1e999,\"x\":"),
     "json: expected a JSON object, got invalid JSON (number overflow"},
    {"malformed_json",
     [](std::vector<std::string>& lines) {
         size_t i = nth(lines, "request", 4);
         lines[i].pop_back();  // the closing brace
         return i + 1;
     },
     "json: expected a JSON object, got invalid JSON (column"},
    {"not_an_object",
     [](std::vector<std::string>& lines) {
         size_t i = nth(lines, "run", 2);
         lines[i] = "[1,2]";
         return i + 1;
     },
     "line: expected a JSON object, got an array of 2 elements"},
    {"unknown_step_reference",
     [](std::vector<std::string>& lines) {
         size_t i = nth(lines, "step", 7);
         nlohmann::ordered_json j = nlohmann::ordered_json::parse(lines[i]);
         j["request"] = 999999;
         lines[i] = j.dump();
         return i + 1;
     },
     "request: expected the id of a request defined earlier in the file, got 999999"},
    {"forward_run_reference",
     [](std::vector<std::string>& lines) {
         // A profile naming run C, moved before run C's line.
         size_t c = nth(lines, "run", 2);
         nlohmann::ordered_json j = nlohmann::ordered_json::parse(lines[nth(lines, "profile", 0)]);
         j["run"] = nlohmann::ordered_json::parse(lines[c])["id"];
         lines.insert(lines.begin() + static_cast<long>(c), j.dump());
         return c + 1;
     },
     "run: expected the id of a run defined earlier in the file, got"},
    {"duplicate_run_id",
     [](std::vector<std::string>& lines) {
         size_t c = nth(lines, "run", 2);
         lines.insert(lines.begin() + static_cast<long>(c) + 1, lines[nth(lines, "run", 0)]);
         return c + 2;
     },
     "id: expected an id not used earlier in the file, got"},
    {"blank_line_in_the_middle",
     [](std::vector<std::string>& lines) {
         size_t c = nth(lines, "run", 2);
         lines.insert(lines.begin() + static_cast<long>(c), "");
         return c + 1;
     },
     "line: expected a JSON object (blank lines only at the end), got an empty line"},
    {"newer_version", edit("specplan-traces", 0, "\"version\":1", "\"version\":2"),
     "version: expected 1 (a newer file needs a newer specplan), got 2"},
    {"missing_header",
     [](std::vector<std::string>& lines) {
         lines.erase(lines.begin());
         return size_t{1};
     },
     "type: expected \"specplan-traces\" (the header line), got \"run\""},
    {"refused_by_the_store",
     [](std::vector<std::string>& lines) {
         // A second request with idx 1 in run A: idx is unique per run.
         size_t i = nth(lines, "request", 2);
         nlohmann::ordered_json j = nlohmann::ordered_json::parse(lines[nth(lines, "request", 1)]);
         j["id"] = 999999;
         lines.insert(lines.begin() + static_cast<long>(i), j.dump());
         return i + 1;
     },
     ""},
};

// Names the case in ctest's listing instead of dumping its bytes.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class TraceJsonlBadLine : public TraceJsonl, public ::testing::WithParamInterface<BadCase> {};

TEST_P(TraceJsonlBadLine, IsRefusedWithItsLineAndTheDatabaseIsLeftAsItWas) {
    const BadCase& c = GetParam();
    TraceDb src = create("a.specdb");
    build_reference(src);
    std::string good = export_text(src);
    std::vector<std::string> lines = split_lines(good);
    size_t line = c.mutate(lines);
    std::string bad = join_lines(lines);

    TraceDb db = create("b.specdb");
    build_existing(db);
    Snapshot before = snapshot(db);
    TraceCounts counts = trace_db_counts(db);

    try {
        import_text(db, bad, "bad.jsonl");
        FAIL() << "no error for line " << line;
    } catch (const Error& e) {
        std::string msg = e.what();
        std::string at = "bad.jsonl:" + std::to_string(line) + ": ";
        EXPECT_EQ(msg.rfind(at, 0), 0u) << msg;
        EXPECT_NE(msg.find(c.want), std::string::npos) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    expect_counts(db, counts);
    expect_same(snapshot(db), before);

    // The failed import left no transaction open: the good file still imports.
    EXPECT_NO_THROW(import_text(db, good));
    EXPECT_EQ(trace_db_counts(db).runs, counts.runs + 3);
}

INSTANTIATE_TEST_SUITE_P(Variants, TraceJsonlBadLine, ::testing::ValuesIn(BAD_CASES),
                         [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

}  // namespace
