// trace_vllm.h: vLLM's acceptance data, two forms.
//
// 1. Prometheus text (/metrics): server-wide counters, read into rates.
//      vllm:spec_decode_num_drafts[_total]                      verify steps that carried drafts, D
//      vllm:spec_decode_num_draft_tokens[_total]                drafted tokens
//      vllm:spec_decode_num_accepted_tokens[_total]             accepted drafts
//      vllm:spec_decode_num_accepted_tokens_per_pos[_total]{position="i"}   accepted at 0-based position i, A_i
//    Samples of one metric are summed over their other labels (engine="0",
//    "1", ... of a data-parallel server); a scrape naming more than one
//    model_name needs one picked. _created, HELP, TYPE and other metrics
//    are skipped.
//
//    The conversion. A_i / D is unconditional: the fraction of drafts whose
//    first i+1 tokens were all accepted, the prefix survival s_{i+1}. The
//    parametric source takes the conditional rate of each slot,
//        alpha_k = s_k / s_{k-1},   s_0 = 1,
//    so that prod_{i<=k} alpha_i = s_k and the mean acceptance length is
//    1 + sum_k s_k = 1 + accepted / D. Edge cases:
//      - s_{k-1} = 0: no draft ever reached slot k; alpha_k is unobserved.
//        It cannot change a simulation (slot k is never reached after a
//        slot of rate 0), and 0 is written.
//      - A_i > A_{i-1} (or A_0 > D) would make alpha > 1: refused, it is no
//        vLLM counter.
//      - positions trimmed from the scrape: k is draft_tokens / D rounded
//        up; when exactly the last position is missing, A_{k-1} is rebuilt
//        as accepted - sum of the others (said on stderr); a longer missing
//        tail is said and alpha covers the slots given; a gap is refused.
//      - draft_tokens / D below k: some drafts were shorter (EOS,
//        max_tokens, adaptive verification), and the counters mix their
//        "not verified" slots with "rejected" ones; the rates are still
//        converted, with a note, since vLLM does not say which.
//
// 2. Per-request detailed metrics (vLLM PR #48915, --per-request-spec-decode-
//    metrics detailed), one JSON object per line, as a client saved them.
//    The object may be the response body ({"usage":..., "metrics":
//    {"speculative_decoding": {...}}}), its speculative_decoding object
//    ({"speculative_decoding": {...}}), or that object's fields at top
//    level. Read from the speculative_decoding object:
//      per_step_accepted   [int]  drafts accepted per verify step     } one entry per step,
//      per_step_drafted    [int]  drafts proposed per verify step     } equal lengths
//      per_step_verified   [int]  optional, ours: drafts verified per step (default: drafted,
//                                 as vLLM verifies every draft it proposes); accepted <= verified <= drafted
//      acceptance_histogram       used only without the per-step arrays (the "summary" level):
//                                 a dense list, or an object {"j": steps}; each step then drafted
//                                 and verified num_spec_tokens, and the steps are put in a fixed
//                                 pseudo-random order (the histogram has none)
//      num_spec_tokens     int    optional (needed with the histogram alone): drafts <= it
//      num_spec_steps, num_accepted_draft_tokens, num_draft_tokens
//                                 optional: checked against the steps
//    and from the object itself: "prompt_tokens"/"completion_tokens" (or
//    usage.prompt_tokens/usage.completion_tokens) for the lengths, and
//    "domain". Blank lines are skipped; a file that is one pretty-printed
//    object, or an array of them, is read as well (import_json_records).
#pragma once

#include <istream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/trace_import.h"

namespace sp {

// [SECTION] Prometheus text --------------------------------------------------------

struct VllmRates {
    std::string model_name;           // the model_name label ("" when unlabelled)
    double drafts = 0;                // D
    double draft_tokens = -1;         // -1: not in the scrape
    double accepted = -1;             // -1: not in the scrape
    std::vector<double> per_pos;      // A_0..A_{k-1}, rebuilt tail included
    std::vector<double> survival;     // (k) s_k = A_{k-1} / D
    std::vector<double> alpha;        // (k) conditional, alpha_from_survival
    double mean_acceptance_length = 1;  // 1 + accepted / D (or the per-position sum when accepted is absent)
    std::vector<std::string> notes;   // what was rebuilt or is doubtful, one line each, for stderr
};

// Reads a scrape. `model` picks one model_name when the scrape has several ("" = the only one).
VllmRates vllm_prom_read(std::istream& in, const std::string& name, const std::string& model = "");

// alpha_k = s_k / s_{k-1} (s_0 = 1); 0 where s_{k-1} = 0. s must be
// non-increasing in [0, 1] (vllm_prom_read checks it).
std::vector<double> alpha_from_survival(const std::vector<double>& survival);

// "alpha = [0.94, 0.9255, ...]": a [[workload.domain]] line for the parametric source.
std::string alpha_toml_line(const std::vector<double>& alpha);

// [SECTION] per-request detailed metrics ------------------------------------------------

// The verify steps of one spec-decode object (vLLM's speculative_decoding,
// AIPerf's spec_decode_acceptance) as described above; `path` prefixes field
// names in messages; `seed` orders histogram steps. Throws sp::Error.
std::vector<ImportedRequest::Triple> spec_decode_steps(const std::string& file, int64_t line, const std::string& path,
                                                       const nlohmann::json& sd, uint64_t seed);

std::vector<ImportedRequest> vllm_requests_read(std::istream& in, const std::string& name, const ImportOptions& opt,
                                                size_t max_line);

}  // namespace sp
