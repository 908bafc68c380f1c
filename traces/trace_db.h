// trace_db.h: the trace store, one SQLite file (".specdb") between the GPU
// engine, which writes acceptance traces and cost profiles, and the simulator
// and dashboard, which read them.
//
// Five kinds of record (README "Trace schema" has the SQL):
//   Run       what produced the data: producer, target shape, drafter, GPU, T, gamma
//   Request   one prompt+output of a run: domain label, prompt and output length
//   Positions teacher-forced drafter statistics of one request, per anchor t and slot k
//   Step      one live verify step of an engine run
//   Profile   one measured latency cell of a cost table
//
// Crash safety comes from SQLite: WAL mode, every append in a transaction. A run
// is written as begin_run (complete = 0) ... finish_run (complete = 1), so a
// writer killed midway leaves its run readable and marked incomplete, and
// every committed run intact.
//
// Errors: every function throws sp::Error, whose what() is one line naming
// the file and what was wrong. Nothing here aborts on bad input.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace sp {

// One-line, user-facing error: "<file>: <what>". Thrown on every failure.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// PRAGMA user_version. 2 added steps.batch_tokens and steps.host_ns; 3
// added positions.draft_prob; 4 added runs.verify_method, steps.drafted and
// positions.verified ("not verified is not rejected", see Positions and Step).
// An older store reads with the newer columns absent (0, empty, not
// recorded) and is migrated in place when opened for writing.
inline constexpr int TRACE_SCHEMA_VERSION = 4;
inline constexpr int TRACE_APPLICATION_ID = 0x53504543;  // PRAGMA application_id, "SPEC"
inline constexpr int TRACE_MAX_GAMMA = 64;         // drafts per block, sanity bound on read

enum Producer { PRODUCER_ENGINE, PRODUCER_IMPORTER, PRODUCER_SYNTHETIC, PRODUCER_COUNT };
enum Phase { PHASE_DRAFT, PHASE_VERIFY, PHASE_PREFILL, PHASE_COUNT };
// How the target accepted drafts; it changes per-position statistics (block
// verification accepts more deep slots than token-wise rejection sampling).
enum VerifyMethod { VERIFY_UNRECORDED, VERIFY_GREEDY, VERIFY_SAMPLING, VERIFY_BLOCK, VERIFY_COUNT };

const char* producer_name(Producer p);  // "engine" | "importer" | "synthetic"
const char* phase_name(Phase p);        // "draft" | "verify" | "prefill"
const char* verify_method_name(VerifyMethod v);  // "" (not recorded) | "greedy" | "sampling" | "block"
bool producer_parse(const std::string& s, Producer* out);
bool phase_parse(const std::string& s, Phase* out);
bool verify_method_parse(const std::string& s, VerifyMethod* out);  // accepts "" as VERIFY_UNRECORDED

// A transformer's shape: what the roofline cost model and the engine's random
// weight mode need. Stored once per distinct shape, shared by runs and profiles.
struct ModelShape {
    std::string name;            // e.g. "qwen3-8b" or an HF repo id
    int64_t n_params = 0;        // total parameters, embeddings included
    int n_layers = 0;            // decoder layers L
    int hidden = 0;              // model width d
    int n_heads = 0;             // query heads H
    int n_kv_heads = 0;          // key/value heads KVH (GQA)
    int head_dim = 0;            // D
    int ffn = 0;                 // SwiGLU intermediate width
    int vocab = 0;               // V
    double bytes_per_weight = 2; // 2 = bf16
    double bytes_per_kv = 2;     // per KV-cache element
    bool operator==(const ModelShape&) const = default;
};

struct Run {
    int64_t id = 0;              // assigned by trace_db_begin_run
    Producer producer = PRODUCER_SYNTHETIC;
    ModelShape target;
    std::string drafter_kind;    // "dspark", "eagle3", "mtp", "none", ...
    std::string drafter_name;    // checkpoint or generator name
    std::string gpu;             // e.g. "NVIDIA H100 80GB HBM3", "none"
    double temperature = 0;      // sampling temperature; 0 = greedy
    int gamma = 0;               // block size: drafts per step, 1..TRACE_MAX_GAMMA
    std::string created_at;      // ISO 8601 UTC; filled in by begin_run when empty
    std::string git_rev;         // specplan revision; filled in by begin_run when empty
    std::string notes;
    VerifyMethod verify_method = VERIFY_UNRECORDED;  // schema 4; greedy, token-wise sampling or block
    bool complete = false;       // set by trace_db_finish_run only
    bool operator==(const Run&) const = default;
};

