// test_trace_db.cpp: the trace store's contract (traces/trace_db.h), tested
// from the outside.
//
// The store sits between a GPU engine that writes traces for hours and a
// simulator that trusts what it reads, so three things matter and are tested
// here: every record comes back bit for bit (floats included, through blobs);
// a file that is not ours, too new, damaged or hand-edited is refused with a
// one-line sp::Error instead of giving a wrong answer or crashing; and a
// refused or abandoned write leaves the file exactly as it was.
//
// A plain sqlite3 connection (RawDb) does what the API must not: set pragmas,
// edit rows, inspect the journal mode. It names the tables of schema v1
// (models, runs, requests, positions, steps, profiles), as the README does.
#include "traces/trace_db.h"

#include <gtest/gtest.h>

#include "tests/scratch.h"
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <random>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;
using namespace sp;

// [SECTION] printing, so a failed EXPECT_EQ shows the records ---------------------

namespace sp {
static std::ostream& operator<<(std::ostream& os, const ModelShape& m) {
    return os << "{" << m.name << " P=" << m.n_params << " L=" << m.n_layers << " d=" << m.hidden
              << " H=" << m.n_heads << " KVH=" << m.n_kv_heads << " D=" << m.head_dim << " ffn=" << m.ffn
              << " V=" << m.vocab << " bpw=" << m.bytes_per_weight << " bpkv=" << m.bytes_per_kv << "}";
}
void PrintTo(const sp::Run& r, std::ostream* os) {
    *os << "Run{id=" << r.id << " producer=" << r.producer << " target=" << r.target << " drafter="
        << r.drafter_kind << "/" << r.drafter_name << " gpu=" << r.gpu << " T=" << r.temperature
        << " gamma=" << r.gamma << " created_at=" << r.created_at << " git_rev=" << r.git_rev
        << " notes=" << r.notes << " complete=" << r.complete << "}";
}
void PrintTo(const Request& q, std::ostream* os) {
    *os << "Request{id=" << q.id << " run=" << q.run_id << " idx=" << q.idx << " domain=" << q.domain
        << " prompt=" << q.prompt_len << " output=" << q.output_len << "}";
}
void PrintTo(const Positions& p, std::ostream* os) {
    *os << "Positions{request=" << p.request_id << " gamma=" << p.gamma << " n=" << p.n
        << " beta[" << p.beta.size() << "] conf_logit[" << p.conf_logit.size() << "] conf_prob["
        << p.conf_prob.size() << "] draft_prob[" << p.draft_prob.size() << "]}";
}
void PrintTo(const Step& s, std::ostream* os) {
    *os << "Step{request=" << s.request_id << " step=" << s.step << " R=" << s.batch_size << " l="
        << s.verify_len << " acc=" << s.n_accepted << " bonus=" << s.bonus << " draft=" << s.draft_ns
        << " verify=" << s.verify_ns << " t=" << s.t_ns << "}";
}
void PrintTo(const Profile& p, std::ostream* os) {
    *os << "Profile{id=" << p.id << " run=" << p.run_id << " gpu=" << p.gpu << " model=" << p.model
        << " phase=" << p.phase << " R=" << p.n_seqs << " B=" << p.n_tokens << " ctx=" << p.context
        << " p10/50/90=" << p.latency_us_p10 << "/" << p.latency_us_p50 << "/" << p.latency_us_p90
        << " n=" << p.n_samples << "}";
}
}  // namespace sp

// [SECTION] scratch files and a raw connection -----------------------------------

struct RawDb {
    sqlite3* db = nullptr;
    explicit RawDb(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
        if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK)
            throw std::runtime_error("raw open failed: " + path);
    }
    ~RawDb() { sqlite3_close_v2(db); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;
};

// Returns the primary result code; the caller decides whether failure is expected.
static int raw_exec(sqlite3* db, const std::string& sql) {
    return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) & 0xff;
}

