// trace_db.cpp: the SQLite side of the trace store. The only file that
// includes sqlite3.h. Contract and record layout: trace_db.h.
//
// Invariants kept here:
//   - every statement's result code is checked (sqlite_check); a failure
//     becomes one sp::Error line "<path>: <what>: <sqlite message>";
//   - writers validate before they write, readers validate what they read, so
//     a damaged or hand-edited file is an error and never a wrong value or an
//     out-of-bounds read (blob sizes are checked before any copy);
//   - WAL mode + one transaction per append: a killed writer loses only its
//     open transaction. synchronous=NORMAL is durable against a killed
//     process; after a power cut the newest commits may roll back, but the
//     file stays consistent.
#include "traces/trace_db.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <unordered_map>
#include <utility>

#include "git_rev.h"

namespace sp {

// [SECTION] schema ------------------------------------------------------------

// The current version (TRACE_SCHEMA_VERSION): version 1 plus the columns
// marked with the version that added them, which the MIGRATE_* scripts below
// add to older files. A shape is stored once in `models` and shared by runs
// and profiles. Positions blobs: see trace_db.h; their row count is the
// request's output_len and their width the run's gamma, so neither is
// stored twice.
static const char* SCHEMA = R"sql(
CREATE TABLE models(
  id               INTEGER PRIMARY KEY,
  name             TEXT NOT NULL,
  n_params         INTEGER NOT NULL CHECK (n_params >= 0),
  n_layers         INTEGER NOT NULL CHECK (n_layers >= 0),
  hidden           INTEGER NOT NULL CHECK (hidden >= 0),
  n_heads          INTEGER NOT NULL CHECK (n_heads >= 0),
  n_kv_heads       INTEGER NOT NULL CHECK (n_kv_heads >= 0),
  head_dim         INTEGER NOT NULL CHECK (head_dim >= 0),
  ffn              INTEGER NOT NULL CHECK (ffn >= 0),
  vocab            INTEGER NOT NULL CHECK (vocab >= 0),
  bytes_per_weight REAL NOT NULL CHECK (bytes_per_weight > 0),
  bytes_per_kv     REAL NOT NULL CHECK (bytes_per_kv > 0),
  UNIQUE (name, n_params, n_layers, hidden, n_heads, n_kv_heads, head_dim, ffn, vocab,
          bytes_per_weight, bytes_per_kv));
CREATE TABLE runs(
  id              INTEGER PRIMARY KEY,
  producer        TEXT NOT NULL CHECK (producer IN ('engine', 'importer', 'synthetic')),
  target_model_id INTEGER NOT NULL REFERENCES models(id),
  drafter_kind    TEXT NOT NULL,
  drafter_name    TEXT NOT NULL,
  gpu             TEXT NOT NULL,
  temperature     REAL NOT NULL CHECK (temperature >= 0),
  gamma           INTEGER NOT NULL CHECK (gamma BETWEEN 1 AND 64),
  created_at      TEXT NOT NULL,       -- ISO 8601 UTC
  git_rev         TEXT NOT NULL,
  notes           TEXT NOT NULL,
  complete        INTEGER NOT NULL CHECK (complete IN (0, 1)),
  verify_method   TEXT NOT NULL DEFAULT '' CHECK (verify_method IN ('', 'greedy', 'sampling', 'block')));  -- schema 4; '': not recorded
CREATE TABLE requests(
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs(id),
  idx        INTEGER NOT NULL CHECK (idx >= 0),
  domain     TEXT NOT NULL,
  prompt_len INTEGER NOT NULL CHECK (prompt_len >= 0),   -- tokens
  output_len INTEGER NOT NULL CHECK (output_len >= 0),   -- tokens
  UNIQUE (run_id, idx));
CREATE TABLE positions(
  request_id INTEGER PRIMARY KEY REFERENCES requests(id),
  beta       BLOB NOT NULL,   -- float32 LE [output_len][gamma]
  conf_logit BLOB,            -- float32 LE [output_len][gamma], NULL without a confidence head
  conf_prob  BLOB,            -- float32 LE [output_len][gamma], NULL without a confidence head
  draft_prob BLOB,            -- schema 3; float32 LE [output_len][gamma], NULL when not recorded
  verified   BLOB);           -- schema 4; uint8 [output_len] slots verified per row, NULL: every real slot
CREATE TABLE steps(
  request_id INTEGER NOT NULL REFERENCES requests(id),
  step       INTEGER NOT NULL CHECK (step >= 0),
  batch_size INTEGER NOT NULL CHECK (batch_size >= 1),
  verify_len INTEGER NOT NULL CHECK (verify_len >= 0),
  n_accepted INTEGER NOT NULL CHECK (n_accepted BETWEEN 0 AND verify_len),
  bonus      INTEGER NOT NULL CHECK (bonus IN (0, 1)),
  draft_ns   INTEGER NOT NULL CHECK (draft_ns >= 0),
  verify_ns  INTEGER NOT NULL CHECK (verify_ns >= 0),
  t_ns       INTEGER NOT NULL CHECK (t_ns >= 0),       -- since run start
  batch_tokens INTEGER NOT NULL DEFAULT 0 CHECK (batch_tokens >= 0),  -- schema 2; 0: not recorded
  host_ns    INTEGER NOT NULL DEFAULT 0 CHECK (host_ns >= 0),         -- schema 2; 0: not recorded
  drafted    INTEGER NOT NULL DEFAULT 0 CHECK (drafted = 0 OR drafted >= verify_len),  -- schema 4; 0: not recorded
  PRIMARY KEY (request_id, step)) WITHOUT ROWID;
CREATE TABLE profiles(
  id             INTEGER PRIMARY KEY,
  run_id         INTEGER REFERENCES runs(id),   -- NULL: not measured by a stored run
  gpu            TEXT NOT NULL,
  model_id       INTEGER NOT NULL REFERENCES models(id),
  phase          TEXT NOT NULL CHECK (phase IN ('draft', 'verify', 'prefill')),
  n_seqs         INTEGER NOT NULL CHECK (n_seqs >= 0),
  n_tokens       INTEGER NOT NULL CHECK (n_tokens >= 0),
  context        INTEGER NOT NULL CHECK (context >= 0),
  latency_us_p50 REAL NOT NULL CHECK (latency_us_p50 >= 0),
  latency_us_p10 REAL NOT NULL CHECK (latency_us_p10 >= 0),
  latency_us_p90 REAL NOT NULL CHECK (latency_us_p90 >= 0),
  n_samples      INTEGER NOT NULL CHECK (n_samples >= 0));
CREATE INDEX requests_by_run ON requests(run_id, idx);
CREATE INDEX profiles_by_shape ON profiles(gpu, model_id, phase);
)sql";

