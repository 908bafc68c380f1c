// test_trace_crash.cpp: a writer killed with SIGKILL mid-run leaves a store
// that opens, passes integrity_check, and holds every committed transaction
// exactly: the promise trace_db.h makes to an engine that may be killed (OOM,
// Ctrl-C, a lost node) hours into a run.
//
// A forked child writes run A completely, then appends batches to run B in an
// endless loop of sizeable transactions, reporting each commit through a pipe.
// The parent kills it at a varying delay after B's first commit, so the kill
// lands mid-transaction, mid-commit or mid-checkpoint. Then it checks:
//   - run A is complete and equals, record for record, what the child wrote
//     (the parent regenerates the same deterministic content);
//   - run B reads as incomplete, and holds whole batches only: at least every
//     batch the child reported committed, at most one more, each batch exact.
// The child never touches gtest and leaves through _exit.
#include "traces/trace_db.h"

#include <gtest/gtest.h>

#include "tests/scratch.h"
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace sp;

namespace {

constexpr int GAMMA = 6;
constexpr int A_REQUESTS = 20;
constexpr int B_BATCH = 4;             // requests per run-B transaction
constexpr int B_STEPS_PER_REQUEST = 120;

// [SECTION] the deterministic content both processes generate ----------------------

sp::Run run_template(char which) {
    sp::Run r;
    r.producer = PRODUCER_ENGINE;
    r.target.name = "qwen3-8b";
    r.target.n_params = 8'190'735'360;
    r.target.n_layers = 36;
    r.target.hidden = 4096;
    r.target.n_heads = 32;
    r.target.n_kv_heads = 8;
    r.target.head_dim = 128;
    r.target.ffn = 12288;
    r.target.vocab = 151936;
    r.target.bytes_per_weight = 0.5625;
    r.drafter_kind = "dspark";
    r.drafter_name = std::string("crash-test-") + which;
    r.gpu = "none";
    r.temperature = which == 'A' ? 0.0 : 0.6;
    r.gamma = GAMMA;
    r.created_at = "2026-11-23T07:40:00Z";
    r.git_rev = "crash-test";
    r.notes = std::string("run ") + which;
    return r;
}

Request request_for(int64_t run_id, char which, int idx) {
    Request q;
    q.run_id = run_id;
    q.idx = idx;
    q.domain = which == 'A' ? "code" : "chat";
    q.prompt_len = 50 + 3 * idx;
    q.output_len = which == 'A' ? 30 + idx : 64;
    return q;
}

Positions positions_for(int64_t request_id, const Request& q, char which) {
    bool confidence = which == 'B' || q.idx % 2 == 0;
    Positions p;
    p.request_id = request_id;
    p.gamma = GAMMA;
    p.n = q.output_len;
    size_t count = static_cast<size_t>(p.n) * GAMMA;
    p.beta.assign(count, 0.0f);
    if (confidence) {
        p.conf_logit.assign(count, 0.0f);
        p.conf_prob.assign(count, 0.0f);
    }
    std::mt19937 rng(static_cast<uint32_t>(which * 100000 + q.idx));
    auto unit = [&] { return static_cast<float>(rng() >> 8) * (1.0f / 16777216.0f); };
    for (int t = 0; t < p.n; t++)
        for (int k = 1; k <= GAMMA && t + k < p.n; k++) {
            size_t i = static_cast<size_t>(t) * GAMMA + static_cast<size_t>(k - 1);
            p.beta[i] = unit();
            if (confidence) {
                p.conf_prob[i] = unit();
                p.conf_logit[i] = (unit() - 0.5f) * 20.0f;
            }
        }
    return p;
}

std::vector<Step> steps_for(int64_t request_id, const Request& q, char which) {
    int count = which == 'A' ? 25 : B_STEPS_PER_REQUEST;
    std::mt19937 rng(static_cast<uint32_t>(which * 100000 + 50000 + q.idx));
    std::vector<Step> out;
    int64_t t = 0;
    for (int s = 0; s < count; s++) {
        Step st;
        st.request_id = request_id;
        st.step = s;
        st.batch_size = 1 + static_cast<int>(rng() % 32);
        st.verify_len = static_cast<int>(rng() % (GAMMA + 1));
        st.n_accepted = static_cast<int>(rng() % static_cast<uint32_t>(st.verify_len + 1));
        st.bonus = st.n_accepted == st.verify_len;
        st.draft_ns = 200'000 + static_cast<int64_t>(rng() % 100'000);
        st.verify_ns = 3'000'000'000 + static_cast<int64_t>(rng());
        st.t_ns = t;
        t += st.draft_ns + st.verify_ns;
        out.push_back(st);
    }
    return out;
}

