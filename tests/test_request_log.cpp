// test_request_log.cpp: the request-log readers (traces/request_log.h) on
// small files written from each format's documentation (tests/fixtures/logs/),
// values checked by hand; every bad-row message exactly; a generated log
// streamed through.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/scratch.h"
#include "traces/request_log.h"

using namespace sp;

namespace {

const std::string LOGS = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/logs/";

struct Row {
    int64_t line;
    bool has_time;
    int64_t t_ns;
    int prompt, output;
    std::string domain;
    bool operator==(const Row&) const = default;
};

std::ostream& operator<<(std::ostream& o, const Row& r) {
    return o << "{line " << r.line << ", time " << r.has_time << " " << r.t_ns << ", " << r.prompt << " + "
             << r.output << ", \"" << r.domain << "\"}";
}

std::vector<Row> read(const std::string& path, LogFormat f, const LogOptions& opt = {}, LogSummary* sum = nullptr) {
    std::vector<Row> rows;
    LogSummary s = request_log_read(path, f, opt, [&](const LogRecord& r) {
        rows.push_back({r.line, r.has_time, r.t_ns, r.prompt_len, r.output_len, std::string(r.domain)});
    });
    if (sum) *sum = s;
    return rows;
}

// The message a log text is refused with.
std::string error_of(const std::string& text, LogFormat f, const LogOptions& opt = {}) {
    std::istringstream in(text);
    try {
        request_log_read(in, "x.log", f, opt, [](const LogRecord&) {});
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

const Tokenizer& bytes_tokenizer() {  // every byte its own token: a text's tokens are its bytes
    static const Tokenizer tok = tokenizer_load(LOGS + "bytes_tokenizer.json");
    return tok;
}

}  // namespace

TEST(RequestLog, MooncakeRowsInFileOrderToleratingHashIdsSessionsDelaysCrlfAndBlankLines) {
    std::vector<Row> want = {{1, true, 0, 6758, 500, ""},
                             {2, true, 1'000'000'000, 120, 7, ""},
                             {4, true, 1'500'000'000, 64, 0, ""},
                             {5, true, 4'000'000'000, 9, 30, ""},
                             {6, true, 6'000'000'000, 300, 12, ""}};
    EXPECT_EQ(read(LOGS + "mooncake.jsonl", LOG_MOONCAKE), want);
}

TEST(RequestLog, MooncakeDomainFieldAndMissingTimestamp) {
    LogOptions opt;
    opt.domain_field = "tenant";
    std::istringstream in("{\"input_length\": 5, \"output_length\": 6, \"tenant\": 3}\n"
                          "{\"input_length\": 7, \"output_length\": 8, \"tenant\": \"chat\"}\n");
    std::vector<Row> rows;
    request_log_read(in, "x", LOG_MOONCAKE, opt, [&](const LogRecord& r) {
        rows.push_back({r.line, r.has_time, r.t_ns, r.prompt_len, r.output_len, std::string(r.domain)});
    });
    EXPECT_EQ(rows, (std::vector<Row>{{1, false, 0, 5, 6, "3"}, {2, false, 0, 7, 8, "chat"}}));
}

TEST(RequestLog, AzureTimestampsAreUtcNanoseconds) {
    // 1700000000 s is 2023-11-14 22:13:20 UTC, so 2023-11-16 18:15:46 is
    // 1700000000 + 6400 + 86400 + 65746 = 1700158546 s.
    const int64_t t1 = 1'700'158'546'680'590'000;
    std::vector<Row> want = {{2, true, t1, 374, 44, ""},
                             {3, true, t1 + 4'314'579'000, 396, 109, ""},
                             {4, true, t1 + 4'319'410'000, 879, 0, ""}};
    EXPECT_EQ(read(LOGS + "azure.csv", LOG_AZURE), want);
}

TEST(RequestLog, DateTimesWithOffsetsOrWithout) {
    int64_t a = 0, b = 0;
    ASSERT_TRUE(log_datetime_ns("1970-01-02 00:00:01.5", &a));
    EXPECT_EQ(a, 86'401'500'000'000);
    // The 2024 Azure form: 6 digits and a UTC offset; +02:00 is two hours earlier in UTC.
    ASSERT_TRUE(log_datetime_ns("2024-05-10 00:00:00.009930+00:00", &a));
    ASSERT_TRUE(log_datetime_ns("2024-05-10T02:00:00.009930+02:00", &b));
    EXPECT_EQ(a, b);
    ASSERT_TRUE(log_datetime_ns("2024-02-29 00:00:00Z", &a));
    ASSERT_TRUE(log_datetime_ns("2024-03-01 00:00:00", &b));
    EXPECT_EQ(b - a, 86'400'000'000'000);
    for (const char* bad : {"2023-02-29 00:00:00", "2023-11-16 24:00:00", "2023-11-16 18:15", "1969-12-31 23:59:59",
                            "2023-11-16 18:15:46.", "2023-11-16 18:15:46.1234567890", "2023-11-16 18:15:46 UTC"})
        EXPECT_FALSE(log_datetime_ns(bad, &a)) << bad;
}

TEST(RequestLog, BurstGptRowsWithTheModelAsDomain) {
    LogOptions opt;
    opt.domain_field = "Model";
    std::vector<Row> want = {{2, true, 5'000'000'000, 472, 18, "ChatGPT"},
                             {3, true, 45'000'000'000, 1087, 230, "ChatGPT"},
                             {4, true, 118'000'000'000, 417, 276, "GPT-4"}};
    EXPECT_EQ(read(LOGS + "burstgpt.csv", LOG_BURSTGPT, opt), want);
}

TEST(RequestLog, CsvQuotedFieldsAndColumnsInAnyOrder) {
    std::istringstream in("\"Response tokens\",Timestamp,\"Request tokens\",Model\n3,1.5,\"4\",\"a,\"\"b\"\"\"\n");
    LogOptions opt;
    opt.domain_field = "Model";
    std::vector<Row> rows;
    request_log_read(in, "x", LOG_BURSTGPT, opt, [&](const LogRecord& r) {
        rows.push_back({r.line, r.has_time, r.t_ns, r.prompt_len, r.output_len, std::string(r.domain)});
    });
    EXPECT_EQ(rows, (std::vector<Row>{{2, true, 1'500'000'000, 4, 3, "a,\"b\""}}));
}

TEST(RequestLog, ShareGptFirstHumanTurnAndTheGptTurnAfterIt) {
    LogOptions opt;
    opt.tokenizer = &bytes_tokenizer();
    LogSummary sum;
    // "Hi there" 8 bytes, "Hello!" 6; then "abc" 3 answered by "xy z" 4 (the gpt
    // turn before the prompt and the system turn are not read); the third
    // record has no prompt and is skipped. Lines: where each record's "}" is.
    std::vector<Row> want = {{9, false, 0, 8, 6, ""}, {18, false, 0, 3, 4, ""}};
    EXPECT_EQ(read(LOGS + "sharegpt.json", LOG_SHAREGPT, opt, &sum), want);
    EXPECT_EQ(sum.requests, 2);
    EXPECT_EQ(sum.skipped, 1);
    opt.domain_field = "id";
    std::vector<Row> rows = read(LOGS + "sharegpt.json", LOG_SHAREGPT, opt);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1].domain, "b_0");
}

TEST(RequestLog, BadRowsStopTheReaderWithFileLineAndField) {
    const std::string mc = "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n";
    EXPECT_EQ(error_of(mc + "{\"timestamp\": 5, \"input_length\": -3, \"output_length\": 1}\n", LOG_MOONCAKE),
              "x.log:2: input_length: expected an integer in 0..16777216, got -3");
    EXPECT_EQ(error_of("{\"timestamp\": 5, \"input_length\": 3}\n", LOG_MOONCAKE),
              "x.log:1: output_length: expected an integer in 0..16777216, got nothing");
    EXPECT_EQ(error_of("{\"timestamp\": \"5\", \"input_length\": 3, \"output_length\": 1}\n", LOG_MOONCAKE),
              "x.log:1: timestamp: expected a time in ms, got a string (\"5\")");
    EXPECT_EQ(error_of("{\"timestamp\": -1, \"input_length\": 3, \"output_length\": 1}\n", LOG_MOONCAKE),
              "x.log:1: timestamp: expected a time in ms from 0 to 1000000000000, got -1");
    EXPECT_EQ(error_of(mc + mc + "[1]\n", LOG_MOONCAKE), "x.log:3: line: expected a JSON object, got an array");
    LogOptions dom;
    dom.domain_field = "tenant";
    EXPECT_EQ(error_of(mc, LOG_MOONCAKE, dom),
              "x.log:1: tenant: expected a string or an integer (the domain field), got nothing");

    const std::string az = "TIMESTAMP,ContextTokens,GeneratedTokens\r\n";
    EXPECT_EQ(error_of(az + "2023-11-16 18:15:46.6805900,374,44\r\n2023-13-01 00:00:00,1,1\r\n", LOG_AZURE),
              "x.log:3: TIMESTAMP: expected a date-time such as 2023-11-16 18:15:46.6805900 (UTC, 1970 or later), "
              "got \"2023-13-01 00:00:00\"");
    EXPECT_EQ(error_of("TIMESTAMP,ContextTokens\n", LOG_AZURE),
              "x.log:1: header: expected a column \"GeneratedTokens\", got \"TIMESTAMP,ContextTokens\"");
    EXPECT_EQ(error_of(az + "2023-11-16 18:15:46,374\r\n", LOG_AZURE),
              "x.log:2: GeneratedTokens: expected an integer in 0..16777216, got nothing");
    EXPECT_EQ(error_of("", LOG_AZURE), "x.log:1: header: expected CSV column names, got end of file");

    const std::string bg = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n";
    EXPECT_EQ(error_of(bg + "5,ChatGPT,472,18,490,Conversation log\n45,ChatGPT,1087,abc,1317,Conversation log\n",
                       LOG_BURSTGPT),
              "x.log:3: Response tokens: expected an integer in 0..16777216, got \"abc\"");
    EXPECT_EQ(error_of(bg + "soon,ChatGPT,1,1,2,Conversation log\n", LOG_BURSTGPT),
              "x.log:2: Timestamp: expected a time in s, got \"soon\"");
    EXPECT_EQ(error_of(bg + "5,\"ChatGPT,1,1,2,x\n", LOG_BURSTGPT),
              "x.log:2: line: expected CSV fields (a quote closed before the next comma), got \"5,\"ChatGPT,1,1,2,x\"");

    LogOptions sg;
    sg.tokenizer = &bytes_tokenizer();
    EXPECT_EQ(error_of("[\n {\"conversations\": [\n  {\"from\": \"human\", \"value\": \"a\"},\n  {\"from\": \"gpt\", "
                       "\"value\": 5}]}]",
                       LOG_SHAREGPT, sg),
              "x.log:4: [0].conversations[1].value: expected a string, got 5");
    EXPECT_EQ(error_of("{\"id\": 1}", LOG_SHAREGPT, sg),
              "x.log:1: document: expected a JSON array of conversations, got an object");
    EXPECT_EQ(error_of("[{\"conversations\": {}}]", LOG_SHAREGPT, sg),
              "x.log:1: [0].conversations: expected an array of turns, got an object");
    EXPECT_EQ(error_of("[{\"conversations\": [{\"value\": \"a\"}]}]", LOG_SHAREGPT, sg),
              "x.log:1: [0].conversations[0].from: expected \"human\", \"gpt\" or another speaker, got nothing");
    EXPECT_EQ(error_of("[{\"conversations\": []}", LOG_SHAREGPT, {}),
              "x.log: a ShareGPT log needs a tokenizer.json to count its tokens");
}

TEST(RequestLog, LineWithoutEndIsRefusedAtTheBound) {
    LogOptions opt;
    opt.max_line = 64;
    EXPECT_EQ(error_of(std::string(1000, 'x'), LOG_MOONCAKE, opt), "x.log:1: line longer than 64 bytes");
}

// A generated log of 100,000 rows streams through; row i has input i % 1000 + 1,
// so the inputs sum to 100 x (1 + ... + 1000) = 50,050,000.
TEST(RequestLog, GeneratedLogStreams) {
    ScratchDir dir("request_log");
    const std::string path = dir.file("big.jsonl");
    {
        std::ofstream out(path);
        for (int i = 0; i < 100'000; i++)
            out << "{\"timestamp\": " << i * 10 << ", \"input_length\": " << i % 1000 + 1
                << ", \"output_length\": 2, \"hash_ids\": [" << i << ", " << i + 1 << ", " << i + 2 << "]}\n";
    }
    int64_t n = 0, sum = 0, last_t = -1;
    bool ordered = true;
    request_log_read(path, LOG_MOONCAKE, {}, [&](const LogRecord& r) {
        n++;
        sum += r.prompt_len;
        ordered = ordered && r.t_ns > last_t;
        last_t = r.t_ns;
    });
    EXPECT_EQ(n, 100'000);
    EXPECT_EQ(sum, 50'050'000);
    EXPECT_TRUE(ordered);
    EXPECT_EQ(last_t, 999'990'000'000);
}