// First column of the first row as text; "" when there is no row.
static std::string raw_text(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
        throw std::runtime_error("raw prepare failed: " + sql + ": " + sqlite3_errmsg(db));
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

static int64_t raw_int(sqlite3* db, const std::string& sql) { return std::stoll(raw_text(db, sql)); }

// Runs `sql` with ?1 bound to `bytes`; returns the rows it changed, -1 on error.
static int raw_with_blob(sqlite3* db, const std::string& sql, const std::vector<uint8_t>& bytes) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return -1;
    sqlite3_bind_blob(st, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(db) : -1;
}

// The on-disk encoding, written independently of trace_db.cpp: float32 little-endian.
static std::vector<uint8_t> le_floats(const std::vector<float>& v) {
    std::vector<uint8_t> out;
    for (float f : v) {
        uint32_t u = std::bit_cast<uint32_t>(f);
        for (int b = 0; b < 4; b++) out.push_back(static_cast<uint8_t>(u >> (8 * b)));
    }
    return out;
}

// [SECTION] errors ------------------------------------------------------------------

// The message of the sp::Error that `fn` throws. Records a failure when it throws
// nothing or something else, or when the message is empty or not one line.
template <typename F>
static std::string error_of(F&& fn, const char* file, int line) {
    try {
        fn();
    } catch (const Error& e) {
        std::string msg = e.what();
        if (msg.empty()) ADD_FAILURE_AT(file, line) << "sp::Error with an empty message";
        if (msg.find('\n') != std::string::npos || msg.find('\r') != std::string::npos)
            ADD_FAILURE_AT(file, line) << "sp::Error message is not one line: " << msg;
        return msg;
    } catch (const std::exception& e) {
        ADD_FAILURE_AT(file, line) << "threw something other than sp::Error: " << e.what();
        return "";
    } catch (...) {
        ADD_FAILURE_AT(file, line) << "threw something other than sp::Error";
        return "";
    }
    ADD_FAILURE_AT(file, line) << "did not throw";
    return "";
}
#define ERROR_OF(stmt) error_of([&] { stmt; }, __FILE__, __LINE__)

static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// [SECTION] sample records ------------------------------------------------------------

static ModelShape shape_8b() {
    ModelShape m;
    m.name = "qwen3-8b";
    m.n_params = 8'190'735'360;  // above 2^32: must not pass through an int
    m.n_layers = 36;
    m.hidden = 4096;
    m.n_heads = 32;
    m.n_kv_heads = 8;
    m.head_dim = 128;
    m.ffn = 12288;
    m.vocab = 151936;
    m.bytes_per_weight = 0.5625;  // 4.5-bit quantisation
    m.bytes_per_kv = 1.1;         // not exact in binary
    return m;
}

static ModelShape shape_70b() {
    ModelShape m;
    m.name = "meta-llama/Llama-3.1-70B";
    m.n_params = 70'553'706'496;
    m.n_layers = 80;
    m.hidden = 8192;
    m.n_heads = 64;
    m.n_kv_heads = 8;
    m.head_dim = 128;
    m.ffn = 28672;
    m.vocab = 128256;
    m.bytes_per_weight = 1.0 / 3.0;
    m.bytes_per_kv = 2;
    return m;
}

static sp::Run sample_run() {
    sp::Run r;
    r.producer = PRODUCER_ENGINE;
    r.target = shape_8b();
    r.drafter_kind = "dspark";
    r.drafter_name = "z-lab/dspark-qwen3-8b-b7";
    r.gpu = "NVIDIA H100 80GB HBM3";
    r.temperature = 0.7;
    r.gamma = 7;
    r.created_at = "2026-11-23T07:40:00Z";
    r.git_rev = "0123456789ab-dirty";
    r.notes = "quotes ' \" and ünïcødé; DROP TABLE runs; --";
    return r;
}

static Request sample_request(int64_t run_id, int idx, int output_len) {
    Request q;
    q.run_id = run_id;
    q.idx = idx;
    q.domain = idx % 2 ? "code" : "gsm8k";
    q.prompt_len = 100 + 17 * idx;
    q.output_len = output_len;
    return q;
}

// Floats that only survive a bit-exact store: not representable in decimal
// shortly, tiny, denormal, next to 1.
static float awkward_prob(size_t i) {
    const float v[] = {0.1f, 1e-7f, std::numeric_limits<float>::denorm_min(), 1.0f, 0.0f,
                       0.33333334f, std::nextafter(1.0f, 0.0f), 1e-40f};
    return v[i % std::size(v)];
}
static float awkward_logit(size_t i) {
    const float v[] = {-0.1f, 1e-7f, -std::numeric_limits<float>::denorm_min(), 3.0e38f, -3.0e38f,
                       -0.0f, 12.345678f, -1e-40f};
    return v[i % std::size(v)];
}

// Deterministic teacher-forced statistics for one request: real slots
// (t + k < n) carry values, the others are 0 as trace_db.h says.
static Positions make_positions(int64_t request_id, int gamma, int n, bool confidence, uint32_t seed) {
    Positions p;
    p.request_id = request_id;
    p.gamma = gamma;
    p.n = n;
    size_t count = static_cast<size_t>(n) * static_cast<size_t>(gamma);
    p.beta.assign(count, 0.0f);
    if (confidence) {
        p.conf_logit.assign(count, 0.0f);
        p.conf_prob.assign(count, 0.0f);
    }
    std::mt19937 rng(seed);
    auto unit = [&] { return static_cast<float>(rng() >> 8) * (1.0f / 16777216.0f); };  // [0, 1)
    for (int t = 0; t < n; t++)
        for (int k = 1; k <= gamma; k++) {
            if (t + k >= n) continue;
            size_t i = static_cast<size_t>(t) * static_cast<size_t>(gamma) + static_cast<size_t>(k - 1);
            p.beta[i] = i % 3 == 0 ? awkward_prob(i / 3) : unit();
            if (confidence) {
                p.conf_prob[i] = i % 4 == 1 ? awkward_prob(i / 4) : unit();
                p.conf_logit[i] = i % 4 == 2 ? awkward_logit(i / 4) : (unit() - 0.5f) * 37.0f;
            }
        }
    return p;
}

// The draft's probability of each draft (schema 3), awkward floats among them.
static std::vector<float> make_draft_prob(int gamma, int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<float> q(static_cast<size_t>(n) * static_cast<size_t>(gamma));
    for (size_t i = 0; i < q.size(); i++)
        q[i] = i % 2 ? awkward_prob(i / 2) : static_cast<float>(rng() >> 8) * (1.0f / 16777216.0f);
    return q;
}

// Deterministic verify steps; times above 2^32 ns so they must be stored as 64 bits.
static std::vector<Step> make_steps(int64_t request_id, int gamma, int count, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<Step> out;
    int64_t t = 0;
    for (int s = 0; s < count; s++) {
        Step st;
        st.request_id = request_id;
        st.step = s;
        st.batch_size = 1 + static_cast<int>(rng() % 64);
        st.verify_len = static_cast<int>(rng() % static_cast<uint32_t>(gamma + 1));
        st.n_accepted = static_cast<int>(rng() % static_cast<uint32_t>(st.verify_len + 1));
        st.bonus = st.n_accepted == st.verify_len;
        st.draft_ns = 1'000'000 + static_cast<int64_t>(rng() % 1000);
        st.verify_ns = 5'000'000'000 + static_cast<int64_t>(rng());
        st.t_ns = t;
        t += st.draft_ns + st.verify_ns;
        out.push_back(st);
    }
    return out;
}

static Profile sample_profile(int64_t run_id, const ModelShape& model, Phase phase, int n_tokens) {
    Profile p;
    p.run_id = run_id;
    p.gpu = "NVIDIA H200";
    p.model = model;
    p.phase = phase;
    p.n_seqs = 3;
    p.n_tokens = n_tokens;
    p.context = 4096;
    p.latency_us_p10 = 101.1;
    p.latency_us_p50 = 123.456789012345;
    p.latency_us_p90 = 150.0 + 1.0 / 7.0;
    p.n_samples = 50;
    return p;
}

// Everything a write could change, the shapes table included.
static auto snapshot(TraceDb& db) {
    TraceCounts c = trace_db_counts(db);
    return std::make_tuple(c.runs, c.requests, c.positions, c.anchors, c.steps, c.profiles,
                           raw_int(db.db, "SELECT count(*) FROM models"));
}

static std::vector<Step> read_steps(TraceDb& db, int64_t run_id) {
    std::vector<Step> out;
    trace_db_for_each_step(db, run_id, [&](const Step& s) { out.push_back(s); });
    return out;
}

// A store with one run (gamma 4), one request (output_len 6) with confidence
// positions and 5 steps, and one profile. Returns the request id.
static int64_t write_small_store(const std::string& path, sp::Run* run_out = nullptr) {
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    sp::Run r = sample_run();
    r.gamma = 4;
    trace_db_begin_run(db, r);
    Request q = sample_request(r.id, 0, 6);
    trace_db_append_request(db, q);
    trace_db_append_positions(db, make_positions(q.id, 4, 6, true, 1));
    std::vector<Step> steps = make_steps(q.id, 4, 5, 2);
    trace_db_append_steps(db, steps);
    Profile p = sample_profile(r.id, r.target, PHASE_VERIFY, 8);
    trace_db_append_profile(db, p);
    trace_db_finish_run(db, r.id);
    if (run_out) *run_out = trace_db_run(db, r.id);
    return q.id;
}

// [SECTION] round trip ------------------------------------------------------------------

TEST(TraceDb, EveryTableSurvivesTheRoundTrip) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("round_trip.specdb");

    sp::Run run1 = sample_run();
    // Same model name, different quantisation: a distinct shape, both must come back.
    sp::Run run2 = sample_run();
    run2.producer = PRODUCER_IMPORTER;
    run2.target.bytes_per_weight = 2;
    run2.drafter_kind = "none";
    run2.drafter_name = "";
    run2.gpu = "none";
    run2.temperature = 0;
    run2.gamma = 3;
    run2.notes = "";

    std::vector<Request> reqs1(4), reqs2(2);
    std::vector<Positions> stored_pos;
    std::vector<int64_t> no_pos;
    std::vector<Step> steps1, steps2;
    std::vector<Profile> profiles;
    {
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        trace_db_begin_run(db, run1);
        trace_db_begin_run(db, run2);
        EXPECT_GT(run1.id, 0);
        EXPECT_NE(run1.id, run2.id);

        // Appended out of idx order: readers return idx order.
        const int out_len[] = {13, 1, 40, 7};
        for (int idx : {2, 0, 3, 1}) {
            reqs1[idx] = sample_request(run1.id, idx, out_len[idx]);
            trace_db_append_request(db, reqs1[idx]);
        }
        for (int idx : {0, 1}) {
            reqs2[idx] = sample_request(run2.id, idx, 9 + idx);
            trace_db_append_request(db, reqs2[idx]);
        }

        stored_pos.push_back(make_positions(reqs1[0].id, 7, 13, true, 10));
        stored_pos.push_back(make_positions(reqs1[1].id, 7, 1, false, 11));
        stored_pos.push_back(make_positions(reqs1[2].id, 7, 40, true, 12));
        stored_pos.push_back(make_positions(reqs2[1].id, 3, 10, false, 13));
        stored_pos[0].draft_prob = make_draft_prob(7, 13, 14);  // with a confidence head
        stored_pos[3].draft_prob = make_draft_prob(3, 10, 15);  // without one; 1 and 2 have none
        for (const Positions& p : stored_pos) trace_db_append_positions(db, p);
        no_pos = {reqs1[3].id, reqs2[0].id};

        // Steps appended request idx 1 before idx 0, each request's steps reversed:
        // for_each_step must order by (request idx, step) itself.
        std::vector<Step> s0 = make_steps(reqs1[0].id, 7, 12, 20);
        std::vector<Step> s1 = make_steps(reqs1[1].id, 7, 3, 21);
        std::vector<Step> s3 = make_steps(reqs1[3].id, 7, 5, 22);
        for (const auto* v : {&s1, &s3, &s0}) {
            std::vector<Step> rev(v->rbegin(), v->rend());
            trace_db_append_steps(db, rev);
        }
        steps1 = s0;
        steps1.insert(steps1.end(), s1.begin(), s1.end());
        steps1.insert(steps1.end(), s3.begin(), s3.end());
        steps2 = make_steps(reqs2[1].id, 3, 4, 23);
        trace_db_append_steps(db, steps2);

        profiles.push_back(sample_profile(run1.id, run1.target, PHASE_DRAFT, 7));
        profiles.push_back(sample_profile(0, shape_70b(), PHASE_PREFILL, 2048));
        profiles[1].gpu = "NVIDIA H100 80GB HBM3";
        profiles[1].n_samples = 1;
        profiles[1].latency_us_p10 = profiles[1].latency_us_p50 = profiles[1].latency_us_p90 = 0.1;
        for (Profile& p : profiles) trace_db_append_profile(db, p);
        EXPECT_GT(profiles[0].id, 0);
        EXPECT_NE(profiles[0].id, profiles[1].id);

        trace_db_finish_run(db, run1.id);
        run1.complete = true;
        trace_db_close(db);
        EXPECT_EQ(db.db, nullptr);
    }

    TraceDb db = trace_db_open(path, TRACE_READ);
    EXPECT_EQ(trace_db_runs(db), (std::vector<sp::Run>{run1, run2}));
    EXPECT_EQ(trace_db_run(db, run1.id), run1);
    EXPECT_EQ(trace_db_run(db, run2.id), run2);
    EXPECT_EQ(trace_db_requests(db, run1.id), reqs1);
    EXPECT_EQ(trace_db_requests(db, run2.id), reqs2);
    for (const Positions& want : stored_pos) {
        Positions got;
        ASSERT_TRUE(trace_db_positions(db, want.request_id, &got)) << "request " << want.request_id;
        EXPECT_EQ(got, want);
        EXPECT_EQ(got.has_confidence(), !want.conf_prob.empty());
        // operator== on floats says -0 == 0 and would hide a NaN; compare the bits.
        EXPECT_EQ(le_floats(got.beta), le_floats(want.beta));
        EXPECT_EQ(le_floats(got.conf_logit), le_floats(want.conf_logit));
        EXPECT_EQ(le_floats(got.conf_prob), le_floats(want.conf_prob));
        EXPECT_EQ(le_floats(got.draft_prob), le_floats(want.draft_prob));
    }
    for (int64_t id : no_pos) {
        Positions got;
        EXPECT_FALSE(trace_db_positions(db, id, &got)) << "request " << id << " has no positions";
    }
    EXPECT_EQ(read_steps(db, run1.id), steps1);
    EXPECT_EQ(read_steps(db, run2.id), steps2);
    EXPECT_EQ(trace_db_profiles(db), profiles);

    TraceCounts c = trace_db_counts(db);
    EXPECT_EQ(c.runs, 2);
    EXPECT_EQ(c.requests, 6);
    EXPECT_EQ(c.positions, 4);
    EXPECT_EQ(c.anchors, 13 + 1 + 40 + 10);
    EXPECT_EQ(c.steps, 12 + 3 + 5 + 4);
    EXPECT_EQ(c.profiles, 2);
    EXPECT_EQ(raw_text(db.db, "PRAGMA foreign_key_check"), "");
}