// Appends one request with its positions and steps; the caller owns the transaction.
void append_one(TraceDb& db, int64_t run_id, char which, int idx) {
    Request q = request_for(run_id, which, idx);
    trace_db_append_request(db, q);
    trace_db_append_positions(db, positions_for(q.id, q, which));
    std::vector<Step> steps = steps_for(q.id, q, which);
    trace_db_append_steps(db, steps);
}

// [SECTION] the child -------------------------------------------------------------------

void send(int fd, const std::string& msg) {
    size_t off = 0;
    while (off < msg.size()) {
        ssize_t n = write(fd, msg.data() + off, msg.size() - off);
        if (n <= 0) _exit(5);
        off += static_cast<size_t>(n);
    }
}

// Writes 'A' when run A is finished, 'b' after each committed run-B batch,
// 'E' and a message on an error. Never returns.
[[noreturn]] void child_main(const std::string& path, int fd) {
    // Do not outlive a parent that died before killing us.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto start = std::chrono::steady_clock::now();
    try {
        TraceDb db = trace_db_open(path, TRACE_CREATE);
        sp::Run a = run_template('A');
        trace_db_begin_run(db, a);
        for (int i = 0; i < A_REQUESTS; i++) {
            TraceTxn txn(db);
            append_one(db, a.id, 'A', i);
            txn.commit();
        }
        trace_db_finish_run(db, a.id);
        send(fd, "A");

        sp::Run b = run_template('B');
        trace_db_begin_run(db, b);
        for (int batch = 0;; batch++) {
            TraceTxn txn(db);
            for (int j = 0; j < B_BATCH; j++) append_one(db, b.id, 'B', batch * B_BATCH + j);
            txn.commit();
            send(fd, "b");
            if (std::chrono::steady_clock::now() - start > std::chrono::seconds(20)) _exit(4);
        }
    } catch (const std::exception& e) {
        send(fd, std::string("E") + e.what());
        _exit(2);
    }
}

// [SECTION] the parent --------------------------------------------------------------------

// Reads one byte, waiting at most `ms`; -1 on timeout, 0 at EOF.
int read_byte(int fd, int ms, char* c) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return -1;
    return static_cast<int>(read(fd, c, 1));
}

std::string read_rest(int fd) {
    std::string s;
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
}

class TraceDbCrash : public ::testing::TestWithParam<int> {};

