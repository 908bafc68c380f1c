// trace_jsonl.h: a whole trace database as JSON Lines, and back.
//
// Why: a .specdb is a binary SQLite file. JSON Lines is the text form for
// diffing two databases, attaching traces to a bug report, hand-editing a
// test case, and merging databases (import appends). The export is
// byte-deterministic, so equal databases give equal files, and an export ->
// import -> export round trip is exact, byte for byte and record for record.
//
// Format, version 1. One compact JSON object per line, keys in this order:
//
//   {"type":"specplan-traces","version":1}                     always line 1
//   {"type":"run","id":1,"producer":"synthetic","target":SHAPE,"drafter_kind":"..",
//    "drafter_name":"..","gpu":"..","temperature":0.0,"gamma":4,"created_at":"..",
//    "git_rev":"..","notes":"..","complete":true,"verify_method":".."}
//   {"type":"request","id":1,"run":1,"idx":0,"domain":"..","prompt_len":..,"output_len":..}
//   {"type":"positions","request":1,"gamma":4,"n":..,"beta":[..],"conf_logit":[..],"conf_prob":[..],
//    "draft_prob":[..],"verified":[..]}
//   {"type":"step","request":1,"step":0,"batch_size":..,"verify_len":..,"n_accepted":..,
//    "bonus":false,"draft_ns":..,"verify_ns":..,"t_ns":..,"batch_tokens":..,"host_ns":..,"drafted":..}
//   {"type":"profile","id":1,"run":0,"gpu":"..","model":SHAPE,"phase":"verify","n_seqs":..,
//    "n_tokens":..,"context":..,"latency_us_p50":..,"latency_us_p10":..,"latency_us_p90":..,
//    "n_samples":..}
//
//   SHAPE = {"name":"..","n_params":..,"n_layers":..,"hidden":..,"n_heads":..,"n_kv_heads":..,
//            "head_dim":..,"ffn":..,"vocab":..,"bytes_per_weight":2.0,"bytes_per_kv":2.0}
//
// Order: runs by id; after each run the lines of all its requests by idx, then
// for each request by idx its positions line (when stored) and its steps by
// step index; then all profiles by id ("run":0 = measured by no run).
//
// Positions arrays hold n*gamma float32 values, row-major (anchor t, slot k).
// The export writes each as the shortest decimal that reads back as the same
// float32; conf_logit and conf_prob are omitted when the drafter has no
// confidence head (import also accepts them as empty arrays), draft_prob
// when it was not recorded (likewise). Schema 4's fields are written only
// when recorded, so a store without them exports as it did before: a run's
// "verify_method" ("greedy", "sampling" or "block"), a step's "drafted"
// (>= verify_len) and a positions line's "verified" (n integers in
// 0..gamma, the slots observed per row). Doubles are written as the shortest
// decimal that reads back as the same double.
//
// Ids are those of the source database. Import maps them to fresh ids of the
// target database, so a file can be appended to a database that already holds
// data; a reference must name an id defined earlier in the file. Runs,
// profiles and each run's requests are created in source id order, so an
// import into a fresh database reproduces the source ids (and the export)
// exactly, unless requests of different runs were interleaved in the source. A run with
// "complete":true is finished (trace_db_finish_run) at the end of the import.
// created_at, git_rev and notes are kept as written.
//
// Import is strict: wrong JSON types, missing or unknown keys, non-finite or
// out-of-range numbers, arrays of the wrong length, an unknown "type", a
// missing header or a newer "version" are all refused. Blank lines are
// accepted only at the end of the file. A line longer than
// TRACE_JSONL_MAX_LINE bytes is refused as soon as it passes that length, so
// input without newlines (a device, a binary file) cannot exhaust memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>
#include <string>

#include "traces/trace_db.h"

namespace sp {

inline constexpr int TRACE_JSONL_VERSION = 1;
// 256 MiB: the positions line of a request with 4 M (anchor, slot) values
// (output 65536 x gamma 64) in four arrays of up to 15 characters a value.
inline constexpr size_t TRACE_JSONL_MAX_LINE = size_t(1) << 28;

// Records written or read, by kind.
struct JsonlSummary {
    int64_t runs = 0, requests = 0, positions = 0, steps = 0, profiles = 0;
    bool operator==(const JsonlSummary&) const = default;
};

// Writes every record of `db` to `out` in the format above. `out_name` names
// the output in error messages only. Throws sp::Error when a record cannot be
// written (a non-finite float, text that is not UTF-8) or the stream fails.
JsonlSummary trace_export_jsonl(TraceDb& db, std::ostream& out,
                                const std::string& out_name = "<output>");

// Appends every record of `in` to `db` inside one transaction: on any error
// nothing is written and sp::Error is thrown, with the one-line message
// "<in_name>:<line>: <field>: expected <what>, got <what>", or
// "<in_name>:<line>: line longer than <max_line> bytes" (tests pass a
// smaller max_line).
JsonlSummary trace_import_jsonl(TraceDb& db, std::istream& in, const std::string& in_name,
                                size_t max_line = TRACE_JSONL_MAX_LINE);

}  // namespace sp