// Schema 2 adds two step columns; earlier rows read 0, "not recorded".
static const char* MIGRATE_1_TO_2 = R"sql(
ALTER TABLE steps ADD COLUMN batch_tokens INTEGER NOT NULL DEFAULT 0 CHECK (batch_tokens >= 0);
ALTER TABLE steps ADD COLUMN host_ns INTEGER NOT NULL DEFAULT 0 CHECK (host_ns >= 0);
)sql";

// Schema 3 adds the draft's probability of each draft; earlier rows read
// NULL, "not recorded".
static const char* MIGRATE_2_TO_3 = R"sql(
ALTER TABLE positions ADD COLUMN draft_prob BLOB;
)sql";

// Schema 4 separates "not verified" from "rejected": the run's verification
// method, each step's drafted count beside verify_len, and the verified
// slots per positions row. Earlier rows read '' / 0 / NULL, "not recorded",
// which is what they were: every step verified what it drafted, every
// teacher-forced slot was observed.
static const char* MIGRATE_3_TO_4 = R"sql(
ALTER TABLE runs ADD COLUMN verify_method TEXT NOT NULL DEFAULT ''
  CHECK (verify_method IN ('', 'greedy', 'sampling', 'block'));
ALTER TABLE steps ADD COLUMN drafted INTEGER NOT NULL DEFAULT 0 CHECK (drafted = 0 OR drafted >= verify_len);
ALTER TABLE positions ADD COLUMN verified BLOB;
)sql";

// [SECTION] enums -------------------------------------------------------------

static const char* PRODUCER_NAMES[] = {"engine", "importer", "synthetic"};
static const char* PHASE_NAMES[] = {"draft", "verify", "prefill"};
static const char* VERIFY_NAMES[] = {"", "greedy", "sampling", "block"};
static_assert(std::size(VERIFY_NAMES) == VERIFY_COUNT, "one name per VerifyMethod");
static_assert(std::size(PRODUCER_NAMES) == PRODUCER_COUNT, "one name per Producer");
static_assert(std::size(PHASE_NAMES) == PHASE_COUNT, "one name per Phase");

const char* producer_name(Producer p) { return p >= 0 && p < PRODUCER_COUNT ? PRODUCER_NAMES[p] : "?"; }
const char* phase_name(Phase p) { return p >= 0 && p < PHASE_COUNT ? PHASE_NAMES[p] : "?"; }
const char* verify_method_name(VerifyMethod v) { return v >= 0 && v < VERIFY_COUNT ? VERIFY_NAMES[v] : "?"; }

template <typename E, size_t N>
static bool enum_parse(const std::string& s, const char* (&names)[N], E* out) {
    for (size_t i = 0; i < N; i++)
        if (s == names[i]) { *out = static_cast<E>(i); return true; }
    return false;
}
bool producer_parse(const std::string& s, Producer* out) { return enum_parse(s, PRODUCER_NAMES, out); }
bool phase_parse(const std::string& s, Phase* out) { return enum_parse(s, PHASE_NAMES, out); }
bool verify_method_parse(const std::string& s, VerifyMethod* out) { return enum_parse(s, VERIFY_NAMES, out); }

// [SECTION] errors and statements ---------------------------------------------

// Messages are one line even when a stored name carries a newline.
[[noreturn]] static void fail(const TraceDb& db, const std::string& what) {
    std::string line = db.path + ": " + what;
    for (char& c : line)
        if (c == '\n' || c == '\r') c = ' ';
    throw Error(line);
}

static void sqlite_check(const TraceDb& db, int rc, const char* what) {
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    std::string msg = db.db ? sqlite3_errmsg(db.db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_NOTADB) msg = "not a SQLite database (" + msg + ")";
    if ((rc & 0xff) == SQLITE_CORRUPT) msg = "corrupt database (" + msg + ")";
    fail(db, std::string(what) + ": " + msg);
}

// One prepared statement. Getters check the stored type, so a NULL or a text
// where an integer belongs is reported with the column's name.
struct Stmt {
    const TraceDb& db;
    sqlite3_stmt* st = nullptr;
    Stmt(const TraceDb& d, const char* sql) : db(d) {
        sqlite_check(db, sqlite3_prepare_v2(db.db, sql, -1, &st, nullptr), "prepare");
    }
    ~Stmt() { sqlite3_finalize(st); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, int64_t v) { sqlite_check(db, sqlite3_bind_int64(st, i, v), "bind"); return *this; }
    Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
    Stmt& bind(int i, double v) { sqlite_check(db, sqlite3_bind_double(st, i, v), "bind"); return *this; }
    Stmt& bind(int i, const std::string& v) {
        sqlite_check(db, sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "bind");
        return *this;
    }
    Stmt& bind_null(int i) { sqlite_check(db, sqlite3_bind_null(st, i), "bind"); return *this; }
    Stmt& bind_blob(int i, const std::vector<uint8_t>& v) {
        // An empty vector's data() may be null, which SQLite would store as NULL.
        int rc = v.empty() ? sqlite3_bind_zeroblob(st, i, 0)
                           : sqlite3_bind_blob(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        sqlite_check(db, rc, "bind");
        return *this;
    }
    bool step() {  // true while a row is available
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) sqlite_check(db, rc, verb().c_str());
        return rc == SQLITE_ROW;
    }
    // "INSERT INTO requests", "UPDATE runs", "SELECT": what failed, short enough for one line.
    std::string verb() const {
        std::string sql = sqlite3_sql(st);
        size_t end = sql.find_first_of("(", 0);
        if (sql.rfind("SELECT", 0) == 0 || sql.rfind("PRAGMA", 0) == 0) end = 6;
        sql = sql.substr(0, end);
        while (!sql.empty() && sql.back() == ' ') sql.pop_back();
        return sql;
    }
    void exec() { while (step()) {} sqlite3_reset(st); }