TEST(TraceDb, AShapeIsStoredOnceAndSharedByRunsAndProfiles) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("shapes.specdb"), TRACE_CREATE);
    sp::Run a = sample_run(), b = sample_run(), c = sample_run();
    c.target.bytes_per_kv = 1;  // one field differs: another shape
    trace_db_begin_run(db, a);
    trace_db_begin_run(db, b);
    trace_db_begin_run(db, c);
    Profile p = sample_profile(a.id, shape_8b(), PHASE_VERIFY, 4);
    trace_db_append_profile(db, p);
    EXPECT_EQ(raw_int(db.db, "SELECT count(*) FROM models"), 2);
    EXPECT_EQ(trace_db_run(db, b.id).target, shape_8b());
    EXPECT_EQ(trace_db_run(db, c.id).target, c.target);
}

TEST(TraceDb, ProducerAndPhaseNamesParseBack) {
    const char* producers[] = {"engine", "importer", "synthetic"};
    for (int i = 0; i < PRODUCER_COUNT; i++) {
        EXPECT_STREQ(producer_name(static_cast<Producer>(i)), producers[i]);
        Producer p = PRODUCER_COUNT;
        EXPECT_TRUE(producer_parse(producers[i], &p));
        EXPECT_EQ(p, i);
    }
    const char* phases[] = {"draft", "verify", "prefill"};
    for (int i = 0; i < PHASE_COUNT; i++) {
        EXPECT_STREQ(phase_name(static_cast<Phase>(i)), phases[i]);
        Phase p = PHASE_COUNT;
        EXPECT_TRUE(phase_parse(phases[i], &p));
        EXPECT_EQ(p, i);
    }
    Producer p;
    Phase ph;
    EXPECT_FALSE(producer_parse("Engine", &p));
    EXPECT_FALSE(phase_parse("", &ph));
}

// [SECTION] runs: created_at, git_rev, complete ----------------------------------------

static std::string iso8601(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

TEST(TraceDb, BeginRunFillsInCreatedAtAndGitRevWhenEmpty) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("stamp.specdb");
    sp::Run r = sample_run();
    r.created_at = "";
    r.git_rev = "";
    std::string before, after;
    {
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        before = iso8601(std::time(nullptr));
        trace_db_begin_run(db, r);
        after = iso8601(std::time(nullptr));
    }
    EXPECT_TRUE(std::regex_match(r.created_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << r.created_at;
    // ISO 8601 strings of one format order as the times do.
    EXPECT_LE(before, r.created_at);
    EXPECT_LE(r.created_at, after);
    EXPECT_FALSE(r.git_rev.empty());
    EXPECT_FALSE(contains(r.git_rev, "\n"));

    TraceDb db = trace_db_open(path, TRACE_READ);
    sp::Run got = trace_db_run(db, r.id);
    EXPECT_EQ(got.created_at, r.created_at);
    EXPECT_EQ(got.git_rev, r.git_rev);
}

TEST(TraceDb, ARunIsIncompleteUntilFinishRun) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("complete.specdb");
    sp::Run r = sample_run();
    r.complete = true;  // the caller cannot claim completeness up front
    {
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        trace_db_begin_run(db, r);
        EXPECT_FALSE(r.complete);
        EXPECT_FALSE(trace_db_run(db, r.id).complete);
    }
    {
        TraceDb db = trace_db_open(path, TRACE_WRITE);
        EXPECT_FALSE(trace_db_run(db, r.id).complete);
        trace_db_finish_run(db, r.id);
        EXPECT_TRUE(trace_db_run(db, r.id).complete);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    EXPECT_TRUE(trace_db_run(db, r.id).complete);
    EXPECT_TRUE(trace_db_runs(db).at(0).complete);
}

TEST(TraceDb, FinishRunAndReadRunOfAMissingRunAreRefused) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("missing_run.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(db, r);
    std::string msg = ERROR_OF(trace_db_finish_run(db, r.id + 1));
    EXPECT_TRUE(contains(msg, db.path)) << msg;
    ERROR_OF(trace_db_run(db, r.id + 1));
    EXPECT_FALSE(trace_db_run(db, r.id).complete);
}

// [SECTION] schema versions -----------------------------------------------------------

// traces/data/demo.specdb was written at schema 1 (before steps had
// batch_tokens and host_ns, and positions draft_prob): read-only it reads as
// it is, with both 0 and no draft_prob; opened for writing it is migrated to
// the current version in place with every row kept.
TEST(TraceDb, AVersionOneStoreReadsWithZerosAndMigratesWhenOpenedForWriting) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("v1.specdb");
    fs::copy_file(fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/demo.specdb", path);
    {
        RawDb raw(path, SQLITE_OPEN_READONLY);
        ASSERT_EQ(raw_int(raw.db, "PRAGMA user_version"), 1) << "the committed demo store is no longer schema 1";
    }
    std::vector<Step> before;
    TraceCounts counts_before;
    {
        TraceDb db = trace_db_open(path, TRACE_READ);
        EXPECT_EQ(db.version, 1);
        counts_before = trace_db_counts(db);
        trace_db_for_each_step(db, 1, [&](const Step& st) { before.push_back(st); });
    }
    ASSERT_GT(before.size(), 1000u);
    for (const Step& st : before) ASSERT_EQ(std::tie(st.batch_tokens, st.host_ns), std::make_tuple(0, int64_t(0)));
    {
        RawDb raw(path, SQLITE_OPEN_READONLY);
        EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), 1) << "a read-only open migrated the file";
    }
    {
        TraceDb db = trace_db_open(path, TRACE_WRITE);
        EXPECT_EQ(db.version, TRACE_SCHEMA_VERSION);
        std::vector<Step> after;
        trace_db_for_each_step(db, 1, [&](const Step& st) { after.push_back(st); });
        EXPECT_EQ(after, before);
        const TraceCounts c = trace_db_counts(db);
        EXPECT_EQ(std::tie(c.runs, c.requests, c.positions, c.anchors, c.steps, c.profiles),
                  std::tie(counts_before.runs, counts_before.requests, counts_before.positions, counts_before.anchors,
                           counts_before.steps, counts_before.profiles));
        // the new columns take values
        sp::Run r = sample_run();
        trace_db_begin_run(db, r);
        Request q;
        q.run_id = r.id;
        q.domain = "code";
        q.prompt_len = 4;
        q.output_len = 3;
        trace_db_append_request(db, q);
        Step st;
        st.request_id = q.id;
        st.batch_size = 2;
        st.batch_tokens = 9;
        st.host_ns = 1234;
        trace_db_append_steps(db, std::vector<Step>{st});
        std::vector<Step> got;
        trace_db_for_each_step(db, r.id, [&](const Step& x) { got.push_back(x); });
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0], st);
    }
    RawDb raw(path, SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), TRACE_SCHEMA_VERSION);
}

// Every request's positions of every run, in order.
static std::vector<Positions> all_positions(TraceDb& db) {
    std::vector<Positions> out;
    for (const sp::Run& r : trace_db_runs(db))
        for (const Request& q : trace_db_requests(db, r.id)) {
            Positions p;
            if (trace_db_positions(db, q.id, &p)) out.push_back(std::move(p));
        }
    return out;
}

