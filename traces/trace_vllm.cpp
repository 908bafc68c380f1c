// trace_vllm.cpp: vLLM's Prometheus counters and per-request metrics; the
// formats and the conversion are documented in trace_vllm.h.
#include "traces/trace_vllm.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>

#include "traces/rng.h"

namespace sp {

using json = nlohmann::json;

// [SECTION] Prometheus text --------------------------------------------------------

namespace {

// The four counters, by base name (a "_total" suffix is dropped first).
enum Counter { C_DRAFTS, C_DRAFT_TOKENS, C_ACCEPTED, C_PER_POS, C_COUNT };
const char* const COUNTER_NAMES[C_COUNT] = {
    "vllm:spec_decode_num_drafts", "vllm:spec_decode_num_draft_tokens", "vllm:spec_decode_num_accepted_tokens",
    "vllm:spec_decode_num_accepted_tokens_per_pos"};

struct Sample {
    std::string name;                                     // as written
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
};

std::string fmt_count(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return buf;
}

// One sample line "name{k="v",...} value [timestamp]" (text exposition format 0.0.4).
Sample parse_sample(const std::string& file, int64_t line, const std::string& text) {
    Sample s;
    size_t i = 0;
    auto name_char = [](char c, bool first) {
        return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
               (!first && std::isdigit(static_cast<unsigned char>(c)));
    };
    while (i < text.size() && name_char(text[i], i == 0)) i++;
    if (i == 0) import_fail(file, line, "metric name", "a Prometheus sample (name{labels} value)", "\"" + text.substr(0, 40) + "\"");
    s.name = text.substr(0, i);
    if (i < text.size() && text[i] == '{') {
        i++;
        for (;;) {
            while (i < text.size() && text[i] == ' ') i++;
            if (i < text.size() && text[i] == '}') { i++; break; }
            size_t k0 = i;
            while (i < text.size() && name_char(text[i], i == k0)) i++;
            std::string key = text.substr(k0, i - k0);
            if (key.empty() || i + 1 >= text.size() || text[i] != '=' || text[i + 1] != '"')
                import_fail(file, line, s.name, "labels as key=\"value\"", "\"" + text.substr(k0, 30) + "\"");
            i += 2;
            std::string val;
            for (;; i++) {
                if (i >= text.size()) import_fail(file, line, s.name + "{" + key + "}", "a closing quote", "end of line");
                if (text[i] == '"') break;
                if (text[i] == '\\' && i + 1 < text.size()) {
                    char e = text[++i];
                    val += e == 'n' ? '\n' : e;
                } else {
                    val += text[i];
                }
            }
            i++;  // the quote
            s.labels.emplace_back(key, val);
            while (i < text.size() && text[i] == ' ') i++;
            if (i < text.size() && text[i] == ',') { i++; continue; }
            if (i < text.size() && text[i] == '}') { i++; break; }
            import_fail(file, line, s.name, "',' or '}' between labels", i < text.size() ? "'" + std::string(1, text[i]) + "'" : "end of line");
        }
    }
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) i++;
    size_t v0 = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') i++;
    const std::string v = text.substr(v0, i - v0);
    double x = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size())
        import_fail(file, line, s.name, "a number after the labels", v.empty() ? "nothing" : "\"" + v + "\"");
    s.value = x;
    return s;
}

}  // namespace

std::vector<double> alpha_from_survival(const std::vector<double>& survival) {
    std::vector<double> alpha;
    double prev = 1;  // s_0
    for (double s : survival) {
        alpha.push_back(prev > 0 ? s / prev : 0.0);  // s_{k-1} = 0: unobserved, and irrelevant
        prev = s;
    }
    return alpha;
}

std::string alpha_toml_line(const std::vector<double>& alpha) {
    std::string out = "alpha = [";
    for (size_t k = 0; k < alpha.size(); k++) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", alpha[k]);
        out += (k ? ", " : "") + std::string(buf);
    }
    return out + "]";
}

