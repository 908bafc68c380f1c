// acceptance.h: where a simulated request's drafts get their confidences and
// their accept/reject outcomes. Four sources (scenario [acceptance].source):
//
//   trace       the request follows a recorded request. At anchor t the
//               confidences are the recorded conf_prob(t, k) and slot k is
//               accepted while coin_k < beta(t, k): exact under greedy decoding.
//               With distribution lengths longer than the recording, t wraps
//               around the recorded output (t mod n). The draft-prob policy
//               reads the recorded draft_prob(t, k) (acceptance_draft_prob),
//               which only traces captured at schema 3 or later have.
//               Rows that record their verified slots (imported DeepSpec
//               proposals, Positions::verified) observed only slots
//               1..verified[t]: the others are no rejections, and are
//               drawn at the domain's pooled rate alpha_k of the observed
//               ones (trace_stats.h), confidence alpha_k.
//   steps       the request follows a recorded request's verify steps (an
//               importer run of vLLM or AIPerf data, or an engine run). Its
//               j-th step replays the recorded step j mod n of that request,
//               which drafted d, verified v and accepted a drafts. When the
//               policy verifies l slots:
//                 a < v: slot a+1 was rejected, so accepted = min(l, a);
//                 a = v: every verified slot was accepted, so accepted =
//                        min(l, v) and, when l > v, slots v+1..l follow one
//                        by one at the domain's pooled rate alpha_k until
//                        the first miss.
//               alpha_k is estimated from the verified slots only
//               (trace_stats.h: the steps that verified slot k with slots
//               1..k-1 accepted); a slot no step verified gets 0. Slots
//               v+1..d were not verified, which is no rejection: they are
//               drawn, not refused. Expected accepted drafts of one recorded
//               step at l: min(l, a) when a < v, else
//                 min(l, v) + sum_{m=v+1..l} prod_{i=v+1..m} alpha_i.
//               Confidences are alpha_k (the steps carry no head). The
//               per-position beta of the trace source has no counterpart
//               here: accept counts per step are all that vLLM and AIPerf
//               record.
//   parametric  per-domain conditional acceptance alpha_k; each slot is drawn
//               from the model of traces synth: c ~ Beta(kappa alpha_k,
//               kappa (1 - alpha_k)), accepted with probability c. The Beta
//               draw goes through synth's inverse-CDF table (ConfTable).
//   iid         the same with alpha_k = alpha for every slot.
//
// Every draw is keyed by (request key, t, k) through rng_hash, never by a
// running stream, so every policy sees the same outcome for the same draft.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simulator/scenario.h"
#include "traces/synth.h"

namespace sp {

struct TraceRequest {
    int domain = 0;              // index into AcceptanceData::domains
    int prompt_len = 0, output_len = 0;
    size_t offset = 0;           // first float of this request's rows in beta/conf
    size_t step_offset = 0;      // steps: its first recorded step in step_v/step_a
    int n_steps = 0;             // steps: its recorded steps
};

// Read-only after acceptance_load; shared by every point of a sweep.
struct AcceptanceData {
    AcceptanceKind kind = ACCEPT_TRACE;
    int gamma = 0;               // engine block size: slots 1..gamma are used
    uint64_t seed = 0;
    std::vector<std::string> domains;        // workload domains, in scenario order
    std::vector<double> domain_cdf;          // cumulative normalised weights
    // trace
    int trace_gamma = 0;                     // row stride of beta/conf
    std::vector<TraceRequest> requests;      // requests of the run with positions
    std::vector<std::vector<int>> by_domain; // request indices per domain
    std::vector<float> beta, conf;           // rows of all requests; conf empty without a confidence head
    // The head's raw logits z, rows as beta: loaded only when asked for and
    // every request has them, else empty. The simulator draws from conf; the
    // reliability diagram (gui/reliability.h) bins sigma(z) against the
    // STS-calibrated sigma(z / T_k), and the dashboard frees them after.
    std::vector<float> conf_logit;
    // The draft's probability of each drafted token (positions.draft_prob),
    // rows as beta: empty unless every request of the run recorded it.
    std::vector<float> draft_prob;
    std::vector<std::vector<float>> fallback_conf;  // (domain, gamma) pooled alpha_k, used when conf is empty
    // steps: every replayed request's recorded steps, request after request
    std::vector<uint8_t> step_v, step_a;     // drafts verified, drafts accepted
    // parametric / iid; steps: the pooled rates of the verified slots, 0 where none
    std::vector<std::vector<double>> alpha;  // (domain, gamma)
    std::vector<std::vector<ConfTable>> conf_tables;  // (domain, gamma)
    double kappa = 4;                        // confidence concentration (scenario acceptance.kappa)
};

// Loads the trace run or builds the parametric tables for a validated scenario.
// with_logits also keeps the trace's raw confidence logits (conf_logit), which
// cost as much memory again as conf and which the simulator never reads.
AcceptanceData acceptance_load(const Scenario& sc, bool with_logits = false);

// The drafts of one request at anchor t: calibrated confidences c(t, k) and
// acceptance probabilities beta(t, k) for k = 1..gamma. For the parametric
// sources beta is already the outcome (0 or 1).
struct SlotDraws {
    float conf[TRACE_MAX_GAMMA];
    float beta[TRACE_MAX_GAMMA];
};
// Fills slots [from, to) (0-based: slot k+1 at index k); a caller that needs
// no confidences draws only the slots it verifies, which matters for the
// parametric sources, whose every slot is a Beta draw. `step` is the
// request's 0-based decode step (what the steps source replays).
void acceptance_draw(const AcceptanceData& a, uint64_t key, int domain, int trace_idx, int t, int step, int from,
                     int to, SlotDraws* out);

// Drafts accepted among the first ell of `d` (the leading run of accepts).
int acceptance_count(const AcceptanceData& a, uint64_t key, int t, int ell, const SlotDraws& d);

// The recorded draft probabilities of trace request trace_idx at anchor t
// (row t mod n, as acceptance_draw), slots 1..gamma into out[0..gamma).
// Needs a.draft_prob (acceptance_check_policies).
void acceptance_draft_prob(const AcceptanceData& a, int trace_idx, int t, float* out);

// Throws sp::Error, one line naming the scenario and the trace, when a
// policy needs what the acceptance source lacks: draft-prob needs the
// recorded draft probabilities, which only a trace with positions.draft_prob
// has (not the parametric sources, not a trace captured before schema 3).
void acceptance_check_policies(const Scenario& sc, const AcceptanceData& a, const std::vector<Policy>& policies);

}  // namespace sp