// A version-2 store, as a schema-2 build left it: the committed schema-1
// demo store migrated by schema 2's script, written out here (steps gain
// batch_tokens and host_ns). Read-only it reads with no draft_prob and stays
// version 2; opened for writing it becomes version 3 with every position and
// step kept, and then stores draft_prob.
TEST(TraceDb, AVersionTwoStoreReadsWithoutDraftProbAndMigratesWhenOpenedForWriting) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("v2.specdb");
    fs::copy_file(fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/demo-cpu.specdb", path);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_int(raw.db, "PRAGMA user_version"), 1) << "the committed demo-cpu store is no longer schema 1";
        ASSERT_EQ(raw_exec(raw.db, "BEGIN; "
                                   "ALTER TABLE steps ADD COLUMN batch_tokens INTEGER NOT NULL DEFAULT 0 "
                                   "CHECK (batch_tokens >= 0); "
                                   "ALTER TABLE steps ADD COLUMN host_ns INTEGER NOT NULL DEFAULT 0 "
                                   "CHECK (host_ns >= 0); "
                                   "UPDATE steps SET batch_tokens = 1 + verify_len, host_ns = 7; "
                                   "PRAGMA user_version = 2; COMMIT"),
                  SQLITE_OK);
    }
    std::vector<Positions> before;
    std::vector<Step> steps_before;
    TraceCounts counts_before;
    {
        TraceDb db = trace_db_open(path, TRACE_READ);
        EXPECT_EQ(db.version, 2);
        counts_before = trace_db_counts(db);
        before = all_positions(db);
        steps_before = read_steps(db, 1);
    }
    ASSERT_GT(before.size(), 5u);
    ASSERT_GT(steps_before.size(), 50u);
    for (const Positions& p : before) EXPECT_TRUE(p.draft_prob.empty()) << "request " << p.request_id;
    for (const Step& st : steps_before)
        ASSERT_EQ(std::tie(st.batch_tokens, st.host_ns), std::make_tuple(1 + st.verify_len, int64_t(7)));
    {
        RawDb raw(path, SQLITE_OPEN_READONLY);
        EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), 2) << "a read-only open migrated the file";
    }
    {
        TraceDb db = trace_db_open(path, TRACE_WRITE);
        EXPECT_EQ(db.version, TRACE_SCHEMA_VERSION);
        EXPECT_EQ(all_positions(db), before);
        EXPECT_EQ(read_steps(db, 1), steps_before);
        const TraceCounts c = trace_db_counts(db);
        EXPECT_EQ(std::tie(c.runs, c.requests, c.positions, c.anchors, c.steps, c.profiles),
                  std::tie(counts_before.runs, counts_before.requests, counts_before.positions, counts_before.anchors,
                           counts_before.steps, counts_before.profiles));
        // the new column takes values
        sp::Run r = sample_run();
        r.gamma = 3;
        trace_db_begin_run(db, r);
        Request q = sample_request(r.id, 0, 5);
        trace_db_append_request(db, q);
        Positions p = make_positions(q.id, 3, 5, false, 9);
        p.draft_prob = make_draft_prob(3, 5, 10);
        trace_db_append_positions(db, p);
        Positions got;
        ASSERT_TRUE(trace_db_positions(db, q.id, &got));
        EXPECT_EQ(le_floats(got.draft_prob), le_floats(p.draft_prob));
    }
    RawDb raw(path, SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), TRACE_SCHEMA_VERSION);
    EXPECT_EQ(raw_int(raw.db, "SELECT count(*) FROM positions WHERE draft_prob IS NOT NULL"), 1);
}

// A version-3 store, as a schema-3 build left it: the committed schema-1
// demo-cpu store migrated by the schema 2 and 3 scripts, written out here,
// with a draft_prob blob. Read-only it reads with the schema-4 columns "not
// recorded" and stays version 3; opened for writing it becomes version 4 in
// place with every run, position and step kept, and then stores
// verify_method, drafted and verified.
TEST(TraceDb, AVersionThreeStoreReadsWithoutVerifiedColumnsAndMigratesWhenOpenedForWriting) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("v3.specdb");
    fs::copy_file(fs::path(SPECPLAN_SOURCE_DIR) / "traces/data/demo-cpu.specdb", path);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_int(raw.db, "PRAGMA user_version"), 1) << "the committed demo-cpu store is no longer schema 1";
        ASSERT_EQ(raw_exec(raw.db, "BEGIN; "
                                   "ALTER TABLE steps ADD COLUMN batch_tokens INTEGER NOT NULL DEFAULT 0 "
                                   "CHECK (batch_tokens >= 0); "
                                   "ALTER TABLE steps ADD COLUMN host_ns INTEGER NOT NULL DEFAULT 0 "
                                   "CHECK (host_ns >= 0); "
                                   "ALTER TABLE positions ADD COLUMN draft_prob BLOB; "
                                   "UPDATE positions SET draft_prob = beta; "
                                   "UPDATE steps SET batch_tokens = 2 + verify_len; "
                                   "PRAGMA user_version = 3; COMMIT"),
                  SQLITE_OK);
    }
    std::vector<sp::Run> runs_before;
    std::vector<Positions> before;
    std::vector<Step> steps_before;
    {
        TraceDb db = trace_db_open(path, TRACE_READ);
        EXPECT_EQ(db.version, 3);
        runs_before = trace_db_runs(db);
        before = all_positions(db);
        steps_before = read_steps(db, 1);
    }
    ASSERT_GT(before.size(), 5u);
    ASSERT_GT(steps_before.size(), 50u);
    for (const sp::Run& r : runs_before) EXPECT_EQ(r.verify_method, VERIFY_UNRECORDED);
    for (const Positions& p : before) {
        EXPECT_TRUE(p.verified.empty()) << "request " << p.request_id;
        EXPECT_EQ(p.draft_prob, p.beta) << "request " << p.request_id;
    }
    for (const Step& st : steps_before) ASSERT_EQ(std::tie(st.drafted, st.batch_tokens), std::make_tuple(0, 2 + st.verify_len));
    {
        RawDb raw(path, SQLITE_OPEN_READONLY);
        EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), 3) << "a read-only open migrated the file";
    }
    {
        TraceDb db = trace_db_open(path, TRACE_WRITE);
        EXPECT_EQ(db.version, 4);
        EXPECT_EQ(trace_db_runs(db), runs_before);
        EXPECT_EQ(all_positions(db), before);
        EXPECT_EQ(read_steps(db, 1), steps_before);
        // the new columns take values
        sp::Run r = sample_run();
        r.gamma = 3;
        r.verify_method = VERIFY_BLOCK;
        trace_db_begin_run(db, r);
        EXPECT_EQ(trace_db_run(db, r.id).verify_method, VERIFY_BLOCK);
        Request q = sample_request(r.id, 0, 5);
        trace_db_append_request(db, q);
        Positions p = make_positions(q.id, 3, 5, false, 9);
        p.verified = {3, 2, 0, 1, 3};
        trace_db_append_positions(db, p);
        Positions got;
        ASSERT_TRUE(trace_db_positions(db, q.id, &got));
        EXPECT_EQ(got.verified, p.verified);
        Step st;
        st.request_id = q.id;
        st.batch_size = 1;
        st.verify_len = 2;
        st.n_accepted = 1;
        st.drafted = 3;
        trace_db_append_steps(db, std::vector<Step>{st});
        EXPECT_EQ(read_steps(db, r.id), std::vector<Step>{st});
    }
    RawDb raw(path, SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), 4);
    EXPECT_EQ(raw_int(raw.db, "SELECT count(*) FROM runs WHERE verify_method = 'block'"), 1);
}

// [SECTION] open: what is refused ---------------------------------------------------------

TEST(TraceDb, CreateMakesANewStoreWithItsApplicationIdAndVersion) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("new.specdb");
    ASSERT_FALSE(fs::exists(path));
    {
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        EXPECT_EQ(db.path, path);
        TraceCounts c = trace_db_counts(db);
        EXPECT_EQ(std::tie(c.runs, c.requests, c.positions, c.anchors, c.steps, c.profiles),
                  std::make_tuple(0, 0, 0, 0, 0, 0));
    }
    ASSERT_TRUE(fs::exists(path));
    RawDb raw(path, SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw_int(raw.db, "PRAGMA application_id"), TRACE_APPLICATION_ID);
    EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), TRACE_SCHEMA_VERSION);
    // Opening an existing store with CREATE must not reset it.
    {
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        sp::Run r = sample_run();
        trace_db_begin_run(db, r);
    }
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    EXPECT_EQ(trace_db_counts(db).runs, 1);
}

// Engine workers started together may all open one new store with CREATE.
// Each must get a working handle: one writes the schema, the others find it.
// Children only open, append and _exit; they never touch gtest.
TEST(TraceDb, ProcessesCreatingOneNewStoreAtOnceAllSucceed) {
    ScratchDir dir{"specplan_trace_db"};
    constexpr int ROUNDS = 15, PROCS = 3;
    int failures = 0;
    std::string errors;
    for (int round = 0; round < ROUNDS; round++) {
        const std::string path = dir.file("race" + std::to_string(round) + ".specdb");
        int go[2], err[2];
        ASSERT_EQ(pipe(go), 0);
        ASSERT_EQ(pipe(err), 0);
        std::vector<pid_t> kids;
        for (int k = 0; k < PROCS; k++) {
            pid_t pid = fork();
            if (pid == 0) {
                close(go[1]);
                close(err[0]);
                char c;
                if (read(go[0], &c, 1) < 0) _exit(3);  // EOF: everyone starts at once
                try {
                    TraceDb db = trace_db_open(path, TRACE_CREATE);
                    sp::Run r = sample_run();
                    trace_db_begin_run(db, r);
                    _exit(0);
                } catch (const std::exception& e) {
                    std::string m = std::string(e.what()) + "\n";
                    if (write(err[1], m.data(), m.size()) < 0) _exit(2);
                    _exit(1);
                }
            }
            if (pid > 0) kids.push_back(pid);
        }
        close(go[0]);
        close(err[1]);
        close(go[1]);
        for (pid_t pid : kids) {
            int status = 0;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failures++;
        }
        char buf[512];
        ssize_t n;
        while ((n = read(err[0], buf, sizeof buf)) > 0) errors.append(buf, static_cast<size_t>(n));
        close(err[0]);
        ASSERT_EQ(kids.size(), static_cast<size_t>(PROCS)) << "fork failed";
        if (failures == 0) {
            TraceDb db = trace_db_open(path, TRACE_READ);
            EXPECT_EQ(trace_db_counts(db).runs, PROCS);
        }
    }
    EXPECT_EQ(failures, 0) << "of " << ROUNDS * PROCS << " opens failed:\n" << errors;
}

