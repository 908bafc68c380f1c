// panel_explain.cpp: the teaching view. Each concept behind the frontier in
// a few lines, worked with the current scenario's own numbers: tokens per
// request per step (tau; the batch step's sum is "Στ", readout.h), DSpark's
// objective Theta = Στ * SPS(B), Leviathan's speedup
// for i.i.d. acceptance, and Little's law as a check on a measured point.
// Model numbers (step times) come from the scenario's cost model; measured
// ones from the sweep. Where the two are compared, both are shown.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/app.h"

namespace sp {

static const ImVec4 EXPLAIN_DIM(0.62f, 0.62f, 0.66f, 1.0f);
static const ImVec4 EXPLAIN_GOOD(0.45f, 0.85f, 0.55f, 1.0f);

// Per-slot conditional acceptance alpha_k, k = 1..gamma, and where it came from.
struct SlotAcceptance {
    std::vector<double> alpha;
    std::string source;
    double trace_tau = NAN;   // the trace's own tau, when it has one
};

static SlotAcceptance slot_acceptance(const SweepOutput& s) {
    SlotAcceptance a;
    const int gamma = s.scenario.engine.gamma;
    if (!s.trace_stats.empty() && !s.trace_stats[0].alpha.empty()) {
        const AcceptanceStats& st = s.trace_stats[0];
        for (int k = 0; k < gamma && k < static_cast<int>(st.alpha.size()); k++)
            a.alpha.push_back(std::isfinite(st.alpha[static_cast<size_t>(k)]) ? st.alpha[static_cast<size_t>(k)] : 0.0);
        char buf[160];
        std::snprintf(buf, sizeof buf, "the trace run, all domains pooled (%lld anchors of %lld requests)",
                      static_cast<long long>(st.n_anchors), static_cast<long long>(st.n_requests));
        a.source = buf;
        a.trace_tau = st.tau;
    } else if (!s.acceptance.alpha.empty()) {
        for (int k = 0; k < gamma && k < static_cast<int>(s.acceptance.alpha[0].size()); k++)
            a.alpha.push_back(s.acceptance.alpha[0][static_cast<size_t>(k)]);
        a.source = s.scenario.acceptance.kind == ACCEPT_IID
                       ? "the scenario's i.i.d. alpha"
                       : "the parametric alpha of domain \"" + (s.acceptance.domains.empty() ? std::string("0") : s.acceptance.domains[0]) + "\"";
    }
    return a;
}

// tau(l) = 1 + sum_{k<=l} prod_{i<=k} alpha_i: expected tokens per step when l drafts are verified.
static std::vector<double> tau_by_length(const std::vector<double>& alpha) {
    std::vector<double> tau{1.0};
    double survival = 1;
    for (double a : alpha) {
        survival *= a;
        tau.push_back(tau.back() + survival);
    }
    return tau;
}

// Tokens already in the KV cache of a typical decoding request: its prompt
// and half its output, on average over the workload.
static double typical_context(const SweepOutput& s) {
    const Workload& w = s.scenario.workload;
    auto mean_of = [](const LengthDist& d) {
        switch (d.kind) {
            case DIST_FIXED: return static_cast<double>(d.value);
            case DIST_UNIFORM: return (d.min + d.max) / 2.0;
            case DIST_LOGNORMAL: return std::clamp(d.median * std::exp(d.sigma * d.sigma / 2), double(d.min), double(d.max));
        }
        return 0.0;
    };
    if (w.lengths == LENGTHS_DIST) return mean_of(w.prompt_len) + mean_of(w.output_len) / 2;
    if (w.lengths == LENGTHS_LOG) {
        double sum = 0;
        for (const LogRequest& r : w.log->requests) sum += r.prompt_len + r.output_len / 2.0;
        return sum / static_cast<double>(w.log->requests.size());
    }
    if (s.acceptance.requests.empty()) return 1024;
    double sum = 0;
    for (const TraceRequest& r : s.acceptance.requests) sum += r.prompt_len + r.output_len / 2.0;
    return sum / static_cast<double>(s.acceptance.requests.size());
}

// Seconds of one iteration in the cost model: R requests verifying l drafts
// each, `prefill` prompt tokens riding along in the same forward, and the
// draft phase of `drafts` tokens per request. NaN where the model cannot
// answer (a measured table without that cell).
static double model_step_s(const CostModel& m, int R, double l, int drafts, double context, int prefill = 0) {
    try {
        BatchShape b;
        b.n_decode_seqs = R;
        b.n_decode_tokens = static_cast<int>(std::lround(R * (1 + l)));
        b.decode_context = context;
        if (prefill > 0) {
            b.n_prefill_seqs = 1;
            b.n_prefill_tokens = prefill;
            b.prefill_context = 0;
        }
        return cost_forward_s(m, b) + cost_draft_s(m, R, drafts, context);
    } catch (const std::exception&) {
        return NAN;
    }
}

static int find_policy(const Scenario& sc, PolicyKind kind, int k = -1) {
    for (size_t i = 0; i < sc.policies.size(); i++)
        if (sc.policies[i].kind == kind && (k < 0 || sc.policies[i].k == k)) return static_cast<int>(i);
    return -1;
}

static bool table_begin(const char* id, int columns) {
    return ImGui::BeginTable(id, columns,
                             ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit);
}

static void cell(const char* fmt, double v) {
    ImGui::TableNextColumn();
    if (std::isfinite(v)) ImGui::Text(fmt, v);
    else ImGui::TextDisabled("-");
}

// --- tau

static void explain_tau(const SweepOutput& s, const SlotAcceptance& a) {
    ImGui::TextWrapped(
        "A verify step checks the drafts left to right and keeps the leading run of accepted ones, plus one token "
        "the target produces itself (the correction at the first rejection, or a bonus token when all pass). With "
        "α_k the chance that draft k is accepted given drafts 1..k-1 were, the expected tokens per request per step are");
    ImGui::Text("    τ = 1 + Σ_k Π_{i≤k} α_i");
    if (a.alpha.empty()) {
        ImGui::TextDisabled("(no per-slot acceptance for this source)");
        return;
    }
    ImGui::TextColored(EXPLAIN_DIM, "alpha from %s:", a.source.c_str());
    std::vector<double> tau = tau_by_length(a.alpha);
    // the sum written out with its terms, the first few in full
    std::string sum = "    τ = 1", terms;
    double survival = 1;
    const size_t shown = std::min<size_t>(a.alpha.size(), 4);
    for (size_t k = 0; k < a.alpha.size(); k++) {
        survival *= a.alpha[k];
        char buf[64];
        std::snprintf(buf, sizeof buf, " + %.3f", survival);
        sum += buf;
        if (k < shown) {
            std::string prod;
            for (size_t i = 0; i <= k; i++) {
                std::snprintf(buf, sizeof buf, "%s%.2f", i ? "·" : "", a.alpha[i]);
                prod += buf;
            }
            std::snprintf(buf, sizeof buf, "%.3f", survival);
            terms += "    k=" + std::to_string(k + 1) + ":  " + prod + " = " + buf + "\n";
        }
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, " = %.3f", tau.back());
    sum += buf;
    ImGui::TextUnformatted(terms.c_str());
    if (a.alpha.size() > shown) ImGui::TextColored(EXPLAIN_DIM, "    ... and so on to k = %zu", a.alpha.size());
    ImGui::TextUnformatted(sum.c_str());
    if (std::isfinite(a.trace_tau)) ImGui::TextColored(EXPLAIN_DIM, "    (the trace's own pooled τ: %.3f)", a.trace_tau);

    ImGui::Spacing();
    ImGui::TextWrapped(
        "Verifying only the first l drafts stops the sum at k = l. Each further draft adds less (the product only "
        "shrinks) but costs one more verified token in the batch: this is the whole trade-off. Measured τ of the "
        "fixed-length policies in this sweep, at the lowest load, next to the formula:");
    const Scenario& sc = s.scenario;
    const SweepResult& r = s.result;
    const size_t nl = r.loads.size();
    if (table_begin("tau_l", 4)) {
        ImGui::TableSetupColumn("drafts verified l");
        ImGui::TableSetupColumn("Π α up to l");
        ImGui::TableSetupColumn("τ(l) formula");
        ImGui::TableSetupColumn("τ measured");
        ImGui::TableHeadersRow();
        double prod = 1;
        for (size_t l = 0; l < tau.size(); l++) {
            if (l > 0) prod *= a.alpha[l - 1];
            ImGui::TableNextRow();
            cell("%.0f", static_cast<double>(l));
            cell("%.3f", l > 0 ? prod : NAN);
            cell("%.3f", tau[l]);
            int p = l == 0 ? find_policy(sc, POLICY_AR) : l == 1 && find_policy(sc, POLICY_FIXED, 1) < 0
                                                              ? find_policy(sc, POLICY_MTP1)
                                                              : find_policy(sc, POLICY_FIXED, static_cast<int>(l));
            ImGui::TableNextColumn();
            if (p >= 0 && nl > 0) ImGui::Text("%.3f  (%s)", r.points[static_cast<size_t>(p) * nl].tau, sc.policies[static_cast<size_t>(p)].name.c_str());
            else ImGui::TextDisabled("-");
        }
        ImGui::EndTable();
    }
}

// --- Theta

static void explain_theta(const SweepOutput& s, const SlotAcceptance& a) {
    const Scenario& sc = s.scenario;
    const SweepResult& r = s.result;
    const size_t nl = r.loads.size();
    if (nl == 0) return;
    int p = find_policy(sc, POLICY_DSPARK);
    if (p < 0) p = static_cast<int>(sc.policies.size()) - 1;
    const size_t li = nl / 2;
    const PointResult& pt = r.points[static_cast<size_t>(p) * nl + li];
    ImGui::TextWrapped(
        "Throughput is tokens per step times steps per second. DSpark's scheduler picks the drafts to verify each "
        "step to maximise Θ = Στ · SPS(B), where Στ is the batch's expected tokens (τ summed over its R requests: "
        "tokens per batch step), B its verified tokens and SPS(B) = 1 / step time. Adding a draft raises Στ by its "
        "survival probability and B by one; the scheduler stops at "
        "the first draft that does not raise Θ.");
    if (pt.n_steps <= 0 || pt.window_s <= 0) return;
    const double step_s = pt.busy_fraction * pt.window_s / static_cast<double>(pt.n_steps);
    const double tokens_per_step = pt.tau * pt.mean_running;
    const double theta = tokens_per_step / step_s;
    ImGui::TextColored(EXPLAIN_DIM, "Measured: %s at %s (the middle load of the sweep)", sc.policies[static_cast<size_t>(p)].name.c_str(),
                       load_text(sc, r.loads[li]).c_str());
    ImGui::Text("    requests decoding per step R = %.1f,  τ = %.3f tokens per request per step  →  Στ = R·τ = %.1f tokens per batch step", pt.mean_running,
                pt.tau, tokens_per_step);
    ImGui::Text("    verified tokens per step B = %.0f (prefill included),  step time = busy · window / steps = %.2f ms",
                pt.mean_batch_tokens, step_s * 1e3);
    ImGui::Text("    SPS = %.1f steps/s,  Θ = Στ · SPS = %s tokens/s", 1 / step_s, value_label(theta).c_str());
    ImGui::Text("    measured output: %s tokens/s per replica (%s per GPU, tp = %d)",
                value_label(static_cast<double>(pt.n_tokens) / pt.window_s).c_str(), value_label(pt.throughput).c_str(),
                sc.engine.tp);
    ImGui::TextColored(EXPLAIN_DIM,
                       "    (Θ counts decode steps only; the measured rate also has first tokens from prefill and "
                       "idle time, busy = %.0f%%)",
                       pt.busy_fraction * 100);

    if (a.alpha.empty()) return;
    const CostModel& m = sc.cost;
    const double ctx = typical_context(s);
    const int R = std::max(1, static_cast<int>(std::lround(pt.mean_running)));
    // prompt tokens that share the forward with the decode tokens (chunked prefill)
    const int prefill = sc.engine.disaggregated_prefill
                            ? 0
                            : std::max(0, static_cast<int>(std::lround(pt.mean_batch_tokens - pt.mean_running * pt.mean_verified)));
    const int drafts = policy_draft_len(sc.policies[static_cast<size_t>(p)], sc.engine.gamma);
    std::vector<double> tau = tau_by_length(a.alpha);
    ImGui::Spacing();
    ImGui::TextWrapped(
        "The same trade-off in the cost model: R = %d requests at context %.0f (the workload's prompt plus half its "
        "output), %d prefill tokens per step riding along as measured, every request verifying the same l drafts. "
        "The model's step time for the measured mix (%.2f verified per request) is %.2f ms against %.2f ms "
        "measured.",
        R, ctx, prefill, pt.mean_verified, model_step_s(m, R, pt.mean_verified - 1, drafts, ctx, prefill) * 1e3,
        step_s * 1e3);
    if (sc.cost.kind == COST_ROOFLINE)
        ImGui::TextColored(EXPLAIN_DIM,
                           "    roofline ridge: about %.0f tokens per forward; below it a step costs the weight reads "
                           "whatever B is, above it every verified token costs compute",
                           roofline_ridge_tokens(sc.cost.roofline));
    if (!table_begin("theta_l", 5)) return;
    ImGui::TableSetupColumn("l");
    ImGui::TableSetupColumn("B = R(1+l) + prefill");
    ImGui::TableSetupColumn("step ms (draft incl.)");
    ImGui::TableSetupColumn("Στ = R·τ(l)");
    ImGui::TableSetupColumn("Θ = Στ·SPS tokens/s");
    ImGui::TableHeadersRow();
    std::vector<double> steps, thetas;
    int best = -1;
    for (size_t l = 0; l < tau.size(); l++) {
        steps.push_back(model_step_s(m, R, static_cast<double>(l), l == 0 ? 0 : sc.engine.gamma, ctx, prefill));
        thetas.push_back(R * tau[l] / steps.back());
        if (std::isfinite(thetas.back()) && (best < 0 || thetas.back() > thetas[static_cast<size_t>(best)]))
            best = static_cast<int>(l);
    }
    for (size_t l = 0; l < tau.size(); l++) {
        ImGui::TableNextRow();
        cell("%.0f", static_cast<double>(l));
        cell("%.0f", static_cast<double>(R) * (1 + static_cast<double>(l)) + prefill);
        cell("%.2f", steps[l] * 1e3);
        cell("%.1f", R * tau[l]);
        ImGui::TableNextColumn();
        if (!std::isfinite(thetas[l])) ImGui::TextDisabled("-");
        else if (static_cast<int>(l) == best) ImGui::TextColored(EXPLAIN_GOOD, "%s  (best)", value_label(thetas[l]).c_str());
        else ImGui::Text("%s", value_label(thetas[l]).c_str());
    }
    ImGui::EndTable();
    ImGui::TextColored(EXPLAIN_DIM,
                       "    l = 0 has no draft phase; l >= 1 pays for drafting γ = %d tokens. DSpark need not pick "
                       "one l for all: it verifies long drafts for confident requests and short ones for the rest, "
                       "and re-decides every step as R and the prefill change.",
                       sc.engine.gamma);
}

// --- Leviathan

static void explain_leviathan(const SweepOutput& s, const SlotAcceptance& a) {
    const Scenario& sc = s.scenario;
    ImGui::TextWrapped(
        "Leviathan et al. (2023) take every draft to be accepted with the same probability α, independently. A "
        "step that verifies k drafts then yields E = (1 − α^(k+1)) / (1 − α) tokens on average. With c the cost "
        "of drafting one token relative to one target step, one user's speedup over plain decoding is "
        "E / (k·c + 1): verifying k + 1 tokens is taken to cost one target step, true while a step is memory-bound "
        "(batch 1 is).");
    if (a.alpha.empty()) return;
    double alpha = 0;
    for (double x : a.alpha) alpha += x;
    alpha = std::min(alpha / static_cast<double>(a.alpha.size()), 0.999);
    const double ctx = typical_context(s);
    const double t1 = model_step_s(sc.cost, 1, 0, 0, ctx);
    const double c = (model_step_s(sc.cost, 1, 0, 1, ctx) - t1) / t1;
    ImGui::TextColored(EXPLAIN_DIM,
                       "α = %.3f, the mean of the per-slot α above; the cost model at batch 1, context %.0f: one "
                       "target step %.2f ms, one drafted token c = %.3f of it (k·c below is the model's draft time "
                       "for k tokens, which for a parallel drafter is less than k times c)",
                       alpha, ctx, t1 * 1e3, c);
    const SweepResult& r = s.result;
    const size_t nl = r.loads.size();
    const int ar = find_policy(sc, POLICY_AR);
    if (!table_begin("leviathan", 5)) return;
    ImGui::TableSetupColumn("k");
    ImGui::TableSetupColumn("E tokens/step");
    ImGui::TableSetupColumn("k·c");
    ImGui::TableSetupColumn("speedup E/(kc+1)");
    ImGui::TableSetupColumn(nl ? ("measured at " + load_text(sc, r.loads[0]) + ": fixed:k / ar").c_str() : "measured");
    ImGui::TableHeadersRow();
    std::vector<double> speedup;
    int best = -1;
    for (int k = 1; k <= sc.engine.gamma; k++) {
        double e = (1 - std::pow(alpha, k + 1)) / (1 - alpha);
        double kc = (model_step_s(sc.cost, 1, 0, k, ctx) - t1) / t1;
        speedup.push_back(e / (kc + 1));
        if (std::isfinite(speedup.back()) && (best < 0 || speedup.back() > speedup[static_cast<size_t>(best)])) best = k - 1;
    }
    for (int k = 1; k <= sc.engine.gamma; k++) {
        double e = (1 - std::pow(alpha, k + 1)) / (1 - alpha);
        double kc = (model_step_s(sc.cost, 1, 0, k, ctx) - t1) / t1;
        ImGui::TableNextRow();
        cell("%.0f", k);
        cell("%.3f", e);
        cell("%.3f", kc);
        ImGui::TableNextColumn();
        double sp = speedup[static_cast<size_t>(k - 1)];
        if (!std::isfinite(sp)) ImGui::TextDisabled("-");
        else if (k - 1 == best) ImGui::TextColored(EXPLAIN_GOOD, "%.2fx  (best)", sp);
        else ImGui::Text("%.2fx", sp);
        int f = find_policy(sc, POLICY_FIXED, k);
        ImGui::TableNextColumn();
        if (f >= 0 && ar >= 0 && nl > 0 && r.points[static_cast<size_t>(ar) * nl].per_user.mean > 0)
            ImGui::Text("%.2fx", r.points[static_cast<size_t>(f) * nl].per_user.mean /
                                     r.points[static_cast<size_t>(ar) * nl].per_user.mean);
        else
            ImGui::TextDisabled("-");
    }
    ImGui::EndTable();
    ImGui::TextColored(EXPLAIN_DIM,
                       "    The measured column replays the real per-slot acceptance (not one α) and includes prefill, "
                       "so it differs from the formula; add fixed:k policies to the scenario to fill it.");
}

// --- Little's law

static void explain_little(const SweepOutput& s, int p) {
    const Scenario& sc = s.scenario;
    const SweepResult& r = s.result;
    const size_t nl = r.loads.size();
    const bool open = sc.workload.mode == WORKLOAD_OPEN;
    const double z = sc.workload.think_time_s;
    if (open) {
        ImGui::TextWrapped(
            "Little's law: the mean number of requests in the system is L = λ·W, the arrival rate times the mean "
            "time a request spends inside (here its end-to-end latency). While the replica keeps up, completions X "
            "equal arrivals λ; past saturation X stays flat, the queue grows and W with it.");
    } else {
        ImGui::TextWrapped(
            "Little's law for a closed loop of N users, each waiting for a reply (end-to-end latency E2E) and then "
            "thinking for Z before the next request: N = X·(E2E + Z), with X the completed requests per second. "
            "It holds for any scheduler, so it checks the simulator; it also says that once X stops growing, each "
            "extra user only adds 1/X seconds of queueing to everyone's latency. Z = %s s in this scenario.",
            value_label(z).c_str());
    }
    ImGui::TextColored(EXPLAIN_DIM, "Measured along %s:", sc.policies[static_cast<size_t>(p)].name.c_str());
    if (!table_begin("little", 5)) return;
    ImGui::TableSetupColumn(open ? "λ req/s" : "N users");
    ImGui::TableSetupColumn("X req/s");
    ImGui::TableSetupColumn("mean E2E s");
    ImGui::TableSetupColumn(open ? "L = λ·E2E" : "X·(E2E + Z)");
    ImGui::TableSetupColumn(open ? "X / λ" : "vs N");
    ImGui::TableHeadersRow();
    for (size_t i = 0; i < nl; i++) {
        const PointResult& pt = r.points[static_cast<size_t>(p) * nl + i];
        if (pt.n_requests <= 0) continue;
        ImGui::TableNextRow();
        cell("%.4g", r.loads[i]);
        cell("%.2f", pt.request_rate);
        cell("%.3f", pt.e2e.mean);
        if (open) {
            cell("%.1f", r.loads[i] * pt.e2e.mean);
            cell("%.3f", pt.request_rate / r.loads[i]);
        } else {
            double rhs = pt.request_rate * (pt.e2e.mean + z);
            cell("%.1f", rhs);
            ImGui::TableNextColumn();
            ImGui::Text("%+.1f%%", (rhs / r.loads[i] - 1) * 100);
        }
    }
    ImGui::EndTable();
    if (nl == 0) return;
    const PointResult& last = r.points[static_cast<size_t>(p) * nl + nl - 1];
    if (last.window_s > 0)
        ImGui::TextColored(EXPLAIN_DIM,
                           "    Gaps of a few percent come from the finite measurement window: a request is counted "
                           "when it completes, and at the last load its E2E (%.1f s) is %.0f%% of the window (%.1f s).",
                           last.e2e.mean, last.e2e.mean / last.window_s * 100, last.window_s);
}

// --- policies

static std::string policy_blurb(const Policy& p) {
    char buf[160];
    switch (p.kind) {
        case POLICY_AR: return "no speculation: one token per request per step.";
        case POLICY_MTP1: return "one draft, always verified, as a one-token MTP head is usually run.";
        case POLICY_FIXED:
            std::snprintf(buf, sizeof buf, "always verify %d drafts, whatever the load.", p.k);
            return buf;
        case POLICY_THRESHOLD:
            std::snprintf(buf, sizeof buf,
                          "verify the leading drafts whose calibrated confidence is at least %.2f; stop at the first "
                          "below.",
                          p.threshold);
            return buf;
        case POLICY_DSPARK:
            return "DSpark: rank every draft by prefix survival (product of confidences), admit in that order while "
                   "Θ = Στ·SPS(B) strictly improves, stop at the first draft that does not.";
        case POLICY_DSPARK_ASYNC:
            return "DSpark as deployed: the draft budget comes from confidences two steps old (no waiting on the "
                   "drafter), then the top drafts by current survival fill it.";
        case POLICY_GOODPUT:
            return "SmartSpec-style: each request's observed acceptance rate predicts its drafts; keep the prefix "
                   "that maximises expected accepted tokens per second.";
        case POLICY_BATCH_TABLE: return "k from a table of batch size, as vLLM and TensorRT-LLM schedule drafts.";
        case POLICY_DRAFT_PROB:
            return "DSpark without a confidence head: each draft's acceptance is learnt online from the drafter's own "
                   "probability of it (how often drafts that sure were accepted so far), then ranked and admitted "
                   "as DSpark does.";
        case POLICY_COUNT: break;
    }
    return "";
}

void panel_explain(AppState& app) {
    if (!app.sweep) {
        ImGui::TextDisabled("no results yet: the explanations use the current sweep's numbers");
        return;
    }
    const SweepOutput& s = *app.sweep;
    const Scenario& sc = s.scenario;
    ImGui::TextWrapped("%s: %s", sc.name.c_str(), sc.description.c_str());
    ImGui::TextColored(EXPLAIN_DIM, "Every number below is computed from this scenario and its latest sweep.");
    ImGui::Spacing();
    const SlotAcceptance a = slot_acceptance(s);
    ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + std::min(ImGui::GetContentRegionAvail().x, 1000.0f));
    if (ImGui::CollapsingHeader("τ: tokens per request per step", ImGuiTreeNodeFlags_DefaultOpen)) explain_tau(s, a);
    if (ImGui::CollapsingHeader("Θ = Στ · SPS(B): what DSpark's scheduler maximises", ImGuiTreeNodeFlags_DefaultOpen))
        explain_theta(s, a);
    if (ImGui::CollapsingHeader("Leviathan's speedup for one user", ImGuiTreeNodeFlags_DefaultOpen))
        explain_leviathan(s, a);
    int p = find_policy(sc, POLICY_DSPARK);
    if (p < 0) p = static_cast<int>(sc.policies.size()) - 1;
    if (ImGui::CollapsingHeader("Little's law", ImGuiTreeNodeFlags_DefaultOpen)) explain_little(s, p);
    if (ImGui::CollapsingHeader("The policies of this scenario", ImGuiTreeNodeFlags_DefaultOpen)) {
        for (size_t i = 0; i < sc.policies.size(); i++) {
            ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(plot_color(static_cast<int>(i))), "%s",
                               sc.policies[i].name.c_str());
            ImGui::SameLine(160);
            ImGui::TextWrapped("%s", policy_blurb(sc.policies[i]).c_str());
        }
    }
    ImGui::PopTextWrapPos();
}

}  // namespace sp
