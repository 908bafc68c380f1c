// synth.h: synthetic acceptance traces, for tests, demos and teaching until
// real GPU traces exist. `specplan traces synth` is the command-line face.
//
// Generative model (greedy decoding, so every beta is exactly 0 or 1). Each
// domain d has a conditional acceptance vector alpha_d[1..gamma]. Per request:
//   prompt_len ~ uniform integer in [prompt_min, prompt_max]
//   output_len ~ uniform integer in [output_min, output_max]
// and per anchor t and slot k with t + k < output_len, independently:
//   c          ~ Beta(kappa * alpha_k, kappa * (1 - alpha_k))   calibrated confidence, mean alpha_k
//   beta(t,k)  = 1 if u < c else 0, u ~ U(0,1)                   so P(beta = 1) = alpha_k exactly
//   z          = T_raw * logit(c)                                 raw logit; c = sigma(z / T_raw)
// The confidence is informative but imperfect: E[beta | c] = c (calibrated),
// kappa -> 0 makes it a perfect oracle (c in {0,1}), kappa -> inf makes it
// useless (c = alpha_k). T_raw > 1 makes the raw head overconfident, as raw
// DSpark heads are before Sequential Temperature Scaling. Because slots are
// independent, prefix survival to slot k is prod_{i<=k} alpha_i and the
// expected tokens per full-block step is tau = 1 + sum_k prod_{i<=k} alpha_i.
// Slots past the end of the output hold 0 in all three arrays.
#pragma once

#include <string>
#include <vector>

#include "traces/rng.h"
#include "traces/trace_db.h"

namespace sp {

struct SynthDomain {
    std::string name;           // domain label, e.g. "code"
    std::vector<double> alpha;  // (gamma) conditional acceptance per slot, each in [0, 1]
    int n_requests = 0;
};

struct SynthSpec {
    uint64_t seed = 1;
    int gamma = 0;              // every domain's alpha has this length
    std::vector<SynthDomain> domains;
    int prompt_min = 128, prompt_max = 1024;   // tokens
    int output_min = 64, output_max = 512;     // tokens, >= 1
    double kappa = 4;           // Beta concentration of the confidence (> 0)
    double raw_temperature = 1.5;  // STS temperature that maps raw logits to calibrated confidence (> 0)
    ModelShape target;          // recorded in the run; preset "qwen3-8b" when empty
    std::string drafter_kind = "dspark", drafter_name = "synthetic";
    std::string notes;          // appended to the generated notes
};

struct SynthSlot {
    float beta, conf_logit, conf_prob;
};

// Throws sp::Error naming the field when the spec is invalid.
void synth_validate(const SynthSpec& spec);

// One real slot of the model above. The simulator's parametric acceptance
// source calls this too, so both share one model.
SynthSlot synth_slot(Rng& rng, double alpha, double kappa, double raw_temperature);

// The same slot model for callers that draw millions of slots (the
// simulator's parametric source): the confidence distribution
// Beta(kappa alpha, kappa (1 - alpha)) as an inverse-CDF table, exact at
// u = i / CONF_TABLE_N (incomplete-beta inversion) and linear in between, so
// a draw costs an interpolation instead of two gamma variates. Built once per
// (alpha, kappa); about 2 ms.
inline constexpr int CONF_TABLE_N = 4096;
struct ConfTable {
    double alpha = 0;
    std::vector<float> quantile;  // (CONF_TABLE_N + 1) quantiles, 0 and 1 at the ends
};
ConfTable conf_table(double alpha, double kappa);
// The calibrated confidence at quantile u in [0, 1).
double conf_table_sample(const ConfTable& t, double u);
// A slot from the table and two uniforms in [0, 1): one picks the confidence,
// the other is the acceptance coin.
SynthSlot synth_slot_table(const ConfTable& t, double u_conf, double u_coin, double raw_temperature);

// The regularized incomplete beta function I_x(a, b): the Beta(a, b) CDF.
double beta_cdf(double a, double b, double x);

// Writes one complete run (producer synthetic) and returns its id. A request
// is committed at a time; the run is marked complete last.
int64_t synth_write(TraceDb& db, const SynthSpec& spec);

}  // namespace sp