TEST(TraceDb, AMissingFileIsRefusedUnlessCreating) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("absent.specdb");
    std::string msg = ERROR_OF(trace_db_open(path, TRACE_READ));
    EXPECT_TRUE(contains(msg, path)) << msg;
    ERROR_OF(trace_db_open(path, TRACE_WRITE));
    EXPECT_FALSE(fs::exists(path)) << "a refused open must not create the file";
}

TEST(TraceDb, ANewerSchemaVersionIsRefused) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("future.specdb");
    write_small_store(path);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_exec(raw.db, "PRAGMA user_version = " + std::to_string(TRACE_SCHEMA_VERSION + 1)), SQLITE_OK);
    }
    for (TraceOpen mode : {TRACE_READ, TRACE_WRITE, TRACE_CREATE}) {
        std::string msg = ERROR_OF(trace_db_open(path, mode));
        EXPECT_TRUE(contains(msg, path)) << msg;
        EXPECT_TRUE(contains(lower(msg), "newer") || contains(lower(msg), "version")) << msg;
        EXPECT_TRUE(contains(msg, std::to_string(TRACE_SCHEMA_VERSION + 1))) << msg;
    }
    RawDb raw(path, SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw_int(raw.db, "PRAGMA user_version"), TRACE_SCHEMA_VERSION + 1) << "a refused open changed the file";
}

TEST(TraceDb, AFileThatIsNotADatabaseIsRefused) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string text = dir.file("text.specdb");
    {
        std::ofstream f(text);
        for (int i = 0; i < 300; i++) f << "this is a CSV file, not a database," << i << "\n";
    }
    const std::string bytes = dir.file("bytes.specdb");
    {
        std::ofstream f(bytes, std::ios::binary);
        std::mt19937 rng(7);
        for (int i = 0; i < 16384; i++) f.put(static_cast<char>(rng() & 0xff));
    }
    const uintmax_t text_size = fs::file_size(text);
    for (const std::string& path : {text, bytes})
        for (TraceOpen mode : {TRACE_READ, TRACE_WRITE, TRACE_CREATE}) {
            std::string msg = ERROR_OF(trace_db_open(path, mode));
            EXPECT_TRUE(contains(msg, path)) << msg;
        }
    EXPECT_EQ(fs::file_size(text), text_size) << "CREATE must refuse a foreign file, not overwrite it";
    EXPECT_EQ(fs::file_size(bytes), 16384u);
    std::string msg = ERROR_OF(trace_db_open(dir.file(""), TRACE_CREATE));  // a directory
    EXPECT_FALSE(msg.empty());
}

TEST(TraceDb, ASQLiteDatabaseThatIsNotATraceStoreIsRefused) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string other = dir.file("other_app.db");
    const std::string plain = dir.file("plain.db");
    {
        RawDb raw(other);
        ASSERT_EQ(raw_exec(raw.db, "PRAGMA application_id = 1234; CREATE TABLE notes(x TEXT);"
                                   "INSERT INTO notes VALUES ('keep me');"),
                  SQLITE_OK);
        RawDb raw2(plain);  // application_id 0, user_version 0, one table
        ASSERT_EQ(raw_exec(raw2.db, "CREATE TABLE runs(id INTEGER PRIMARY KEY)"), SQLITE_OK);
    }
    for (const std::string& path : {other, plain})
        for (TraceOpen mode : {TRACE_READ, TRACE_WRITE, TRACE_CREATE}) {
            std::string msg = ERROR_OF(trace_db_open(path, mode));
            EXPECT_TRUE(contains(msg, path)) << msg;
        }
    RawDb raw(other, SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw_int(raw.db, "SELECT count(*) FROM sqlite_schema"), 1) << "a refused open wrote a schema";
    EXPECT_EQ(raw_text(raw.db, "SELECT x FROM notes"), "keep me");

    // An empty file is a valid, empty SQLite database: not a trace store until created.
    const std::string empty = dir.file("empty.specdb");
    { std::ofstream f(empty); }
    ERROR_OF(trace_db_open(empty, TRACE_READ));
    ERROR_OF(trace_db_open(empty, TRACE_WRITE));
    TraceDb db = trace_db_open(empty, TRACE_CREATE);
    EXPECT_EQ(trace_db_counts(db).runs, 0);
}

// A store spanning many pages: 300 requests, 64 anchors x gamma 8, with confidence.
static void write_big_store(const std::string& path) {
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    sp::Run r = sample_run();
    r.gamma = 8;
    trace_db_begin_run(db, r);
    TraceTxn txn(db);
    for (int i = 0; i < 300; i++) {
        Request q = sample_request(r.id, i, 64);
        trace_db_append_request(db, q);
        trace_db_append_positions(db, make_positions(q.id, 8, 64, true, static_cast<uint32_t>(i)));
        trace_db_append_steps(db, make_steps(q.id, 8, 10, static_cast<uint32_t>(i)));
    }
    txn.commit();
    trace_db_finish_run(db, r.id);
}

TEST(TraceDb, ATruncatedFileIsRefused) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("truncated.specdb");
    write_big_store(path);
    uintmax_t size = fs::file_size(path);
    ASSERT_GT(size, 1'000'000u) << "the store must span many pages for this test to mean anything";
    fs::resize_file(path, size / 2);
    for (TraceOpen mode : {TRACE_READ, TRACE_WRITE}) {
        std::string msg = ERROR_OF(trace_db_open(path, mode));
        EXPECT_TRUE(contains(msg, path)) << msg;
    }
}

TEST(TraceDb, AFileOverwrittenInTheMiddleIsRefused) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("overwritten.specdb");
    write_big_store(path);
    uintmax_t size = fs::file_size(path);
    ASSERT_GT(size, 1'000'000u);
    {
        // A quarter of the file: many whole pages, b-tree and overflow pages
        // alike. (SQLite has no checksums, so garbage inside one blob's payload
        // alone could not be detected by anyone.)
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(size * 3 / 8));
        std::mt19937 rng(99);
        for (uintmax_t i = 0; i < size / 4; i++) f.put(static_cast<char>(rng() & 0xff));
        ASSERT_TRUE(f.good());
    }
    for (TraceOpen mode : {TRACE_READ, TRACE_WRITE}) {
        std::string msg = ERROR_OF(trace_db_open(path, mode));
        EXPECT_TRUE(contains(msg, path)) << msg;
    }
}

// [SECTION] readers: damaged and hand-edited rows ---------------------------------------

TEST(TraceDb, APositionsBlobOfTheWrongSizeIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("blob_size.specdb");
    int64_t good_id = write_small_store(path);
    int64_t bad_id = 0;
    {
        TraceDb db = trace_db_open(path, TRACE_WRITE);
        sp::Run r = trace_db_runs(db).at(0);
        Request q = sample_request(r.id, 1, 5);
        trace_db_append_request(db, q);
        bad_id = q.id;
    }
    {
        // 5 anchors x gamma 4 x 4 bytes = 80; store 76.
        RawDb raw(path);
        ASSERT_EQ(raw_with_blob(raw.db, "INSERT INTO positions(request_id, beta) VALUES (" +
                                            std::to_string(bad_id) + ", ?1)",
                                std::vector<uint8_t>(76, 0)),
                  1);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    Positions p;
    std::string msg = ERROR_OF(trace_db_positions(db, bad_id, &p));
    EXPECT_TRUE(contains(msg, path)) << msg;
    EXPECT_TRUE(contains(msg, "beta")) << msg;
    EXPECT_TRUE(contains(msg, "76") && contains(msg, "80")) << "should say found and expected sizes: " << msg;
    // The damage is confined to its record.
    EXPECT_TRUE(trace_db_positions(db, good_id, &p));
    EXPECT_EQ(p, make_positions(good_id, 4, 6, true, 1));
}

TEST(TraceDb, AConfidenceBlobOfTheWrongSizeIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("conf_size.specdb");
    int64_t id = write_small_store(path);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_with_blob(raw.db, "UPDATE positions SET conf_prob = ?1", std::vector<uint8_t>(6 * 4 * 4 + 4, 0)),
                  1);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    Positions p;
    std::string msg = ERROR_OF(trace_db_positions(db, id, &p));
    EXPECT_TRUE(contains(msg, "conf_prob")) << msg;
}

TEST(TraceDb, ADraftProbBlobOfTheWrongSizeOrOutsideZeroOneIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("draft_prob.specdb");
    int64_t id = write_small_store(path);
    std::vector<float> q(6 * 4, 0.5f);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_with_blob(raw.db, "UPDATE positions SET draft_prob = ?1", le_floats(q)), 1);
    }
    {
        TraceDb db = trace_db_open(path, TRACE_READ);
        Positions p;
        ASSERT_TRUE(trace_db_positions(db, id, &p));
        EXPECT_EQ(p.draft_prob, q) << "a hand-written blob of the right size reads back";
    }
    q.push_back(0.5f);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_with_blob(raw.db, "UPDATE positions SET draft_prob = ?1", le_floats(q)), 1);
    }
    {
        TraceDb db = trace_db_open(path, TRACE_READ);
        Positions p;
        std::string msg = ERROR_OF(trace_db_positions(db, id, &p));
        EXPECT_TRUE(contains(msg, "draft_prob") && contains(msg, "100") && contains(msg, "96")) << msg;
    }
    q.pop_back();
    q[7] = 1.25f;
    {
        RawDb raw(path);
        ASSERT_EQ(raw_with_blob(raw.db, "UPDATE positions SET draft_prob = ?1", le_floats(q)), 1);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    Positions p;
    std::string msg = ERROR_OF(trace_db_positions(db, id, &p));
    EXPECT_TRUE(contains(msg, "draft_prob") && contains(msg, "[0, 1]")) << msg;
}