VllmRates vllm_prom_read(std::istream& in, const std::string& name, const std::string& model) {
    struct Sum { double value = 0; int64_t line = 0; };
    // model_name -> counter -> sum (per position for C_PER_POS)
    std::map<std::string, std::map<int, std::map<int, Sum>>> by_model;
    std::map<std::string, int64_t> seen;  // name + labels -> line: duplicates are refused
    LineReader lines{in, name, size_t(1) << 20};
    std::string text;
    while (lines.next(text)) {
        const int64_t line = lines.line;
        size_t first = text.find_first_not_of(" \t");
        if (first == std::string::npos || text[first] == '#') continue;
        Sample s = parse_sample(name, line, text.substr(first));
        std::string base = s.name;
        if (base.size() > 6 && base.compare(base.size() - 6, 6, "_total") == 0) base.resize(base.size() - 6);
        int c = 0;
        while (c < C_COUNT && base != COUNTER_NAMES[c]) c++;
        if (c == C_COUNT) continue;
        std::string key = base, model_name;
        int position = 0;
        bool has_position = false;
        for (auto& [k, v] : s.labels) {
            key += "," + k + "=" + v;
            if (k == "model_name") model_name = v;
            if (k == "position") {
                has_position = true;
                auto r = std::from_chars(v.data(), v.data() + v.size(), position);
                if (r.ec != std::errc() || r.ptr != v.data() + v.size() || position < 0 || position >= TRACE_MAX_GAMMA)
                    import_fail(name, line, s.name + "{position}",
                                "a position in 0.." + std::to_string(TRACE_MAX_GAMMA - 1), "\"" + v + "\"");
            }
        }
        if (auto it = seen.find(key); it != seen.end())
            import_fail(name, line, s.name, "one sample per label set (also given at line " + std::to_string(it->second) + ")",
                        "a second one");
        seen[key] = line;
        if (c == C_PER_POS && !has_position) import_fail(name, line, s.name, "a position label", "none");
        if (!(s.value >= 0) || !std::isfinite(s.value))
            import_fail(name, line, s.name, "a finite counter value >= 0", fmt_count(s.value));
        Sum& sum = by_model[model_name][c][c == C_PER_POS ? position : 0];
        sum.value += s.value;
        sum.line = std::max(sum.line, line);
    }
    if (by_model.empty())
        import_fail(name, 0, COUNTER_NAMES[C_DRAFTS], "vLLM spec-decode counters (was speculative decoding on?)", "none");
    auto it = by_model.end();
    if (!model.empty()) {
        it = by_model.find(model);
    } else if (by_model.size() == 1) {
        it = by_model.begin();
    }
    if (it == by_model.end()) {
        std::string names;
        for (auto& [m, _] : by_model) names += (names.empty() ? "\"" : ", \"") + m + "\"";
        import_fail(name, 0, "model_name", model.empty() ? "one model (pick one with --model)" : "\"" + model + "\"",
                    names);
    }
    std::map<int, std::map<int, Sum>>& counters = it->second;

    VllmRates r;
    r.model_name = it->first;
    if (!counters.count(C_DRAFTS))
        import_fail(name, 0, std::string(COUNTER_NAMES[C_DRAFTS]) + "_total", "a counter sample", "none");
    r.drafts = counters[C_DRAFTS][0].value;
    if (!(r.drafts > 0)) import_fail(name, counters[C_DRAFTS][0].line, COUNTER_NAMES[C_DRAFTS], "a count > 0 (no drafts: no rates)", fmt_count(r.drafts));
    if (counters.count(C_DRAFT_TOKENS)) r.draft_tokens = counters[C_DRAFT_TOKENS][0].value;
    if (counters.count(C_ACCEPTED)) r.accepted = counters[C_ACCEPTED][0].value;
    if (!counters.count(C_PER_POS))
        import_fail(name, 0, std::string(COUNTER_NAMES[C_PER_POS]) + "_total", "per-position counter samples", "none");
    const std::map<int, Sum>& pos = counters[C_PER_POS];
    const std::string pos_name = COUNTER_NAMES[C_PER_POS];
    int expect = 0;
    for (auto& [p, sum] : pos) {
        if (p != expect)
            import_fail(name, sum.line, pos_name + "{position=\"" + std::to_string(p) + "\"}",
                        "positions from 0 without gaps (position " + std::to_string(expect) + " next)",
                        "position " + std::to_string(p));
        const double bound = p == 0 ? r.drafts : r.per_pos.back();
        if (sum.value > bound)
            import_fail(name, sum.line, pos_name + "{position=\"" + std::to_string(p) + "\"}",
                        "at most " + std::string(p == 0 ? "num_drafts " : "position " + std::to_string(p - 1) + "'s count ") +
                            fmt_count(bound) + " (a prefix survives no more often than a shorter one)",
                        fmt_count(sum.value));
        r.per_pos.push_back(sum.value);
        expect++;
    }

    // k from draft_tokens / drafts. Drafts cut short (EOS, max_tokens,
    // adaptive verification) make it slightly less than a whole k.
    if (r.draft_tokens >= 0) {
        const double kf = r.draft_tokens / r.drafts;
        const double k = std::ceil(kf - 1e-9);
        if (kf < k - 1e-9) {
            char buf[320];
            std::snprintf(buf, sizeof buf,
                          "draft_tokens / drafts = %.6g, less than k = %.0f: some drafts were shorter (EOS, max_tokens "
                          "or adaptive verification), and these counters cannot tell their unverified slots from "
                          "rejected ones", kf, k);
            r.notes.push_back(buf);
        }
        if (k > static_cast<double>(r.per_pos.size())) {
            const int missing = static_cast<int>(k) - static_cast<int>(r.per_pos.size());
            double rest = 0;
            for (double a : r.per_pos) rest += a;
            rest = r.accepted - rest;
            if (missing == 1 && r.accepted >= 0 && rest >= 0 && rest <= r.per_pos.back()) {
                r.per_pos.push_back(rest);
                r.notes.push_back("position " + std::to_string(r.per_pos.size() - 1) +
                                  " is missing from the scrape (trimmed?); rebuilt as num_accepted_tokens minus the "
                                  "other positions: " + fmt_count(rest));
            } else {
                r.notes.push_back("k = " + std::to_string(static_cast<int>(k)) + " but only positions 0.." +
                                  std::to_string(r.per_pos.size() - 1) +
                                  " are in the scrape (trimmed?); alpha covers those slots only");
            }
        }
    }
    double sum_pos = 0;
    for (double a : r.per_pos) {
        r.survival.push_back(a / r.drafts);
        sum_pos += a;
    }
    if (r.accepted >= 0 && std::fabs(sum_pos - r.accepted) > 1e-6 * std::max(1.0, r.accepted))
        r.notes.push_back("the per-position counts sum to " + fmt_count(sum_pos) + ", num_accepted_tokens is " +
                          fmt_count(r.accepted));
    r.alpha = alpha_from_survival(r.survival);
    r.mean_acceptance_length = 1 + (r.accepted >= 0 ? r.accepted : sum_pos) / r.drafts;
    return r;
}

