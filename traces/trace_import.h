// trace_import.h: what the importers of other engines' acceptance data
// share (trace_vllm.*, trace_aiperf.*, trace_deepspec.*): the run metadata
// the user supplies, the line reader and its one-line errors, and the writer
// that turns per-request verify steps into an `importer` run.
//
// Every importer reads the whole file before it writes, then writes one run
// inside one transaction: a bad line leaves the store as it was. Errors are
// "<file>:<line>: <field>: expected <what>, got <what>" (or "<file>: ..."
// where no line applies). Foreign records carry many fields we do not read;
// unknown keys are ignored, unlike the strict specplan JSONL.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/trace_db.h"

namespace sp {

// Run metadata a foreign file does not carry; the command line fills it in.
struct ImportOptions {
    std::string model = "unknown";        // target name recorded in the run (shape fields 0: not known)
    std::string drafter_kind = "unknown"; // "dspark", "eagle3", "mtp", "ngram", ...
    std::string drafter_name;             // default: the format's name
    std::string gpu = "unknown";
    double temperature = 0;               // sampling temperature of the measured run
    VerifyMethod verify_method = VERIFY_UNRECORDED;
    int gamma = 0;                        // block size; 0: the largest the file shows
    std::string domain;                   // domain of every request; "" = the format's own, else "default"
    std::string notes;                    // stored with the run; default: "imported from <file> (<format>)"
};

// One request's verify steps as the importers read them.
struct ImportedRequest {
    std::string domain;
    int prompt_len = 0, output_len = 0;   // tokens; output_len 0: derived from the steps
    struct Triple { uint8_t drafted, verified, accepted; };
    std::vector<Triple> steps;            // drafted >= verified >= accepted
    int64_t line = 0;                     // where it was read, for errors
};

struct ImportSummary {
    int64_t run_id = 0;
    int gamma = 0;
    int64_t requests = 0, steps = 0, positions = 0;
};

// Writes `reqs` as one importer run (producer "importer", complete) in one
// transaction. Each step becomes a steps row: verify_len = verified,
// n_accepted = accepted, drafted = drafted, bonus = accepted == verified,
// batch_size 1 and times 0 (not recorded: the formats carry neither). A
// request's output_len 0 becomes 1 + sum over steps of (accepted + 1): the
// prefill's token and what the verify steps emitted (a lower bound when the
// engine also ran steps without drafts).
ImportSummary trace_import_steps(TraceDb& db, const ImportOptions& opt, const std::string& format,
                                 const std::string& in_name, const std::vector<ImportedRequest>& reqs);

// The run an importer writes (metadata from opt; gamma given).
Run import_run(const ImportOptions& opt, const std::string& format, const std::string& in_name, int gamma);

// [SECTION] reading and errors ------------------------------------------------------

// One-line error of a foreign file: "<file>:<line>: <field>: expected <expected>, got <got>".
[[noreturn]] void import_fail(const std::string& file, int64_t line, const std::string& field,
                              const std::string& expected, const std::string& got);

// A JSON value as the "got" of an error message: short and on one line.
std::string json_describe(const nlohmann::json& v);

// Lines of a text file: CRLF ends accepted, a line longer than max_line
// refused as soon as it passes that length (a file without newlines cannot
// exhaust memory). line() is the 1-based number of the line last read.
struct LineReader {
    std::istream& in;
    const std::string& name;
    size_t max_line;
    int64_t line = 0;
    bool next(std::string& text);  // false at the end of input
};

// A JSON object parsed from one line, or import_fail at the line.
nlohmann::json import_parse_object(const std::string& file, int64_t line, const std::string& text);

// The records of a JSON Lines file, one object a line (blank lines
// skipped), calling fn(line, object) for each. A file that is instead one
// pretty-printed JSON document (a saved response body, a documentation
// example) is accepted too: when its first line is no JSON object, the
// whole file (at most max_line bytes) is parsed as one object, or an array
// of objects, each reported at line 1. Otherwise line 1's error stands.
void import_json_records(std::istream& in, const std::string& name, size_t max_line,
                         const std::function<void(int64_t, const nlohmann::json&)>& fn);

// Field readers of foreign records: `path` names the field in messages.
int64_t import_int(const std::string& file, int64_t line, const std::string& path, const nlohmann::json& v,
                   int64_t lo, int64_t hi);
std::vector<int> import_int_array(const std::string& file, int64_t line, const std::string& path,
                                  const nlohmann::json& v, int lo, int hi);

// obj[key] when present and not null, else nullptr.
const nlohmann::json* import_find(const nlohmann::json& obj, const char* key);

// The request's domain: opt.domain when given, else the record's "domain"
// string, else "default".
std::string import_domain(const std::string& file, int64_t line, const nlohmann::json& obj, const ImportOptions& opt);

}  // namespace sp
