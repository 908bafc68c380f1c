// fuzz_trace_import.cpp: libFuzzer target for the importers of other
// engines' acceptance data (traces/trace_vllm.h, trace_aiperf.h,
// trace_deepspec.h). The first byte picks the format (mod 4: vllm-prom,
// vllm-requests, aiperf, deepspec), the rest is the file. What a reader
// accepts is written to one scratch store inside an outer transaction that is
// rolled back, so every input meets the same empty store; the rates of an
// accepted scrape must be finite and in [0, 1]. sp::Error is the expected
// outcome of bad bytes; anything else is a bug. Line cap 1 MiB.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "fuzz_file.h"
#include "traces/trace_aiperf.h"
#include "traces/trace_db.h"
#include "traces/trace_deepspec.h"
#include "traces/trace_vllm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static sp_fuzz::ScratchFile file("specplan-fuzz-import");
    static sp::TraceDb db = [] {
        std::remove(file.path().c_str());
        return sp::trace_db_open(file.path(), sp::TRACE_CREATE);
    }();
    std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
    const size_t max_line = size_t(1) << 20;
    sp::ImportOptions opt;
    sp::trace_db_begin(db);
    try {
        switch (data[0] % 4) {
        case 0: {
            const sp::VllmRates r = sp::vllm_prom_read(in, "fuzz.prom");
            for (double a : r.alpha)
                if (!(a >= 0 && a <= 1)) std::abort();  // a rate outside [0, 1] got through
            break;
        }
        case 1: sp::trace_import_steps(db, opt, "vllm-requests", "fuzz.jsonl", sp::vllm_requests_read(in, "fuzz.jsonl", opt, max_line)); break;
        case 2: sp::trace_import_steps(db, opt, "aiperf", "fuzz.jsonl", sp::aiperf_records_read(in, "fuzz.jsonl", opt, max_line).requests); break;
        default: sp::deepspec_import(db, in, "fuzz/confidence_records.jsonl", opt, max_line); break;
        }
    } catch (const sp::Error&) {
    }
    sp::trace_db_rollback(db);
    return 0;
}