// [SECTION] per-request detailed metrics ------------------------------------------------

namespace {

std::string path_of(const std::string& prefix, const char* key) {
    return prefix.empty() ? std::string(key) : prefix + "." + key;
}

// acceptance_histogram: a dense list (index j counts steps that accepted j
// drafts) or an object with integer keys. Returns counts by j.
std::vector<int64_t> read_histogram(const std::string& file, int64_t line, const std::string& path, const json& h,
                                    int k) {
    std::vector<int64_t> counts(static_cast<size_t>(k) + 1, 0);
    auto put = [&](int64_t j, const json& c, const std::string& field) {
        if (j < 0 || j > k)
            import_fail(file, line, field, "an accepted count in 0..num_spec_tokens " + std::to_string(k),
                        std::to_string(j));
        counts[static_cast<size_t>(j)] += import_int(file, line, field, c, 0, int64_t(1) << 40);
    };
    if (h.is_array()) {
        for (size_t j = 0; j < h.size(); j++) {
            if (j > static_cast<size_t>(k) && h[j] == 0) continue;  // trailing zeros past k say nothing
            put(static_cast<int64_t>(j), h[j], path + "[" + std::to_string(j) + "]");
        }
    } else if (h.is_object()) {
        for (auto it = h.begin(); it != h.end(); ++it) {
            int64_t j = -1;
            const std::string& key = it.key();
            auto r = std::from_chars(key.data(), key.data() + key.size(), j);
            if (r.ec != std::errc() || r.ptr != key.data() + key.size())
                import_fail(file, line, path, "integer keys (accepted drafts per step)", "\"" + key + "\"");
            put(j, it.value(), path + "." + key);
        }
    } else {
        import_fail(file, line, path, "a list or an object of step counts", json_describe(h));
    }
    return counts;
}

}  // namespace

