// request_log.h: production request logs in the formats other tools write,
// read one request at a time so that a scenario's workload can replay them
// (scenarios/README.md, [workload] log).
//
//   mooncake   JSON Lines (Mooncake's FAST'25 traces; AIPerf, Dynamo and
//              `vllm bench` read it): {"timestamp": ms, "input_length": N,
//              "output_length": N, "hash_ids": [...]}; "timestamp" may be
//              left out, other keys ("hash_ids", "session_id", "delay") are
//              tolerated and not read.
//   azure      CSV of the Azure LLM inference traces: TIMESTAMP (a date-time,
//              "2023-11-16 18:15:46.6805900" or with a UTC offset as the 2024
//              files, "2024-05-10 00:00:00.009930+00:00"), ContextTokens,
//              GeneratedTokens.
//   burstgpt   CSV of BurstGPT: Timestamp (s), Model, Request tokens,
//              Response tokens, Total tokens, Log Type.
//   sharegpt   one JSON array of {"id", "conversations": [{"from", "value"}]}:
//              text, counted with a tokenizer.json. The prompt is the first
//              "human" turn, the output the first "gpt" turn after it (as
//              `vllm bench serve` reads ShareGPT, which takes turns 0 and 1;
//              the real dump has records that open with a "gpt" turn). A
//              record without such a pair is skipped, as vLLM skips those of
//              fewer than two turns; tokens are counted without special tokens.
//
// CSV: a header line names the columns, in any order; other columns are
// ignored; fields may be quoted ("a,b", "" for a quote). Every format
// accepts CRLF line ends and blank lines.
//
// Memory: the readers stream. Mooncake and the CSVs hold one line (at most
// max_line bytes); ShareGPT holds one turn's text and that text's tokens. A
// 1 GB log is read in that bound; what the caller keeps per request is its
// own choice (the simulator keeps 24 bytes, simulator/scenario.h LogRequest).
//
// Errors: the first bad row stops the reader with one sp::Error line,
// "<file>:<line>: <field>: expected <what>, got <what>".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "traces/tokenizer.h"

namespace sp {

enum LogFormat { LOG_MOONCAKE, LOG_AZURE, LOG_BURSTGPT, LOG_SHAREGPT };
inline constexpr const char* LOG_FORMAT_NAMES[] = {"mooncake", "azure", "burstgpt", "sharegpt"};

// 16 MiB: a Mooncake line of two million hash_ids.
inline constexpr size_t REQUEST_LOG_MAX_LINE = size_t(1) << 24;
// One prompt or output, tokens (the scenario's bound too).
inline constexpr int64_t REQUEST_LOG_MAX_TOKENS = int64_t(1) << 24;

struct LogOptions {
    std::string domain_field;              // a key (JSON) or column (CSV) naming each request's domain; "" = none
    const Tokenizer* tokenizer = nullptr;  // sharegpt: counts the tokens (required there)
    size_t max_line = REQUEST_LOG_MAX_LINE;
};

// One request as the log has it; valid during the visit only.
struct LogRecord {
    int64_t line = 0;          // 1-based line of the file (sharegpt: the line where the record ends)
    bool has_time = false;     // false: mooncake without "timestamp", sharegpt
    int64_t t_ns = 0;          // arrival, ns from the log's own zero (mooncake: its ms; azure: 1970 UTC, an
                               // offset-less time taken as UTC; burstgpt: its seconds); >= 0
    int prompt_len = 0, output_len = 0;  // tokens, in [0, REQUEST_LOG_MAX_TOKENS]
    std::string_view domain;   // the domain field's value as text ("" without options.domain_field)
};

struct LogSummary {
    int64_t requests = 0;      // records visited
    int64_t skipped = 0;       // sharegpt: records without a human turn answered by a gpt turn
};

// Reads `path` and calls visit(record) for every request, in file order.
// visit may throw (the simulator refuses a domain its scenario lacks).
LogSummary request_log_read(const std::string& path, LogFormat format, const LogOptions& options,
                            const std::function<void(const LogRecord&)>& visit);

// The same from a stream; `name` stands for the file in messages.
LogSummary request_log_read(std::istream& in, const std::string& name, LogFormat format, const LogOptions& options,
                            const std::function<void(const LogRecord&)>& visit);

// ShareGPT's streaming reader (request_log_sharegpt.cpp).
LogSummary request_log_read_sharegpt(std::istream& in, const std::string& name, const LogOptions& options,
                                     const std::function<void(const LogRecord&)>& visit);

// "2023-11-16 18:15:46.6805900", with an optional 'T' for the space and an
// optional "Z" or "+HH:MM" / "-HH:MM": ns since 1970-01-01 00:00 UTC (an
// offset-less time is taken as UTC). False if malformed or before 1970.
bool log_datetime_ns(std::string_view s, int64_t* ns);

}  // namespace sp
