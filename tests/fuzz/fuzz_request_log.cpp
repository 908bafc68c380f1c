// fuzz_request_log.cpp: libFuzzer target for the request-log readers
// (traces/request_log.h). The first byte picks the format (mod 4) and the
// domain field (none, "Model" or "id"); the rest is the log. Every record
// the reader passes must keep its promises (lengths in range, times >= 0,
// lines counted from 1); sp::Error is the expected outcome of bad bytes,
// anything else (another exception, a failed check, a crash, a sanitizer
// report) is a bug. ShareGPT counts tokens with the byte tokenizer of
// tests/fixtures/logs/. Build and run: README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "traces/request_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const sp::Tokenizer tok = sp::tokenizer_load(FUZZ_BYTES_TOKENIZER);
    if (size == 0) return 0;
    sp::LogOptions opt;
    opt.tokenizer = &tok;
    opt.max_line = 1 << 16;
    const char* domains[3] = {"", "Model", "id"};
    opt.domain_field = domains[(data[0] >> 2) % 3];
    std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
    int64_t last_line = 0;
    try {
        sp::request_log_read(in, "fuzz.log", sp::LogFormat(data[0] % 4), opt, [&](const sp::LogRecord& r) {
            if (r.prompt_len < 0 || r.prompt_len > sp::REQUEST_LOG_MAX_TOKENS || r.output_len < 0 ||
                r.output_len > sp::REQUEST_LOG_MAX_TOKENS || r.t_ns < 0 || r.line < 1 || r.line < last_line)
                std::abort();
            last_line = r.line;
        });
    } catch (const sp::Error&) {
    }
    return 0;
}
