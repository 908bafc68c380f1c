// fuzz_trace_jsonl.cpp: libFuzzer target for the JSON Lines importer
// (traces/trace_jsonl.h: trace_import_jsonl). One trace store for the process
// (a scratch file, in /dev/shm where there is one; trace_db_open refuses
// SQLite's in-memory names); each input is imported inside an outer transaction that is
// rolled back, so every input meets the same empty store. What the importer
// accepts is then exported: the importer validates every record as the
// writers do, so an export that throws is a bug. sp::Error from the import
// is the expected outcome of bad bytes; anything else (a crash, a sanitizer
// report, another exception) is a bug. A small max_line (1 MiB) keeps the
// line cap in reach. Build and run: README.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "fuzz_file.h"
#include "traces/trace_db.h"
#include "traces/trace_jsonl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static sp_fuzz::ScratchFile file("specplan-fuzz-jsonl");
    static sp::TraceDb db = [] {
        std::remove(file.path().c_str());  // created by trace_db_open, with the schema
        return sp::trace_db_open(file.path(), sp::TRACE_CREATE);
    }();
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    sp::trace_db_begin(db);
    try {
        sp::trace_import_jsonl(db, in, "fuzz.jsonl", size_t(1) << 20);
        std::ostringstream out;
        try {
            sp::trace_export_jsonl(db, out, "fuzz-export.jsonl");
        } catch (const sp::Error&) {
            std::abort();  // an accepted import that cannot be exported
        }
    } catch (const sp::Error&) {
    }
    sp::trace_db_rollback(db);
    return 0;
}