TEST(TraceDb, AnOutputLenEditedUnderItsPositionsIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("output_len.specdb");
    int64_t id = write_small_store(path);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_exec(raw.db, "UPDATE requests SET output_len = output_len + 1"), SQLITE_OK);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    Positions p;
    ERROR_OF(trace_db_positions(db, id, &p));
}

// A run whose models row is gone (foreign keys are off in a plain
// connection) dropped out of trace_db_runs, so info and export lost it
// silently; open refuses the store, naming the run.
TEST(TraceDb, ARunWhoseModelRowIsMissingIsRefusedAtOpenByName) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("broken_fk.specdb");
    sp::Run run;
    write_small_store(path, &run);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_exec(raw.db, "UPDATE runs SET target_model_id = target_model_id + 100"), SQLITE_OK);
    }
    for (TraceOpen mode : {TRACE_READ, TRACE_WRITE, TRACE_CREATE}) {
        std::string msg = ERROR_OF(trace_db_open(path, mode));
        EXPECT_EQ(msg.rfind(path + ": run " + std::to_string(run.id) + ": ", 0), 0u) << msg;
        EXPECT_TRUE(contains(msg, "models")) << msg;
    }
    // A request whose run is gone names the request.
    const std::string path2 = dir.file("broken_fk2.specdb");
    int64_t request = write_small_store(path2);
    {
        RawDb raw(path2);
        ASSERT_EQ(raw_exec(raw.db, "UPDATE requests SET run_id = run_id + 100"), SQLITE_OK);
    }
    std::string msg = ERROR_OF(trace_db_open(path2, TRACE_READ));
    EXPECT_TRUE(contains(msg, ": request " + std::to_string(request) + ": refers to a row of runs")) << msg;
}

TEST(TraceDb, AHandEditedBetaOutsideZeroOneIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("beta_range.specdb");
    int64_t id = write_small_store(path);
    {
        std::vector<float> beta = make_positions(id, 4, 6, true, 1).beta;
        beta[5] = 1.5f;
        RawDb raw(path);
        ASSERT_EQ(raw_with_blob(raw.db, "UPDATE positions SET beta = ?1", le_floats(beta)), 1);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    Positions p;
    std::string msg = ERROR_OF(trace_db_positions(db, id, &p));
    EXPECT_TRUE(contains(msg, "beta")) << msg;
}

TEST(TraceDb, AHandEditedNonFiniteConfidenceLogitIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("logit_nan.specdb");
    int64_t id = write_small_store(path);
    {
        std::vector<float> z = make_positions(id, 4, 6, true, 1).conf_logit;
        z[0] = std::numeric_limits<float>::quiet_NaN();  // the writer refuses exactly this
        RawDb raw(path);
        ASSERT_EQ(raw_with_blob(raw.db, "UPDATE positions SET conf_logit = ?1", le_floats(z)), 1);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    Positions p;
    std::string msg = ERROR_OF(trace_db_positions(db, id, &p));
    EXPECT_TRUE(contains(msg, "conf_logit")) << msg;
}

// The writer refuses verify_len > the run's gamma and a bonus without a full
// accept; a reader must refuse the same rows when they were edited in.
TEST(TraceDb, AHandEditedStepThatContradictsItsRunIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("step_edit.specdb");
    sp::Run r;
    write_small_store(path, &r);
    ASSERT_EQ(r.gamma, 4);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_exec(raw.db, "UPDATE steps SET verify_len = 5, n_accepted = 2, bonus = 0 WHERE step = 1"),
                  SQLITE_OK);
        ASSERT_EQ(sqlite3_changes(raw.db), 1);
    }
    {
        TraceDb db = trace_db_open(path, TRACE_READ);
        std::string msg = ERROR_OF(read_steps(db, r.id));
        EXPECT_TRUE(contains(msg, "verify_len")) << msg;
    }
    {
        RawDb raw(path);
        ASSERT_EQ(raw_exec(raw.db, "UPDATE steps SET verify_len = 3, n_accepted = 1, bonus = 1 WHERE step = 1"),
                  SQLITE_OK);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    std::string msg = ERROR_OF(read_steps(db, r.id));
    EXPECT_TRUE(contains(msg, "bonus")) << msg;
}

TEST(TraceDb, AHandEditedProfileWithUnorderedPercentilesIsRefusedOnRead) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("profile_edit.specdb");
    write_small_store(path);
    {
        RawDb raw(path);
        ASSERT_EQ(raw_exec(raw.db, "UPDATE profiles SET latency_us_p10 = latency_us_p90 + 1"), SQLITE_OK);
        ASSERT_EQ(sqlite3_changes(raw.db), 1);
    }
    TraceDb db = trace_db_open(path, TRACE_READ);
    ERROR_OF(trace_db_profiles(db));
}

// [SECTION] writers: validation writes nothing -----------------------------------------------

// Expects `stmt` to throw sp::Error and to leave every table as it was.
#define EXPECT_REFUSED_AND_UNCHANGED(db, stmt)                                  \
    do {                                                                        \
        auto before_ = snapshot(db);                                            \
        ERROR_OF(stmt);                                                         \
        EXPECT_EQ(snapshot(db), before_) << "a refused write changed the file"; \
        EXPECT_EQ((db).txn_depth, 0);                                           \
    } while (0)

TEST(TraceDb, BeginRunRefusesAnInvalidRunAndWritesNothing) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("bad_runs.specdb"), TRACE_CREATE);
    auto with = [](auto edit) { sp::Run r = sample_run(); edit(r); return r; };
    std::vector<sp::Run> bad = {
        with([](sp::Run& r) { r.gamma = 0; }),
        with([](sp::Run& r) { r.gamma = TRACE_MAX_GAMMA + 1; }),
        with([](sp::Run& r) { r.gamma = -3; }),
        with([](sp::Run& r) { r.temperature = -0.1; }),
        with([](sp::Run& r) { r.temperature = std::nan(""); }),
        with([](sp::Run& r) { r.temperature = std::numeric_limits<double>::infinity(); }),
        with([](sp::Run& r) { r.producer = PRODUCER_COUNT; }),
        with([](sp::Run& r) { r.target.bytes_per_weight = 0; }),
        with([](sp::Run& r) { r.target.bytes_per_kv = -2; }),
        with([](sp::Run& r) { r.target.n_layers = -1; }),
    };
    for (sp::Run& r : bad) EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_begin_run(db, r));

    // The bounds themselves are valid.
    sp::Run lo = with([](sp::Run& r) { r.gamma = 1; }), hi = with([](sp::Run& r) { r.gamma = TRACE_MAX_GAMMA; });
    trace_db_begin_run(db, lo);
    trace_db_begin_run(db, hi);
    EXPECT_EQ(trace_db_run(db, hi.id).gamma, TRACE_MAX_GAMMA);
    EXPECT_EQ(trace_db_counts(db).runs, 2);
}

TEST(TraceDb, AppendRequestRefusesAnInvalidRequestAndWritesNothing) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("bad_requests.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(db, r);
    Request ok = sample_request(r.id, 0, 10);
    trace_db_append_request(db, ok);

    auto with = [&](auto edit) { Request q = sample_request(r.id, 1, 10); edit(q); return q; };
    std::vector<Request> bad = {
        with([&](Request& q) { q.run_id = r.id + 100; }),  // no such run
        with([](Request& q) { q.run_id = 0; }),
        with([](Request& q) { q.idx = 0; }),               // idx taken in this run
        with([](Request& q) { q.idx = -1; }),
        with([](Request& q) { q.prompt_len = -1; }),
        with([](Request& q) { q.output_len = -1; }),
    };
    for (Request& q : bad) EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_request(db, q));

    // idx is unique per run, not per file.
    sp::Run r2 = sample_run();
    trace_db_begin_run(db, r2);
    Request other = sample_request(r2.id, 0, 10);
    trace_db_append_request(db, other);
    EXPECT_EQ(trace_db_counts(db).requests, 2);
}