std::vector<ImportedRequest::Triple> spec_decode_steps(const std::string& file, int64_t line, const std::string& path,
                                                       const json& sd, uint64_t seed) {
    if (!sd.is_object()) import_fail(file, line, path.empty() ? "line" : path, "an object", json_describe(sd));
    std::vector<ImportedRequest::Triple> steps;
    int k = TRACE_MAX_GAMMA;
    const json* k_json = import_find(sd, "num_spec_tokens");
    if (k_json) k = static_cast<int>(import_int(file, line, path_of(path, "num_spec_tokens"), *k_json, 1, TRACE_MAX_GAMMA));
    const json* acc_json = import_find(sd, "per_step_accepted");
    const json* dra_json = import_find(sd, "per_step_drafted");
    if (acc_json || dra_json) {
        if (!acc_json || !dra_json)
            import_fail(file, line, path_of(path, acc_json ? "per_step_drafted" : "per_step_accepted"),
                        "an array beside " + std::string(acc_json ? "per_step_accepted" : "per_step_drafted"), "nothing");
        const std::vector<int> acc = import_int_array(file, line, path_of(path, "per_step_accepted"), *acc_json, 0, k);
        const std::vector<int> dra = import_int_array(file, line, path_of(path, "per_step_drafted"), *dra_json, 0, k);
        std::vector<int> ver = dra;
        if (const json* v = import_find(sd, "per_step_verified"))
            ver = import_int_array(file, line, path_of(path, "per_step_verified"), *v, 0, k);
        if (dra.size() != acc.size() || ver.size() != acc.size())
            import_fail(file, line, path_of(path, dra.size() != acc.size() ? "per_step_drafted" : "per_step_verified"),
                        "an array of " + std::to_string(acc.size()) + " entries (as per_step_accepted)",
                        "an array of " + std::to_string(dra.size() != acc.size() ? dra.size() : ver.size()) + " entries");
        for (size_t i = 0; i < acc.size(); i++) {
            std::string at = "[";  // not "[" + ...: GCC 12 warns falsely (-Wrestrict) on that form here
            at += std::to_string(i);
            at += ']';
            if (ver[i] > dra[i])
                import_fail(file, line, path_of(path, "per_step_verified") + at,
                            "at most per_step_drafted" + at + " = " + std::to_string(dra[i]), std::to_string(ver[i]));
            if (acc[i] > ver[i])
                import_fail(file, line, path_of(path, "per_step_accepted") + at,
                            "at most the drafts verified, " + std::to_string(ver[i]), std::to_string(acc[i]));
            steps.push_back({static_cast<uint8_t>(dra[i]), static_cast<uint8_t>(ver[i]), static_cast<uint8_t>(acc[i])});
        }
    } else {
        const json* h = import_find(sd, "acceptance_histogram");
        if (!h)
            import_fail(file, line, path_of(path, "per_step_accepted"),
                        "per-step arrays or an acceptance_histogram (vLLM: --per-request-spec-decode-metrics detailed)",
                        "neither");
        if (!k_json)
            import_fail(file, line, path_of(path, "num_spec_tokens"),
                        "the drafts per step (a histogram alone cannot tell verified from drafted, as under adaptive "
                        "verification; give per_step_accepted and per_step_drafted)",
                        sd.contains("num_spec_tokens") ? "null" : "nothing");
        const std::vector<int64_t> counts = read_histogram(file, line, path_of(path, "acceptance_histogram"), *h, k);
        int64_t total = 0;
        for (int64_t c : counts) total += c;
        if (total > (int64_t(1) << 26))
            import_fail(file, line, path_of(path, "acceptance_histogram"), "at most 2^26 steps per request",
                        std::to_string(total));
        for (size_t j = 0; j < counts.size(); j++)
            for (int64_t c = 0; c < counts[j]; c++)
                steps.push_back({static_cast<uint8_t>(k), static_cast<uint8_t>(k), static_cast<uint8_t>(j)});
        // The histogram has no order; sorted steps would replay every miss first.
        Rng rng = rng_seed(seed, 31);
        for (size_t i = steps.size(); i > 1; i--) std::swap(steps[i - 1], steps[rng_below(rng, i)]);
    }
    // the summary's totals, where given, must agree with the steps
    int64_t n_acc = 0, n_dra = 0;
    for (const ImportedRequest::Triple& s : steps) n_acc += s.accepted, n_dra += s.drafted;
    auto agree = [&](const char* key, int64_t want, const char* what) {
        if (const json* v = import_find(sd, key)) {
            int64_t got = import_int(file, line, path_of(path, key), *v, 0, int64_t(1) << 50);
            if (got != want) import_fail(file, line, path_of(path, key), std::to_string(want) + " (" + what + ")", std::to_string(got));
        }
    };
    agree("num_spec_steps", static_cast<int64_t>(steps.size()), "the steps given");
    agree("num_accepted_draft_tokens", n_acc, "the accepted drafts of the steps given");
    agree("num_draft_tokens", n_dra, "the drafts of the steps given");
    return steps;
}