struct Request {
    int64_t id = 0;              // assigned by trace_db_append_request
    int64_t run_id = 0;
    int idx = 0;                 // 0-based order within the run, unique per run
    std::string domain;          // dataset or domain label: "code", "chat", "gsm8k"
    int prompt_len = 0;          // tokens
    int output_len = 0;          // tokens
    bool operator==(const Request&) const = default;
};

// Teacher-forced drafter statistics of one request's output.
// Row t (0 <= t < n) is the step whose anchor is output token t: slot k
// (1 <= k <= gamma) drafts output token t + k, and only slots with
// t + k < output_len are real; the others are stored as 0 and never read.
//   beta[t*gamma + k-1]       P(draft k accepted | drafts 1..k-1 accepted)
//                             = min(1, p_target/p_draft); exactly 0 or 1 when greedy
//   conf_logit[t*gamma + k-1] the confidence head's raw logit z
//   conf_prob[t*gamma + k-1]  the calibrated confidence c = sigma(z / T_k)
//   draft_prob[t*gamma + k-1] the draft's own probability of its token (DraftOutput::q_token:
//                             q(token) when sampling, softmax at T = 1 of the argmax when
//                             greedy, 1 for n-gram); what the draft-prob policy reads
// conf_logit and conf_prob are both empty when the drafter has no confidence head;
// draft_prob is empty when not recorded (stores before schema 3, synthetic runs).
// On disk each array is one blob of n*gamma IEEE-754 float32, little-endian.
//
// Observed slots. By default (verified empty: teacher forcing, every capture
// before schema 4) row t observes slots k with t + k < output_len. Data
// imported from live proposals (DeepSpec's confidence dump) observes fewer:
// verified[t] = v means slots 1..v of row t were verified and slots v+1..gamma
// were not, which is no rejection: statistics skip them (positions_observed)
// and the simulator draws them from the pooled rate of the verified ones.
// On disk one blob of n bytes.
struct Positions {
    int64_t request_id = 0;
    int gamma = 0;
    int n = 0;                        // anchors = the request's output_len
    std::vector<float> beta;          // (n, gamma)
    std::vector<float> conf_logit;    // (n, gamma) or empty
    std::vector<float> conf_prob;     // (n, gamma) or empty
    std::vector<float> draft_prob;    // (n, gamma) or empty
    std::vector<uint8_t> verified;    // (n) slots verified per row, 0..gamma; or empty (schema 4)
    bool has_confidence() const { return !conf_prob.empty(); }
    bool operator==(const Positions&) const = default;
};

// Slots observed in row t of p: 1..positions_observed(p, t) (see Positions).
inline int positions_observed(const Positions& p, int t) {
    if (!p.verified.empty()) return p.verified[static_cast<size_t>(t)];
    int real = p.n - 1 - t;
    return real < 0 ? 0 : (real > p.gamma ? p.gamma : real);
}

// One verify step. Drafted, verified and accepted are three numbers, because
// under adaptive verification a draft that was not verified is not a
// rejection: slots verify_len+1..drafted are unobserved, not failed.
struct Step {
    int64_t request_id = 0;
    int step = 0;                // 0-based step index within the request
    int batch_size = 0;          // sequences in the verify batch
    int verify_len = 0;          // drafts verified, l (0 = plain decode)
    int n_accepted = 0;          // drafts accepted, 0..verify_len
    bool bonus = false;          // emitted token was the bonus (all accepted), else the correction
    int64_t draft_ns = 0;        // drafter time of the step
    int64_t verify_ns = 0;       // target verify forward time of the step
    int64_t t_ns = 0;            // step start, ns since the run started
    int batch_tokens = 0;        // B: tokens of the step's forward, prompt chunks included (0: not recorded)
    int64_t host_ns = 0;         // the iteration's host time outside the draft call and the forward (0: not recorded)
    int drafted = 0;             // drafts proposed, verify_len..gamma (0: not recorded; schema 4)
    bool operator==(const Step&) const = default;
};

// One cell of a measured cost table: latency of one forward of `phase` over
// n_seqs sequences carrying n_tokens new tokens in all, at context length `context`.
struct Profile {
    int64_t id = 0;
    int64_t run_id = 0;          // the run that measured it, 0 if none
    std::string gpu;
    ModelShape model;
    Phase phase = PHASE_VERIFY;
    int n_seqs = 0;              // R
    int n_tokens = 0;            // B
    int context = 0;             // tokens of KV per sequence
    double latency_us_p50 = 0;   // median, microseconds
    double latency_us_p10 = 0;   // spread: 10th and 90th percentiles, microseconds
    double latency_us_p90 = 0;
    int n_samples = 0;           // timed repetitions behind the percentiles
    bool operator==(const Profile&) const = default;
};

