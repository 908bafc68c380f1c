// trace_aiperf.h: AIPerf's per-request spec-decode records
// (profile_export.jsonl at --export-level records, AIPerf PR #1191).
//
// One JSON object per line, one per request: {"metadata": {...}, "metrics":
// {...}, "spec_decode_acceptance": {...}}. The SpecDecodeAcceptanceRecord
// under spec_decode_acceptance normalises vLLM's per-request metrics, so it
// is read as trace_vllm.h reads those (spec_decode_steps):
//   engine                                   recorded in the run's drafter name when --drafter-name is not given
//   acceptance_histogram                     sparse {"j": steps} (or a dense list); used without per-step arrays
//   num_spec_tokens                          drafts per step; nullable under adaptive verification, when
//                                            only the per-step arrays can say what was verified
//   per_step_accepted[], per_step_drafted[]  optional per-step arrays (per_step_verified[], ours, optional)
//   num_spec_steps, num_accepted_draft_tokens, num_draft_tokens   checked against the steps
//   completion_tokens                        the output length, when given
//   mean_acceptance_length, draft_acceptance_rate                 derived; not read
// The prompt length is metrics.input_sequence_length.value when present
// (the output length falls back to metrics.output_sequence_length.value).
// Records without spec_decode_acceptance (failed requests, a run without
// speculation) are skipped; a file with none is refused. A file that is one
// pretty-printed record (as AIPerf's docs show it) reads as well.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "traces/trace_import.h"

namespace sp {

struct AiperfRead {
    std::vector<ImportedRequest> requests;
    std::string engine;      // of the first record ("" if none said)
    int64_t skipped = 0;     // records without spec_decode_acceptance
};

AiperfRead aiperf_records_read(std::istream& in, const std::string& name, const ImportOptions& opt, size_t max_line);

}  // namespace sp