    void expect_type(int i, int type, const char* col) const {
        if (sqlite3_column_type(st, i) != type) {
            static const char* names[] = {"", "integer", "real", "text", "blob", "null"};
            fail(db, std::string(col) + ": expected " + names[type] + ", found " +
                         names[sqlite3_column_type(st, i)]);
        }
    }
    int64_t i64(int i, const char* col, int64_t lo = 0, int64_t hi = std::numeric_limits<int64_t>::max()) const {
        expect_type(i, SQLITE_INTEGER, col);
        int64_t v = sqlite3_column_int64(st, i);
        if (v < lo || v > hi)
            fail(db, std::string(col) + ": expected " + std::to_string(lo) + ".." + std::to_string(hi) +
                         ", found " + std::to_string(v));
        return v;
    }
    int i32(int i, const char* col, int lo = 0, int hi = std::numeric_limits<int>::max()) const {
        return static_cast<int>(i64(i, col, lo, hi));
    }
    double f64(int i, const char* col, double lo = 0) const {
        // SQLite stores a REAL that has an integer value as an integer
        if (sqlite3_column_type(st, i) != SQLITE_INTEGER) expect_type(i, SQLITE_FLOAT, col);
        double v = sqlite3_column_double(st, i);
        if (!(v >= lo) || !std::isfinite(v))
            fail(db, std::string(col) + ": expected a finite number >= " + std::to_string(lo));
        return v;
    }
    std::string text(int i, const char* col) const {
        expect_type(i, SQLITE_TEXT, col);
        const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
        return std::string(p, static_cast<size_t>(sqlite3_column_bytes(st, i)));
    }
    bool is_null(int i) const { return sqlite3_column_type(st, i) == SQLITE_NULL; }
};

static void exec_sql(const TraceDb& db, const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db.db, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        if ((rc & 0xff) == SQLITE_NOTADB) msg = "not a SQLite database (" + msg + ")";
        fail(db, msg);
    }
}

static int64_t pragma_int(const TraceDb& db, const char* pragma) {
    Stmt s(db, pragma);
    if (!s.step()) fail(db, std::string(pragma) + ": no result");
    return sqlite3_column_int64(s.st, 0);
}

// [SECTION] blobs ---------------------------------------------------------------

// float32 little-endian, whatever the host.
static std::vector<uint8_t> floats_to_blob(const std::vector<float>& v) {
    std::vector<uint8_t> out(v.size() * 4);
    for (size_t i = 0; i < v.size(); i++) {
        uint32_t u = std::bit_cast<uint32_t>(v[i]);
        for (int b = 0; b < 4; b++) out[4 * i + b] = static_cast<uint8_t>(u >> (8 * b));
    }
    return out;
}

static std::vector<float> blob_to_floats(const Stmt& s, int col, const char* name, size_t count) {
    s.expect_type(col, SQLITE_BLOB, name);
    size_t bytes = static_cast<size_t>(sqlite3_column_bytes(s.st, col));
    if (bytes != count * 4)
        fail(s.db, std::string(name) + ": blob has " + std::to_string(bytes) + " bytes, expected " +
                       std::to_string(count * 4) + " (output_len x gamma float32)");
    const uint8_t* p = static_cast<const uint8_t*>(sqlite3_column_blob(s.st, col));
    std::vector<float> out(count);
    for (size_t i = 0; i < count; i++) {
        uint32_t u = 0;
        for (int b = 0; b < 4; b++) u |= static_cast<uint32_t>(p[4 * i + b]) << (8 * b);
        out[i] = std::bit_cast<float>(u);
    }
    return out;
}

// [SECTION] open / close --------------------------------------------------------

TraceDb::TraceDb(TraceDb&& o) noexcept
    : db(o.db), path(std::move(o.path)), txn_depth(o.txn_depth), version(o.version) {
    o.db = nullptr;
    o.txn_depth = 0;
}
TraceDb& TraceDb::operator=(TraceDb&& o) noexcept {
    if (this != &o) {
        trace_db_close(*this);
        db = o.db; path = std::move(o.path); txn_depth = o.txn_depth; version = o.version;
        o.db = nullptr; o.txn_depth = 0;
    }
    return *this;
}
TraceDb::~TraceDb() { trace_db_close(*this); }

void trace_db_close(TraceDb& db) {
    if (!db.db) return;
    if (db.txn_depth > 0) sqlite3_exec(db.db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db.db);  // checkpoints the WAL when this was the last connection
    db.db = nullptr;
    db.txn_depth = 0;
}

// Switching a new file to WAL needs it to itself, and SQLite reports a
// reader of the moment as busy without calling the busy handler; retry for
// up to the busy timeout. A file already in WAL mode returns at once. A
// switch that succeeds but leaves another mode (a database SQLite keeps in
// memory cannot be WAL) is refused, not retried: that looped forever.
static void set_wal(const TraceDb& db) {
    bool switched = false;
    for (int waited_ms = 0;; waited_ms += 5) {
        {  // the statement must be finished before the mode can change
            Stmt s(db, "PRAGMA journal_mode");
            const std::string mode = s.step() ? s.text(0, "journal_mode") : "unknown";
            if (mode == "wal") return;
            if (switched) fail(db, "cannot use the WAL journal (the database stays in " + mode + " mode)");
        }
        int rc = sqlite3_exec(db.db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
        if (rc == SQLITE_OK) {  // re-read: the pragma answers with the mode it got
            switched = true;
            continue;
        }
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) sqlite_check(db, rc, "journal_mode=WAL");
        if (waited_ms >= 5000) sqlite_check(db, rc, "journal_mode=WAL");
        sqlite3_sleep(5);
    }
}

static bool has_tables(const TraceDb& db) {
    return pragma_int(db, "SELECT count(*) FROM sqlite_schema") > 0;
}

