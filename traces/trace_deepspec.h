// trace_deepspec.h: DeepSpec's confidence dump (PR #63, the STS pull
// request): `eval.py --confidence-dump-dir DIR` writes
// DIR/<dataset>/confidence_records.jsonl, one JSON object per proposal:
//   "logits"  [float]  the confidence head's raw logits of the proposal's
//                      slots, cut to its effective (EOS-truncated) length L
//   "labels"  [0|1]    its accept-prefix mask over the same L slots: 1 where
//                      drafts 1..k were all accepted (so no 1 after a 0)
// Other keys are ignored. Dumped, as the PR says, with
// --confidence-threshold 0 and no calibration: raw logits, whole blocks.
//
// It becomes one importer run with one request (domain: --domain, else
// <dataset>, the file's folder) whose positions hold one row per proposal,
// in file order: beta = labels, conf_logit = logits, conf_prob =
// sigma(logit) (raw, T = 1: `specplan calibrate` fits STS on them), and
// verified = L. Slots past L were never drafted: they are unobserved, not
// rejected (Positions::verified). The request's output_len is the number of
// rows (a positions table has one row per output token); it is no output
// length, so do not take workload lengths from such a run.
#pragma once

#include <istream>
#include <string>

#include "traces/trace_import.h"

namespace sp {

// Reads the whole file, then writes the run in one transaction.
ImportSummary deepspec_import(TraceDb& db, std::istream& in, const std::string& name, const ImportOptions& opt,
                              size_t max_line);

}  // namespace sp
