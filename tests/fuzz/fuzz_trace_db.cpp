// fuzz_trace_db.cpp: libFuzzer target for the trace store's reader
// (traces/trace_db.h). The input is a whole database file, written to a
// scratch file and opened read-only (trace_db_open: the SQLite header, the
// application id and schema version, quick_check, foreign_key_check); when it
// opens, every reader runs over it: counts, runs, each run's requests, their
// positions, the steps and the profiles. SQLite itself is the system library,
// not instrumented: coverage is that of trace_db.cpp. sp::Error is the
// expected outcome of a bad file; anything else (a crash, a sanitizer report,
// another exception) is a bug. Build and run: README.md.
#include <cstddef>
#include <cstdint>

#include "fuzz_file.h"
#include "traces/trace_db.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static sp_fuzz::ScratchFile file("specplan-fuzz-db");
    const std::string& path = file.write(data, size);
    try {
        sp::TraceDb db = sp::trace_db_open(path, sp::TRACE_READ);
        (void)sp::trace_db_counts(db);
        for (const sp::Run& run : sp::trace_db_runs(db)) {
            (void)sp::trace_db_run(db, run.id);
            for (const sp::Request& req : sp::trace_db_requests(db, run.id)) {
                sp::Positions p;
                (void)sp::trace_db_positions(db, req.id, &p);
            }
            int64_t steps = 0;
            sp::trace_db_for_each_step(db, run.id, [&](const sp::Step&) { steps++; });
        }
        (void)sp::trace_db_profiles(db);
    } catch (const sp::Error&) {
    }
    return 0;
}