// Lengths from "prompt_tokens"/"completion_tokens" at `obj`, or under obj.usage.
static void read_lengths(const std::string& file, int64_t line, const json& obj, ImportedRequest& q) {
    const json* usage = import_find(obj, "usage");
    const std::string up = usage && usage->is_object() ? "usage." : "";
    const json& from = usage && usage->is_object() ? *usage : obj;
    if (const json* p = import_find(from, "prompt_tokens"))
        q.prompt_len = static_cast<int>(import_int(file, line, up + "prompt_tokens", *p, 0, 1 << 30));
    if (const json* c = import_find(from, "completion_tokens"))
        q.output_len = static_cast<int>(import_int(file, line, up + "completion_tokens", *c, 1, 1 << 30));
}

std::vector<ImportedRequest> vllm_requests_read(std::istream& in, const std::string& name, const ImportOptions& opt,
                                                size_t max_line) {
    std::vector<ImportedRequest> out;
    import_json_records(in, name, max_line, [&](int64_t line, const json& j) {
        const json* sd = &j;
        std::string path;
        if (const json* m = import_find(j, "metrics"); m && m->is_object() && m->contains("speculative_decoding")) {
            path = "metrics.speculative_decoding";
            sd = &(*m)["speculative_decoding"];
        } else if (j.contains("speculative_decoding")) {
            path = "speculative_decoding";
            sd = &j.at("speculative_decoding");
        }
        if (sd->is_null())
            import_fail(name, line, path, "an object (null: the request ran with n > 1 or without per-request metrics)", "null");
        ImportedRequest q;
        q.line = line;
        q.domain = import_domain(name, line, j, opt);
        read_lengths(name, line, j, q);
        q.steps = spec_decode_steps(name, line, path, *sd, static_cast<uint64_t>(line) << 32 | out.size());
        out.push_back(std::move(q));
    });
    return out;
}

}  // namespace sp