TEST(TraceDb, AppendPositionsRefusesInvalidPositionsAndWritesNothing) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("bad_positions.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();  // gamma 7
    trace_db_begin_run(db, r);
    Request q = sample_request(r.id, 0, 10), done = sample_request(r.id, 1, 4);
    trace_db_append_request(db, q);
    trace_db_append_request(db, done);
    trace_db_append_positions(db, make_positions(done.id, 7, 4, true, 3));

    auto with = [&](auto edit) { Positions p = make_positions(q.id, 7, 10, true, 4); edit(p); return p; };
    std::vector<Positions> bad = {
        with([&](Positions& p) { p.request_id = q.id + 100; }),  // no such request
        with([](Positions& p) { p.n = 9; }),                     // n is the request's output_len
        with([](Positions& p) { p.gamma = 6; }),                 // gamma is the run's
        with([](Positions& p) { p.gamma = 0; p.beta.clear(); p.conf_logit.clear(); p.conf_prob.clear(); }),
        with([](Positions& p) { p.beta.pop_back(); }),
        with([](Positions& p) { p.beta.push_back(0.5f); }),
        with([](Positions& p) { p.beta.clear(); }),
        with([](Positions& p) { p.beta[0] = 1.5f; }),
        with([](Positions& p) { p.beta[1] = -0.25f; }),
        with([](Positions& p) { p.beta[2] = std::numeric_limits<float>::quiet_NaN(); }),
        with([](Positions& p) { p.conf_prob.clear(); }),        // logit without prob
        with([](Positions& p) { p.conf_logit.clear(); }),       // prob without logit
        with([](Positions& p) { p.conf_prob.pop_back(); }),
        with([](Positions& p) { p.conf_logit.push_back(0); }),
        with([](Positions& p) { p.conf_prob[3] = 1.01f; }),
        with([](Positions& p) { p.conf_logit[3] = std::numeric_limits<float>::infinity(); }),
        with([](Positions& p) { p.draft_prob.assign(69, 0.5f); }),  // 70 values or none
        with([](Positions& p) { p.draft_prob.assign(71, 0.5f); }),
        with([](Positions& p) { p.draft_prob.assign(70, 0.5f); p.draft_prob[4] = 1.5f; }),
        with([](Positions& p) { p.draft_prob.assign(70, 0.5f); p.draft_prob[5] = -1e-7f; }),
        with([](Positions& p) { p.draft_prob.assign(70, 0.5f); p.draft_prob[6] = std::nanf(""); }),
        make_positions(done.id, 7, 4, false, 5),                // that request has positions already
    };
    for (const Positions& p : bad) EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_positions(db, p));

    Positions stored;
    ASSERT_TRUE(trace_db_positions(db, done.id, &stored));
    EXPECT_EQ(stored, make_positions(done.id, 7, 4, true, 3)) << "the refused duplicate replaced the original";
    EXPECT_FALSE(trace_db_positions(db, q.id, &stored));
}

TEST(TraceDb, AppendStepsRefusesInvalidStepsAndWritesNothing) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("bad_steps.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();  // gamma 7
    trace_db_begin_run(db, r);
    Request q = sample_request(r.id, 0, 10);
    trace_db_append_request(db, q);
    std::vector<Step> first = make_steps(q.id, 7, 3, 1);
    trace_db_append_steps(db, first);

    auto with = [&](auto edit) {
        Step s = make_steps(q.id, 7, 4, 2).back();  // step 3: not taken yet
        s.verify_len = 4;
        s.n_accepted = 2;
        s.bonus = false;
        edit(s);
        return s;
    };
    std::vector<Step> bad = {
        with([&](Step& s) { s.request_id = q.id + 100; }),  // no such request
        with([](Step& s) { s.n_accepted = 5; }),            // more accepted than verified
        with([](Step& s) { s.n_accepted = -1; }),
        with([](Step& s) { s.verify_len = 8; s.n_accepted = 0; }),  // beyond the run's gamma 7
        with([](Step& s) { s.verify_len = -1; s.n_accepted = 0; }),
        with([](Step& s) { s.bonus = true; }),              // a bonus needs every draft accepted
        with([](Step& s) { s.batch_size = 0; }),
        with([](Step& s) { s.step = -1; }),
        with([](Step& s) { s.step = 0; }),                  // step 0 of this request exists
        with([](Step& s) { s.draft_ns = -1; }),
        with([](Step& s) { s.verify_ns = -1; }),
        with([](Step& s) { s.t_ns = -1; }),
        with([](Step& s) { s.drafted = 3; }),               // fewer drafted than verified (4)
        with([](Step& s) { s.drafted = 8; }),               // drafted beyond the run's gamma 7
        with([](Step& s) { s.drafted = -1; }),
    };
    for (const Step& s : bad) EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_steps(db, std::span(&s, 1)));

    // One bad step at the end of a batch: none of the batch is written.
    std::vector<Step> batch = make_steps(q.id, 7, 20, 3);
    batch.erase(batch.begin(), batch.begin() + 3);
    batch.back().n_accepted = batch.back().verify_len + 1;
    EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_steps(db, batch));
    EXPECT_EQ(read_steps(db, r.id), first);
}

// Positions' verified: one value per row, each in 0..gamma, or none.
TEST(TraceDb, VerifiedSlotsOfTheWrongCountOrAboveGammaAreRefused) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("verified.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    r.gamma = 3;
    trace_db_begin_run(db, r);
    Request q = sample_request(r.id, 0, 4);
    trace_db_append_request(db, q);
    Positions p = make_positions(q.id, 3, 4, false, 1);
    p.verified = {3, 3, 3};
    EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_positions(db, p));
    p.verified = {3, 4, 3, 3};
    EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_positions(db, p));
    p.verified = {3, 0, 1, 2};
    trace_db_append_positions(db, p);
    // a hand edit of the blob to a wrong size is refused on read, by name
    ASSERT_EQ(raw_with_blob(db.db, "UPDATE positions SET verified = ?1", {1, 2}), 1);
    Positions got;
    const std::string msg = ERROR_OF(trace_db_positions(db, q.id, &got));
    EXPECT_TRUE(contains(msg, "positions.verified: blob has 2 bytes, expected 4")) << msg;
}

TEST(TraceDb, AppendProfileRefusesAnInvalidProfileAndWritesNothing) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("bad_profiles.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(db, r);

    // A new shape in each, so a half-done write would leave a models row behind.
    auto with = [&](auto edit) { Profile p = sample_profile(r.id, shape_70b(), PHASE_VERIFY, 8); edit(p); return p; };
    std::vector<Profile> bad = {
        with([&](Profile& p) { p.run_id = r.id + 100; }),  // no such run
        with([](Profile& p) { p.phase = PHASE_COUNT; }),
        with([](Profile& p) { p.latency_us_p50 = -1; p.latency_us_p10 = -2; }),
        with([](Profile& p) { p.latency_us_p90 = std::nan(""); }),
        with([](Profile& p) { p.latency_us_p10 = p.latency_us_p90 + 1; }),
        with([](Profile& p) { p.n_seqs = -1; }),
        with([](Profile& p) { p.n_samples = -1; }),
        with([](Profile& p) { p.model.bytes_per_kv = 0; }),
    };
    for (Profile& p : bad) EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_profile(db, p));
}

TEST(TraceDb, AReadOnlyHandleRefusesToWrite) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("read_only.specdb");
    sp::Run r;
    int64_t id = write_small_store(path, &r);
    TraceDb db = trace_db_open(path, TRACE_READ);
    sp::Run nr = sample_run();
    EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_begin_run(db, nr));
    Request q = sample_request(r.id, 1, 3);
    EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_request(db, q));
    Step s = make_steps(id, 4, 10, 9).back();
    EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_steps(db, std::span(&s, 1)));
    Profile p = sample_profile(0, shape_8b(), PHASE_DRAFT, 1);
    EXPECT_REFUSED_AND_UNCHANGED(db, trace_db_append_profile(db, p));
}

// Zero output tokens is a real request (the target ended at once); its
// positions are a 0 x gamma array, which is an empty blob, not NULL.
TEST(TraceDb, PositionsOfAnEmptyOutputRoundTrip) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("empty_output.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(db, r);
    Request q = sample_request(r.id, 0, 0);
    trace_db_append_request(db, q);
    Positions want = make_positions(q.id, 7, 0, false, 1);
    ASSERT_NO_THROW(trace_db_append_positions(db, want));
    Positions got;
    ASSERT_TRUE(trace_db_positions(db, q.id, &got));
    EXPECT_EQ(got, want);
    EXPECT_EQ(trace_db_counts(db).positions, 1);
    EXPECT_EQ(trace_db_counts(db).anchors, 0);
}

// [SECTION] transactions ----------------------------------------------------------------------

TEST(TraceDb, ATransactionThatIsNotCommittedRollsBack) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("txn.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(db, r);
    auto before = snapshot(db);
    {
        TraceTxn txn(db);
        Request q = sample_request(r.id, 0, 5);
        trace_db_append_request(db, q);
        trace_db_append_positions(db, make_positions(q.id, 7, 5, true, 1));
        trace_db_append_steps(db, make_steps(q.id, 7, 30, 2));
        Profile p = sample_profile(r.id, shape_70b(), PHASE_PREFILL, 100);
        trace_db_append_profile(db, p);
        sp::Run r2 = sample_run();
        trace_db_begin_run(db, r2);
        trace_db_finish_run(db, r.id);
        EXPECT_NE(snapshot(db), before) << "the transaction sees its own writes";
    }
    EXPECT_EQ(db.txn_depth, 0);
    EXPECT_EQ(snapshot(db), before);
    EXPECT_FALSE(trace_db_run(db, r.id).complete);
}