TEST_P(TraceDbCrash, AWriterKilledMidRunLeavesEveryCommittedTransactionIntact) {
    const int delay_ms = GetParam();
    ScratchDir dir{"specplan_trace_crash"};
    const std::string path = dir.file("crash.specdb");

    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(path, fds[1]);
    }
    close(fds[1]);

    // Wait for run A, then for B's first commit.
    int b_commits = 0;
    std::string child_error;
    for (bool have_a = false; b_commits == 0 && child_error.empty();) {
        char c = 0;
        int n = read_byte(fds[0], 10'000, &c);
        if (n <= 0) { child_error = "child went silent or exited before run B's first commit"; break; }
        if (c == 'A') have_a = true;
        else if (c == 'b' && have_a) b_commits++;
        else if (c == 'E') child_error = "child: " + read_rest(fds[0]);
        else child_error = std::string("unexpected byte from child: ") + c;
    }
    if (child_error.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    std::string rest = read_rest(fds[0]);  // EOF now: the child is gone
    close(fds[0]);
    ASSERT_EQ(child_error, "");
    for (char c : rest) {
        if (c == 'b') b_commits++;
        else FAIL() << "child reported: " << rest;
    }
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child ended on its own, status " << status;
    RecordProperty("b_commits_reported", b_commits);

    // Open exactly as a reader would after the crash: read-only, hot WAL and all.
    TraceDb db;
    ASSERT_NO_THROW(db = trace_db_open(path, TRACE_READ));
    {
        sqlite3_stmt* st = nullptr;
        ASSERT_EQ(sqlite3_prepare_v2(db.db, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
        sqlite3_finalize(st);
    }

    std::vector<sp::Run> runs = trace_db_runs(db);
    ASSERT_EQ(runs.size(), 2u);
    sp::Run want_a = run_template('A'), want_b = run_template('B');
    want_a.id = runs[0].id;
    want_a.complete = true;
    want_b.id = runs[1].id;
    EXPECT_EQ(runs[0], want_a);
    EXPECT_EQ(runs[1], want_b);
    EXPECT_FALSE(runs[1].complete);

    // Checks one run's requests against the regenerated content; returns how many.
    auto check_run = [&](const sp::Run& run, char which) -> size_t {
        std::vector<Request> reqs = trace_db_requests(db, run.id);
        std::vector<Step> want_steps;
        for (size_t i = 0; i < reqs.size(); i++) {
            Request want = request_for(run.id, which, static_cast<int>(i));
            want.id = reqs[i].id;
            EXPECT_EQ(reqs[i], want) << "run " << which << " request " << i;
            Positions got;
            EXPECT_TRUE(trace_db_positions(db, reqs[i].id, &got)) << "run " << which << " request " << i;
            EXPECT_EQ(got, positions_for(reqs[i].id, want, which)) << "run " << which << " request " << i;
            std::vector<Step> s = steps_for(reqs[i].id, want, which);
            want_steps.insert(want_steps.end(), s.begin(), s.end());
        }
        std::vector<Step> got_steps;
        trace_db_for_each_step(db, run.id, [&](const Step& s) { got_steps.push_back(s); });
        EXPECT_EQ(got_steps.size(), want_steps.size()) << "run " << which;
        EXPECT_TRUE(got_steps == want_steps) << "run " << which << ": steps differ from what the child wrote";
        return reqs.size();
    };
    EXPECT_EQ(check_run(runs[0], 'A'), static_cast<size_t>(A_REQUESTS));
    size_t b_requests = check_run(runs[1], 'B');
    EXPECT_EQ(b_requests % B_BATCH, 0u) << "a batch was written in part";
    // Reported commits are durable; one more may have committed before its report.
    EXPECT_GE(b_requests, static_cast<size_t>(b_commits * B_BATCH));
    EXPECT_LE(b_requests, static_cast<size_t>((b_commits + 1) * B_BATCH));
    trace_db_close(db);

    // The crashed writer's lock is gone: the store takes the next run.
    TraceDb w = trace_db_open(path, TRACE_WRITE);
    sp::Run c = run_template('C');
    trace_db_begin_run(w, c);
    trace_db_finish_run(w, c.id);
    EXPECT_EQ(trace_db_counts(w).runs, 3);
    EXPECT_FALSE(trace_db_run(w, runs[1].id).complete);
}

// Milliseconds between B's first commit and the kill. A batch takes about
// 1.5 ms (Debug build), so short delays land inside or between transactions;
// the long ones let the WAL pass SQLite's 1000-page autocheckpoint, so a kill
// can also land inside a checkpoint.
INSTANTIATE_TEST_SUITE_P(KillDelays, TraceDbCrash, ::testing::Values(0, 1, 3, 6, 10, 15, 22, 30, 120, 250));

}  // namespace