struct TraceCounts {
    int64_t runs = 0, requests = 0, positions = 0, anchors = 0, steps = 0, profiles = 0;
};

enum TraceOpen {
    TRACE_READ,     // existing file, read only
    TRACE_WRITE,    // existing file, read and append
    TRACE_CREATE,   // create when missing (schema written), else as TRACE_WRITE
};

// An open database. Move-only; the destructor closes it (a pending transaction
// rolls back). One handle belongs to one thread.
struct TraceDb {
    sqlite3* db = nullptr;
    std::string path;
    int txn_depth = 0;
    int version = TRACE_SCHEMA_VERSION;  // of the file: older only when opened read-only (writing migrates it)
    TraceDb() = default;
    TraceDb(TraceDb&&) noexcept;
    TraceDb& operator=(TraceDb&&) noexcept;
    TraceDb(const TraceDb&) = delete;
    TraceDb& operator=(const TraceDb&) = delete;
    ~TraceDb();
};

// Opens `path`. Refuses, with sp::Error, a file that is not a SQLite database,
// a SQLite database that is not a trace store, a newer schema version, and a
// file that fails PRAGMA quick_check (corrupt or truncated).
TraceDb trace_db_open(const std::string& path, TraceOpen mode);
void trace_db_close(TraceDb& db);

// Transactions nest: the outermost level is a transaction, inner levels are
// savepoints, and only the outermost commit writes. A rollback undoes only its
// own level, so a writer refused inside a caller's transaction leaves the
// caller's earlier appends in place, to commit or roll back. Every append runs
// in its own (inner) transaction.
void trace_db_begin(TraceDb& db);
void trace_db_commit(TraceDb& db);
void trace_db_rollback(TraceDb& db);

// RAII: begins on construction; rolls back on destruction unless committed.
struct TraceTxn {
    TraceDb& db;
    bool done = false;
    explicit TraceTxn(TraceDb& d) : db(d) { trace_db_begin(db); }
    void commit() { trace_db_commit(db); done = true; }
    ~TraceTxn() { if (!done) try { trace_db_rollback(db); } catch (...) {} }
    TraceTxn(const TraceTxn&) = delete;
    TraceTxn& operator=(const TraceTxn&) = delete;
};

// Writers. Each validates its record and throws sp::Error before writing
// anything invalid. Beyond the ranges in the struct comments:
//   Run       1 <= gamma <= TRACE_MAX_GAMMA; temperature finite and >= 0
//   ModelShape  sizes >= 0; bytes_per_weight and bytes_per_kv > 0
//   Positions gamma == the run's gamma and n == the request's output_len;
//             beta, conf_prob and draft_prob in [0, 1]; conf_logit finite;
//             each array n*gamma values or (but beta) empty
//   Positions verified: n values in 0..gamma, or empty
//   Step      batch_size >= 1 (a default Step is not valid); verify_len <= the
//             run's gamma; n_accepted <= verify_len; bonus implies n_accepted == verify_len;
//             drafted 0 or in verify_len..gamma
//   Profile   latency p10 <= p50 <= p90, all finite
// The readers apply the same checks to what they read.
int64_t trace_db_begin_run(TraceDb& db, Run& run);  // sets run.id (and created_at, git_rev if empty); complete = 0
void trace_db_finish_run(TraceDb& db, int64_t run_id);  // complete = 1
int64_t trace_db_append_request(TraceDb& db, Request& req);  // sets req.id
void trace_db_append_positions(TraceDb& db, const Positions& pos);
void trace_db_append_steps(TraceDb& db, std::span<const Step> steps);
int64_t trace_db_append_profile(TraceDb& db, Profile& prof);  // sets prof.id

// Readers. Every value read back is validated as the writers validate it, so a
// hand-edited or damaged file gives sp::Error, not a wrong answer.
TraceCounts trace_db_counts(TraceDb& db);
std::vector<Run> trace_db_runs(TraceDb& db);
Run trace_db_run(TraceDb& db, int64_t run_id);
std::vector<Request> trace_db_requests(TraceDb& db, int64_t run_id);  // in idx order
bool trace_db_positions(TraceDb& db, int64_t request_id, Positions* out);  // false if none stored
// Calls fn for each step of a run, ordered by (request idx, step).
void trace_db_for_each_step(TraceDb& db, int64_t run_id, const std::function<void(const Step&)>& fn);
std::vector<Profile> trace_db_profiles(TraceDb& db);  // in id order

// Now, as ISO 8601 UTC ("2026-11-23T07:40:00Z").
std::string utc_now_iso8601();

}  // namespace sp