TEST(TraceDb, NestedTransactionsWriteOnlyAtTheOutermostCommit) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("nested.specdb");
    TraceDb w = trace_db_open(path, TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(w, r);
    TraceDb reader = trace_db_open(path, TRACE_READ);  // a second connection sees only commits

    trace_db_begin(w);
    trace_db_begin(w);
    EXPECT_EQ(w.txn_depth, 2);
    Request q = sample_request(r.id, 0, 5);
    trace_db_append_request(w, q);  // an append inside: its own commit must not write either
    trace_db_append_steps(w, make_steps(q.id, 7, 10, 1));
    trace_db_commit(w);
    EXPECT_EQ(w.txn_depth, 1);
    EXPECT_EQ(trace_db_counts(reader).requests, 0);
    EXPECT_EQ(trace_db_counts(reader).steps, 0);
    EXPECT_EQ(trace_db_counts(w).requests, 1);
    trace_db_commit(w);
    EXPECT_EQ(w.txn_depth, 0);
    EXPECT_EQ(trace_db_counts(reader).requests, 1);
    EXPECT_EQ(trace_db_counts(reader).steps, 10);

    ERROR_OF(trace_db_commit(w));  // nothing left to commit
    EXPECT_EQ(w.txn_depth, 0);
}

TEST(TraceDb, ClosingWithAnOpenTransactionRollsBack) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("close_txn.specdb");
    {
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        sp::Run r = sample_run();
        trace_db_begin_run(db, r);
        trace_db_begin(db);
        Request q = sample_request(r.id, 0, 5);
        trace_db_append_request(db, q);
        trace_db_finish_run(db, r.id);
    }  // destructor: closes with the transaction still open
    TraceDb db = trace_db_open(path, TRACE_READ);
    EXPECT_EQ(trace_db_counts(db).runs, 1);
    EXPECT_EQ(trace_db_counts(db).requests, 0);
    EXPECT_FALSE(trace_db_runs(db).at(0).complete);
}

// A caller batching appends in one transaction catches a refused append and
// goes on (trace_db.h: a rollback undoes only its own level). Whatever it
// appends belongs to its transaction: nothing reaches the file without the
// outer commit, and the outer commit writes everything but the refused record.
TEST(TraceDb, ARefusedAppendInsideATransactionUndoesOnlyItself) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("inner_fail.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(db, r);
    auto before = snapshot(db);
    Positions bad = make_positions(0, 7, 5, false, 1);
    bad.beta.pop_back();
    for (bool commit : {false, true}) {
        TraceTxn txn(db);
        Request a = sample_request(r.id, 0, 5);
        trace_db_append_request(db, a);
        bad.request_id = a.id;
        ERROR_OF(trace_db_append_positions(db, bad));
        EXPECT_EQ(db.txn_depth, 1);
        Request b = sample_request(r.id, 1, 5);
        trace_db_append_request(db, b);
        trace_db_append_steps(db, make_steps(b.id, 7, 4, 2));
        if (!commit) continue;  // the destructor rolls back
        txn.commit();
        EXPECT_EQ(trace_db_requests(db, r.id), (std::vector<Request>{a, b}));
        Positions none;
        EXPECT_FALSE(trace_db_positions(db, a.id, &none));
        EXPECT_EQ(trace_db_counts(db).steps, 4);
    }
    EXPECT_EQ(trace_db_counts(db).requests, std::get<1>(before) + 2) << "the uncommitted round reached the file";
}

// A full disk (here: PRAGMA max_page_count) is an error SQLite may answer by
// rolling back the whole transaction itself. The caller's transaction is then
// gone; appends it makes afterwards must not be committed on their own.
TEST(TraceDb, AnAppendThatFailsOnAFullDiskDoesNotCommitLaterAppends) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("full.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    r.gamma = 8;
    trace_db_begin_run(db, r);
    auto before = snapshot(db);
    int64_t pages = raw_int(db.db, "PRAGMA page_count");
    ASSERT_EQ(raw_exec(db.db, "PRAGMA max_page_count = " + std::to_string(pages + 20)), SQLITE_OK);
    {
        TraceTxn txn(db);
        bool full = false;
        for (int i = 0; i < 200 && !full; i++) {
            Request q = sample_request(r.id, i, 64);
            try {
                trace_db_append_request(db, q);
                trace_db_append_positions(db, make_positions(q.id, 8, 64, true, 1));
            } catch (const Error&) {
                full = true;
            }
        }
        ASSERT_TRUE(full) << "max_page_count did not make the database full";
        ASSERT_EQ(raw_exec(db.db, "PRAGMA max_page_count = 1000000"), SQLITE_OK);
        Request late = sample_request(r.id, 500, 3);
        try {
            trace_db_append_request(db, late);
        } catch (const Error&) {
            // refusing appends in a transaction SQLite rolled back is the right answer
        }
    }  // not committed
    EXPECT_EQ(snapshot(db), before) << "an append after the failure was committed outside the caller's transaction";
    EXPECT_EQ(db.txn_depth, 0);
}

// SQLITE_BUSY (another writer holds the lock) is the ordinary way a begin fails.
// Afterwards the handle must still be correct: no phantom transaction, and
// appends atomic again.
TEST(TraceDb, AFailedBeginLeavesTheHandleConsistent) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("busy.specdb");
    TraceDb db = trace_db_open(path, TRACE_CREATE);
    sp::Run r = sample_run();
    trace_db_begin_run(db, r);
    Request q = sample_request(r.id, 0, 5);
    trace_db_append_request(db, q);
    {
        RawDb other(path);
        ASSERT_EQ(raw_exec(other.db, "BEGIN IMMEDIATE"), SQLITE_OK);
        sqlite3_busy_timeout(db.db, 1);  // fail fast instead of waiting 5 s
        Request q2 = sample_request(r.id, 1, 5);
        std::string msg = ERROR_OF(trace_db_append_request(db, q2));
        EXPECT_TRUE(contains(msg, path)) << msg;
        EXPECT_EQ(db.txn_depth, 0) << "a failed BEGIN left the handle believing a transaction is open";
        raw_exec(other.db, "ROLLBACK");
    }
    auto before = snapshot(db);
    std::vector<Step> batch = make_steps(q.id, 7, 5, 1);
    batch.back().n_accepted = batch.back().verify_len + 1;
    ERROR_OF(trace_db_append_steps(db, batch));
    EXPECT_EQ(snapshot(db), before) << "after the failed begin, a refused batch was partly written";
}

// [SECTION] SQLite settings -----------------------------------------------------------------------

TEST(TraceDb, ForeignKeysAreEnforcedAndTheJournalIsWal) {
    ScratchDir dir{"specplan_trace_db"};
    const std::string path = dir.file("settings.specdb");
    write_small_store(path);
    {
        TraceDb db = trace_db_open(path, TRACE_WRITE);
        EXPECT_EQ(raw_text(db.db, "PRAGMA journal_mode"), "wal");
        EXPECT_EQ(raw_int(db.db, "PRAGMA foreign_keys"), 1);
        // Not through the API, so only SQLite's own constraint can stop these.
        EXPECT_EQ(raw_exec(db.db, "DELETE FROM runs"), SQLITE_CONSTRAINT);
        EXPECT_EQ(raw_exec(db.db, "DELETE FROM requests"), SQLITE_CONSTRAINT);
        EXPECT_EQ(raw_exec(db.db, "INSERT INTO requests(run_id, idx, domain, prompt_len, output_len) "
                                  "VALUES (999, 5, 'x', 1, 1)"),
                  SQLITE_CONSTRAINT);
        EXPECT_EQ(trace_db_counts(db).runs, 1);
        EXPECT_EQ(trace_db_counts(db).requests, 1);
    }
    {
        TraceDb db = trace_db_open(path, TRACE_READ);
        EXPECT_EQ(raw_text(db.db, "PRAGMA journal_mode"), "wal");
        EXPECT_EQ(raw_int(db.db, "PRAGMA foreign_keys"), 1);
    }
    RawDb raw(path, SQLITE_OPEN_READONLY);  // WAL is a property of the file, not of a connection
    EXPECT_EQ(raw_text(raw.db, "PRAGMA journal_mode"), "wal");
}

// SQLite's in-memory names are no store: creating one hung in set_wal, whose
// switch to WAL succeeds there but leaves the "memory" journal (found by
// fuzz_trace_jsonl's first harness; `specplan traces synth -o :memory:` hung too).
TEST(TraceDb, InMemoryNamesAreRefusedNotHung) {
    for (const char* name : {":memory:", ""})
        for (TraceOpen mode : {TRACE_CREATE, TRACE_WRITE, TRACE_READ}) {
            try {
                trace_db_open(name, mode);
                ADD_FAILURE() << "'" << name << "' opened";
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find("expected the path of a trace store file"), std::string::npos)
                    << e.what();
            }
        }
}

TEST(TraceDb, ErrorMessagesAreOneLineEvenWhenAStoredNameHasANewline) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb db = trace_db_open(dir.file("newline.specdb"), TRACE_CREATE);
    sp::Run r = sample_run();
    r.target.name = "evil\nname\r\nwith lines";
    r.target.bytes_per_weight = -1;  // refused, and the message names the model
    ERROR_OF(trace_db_begin_run(db, r));  // error_of checks the message is one line
    ERROR_OF(trace_db_open(dir.file("a\nb.specdb"), TRACE_READ));
}

TEST(TraceDb, AMovedHandleKeepsTheConnection) {
    ScratchDir dir{"specplan_trace_db"};
    TraceDb a = trace_db_open(dir.file("move.specdb"), TRACE_CREATE);
    TraceDb b(std::move(a));
    EXPECT_EQ(a.db, nullptr);
    sp::Run r = sample_run();
    trace_db_begin_run(b, r);
    TraceDb c;
    c = std::move(b);
    EXPECT_EQ(b.db, nullptr);
    EXPECT_EQ(trace_db_counts(c).runs, 1);
}
