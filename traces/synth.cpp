// synth.cpp: the synthetic trace generator. Model and fields: synth.h.
#include "traces/synth.h"

#include <cmath>
#include <cstdio>

#include "traces/models.h"

namespace sp {

// Streams of the generator's seed, one per purpose, so that changing the
// length range does not reshuffle every acceptance coin.
enum { SYNTH_STREAM_LENGTHS = 1, SYNTH_STREAM_SLOTS = 2 };

void synth_validate(const SynthSpec& s) {
    auto bad = [](const std::string& what) { throw Error("synth: " + what); };
    if (s.gamma < 1 || s.gamma > TRACE_MAX_GAMMA)
        bad("gamma: expected 1.." + std::to_string(TRACE_MAX_GAMMA) + ", got " + std::to_string(s.gamma));
    if (s.domains.empty()) bad("no domain given");
    for (const SynthDomain& d : s.domains) {
        if (d.name.empty()) bad("domain name: expected a non-empty label");
        if (static_cast<int>(d.alpha.size()) != s.gamma)
            bad("domain '" + d.name + "': expected " + std::to_string(s.gamma) + " acceptance values (gamma), got " +
                std::to_string(d.alpha.size()));
        for (double a : d.alpha)
            if (!(a >= 0 && a <= 1)) bad("domain '" + d.name + "': acceptance values must lie in [0, 1]");
        if (d.n_requests < 1) bad("domain '" + d.name + "': requests must be >= 1");
    }
    if (s.prompt_min < 0 || s.prompt_max < s.prompt_min) bad("prompt length: expected 0 <= min <= max");
    if (s.output_min < 1 || s.output_max < s.output_min) bad("output length: expected 1 <= min <= max");
    if (!(s.kappa > 0) || !std::isfinite(s.kappa)) bad("kappa: expected a finite number > 0");
    if (!(s.raw_temperature > 0) || !std::isfinite(s.raw_temperature))
        bad("raw temperature: expected a finite number > 0");
}

// A slot from its calibrated confidence c and the acceptance coin u.
static SynthSlot slot_from(double c, double u, double raw_temperature) {
    // The logit of a confidence at exactly 0 or 1 is infinite; clamp to the
    // float32 resolution near 1 so stored logits stay finite.
    double cc = std::min(std::max(c, 1e-7), 1 - 1e-7);
    SynthSlot s;
    s.beta = u < c ? 1.0f : 0.0f;
    s.conf_prob = static_cast<float>(c);
    s.conf_logit = static_cast<float>(raw_temperature * std::log(cc / (1 - cc)));
    return s;
}

SynthSlot synth_slot(Rng& rng, double alpha, double kappa, double raw_temperature) {
    double c = alpha;
    if (alpha > 0 && alpha < 1) c = rng_beta(rng, kappa * alpha, kappa * (1 - alpha));
    double u = rng_uniform(rng);
    return slot_from(c, u, raw_temperature);
}

// [SECTION] the confidence distribution as a table ---------------------------

// I_x(a, b) by its continued fraction (modified Lentz), on the side of x
// where it converges fast; the other side through I_x(a, b) = 1 - I_{1-x}(b, a).
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300, eps = 1e-15;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    d = 1 / (std::fabs(d) < tiny ? tiny : d);
    double h = d;
    for (int m = 1; m <= 500; m++) {
        double even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        d = 1 + even * d;
        d = 1 / (std::fabs(d) < tiny ? tiny : d);
        c = 1 + even / c;
        if (std::fabs(c) < tiny) c = tiny;
        h *= d * c;
        double odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
        d = 1 + odd * d;
        d = 1 / (std::fabs(d) < tiny ? tiny : d);
        c = 1 + odd / c;
        if (std::fabs(c) < tiny) c = tiny;
        double step = d * c;
        h *= step;
        if (std::fabs(step - 1) < eps) break;
    }
    return h;
}

double beta_cdf(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double log_front = a * std::log(x) + b * std::log1p(-x) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
    if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * beta_cf(a, b, x) / a;
    return 1 - std::exp(log_front) * beta_cf(b, a, 1 - x) / b;
}