TraceDb trace_db_open(const std::string& path, TraceOpen mode) {
    TraceDb db;
    db.path = path;
    struct stat st {};
    bool exists = ::stat(path.c_str(), &st) == 0;
    // SQLite's names for a database it keeps in memory (":memory:", "") are
    // no store: what is written there is gone at exit.
    if (path.empty() || path == ":memory:") fail(db, "expected the path of a trace store file");
    if (!exists && mode != TRACE_CREATE) fail(db, "no such file");
    if (exists && !S_ISREG(st.st_mode)) fail(db, "not a regular file");

    int flags = mode == TRACE_READ ? SQLITE_OPEN_READONLY
                                   : SQLITE_OPEN_READWRITE | (mode == TRACE_CREATE ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &db.db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    sqlite_check(db, rc, "open");
    sqlite3_extended_result_codes(db.db, 1);
    sqlite3_busy_timeout(db.db, 5000);

    // Creating checks for an empty file and writes the schema under the write
    // lock, so processes creating one store at once agree on who writes it.
    if (mode == TRACE_CREATE) {
        exec_sql(db, "BEGIN IMMEDIATE");  // the first access: a non-database fails here
        if (pragma_int(db, "PRAGMA application_id") == 0 && pragma_int(db, "PRAGMA user_version") == 0 &&
            !has_tables(db)) {
            exec_sql(db, SCHEMA);
            exec_sql(db, ("PRAGMA application_id=" + std::to_string(TRACE_APPLICATION_ID)).c_str());
            exec_sql(db, ("PRAGMA user_version=" + std::to_string(TRACE_SCHEMA_VERSION)).c_str());
        }
        exec_sql(db, "COMMIT");
    }
    int64_t app_id = pragma_int(db, "PRAGMA application_id");
    int64_t version = pragma_int(db, "PRAGMA user_version");
    if (app_id == 0 && version == 0 && !has_tables(db)) fail(db, "empty database, not a specplan trace store");
    if (app_id != TRACE_APPLICATION_ID) fail(db, "SQLite database, but not a specplan trace store (application_id)");
    if (version > TRACE_SCHEMA_VERSION)
        fail(db, "schema version " + std::to_string(version) + " is newer than this build reads (" +
                     std::to_string(TRACE_SCHEMA_VERSION) + "); update specplan");
    if (version < 1) fail(db, "schema version " + std::to_string(version) + " is not a valid trace schema");
    db.version = int(version);

    // quick_check reads every page: a truncated or overwritten file fails here,
    // at open, instead of halfway through a query.
    {
        Stmt s(db, "PRAGMA quick_check(1)");
        std::string verdict = s.step() ? s.text(0, "quick_check") : "no result";
        if (verdict != "ok") fail(db, "corrupt database (" + verdict + ")");
    }
    // A row whose parent is gone (a hand edit made with foreign keys off)
    // drops out of the joins that read it: a run without its models row would
    // vanish from info and export. Refused here, naming the first such row.
    {
        Stmt s(db, "PRAGMA foreign_key_check");
        if (s.step()) {
            static const std::pair<const char*, const char*> names[] = {
                {"runs", "run"}, {"requests", "request"}, {"positions", "positions of request"},
                {"steps", "step row"}, {"profiles", "profile"}};
            const std::string table = s.text(0, "foreign_key_check table");
            const std::string parent = s.text(2, "foreign_key_check parent");
            std::string row = table + " row";
            for (auto [t, name] : names)
                if (table == t) row = name;
            if (!s.is_null(1)) row += " " + std::to_string(s.i64(1, "foreign_key_check rowid"));
            fail(db, row + ": refers to a row of " + parent +
                         " that is missing (a broken foreign key); the store is damaged");
        }
    }
    exec_sql(db, "PRAGMA foreign_keys=ON");
    if (mode != TRACE_READ) {
        set_wal(db);
        exec_sql(db, "PRAGMA synchronous=NORMAL");
        if (db.version < TRACE_SCHEMA_VERSION) {  // every step to the current version in one transaction:
            exec_sql(db, "BEGIN IMMEDIATE");      // a crash leaves the file at its old version, as it was
            try {
                if (db.version < 2) exec_sql(db, MIGRATE_1_TO_2);
                if (db.version < 3) exec_sql(db, MIGRATE_2_TO_3);
                if (db.version < 4) exec_sql(db, MIGRATE_3_TO_4);
                exec_sql(db, ("PRAGMA user_version=" + std::to_string(TRACE_SCHEMA_VERSION)).c_str());
                exec_sql(db, "COMMIT");
            } catch (...) {
                exec_sql(db, "ROLLBACK");
                throw;
            }
            db.version = TRACE_SCHEMA_VERSION;
        }
    }
    return db;
}

// [SECTION] transactions --------------------------------------------------------

// The outermost level is a real transaction (BEGIN IMMEDIATE takes the write
// lock up front, so a busy database fails here and not halfway through);
// inner levels are savepoints, so a refused append inside a caller's
// transaction undoes only itself and the caller decides about the rest.
void trace_db_begin(TraceDb& db) {
    if (db.txn_depth > 0 && sqlite3_get_autocommit(db.db))
        fail(db, "the open transaction was rolled back by an earlier error; roll back and start again");
    std::string sql = db.txn_depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT level" + std::to_string(db.txn_depth);
    exec_sql(db, sql.c_str());
    db.txn_depth++;  // only once the statement succeeded
}

void trace_db_commit(TraceDb& db) {
    if (db.txn_depth <= 0) fail(db, "commit without begin");
    if (sqlite3_get_autocommit(db.db))
        fail(db, "the open transaction was rolled back by an earlier error; nothing was committed");
    std::string sql = db.txn_depth == 1 ? "COMMIT" : "RELEASE level" + std::to_string(db.txn_depth - 1);
    exec_sql(db, sql.c_str());
    db.txn_depth--;
}

void trace_db_rollback(TraceDb& db) {
    if (db.txn_depth <= 0) return;
    db.txn_depth--;
    // SQLite itself rolls the whole transaction back on some errors (disk
    // full, I/O). The outer levels stay open on our side, so their next begin
    // or commit refuses instead of writing outside their transaction.
    if (sqlite3_get_autocommit(db.db)) return;
    if (db.txn_depth == 0) {
        exec_sql(db, "ROLLBACK");
    } else {
        std::string level = "level" + std::to_string(db.txn_depth);
        exec_sql(db, ("ROLLBACK TO " + level + "; RELEASE " + level).c_str());
    }
}

// [SECTION] writers ---------------------------------------------------------------

std::string utc_now_iso8601() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static void check_shape(const TraceDb& db, const ModelShape& m) {
    if (m.n_params < 0 || m.n_layers < 0 || m.hidden < 0 || m.n_heads < 0 || m.n_kv_heads < 0 ||
        m.head_dim < 0 || m.ffn < 0 || m.vocab < 0)
        fail(db, "model '" + m.name + "': shape fields must be >= 0");
    if (!(m.bytes_per_weight > 0) || !(m.bytes_per_kv > 0) || !std::isfinite(m.bytes_per_weight) ||
        !std::isfinite(m.bytes_per_kv))
        fail(db, "model '" + m.name + "': bytes_per_weight and bytes_per_kv must be > 0");
}

static int64_t model_id(TraceDb& db, const ModelShape& m) {
    check_shape(db, m);
    auto bind = [&](Stmt& s) {
        s.bind(1, m.name).bind(2, m.n_params).bind(3, m.n_layers).bind(4, m.hidden).bind(5, m.n_heads)
            .bind(6, m.n_kv_heads).bind(7, m.head_dim).bind(8, m.ffn).bind(9, m.vocab)
            .bind(10, m.bytes_per_weight).bind(11, m.bytes_per_kv);
    };
    Stmt find(db, "SELECT id FROM models WHERE name=?1 AND n_params=?2 AND n_layers=?3 AND hidden=?4 AND "
                  "n_heads=?5 AND n_kv_heads=?6 AND head_dim=?7 AND ffn=?8 AND vocab=?9 AND "
                  "bytes_per_weight=?10 AND bytes_per_kv=?11");
    bind(find);
    if (find.step()) return sqlite3_column_int64(find.st, 0);
    Stmt ins(db, "INSERT INTO models(name, n_params, n_layers, hidden, n_heads, n_kv_heads, head_dim, ffn, "
                 "vocab, bytes_per_weight, bytes_per_kv) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
    bind(ins);
    ins.exec();
    return sqlite3_last_insert_rowid(db.db);
}

int64_t trace_db_begin_run(TraceDb& db, Run& run) {
    if (run.gamma < 1 || run.gamma > TRACE_MAX_GAMMA)
        fail(db, "run gamma: expected 1.." + std::to_string(TRACE_MAX_GAMMA) + ", got " + std::to_string(run.gamma));
    if (!(run.temperature >= 0) || !std::isfinite(run.temperature))
        fail(db, "run temperature: expected a finite number >= 0");
    if (run.producer < 0 || run.producer >= PRODUCER_COUNT) fail(db, "run producer: out of range");
    if (run.verify_method < 0 || run.verify_method >= VERIFY_COUNT) fail(db, "run verify_method: out of range");
    std::string created_at = run.created_at.empty() ? utc_now_iso8601() : run.created_at;
    std::string git_rev = run.git_rev.empty() ? SPECPLAN_GIT_REV : run.git_rev;
    TraceTxn txn(db);
    int64_t mid = model_id(db, run.target);
    Stmt s(db, "INSERT INTO runs(producer, target_model_id, drafter_kind, drafter_name, gpu, temperature, "
               "gamma, created_at, git_rev, notes, complete, verify_method) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,0,?11)");
    s.bind(1, std::string(producer_name(run.producer))).bind(2, mid).bind(3, run.drafter_kind)
        .bind(4, run.drafter_name).bind(5, run.gpu).bind(6, run.temperature).bind(7, run.gamma)
        .bind(8, created_at).bind(9, git_rev).bind(10, run.notes)
        .bind(11, std::string(verify_method_name(run.verify_method)));
    s.exec();
    int64_t id = sqlite3_last_insert_rowid(db.db);
    txn.commit();
    run.id = id;  // the caller's record changes only once the run is stored
    run.created_at = created_at;
    run.git_rev = git_rev;
    run.complete = false;
    return id;
}

void trace_db_finish_run(TraceDb& db, int64_t run_id) {
    TraceTxn txn(db);
    Stmt s(db, "UPDATE runs SET complete=1 WHERE id=?1");
    s.bind(1, run_id).exec();
    if (sqlite3_changes(db.db) != 1) fail(db, "finish_run: no run " + std::to_string(run_id));
    txn.commit();
}

int64_t trace_db_append_request(TraceDb& db, Request& req) {
    if (req.idx < 0 || req.prompt_len < 0 || req.output_len < 0)
        fail(db, "request: idx, prompt_len and output_len must be >= 0");
    TraceTxn txn(db);
    Stmt s(db, "INSERT INTO requests(run_id, idx, domain, prompt_len, output_len) VALUES (?1,?2,?3,?4,?5)");
    s.bind(1, req.run_id).bind(2, req.idx).bind(3, req.domain).bind(4, req.prompt_len).bind(5, req.output_len);
    s.exec();
    req.id = sqlite3_last_insert_rowid(db.db);
    txn.commit();
    return req.id;
}

// The run gamma and output_len a positions record must match.
struct RequestShape {
    int gamma = 0, output_len = 0;
};
static RequestShape request_shape(const TraceDb& db, int64_t request_id) {
    Stmt s(db, "SELECT r.gamma, q.output_len FROM requests q JOIN runs r ON r.id = q.run_id WHERE q.id=?1");
    s.bind(1, request_id);
    if (!s.step()) fail(db, "no request " + std::to_string(request_id));
    return {s.i32(0, "runs.gamma", 1, TRACE_MAX_GAMMA), s.i32(1, "requests.output_len")};
}

// Value checks shared by the writer and the reader: what one refuses to
// write, the other refuses to read.
static void check_positions_values(const TraceDb& db, const Positions& pos) {
    std::string who = "positions of request " + std::to_string(pos.request_id);
    for (float b : pos.beta)
        if (!(b >= 0.0f && b <= 1.0f)) fail(db, who + ": beta values must lie in [0, 1]");
    for (float c : pos.conf_prob)
        if (!(c >= 0.0f && c <= 1.0f)) fail(db, who + ": conf_prob values must lie in [0, 1]");
    for (float q : pos.draft_prob)
        if (!(q >= 0.0f && q <= 1.0f)) fail(db, who + ": draft_prob values must lie in [0, 1]");
    for (float z : pos.conf_logit)
        if (!std::isfinite(z)) fail(db, who + ": conf_logit values must be finite");
    for (uint8_t v : pos.verified)
        if (v > pos.gamma) fail(db, who + ": verified values must lie in 0..gamma " + std::to_string(pos.gamma));
}

void trace_db_append_positions(TraceDb& db, const Positions& pos) {
    TraceTxn txn(db);
    RequestShape rs = request_shape(db, pos.request_id);
    std::string who = "positions of request " + std::to_string(pos.request_id);
    if (pos.gamma != rs.gamma || pos.n != rs.output_len)
        fail(db, who + ": shape " + std::to_string(pos.n) + "x" + std::to_string(pos.gamma) +
                     ", expected output_len x gamma = " + std::to_string(rs.output_len) + "x" +
                     std::to_string(rs.gamma));
    size_t count = static_cast<size_t>(pos.n) * static_cast<size_t>(pos.gamma);
    if (pos.beta.size() != count) fail(db, who + ": beta has " + std::to_string(pos.beta.size()) +
                                               " values, expected " + std::to_string(count));
    bool conf = !pos.conf_logit.empty() || !pos.conf_prob.empty();
    if (conf && (pos.conf_logit.size() != count || pos.conf_prob.size() != count))
        fail(db, who + ": conf_logit and conf_prob need " + std::to_string(count) + " values each");
    if (!pos.draft_prob.empty() && pos.draft_prob.size() != count)
        fail(db, who + ": draft_prob has " + std::to_string(pos.draft_prob.size()) + " values, expected " +
                     std::to_string(count) + " (or none)");
    if (!pos.verified.empty() && pos.verified.size() != static_cast<size_t>(pos.n))
        fail(db, who + ": verified has " + std::to_string(pos.verified.size()) + " values, expected " +
                     std::to_string(pos.n) + " (one per row, or none)");
    check_positions_values(db, pos);

    Stmt s(db, "INSERT INTO positions(request_id, beta, conf_logit, conf_prob, draft_prob, verified) "
               "VALUES (?1,?2,?3,?4,?5,?6)");
    s.bind(1, pos.request_id).bind_blob(2, floats_to_blob(pos.beta));
    if (conf) s.bind_blob(3, floats_to_blob(pos.conf_logit)).bind_blob(4, floats_to_blob(pos.conf_prob));
    else s.bind_null(3).bind_null(4);
    // an empty draft_prob is "not recorded", NULL; an output of length 0 has nothing to record either way
    if (!pos.draft_prob.empty()) s.bind_blob(5, floats_to_blob(pos.draft_prob));
    else s.bind_null(5);
    if (!pos.verified.empty()) s.bind_blob(6, pos.verified);
    else s.bind_null(6);
    s.exec();
    txn.commit();
}

static void check_step(const TraceDb& db, const Step& st, int gamma) {
    std::string who = "step " + std::to_string(st.step) + " of request " + std::to_string(st.request_id);
    if (st.step < 0 || st.batch_size < 1) fail(db, who + ": step must be >= 0 and batch_size >= 1");
    if (st.verify_len < 0 || st.verify_len > gamma)
        fail(db, who + ": verify_len " + std::to_string(st.verify_len) + " outside 0..gamma " +
                     std::to_string(gamma));
    if (st.n_accepted < 0 || st.n_accepted > st.verify_len)
        fail(db, who + ": n_accepted " + std::to_string(st.n_accepted) + " outside 0..verify_len");
    // No bonus without a full accept; a full accept without a bonus happens
    // when an accepted draft was the end-of-sequence token.
    if (st.bonus && st.n_accepted != st.verify_len)
        fail(db, who + ": bonus set, but only " + std::to_string(st.n_accepted) + " of " +
                     std::to_string(st.verify_len) + " drafts were accepted");
    if (st.draft_ns < 0 || st.verify_ns < 0 || st.t_ns < 0 || st.host_ns < 0) fail(db, who + ": times must be >= 0");
    if (st.batch_tokens < 0) fail(db, who + ": batch_tokens must be >= 0");
    if (st.drafted != 0 && (st.drafted < st.verify_len || st.drafted > gamma))
        fail(db, who + ": drafted " + std::to_string(st.drafted) + " outside verify_len..gamma (or 0, not recorded)");
}

void trace_db_append_steps(TraceDb& db, std::span<const Step> steps) {
    TraceTxn txn(db);
    std::unordered_map<int64_t, int> gamma_of;  // request id -> run gamma
    Stmt s(db, "INSERT INTO steps(request_id, step, batch_size, verify_len, n_accepted, bonus, draft_ns, "
               "verify_ns, t_ns, batch_tokens, host_ns, drafted) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)");
    for (const Step& st : steps) {
        auto it = gamma_of.find(st.request_id);
        if (it == gamma_of.end()) it = gamma_of.emplace(st.request_id, request_shape(db, st.request_id).gamma).first;
        check_step(db, st, it->second);
        s.bind(1, st.request_id).bind(2, st.step).bind(3, st.batch_size).bind(4, st.verify_len)
            .bind(5, st.n_accepted).bind(6, st.bonus ? 1 : 0).bind(7, st.draft_ns).bind(8, st.verify_ns)
            .bind(9, st.t_ns).bind(10, st.batch_tokens).bind(11, st.host_ns).bind(12, st.drafted);
        s.exec();
    }
    txn.commit();
}

static void check_profile(const TraceDb& db, const Profile& p) {
    if (p.phase < 0 || p.phase >= PHASE_COUNT) fail(db, "profile phase: out of range");
    if (p.n_seqs < 0 || p.n_tokens < 0 || p.context < 0 || p.n_samples < 0)
        fail(db, "profile: n_seqs, n_tokens, context and n_samples must be >= 0");
    for (double v : {p.latency_us_p50, p.latency_us_p10, p.latency_us_p90})
        if (!(v >= 0) || !std::isfinite(v)) fail(db, "profile: latencies must be finite and >= 0");
    if (!(p.latency_us_p10 <= p.latency_us_p50 && p.latency_us_p50 <= p.latency_us_p90))
        fail(db, "profile " + std::to_string(p.id) + ": expected latency p10 <= p50 <= p90");
}

int64_t trace_db_append_profile(TraceDb& db, Profile& p) {
    check_profile(db, p);
    TraceTxn txn(db);
    int64_t mid = model_id(db, p.model);
    Stmt s(db, "INSERT INTO profiles(run_id, gpu, model_id, phase, n_seqs, n_tokens, context, latency_us_p50, "
               "latency_us_p10, latency_us_p90, n_samples) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
    if (p.run_id) s.bind(1, p.run_id); else s.bind_null(1);
    s.bind(2, p.gpu).bind(3, mid).bind(4, std::string(phase_name(p.phase))).bind(5, p.n_seqs)
        .bind(6, p.n_tokens).bind(7, p.context).bind(8, p.latency_us_p50).bind(9, p.latency_us_p10)
        .bind(10, p.latency_us_p90).bind(11, p.n_samples);
    s.exec();
    p.id = sqlite3_last_insert_rowid(db.db);
    txn.commit();
    return p.id;
}

// [SECTION] readers -------------------------------------------------------------

TraceCounts trace_db_counts(TraceDb& db) {
    TraceCounts c;
    c.runs = pragma_int(db, "SELECT count(*) FROM runs");
    c.requests = pragma_int(db, "SELECT count(*) FROM requests");
    c.positions = pragma_int(db, "SELECT count(*) FROM positions");
    c.anchors = pragma_int(db, "SELECT coalesce(sum(q.output_len), 0) FROM positions p "
                               "JOIN requests q ON q.id = p.request_id");
    c.steps = pragma_int(db, "SELECT count(*) FROM steps");
    c.profiles = pragma_int(db, "SELECT count(*) FROM profiles");
    return c;
}

// Columns of a models row starting at column `c`.
static ModelShape read_shape(const Stmt& s, int c) {
    ModelShape m;
    m.name = s.text(c, "models.name");
    m.n_params = s.i64(c + 1, "models.n_params");
    m.n_layers = s.i32(c + 2, "models.n_layers");
    m.hidden = s.i32(c + 3, "models.hidden");
    m.n_heads = s.i32(c + 4, "models.n_heads");
    m.n_kv_heads = s.i32(c + 5, "models.n_kv_heads");
    m.head_dim = s.i32(c + 6, "models.head_dim");
    m.ffn = s.i32(c + 7, "models.ffn");
    m.vocab = s.i32(c + 8, "models.vocab");
    m.bytes_per_weight = s.f64(c + 9, "models.bytes_per_weight");
    m.bytes_per_kv = s.f64(c + 10, "models.bytes_per_kv");
    if (m.bytes_per_weight <= 0 || m.bytes_per_kv <= 0) fail(s.db, "models: bytes per element must be > 0");
    return m;
}
#define MODEL_COLS "m.name, m.n_params, m.n_layers, m.hidden, m.n_heads, m.n_kv_heads, m.head_dim, m.ffn, " \
                   "m.vocab, m.bytes_per_weight, m.bytes_per_kv"

// A store before version 4 (read-only) has no verify_method: '', not recorded.
static std::string run_select(const TraceDb& db) {
    return std::string("SELECT r.id, r.producer, r.drafter_kind, r.drafter_name, r.gpu, r.temperature, r.gamma, "
                       "r.created_at, r.git_rev, r.notes, r.complete, " MODEL_COLS ", ") +
           (db.version >= 4 ? "r.verify_method" : "''") + " FROM runs r JOIN models m ON m.id = r.target_model_id";
}

static Run read_run(const Stmt& s) {
    Run r;
    r.id = s.i64(0, "runs.id");
    if (!producer_parse(s.text(1, "runs.producer"), &r.producer))
        fail(s.db, "runs.producer: expected engine, importer or synthetic");
    r.drafter_kind = s.text(2, "runs.drafter_kind");
    r.drafter_name = s.text(3, "runs.drafter_name");
    r.gpu = s.text(4, "runs.gpu");
    r.temperature = s.f64(5, "runs.temperature");
    r.gamma = s.i32(6, "runs.gamma", 1, TRACE_MAX_GAMMA);
    r.created_at = s.text(7, "runs.created_at");
    r.git_rev = s.text(8, "runs.git_rev");
    r.notes = s.text(9, "runs.notes");
    r.complete = s.i32(10, "runs.complete", 0, 1) == 1;
    r.target = read_shape(s, 11);
    if (!verify_method_parse(s.text(22, "runs.verify_method"), &r.verify_method))
        fail(s.db, "runs.verify_method: expected '', greedy, sampling or block");
    return r;
}

std::vector<Run> trace_db_runs(TraceDb& db) {
    Stmt s(db, (run_select(db) + " ORDER BY r.id").c_str());
    std::vector<Run> out;
    while (s.step()) out.push_back(read_run(s));
    return out;
}

Run trace_db_run(TraceDb& db, int64_t run_id) {
    Stmt s(db, (run_select(db) + " WHERE r.id = ?1").c_str());
    s.bind(1, run_id);
    if (!s.step()) fail(db, "no run " + std::to_string(run_id));
    return read_run(s);
}

std::vector<Request> trace_db_requests(TraceDb& db, int64_t run_id) {
    Stmt s(db, "SELECT id, run_id, idx, domain, prompt_len, output_len FROM requests WHERE run_id=?1 ORDER BY idx");
    s.bind(1, run_id);
    std::vector<Request> out;
    while (s.step()) {
        Request q;
        q.id = s.i64(0, "requests.id");
        q.run_id = s.i64(1, "requests.run_id");
        q.idx = s.i32(2, "requests.idx");
        q.domain = s.text(3, "requests.domain");
        q.prompt_len = s.i32(4, "requests.prompt_len");
        q.output_len = s.i32(5, "requests.output_len");
        out.push_back(std::move(q));
    }
    return out;
}

bool trace_db_positions(TraceDb& db, int64_t request_id, Positions* out) {
    // a store before version 3 (read-only) has no draft_prob: NULL, not recorded
    // and one before version 4 no verified: NULL, every real slot observed
    const std::string v3_cols = db.version >= 3 ? "p.draft_prob" : "NULL";
    const std::string v4_cols = db.version >= 4 ? "p.verified" : "NULL";
    Stmt s(db, ("SELECT r.gamma, q.output_len, p.beta, p.conf_logit, p.conf_prob, " + v3_cols + ", " + v4_cols +
                " FROM positions p "
                "JOIN requests q ON q.id = p.request_id JOIN runs r ON r.id = q.run_id WHERE p.request_id=?1").c_str());
    s.bind(1, request_id);
    if (!s.step()) return false;
    Positions p;
    p.request_id = request_id;
    p.gamma = s.i32(0, "runs.gamma", 1, TRACE_MAX_GAMMA);
    p.n = s.i32(1, "requests.output_len");
    size_t count = static_cast<size_t>(p.n) * static_cast<size_t>(p.gamma);
    p.beta = blob_to_floats(s, 2, "positions.beta", count);
    if (s.is_null(3) != s.is_null(4)) fail(db, "positions: conf_logit and conf_prob must both be present or NULL");
    if (!s.is_null(3)) {
        p.conf_logit = blob_to_floats(s, 3, "positions.conf_logit", count);
        p.conf_prob = blob_to_floats(s, 4, "positions.conf_prob", count);
    }
    if (!s.is_null(5)) p.draft_prob = blob_to_floats(s, 5, "positions.draft_prob", count);
    if (!s.is_null(6)) {
        s.expect_type(6, SQLITE_BLOB, "positions.verified");
        const size_t bytes = static_cast<size_t>(sqlite3_column_bytes(s.st, 6));
        if (bytes != static_cast<size_t>(p.n))
            fail(db, "positions.verified: blob has " + std::to_string(bytes) + " bytes, expected " +
                         std::to_string(p.n) + " (one per row)");
        const uint8_t* v = static_cast<const uint8_t*>(sqlite3_column_blob(s.st, 6));
        p.verified.assign(v, v + bytes);
    }
    check_positions_values(db, p);
    *out = std::move(p);
    return true;
}

void trace_db_for_each_step(TraceDb& db, int64_t run_id, const std::function<void(const Step&)>& fn) {
    // a version-1 store (read-only) has no batch_tokens or host_ns: 0, not recorded
    const std::string v2_cols = db.version >= 2 ? "s.batch_tokens, s.host_ns" : "0, 0";
    // and one before version 4 no drafted: 0, not recorded
    const std::string v4_cols = db.version >= 4 ? "s.drafted" : "0";
    Stmt s(db, ("SELECT s.request_id, s.step, s.batch_size, s.verify_len, s.n_accepted, s.bonus, s.draft_ns, "
                "s.verify_ns, s.t_ns, r.gamma, " + v2_cols + ", " + v4_cols + " FROM steps s JOIN requests q ON q.id = s.request_id "
                "JOIN runs r ON r.id = q.run_id WHERE q.run_id=?1 ORDER BY q.idx, s.step").c_str());
    s.bind(1, run_id);
    while (s.step()) {
        Step st;
        st.request_id = s.i64(0, "steps.request_id");
        st.step = s.i32(1, "steps.step");
        st.batch_size = s.i32(2, "steps.batch_size", 1);
        st.verify_len = s.i32(3, "steps.verify_len", 0, TRACE_MAX_GAMMA);
        st.n_accepted = s.i32(4, "steps.n_accepted", 0, st.verify_len);
        st.bonus = s.i32(5, "steps.bonus", 0, 1) == 1;
        st.draft_ns = s.i64(6, "steps.draft_ns");
        st.verify_ns = s.i64(7, "steps.verify_ns");
        st.t_ns = s.i64(8, "steps.t_ns");
        st.batch_tokens = s.i32(10, "steps.batch_tokens");
        st.host_ns = s.i64(11, "steps.host_ns");
        st.drafted = s.i32(12, "steps.drafted", 0, TRACE_MAX_GAMMA);
        check_step(db, st, s.i32(9, "runs.gamma", 1, TRACE_MAX_GAMMA));
        fn(st);
    }
}

std::vector<Profile> trace_db_profiles(TraceDb& db) {
    Stmt s(db, "SELECT p.id, p.run_id, p.gpu, p.phase, p.n_seqs, p.n_tokens, p.context, p.latency_us_p50, "
               "p.latency_us_p10, p.latency_us_p90, p.n_samples, " MODEL_COLS
               " FROM profiles p JOIN models m ON m.id = p.model_id ORDER BY p.id");
    std::vector<Profile> out;
    while (s.step()) {
        Profile p;
        p.id = s.i64(0, "profiles.id");
        p.run_id = s.is_null(1) ? 0 : s.i64(1, "profiles.run_id");
        p.gpu = s.text(2, "profiles.gpu");
        if (!phase_parse(s.text(3, "profiles.phase"), &p.phase))
            fail(db, "profiles.phase: expected draft, verify or prefill");
        p.n_seqs = s.i32(4, "profiles.n_seqs");
        p.n_tokens = s.i32(5, "profiles.n_tokens");
        p.context = s.i32(6, "profiles.context");
        p.latency_us_p50 = s.f64(7, "profiles.latency_us_p50");
        p.latency_us_p10 = s.f64(8, "profiles.latency_us_p10");
        p.latency_us_p90 = s.f64(9, "profiles.latency_us_p90");
        p.n_samples = s.i32(10, "profiles.n_samples");
        p.model = read_shape(s, 11);
        check_profile(db, p);
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace sp