ConfTable conf_table(double alpha, double kappa) {
    ConfTable t;
    t.alpha = alpha;
    t.quantile.assign(CONF_TABLE_N + 1, static_cast<float>(alpha));
    if (!(alpha > 0 && alpha < 1)) return t;  // a point mass
    const double a = kappa * alpha, b = kappa * (1 - alpha);
    const double lbeta = std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
    t.quantile[0] = 0;
    t.quantile[CONF_TABLE_N] = 1;
    double lo = 0;  // quantiles rise with u: each search starts at the last one
    for (int i = 1; i < CONF_TABLE_N; i++) {
        double u = static_cast<double>(i) / CONF_TABLE_N, hi = 1, x = lo;
        // Newton on I_x - u, kept inside a shrinking bracket; bisect when a step leaves it.
        for (int it = 0; it < 100 && hi - lo > 1e-12; it++) {
            double f = beta_cdf(a, b, x) - u;
            if (f < 0) lo = x;
            else hi = x;
            double pdf = std::exp((a - 1) * std::log(x) + (b - 1) * std::log1p(-x) - lbeta);
            double next = pdf > 0 && std::isfinite(pdf) ? x - f / pdf : -1;
            x = next > lo && next < hi ? next : 0.5 * (lo + hi);
        }
        t.quantile[static_cast<size_t>(i)] = static_cast<float>(x);
        lo = x;
    }
    return t;
}

double conf_table_sample(const ConfTable& t, double u) {
    double pos = u * CONF_TABLE_N;
    int i = std::min(static_cast<int>(pos), CONF_TABLE_N - 1);
    double f = pos - i;
    return t.quantile[static_cast<size_t>(i)] +
           f * (t.quantile[static_cast<size_t>(i) + 1] - t.quantile[static_cast<size_t>(i)]);
}

SynthSlot synth_slot_table(const ConfTable& t, double u_conf, double u_coin, double raw_temperature) {
    return slot_from(conf_table_sample(t, u_conf), u_coin, raw_temperature);
}

static std::string spec_notes(const SynthSpec& s) {
    std::string n = "seed=" + std::to_string(s.seed);
    char buf[64];
    std::snprintf(buf, sizeof buf, " kappa=%g raw_temperature=%g", s.kappa, s.raw_temperature);
    n += buf;
    for (const SynthDomain& d : s.domains) {
        n += " " + d.name + "=";
        for (size_t k = 0; k < d.alpha.size(); k++) {
            std::snprintf(buf, sizeof buf, "%s%g", k ? "," : "", d.alpha[k]);
            n += buf;
        }
    }
    if (!s.notes.empty()) n += "; " + s.notes;
    return n;
}

int64_t synth_write(TraceDb& db, const SynthSpec& spec) {
    synth_validate(spec);
    Run run;
    run.producer = PRODUCER_SYNTHETIC;
    run.target = spec.target;
    if (run.target.name.empty()) model_preset("qwen3-8b", &run.target);
    run.drafter_kind = spec.drafter_kind;
    run.drafter_name = spec.drafter_name;
    run.gpu = "none";
    run.temperature = 0;
    run.gamma = spec.gamma;
    run.notes = spec_notes(spec);
    trace_db_begin_run(db, run);

    Rng lengths = rng_seed(spec.seed, SYNTH_STREAM_LENGTHS);
    Rng slots = rng_seed(spec.seed, SYNTH_STREAM_SLOTS);
    const int G = spec.gamma;
    int idx = 0;
    for (const SynthDomain& dom : spec.domains) {
        for (int i = 0; i < dom.n_requests; i++) {
            Request req;
            req.run_id = run.id;
            req.idx = idx++;
            req.domain = dom.name;
            req.prompt_len = static_cast<int>(rng_range(lengths, spec.prompt_min, spec.prompt_max));
            req.output_len = static_cast<int>(rng_range(lengths, spec.output_min, spec.output_max));

            Positions pos;
            pos.gamma = G;
            pos.n = req.output_len;
            size_t count = static_cast<size_t>(pos.n) * G;
            pos.beta.assign(count, 0.0f);
            pos.conf_logit.assign(count, 0.0f);
            pos.conf_prob.assign(count, 0.0f);
            for (int t = 0; t < pos.n; t++)
                for (int k = 1; k <= G && t + k < pos.n; k++) {
                    SynthSlot s = synth_slot(slots, dom.alpha[k - 1], spec.kappa, spec.raw_temperature);
                    size_t at = static_cast<size_t>(t) * G + (k - 1);
                    pos.beta[at] = s.beta;
                    pos.conf_logit[at] = s.conf_logit;
                    pos.conf_prob[at] = s.conf_prob;
                }

            TraceTxn txn(db);
            trace_db_append_request(db, req);
            pos.request_id = req.id;
            trace_db_append_positions(db, pos);
            txn.commit();
        }
    }
    trace_db_finish_run(db, run.id);
    return run.id;
}

}  // namespace sp
