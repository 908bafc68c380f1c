// panel_acceptance.cpp: "Acceptance", what the drafts are worth, in four
// plots of the newest sweep's acceptance source:
//   alpha_k   per-slot conditional acceptance per domain (trace statistics,
//             or the parametric / iid alphas)
//   tau(g)    expected tokens per request per full-block step for block
//             sizes 1..gamma (tau, not the batch step's sum; readout.h):
//             1 + sum_{k<=g} prod_{i<=k} alpha_i
//   P(j)      accepted drafts per request-step at the Step timeline's point,
//             against the full-block closed form s_j - s_{j+1} of the mix
//   reliability  the confidence head's predicted prefix survival against the
//             realised one, binned (trace runs with confidences only): the
//             scheduler ranks by these predictions, so their calibration is
//             what its choices rest on. A run with raw logits shows sigma(z)
//             and the STS-calibrated sigma(z / T_k) (gui/reliability.h)
//
// [SECTION] domain curves
// [SECTION] plots
// [SECTION] panel
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gui/app.h"

namespace sp {

// [SECTION] domain curves --------------------------------------------------------

// One domain's per-slot acceptance, truncated or padded (NaN) to the engine's gamma.
struct DomainCurve {
    std::string name;
    double weight = 0;               // share of the workload; 0 for trace domains it does not use
    std::vector<double> alpha;       // (gamma)
    std::vector<double> survival;    // (gamma) prod_{i<=k} alpha_i
};

static std::vector<double> fit_to(const std::vector<double>& v, int gamma) {
    std::vector<double> out(static_cast<size_t>(gamma), NAN);
    for (size_t k = 0; k < out.size() && k < v.size(); k++) out[k] = v[k];
    return out;
}

static double workload_weight(const AcceptanceData& a, size_t d) {
    if (d >= a.domain_cdf.size()) return 0;
    return a.domain_cdf[d] - (d ? a.domain_cdf[d - 1] : 0.0);
}

// Curves to plot: the trace's statistics ("all" first, then its domains), or
// the parametric alphas of the workload's domains.
static std::vector<DomainCurve> domain_curves(const SweepOutput& s) {
    const AcceptanceData& a = s.acceptance;
    const int G = a.gamma;
    std::vector<DomainCurve> out;
    if (a.kind == ACCEPT_TRACE) {
        for (const AcceptanceStats& st : s.trace_stats) {
            DomainCurve c;
            c.name = st.domain;
            c.alpha = fit_to(st.alpha, G);
            c.survival = fit_to(st.survival, G);
            for (size_t d = 0; d < a.domains.size(); d++)
                if (a.domains[d] == st.domain) c.weight = workload_weight(a, d);
            out.push_back(std::move(c));
        }
        // A workload of the single domain "all" replays every request of the run.
        bool any = false;
        for (const DomainCurve& c : out) any = any || c.weight > 0;
        if (!any && !out.empty() && a.domains.size() == 1) out[0].weight = 1;
        return out;
    }
    for (size_t d = 0; d < a.domains.size() && d < a.alpha.size(); d++) {
        DomainCurve c;
        c.name = a.domains[d];
        c.weight = workload_weight(a, d);
        c.alpha = fit_to(a.alpha[d], G);
        c.survival.resize(static_cast<size_t>(G));
        double p = 1;
        for (int k = 0; k < G; k++) c.survival[static_cast<size_t>(k)] = p *= c.alpha[static_cast<size_t>(k)];
        out.push_back(std::move(c));
    }
    return out;
}

// Survival s_1..s_gamma of the workload's mix: the domains' weighted mean.
static std::vector<double> mix_survival(const std::vector<DomainCurve>& curves, int gamma) {
    std::vector<double> s(static_cast<size_t>(gamma), 0);
    double total = 0;
    for (const DomainCurve& c : curves) total += c.weight;
    if (total <= 0) return std::vector<double>(static_cast<size_t>(gamma), NAN);
    for (const DomainCurve& c : curves)
        for (size_t k = 0; k < s.size(); k++)
            if (c.weight > 0) s[k] += c.weight / total * (std::isfinite(c.survival[k]) ? c.survival[k] : 0.0);
    return s;
}

// tau(g) = 1 + sum_{k<=g} s_k for g = 1..gamma.
static std::vector<double> tau_by_block(const std::vector<double>& survival) {
    std::vector<double> tau(survival.size());
    double t = 1;
    for (size_t k = 0; k < survival.size(); k++) tau[k] = t += std::isfinite(survival[k]) ? survival[k] : 0.0;
    return tau;
}

// [SECTION] plots ----------------------------------------------------------------

static std::vector<double> slots(int gamma, int from) {
    std::vector<double> x;
    for (int k = from; k <= gamma; k++) x.push_back(k);
    return x;
}

static void plot_alpha(AppState& app, const std::vector<DomainCurve>& curves, int gamma, ImVec2 size) {
    if (!plot_begin("Conditional acceptance α_k##acceptance_alpha", app.alpha, size, "draft slot k",
                    "α_k = P(k accepted | 1..k-1 accepted)"))
        return;
    const std::vector<double> x = slots(gamma, 1);
    for (size_t i = 0; i < curves.size(); i++) {
        std::vector<std::string> tips;
        for (int k = 1; k <= gamma; k++) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "%s, slot %d: α = %.3f", curves[i].name.c_str(), k, curves[i].alpha[static_cast<size_t>(k - 1)]);
            tips.push_back(buf);
        }
        plot_line(curves[i].name.c_str(), x.data(), curves[i].alpha.data(), gamma, plot_color(static_cast<int>(i)), tips.data());
    }
    plot_end();
}

static void plot_tau(AppState& app, const std::vector<DomainCurve>& curves, const std::vector<double>& mix, int gamma,
                     ImVec2 size) {
    if (!plot_begin("τ(γ): tokens per request per step##acceptance_tau", app.tau, size, "block size γ (drafts verified)",
                    "τ = 1 + Σ_k Π_{i≤k} α_i"))
        return;
    const std::vector<double> x = slots(gamma, 1);
    auto line = [&](const char* name, const std::vector<double>& survival, ImU32 col) {
        const std::vector<double> tau = tau_by_block(survival);
        std::vector<std::string> tips;
        for (int g = 1; g <= gamma; g++) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "%s, γ = %d: τ = %.3f tokens per request per step", name, g, tau[static_cast<size_t>(g - 1)]);
            tips.push_back(buf);
        }
        plot_line(name, x.data(), tau.data(), gamma, col, tips.data());
    };
    for (size_t i = 0; i < curves.size(); i++) line(curves[i].name.c_str(), curves[i].survival, plot_color(static_cast<int>(i)));
    if (curves.size() > 1 && std::isfinite(mix.empty() ? NAN : mix[0])) {
        plot_next_style(PlotStyle{1.5f, 4.0f, true});
        line("workload mix", mix, IM_COL32(235, 235, 235, 255));
    }
    plot_end();
}

static void plot_accepted(AppState& app, const std::vector<double>& mix, int gamma, ImVec2 size) {
    const TimelineOutput* t = app.timeline.get();
    char title[160];
    if (t && !t->accepted_hist.empty())
        std::snprintf(title, sizeof title, "Accepted drafts per step: %s at %g %s##acceptance_accepted_len",
                      t->policy.c_str(), t->load,
                      app.sweep->scenario.workload.mode == WORKLOAD_CLOSED ? "users" : "req/s");
    else
        std::snprintf(title, sizeof title, "Accepted drafts per step##acceptance_accepted_len");
    if (!plot_begin(title, app.accepted_len, size, "accepted drafts j", "fraction of request-steps")) return;
    if (t && !t->accepted_hist.empty()) {
        int64_t total = 0;
        for (int64_t h : t->accepted_hist) total += h;
        std::vector<double> x, y;
        std::vector<std::string> tips;
        for (size_t j = 0; j < t->accepted_hist.size(); j++) {
            x.push_back(static_cast<double>(j));
            y.push_back(total ? static_cast<double>(t->accepted_hist[j]) / static_cast<double>(total) : 0.0);
            char buf[128];
            std::snprintf(buf, sizeof buf, "j = %zu: %.1f%% of %lld request-steps", j, 100 * y.back(), static_cast<long long>(total));
            tips.push_back(buf);
        }
        plot_bars((t->policy + " (simulated, whole point)").c_str(), x.data(), y.data(), static_cast<int>(x.size()), 0.7,
                  plot_color(0), tips.data());
    }
    // Full-block closed form: P(j) = s_j - s_{j+1}, s_0 = 1, s_{gamma+1} = 0.
    if (!mix.empty() && std::isfinite(mix[0])) {
        std::vector<double> x, p;
        std::vector<std::string> tips;
        for (int j = 0; j <= gamma; j++) {
            const double sj = j == 0 ? 1.0 : mix[static_cast<size_t>(j - 1)];
            const double sn = j == gamma ? 0.0 : mix[static_cast<size_t>(j)];
            x.push_back(j);
            p.push_back(sj - sn);
            char buf[96];
            std::snprintf(buf, sizeof buf, "j = %d: %.1f%% (full block, mix)", j, 100 * p.back());
            tips.push_back(buf);
        }
        char label[64];
        std::snprintf(label, sizeof label, "full block γ = %d, closed form", gamma);
        plot_line(label, x.data(), p.data(), gamma + 1, IM_COL32(235, 235, 235, 255), tips.data());
    }
    plot_end();
}

// One series of the diagram: a point per non-empty bin.
static void reliability_series(const char* label, const ReliabilityBins& rb, ImU32 col, const char* note) {
    std::vector<double> x, y;
    std::vector<std::string> tips;
    for (int b = 0; b < RELIABILITY_BINS; b++) {
        if (rb.count[b] == 0) continue;
        x.push_back(rb.pred[b]);
        y.push_back(rb.real[b]);
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s, bin %.2f-%.2f: predicted %.3f, realised %.3f, %lld slots%s", label,
                      static_cast<double>(b) / RELIABILITY_BINS, static_cast<double>(b + 1) / RELIABILITY_BINS,
                      rb.pred[b], rb.real[b], static_cast<long long>(rb.count[b]), note);
        tips.push_back(buf);
    }
    plot_line(label, x.data(), y.data(), static_cast<int>(x.size()), col, tips.data());
}

static void plot_reliability(AppState& app, const Reliability& rb, ImVec2 size) {
    const bool logits = rb.source == RELIABILITY_LOGITS, cal = rb.calibrated.total > 0;
    char title[200];
    if (cal)
        std::snprintf(title, sizeof title, "Confidence reliability (ECE %.3f raw → %.3f calibrated)##acceptance_reliability",
                      rb.raw.ece, rb.calibrated.ece);
    else if (logits)
        std::snprintf(title, sizeof title, "Confidence reliability (ECE %.3f raw; STS cannot fit slot %d)##acceptance_reliability",
                      rb.raw.ece, rb.unfittable_slot);
    else
        std::snprintf(title, sizeof title, "Confidence reliability (ECE %.3f)##acceptance_reliability", rb.raw.ece);
    if (!plot_begin(title, app.reliability, size, "predicted prefix survival Π_{i≤k} c(t,i)",
                    "realised Π_{i≤k} β(t,i)"))
        return;
    const double diag[2] = {0, 1};
    plot_next_style(PlotStyle{1.0f, 0.0f, false});
    plot_line("perfect calibration", diag, diag, 2, IM_COL32(160, 160, 160, 255));
    if (!logits) {
        reliability_series("confidence head", rb.raw, plot_color(1), "");
    } else {
        reliability_series("raw σ(z)", rb.raw, plot_color(1), "");
        if (cal) {
            std::string temps = "; STS on this run, T_k =";
            for (double t : rb.temperatures) {
                char buf[16];
                std::snprintf(buf, sizeof buf, " %.2f", t);
                temps += buf;
            }
            reliability_series("calibrated σ(z/T_k)", rb.calibrated, plot_color(2), temps.c_str());
        }
    }
    plot_end();
}

// The fourth cell when there is nothing to bin: say why, in the plot's place.
static void reliability_missing(const SweepOutput& s, ImVec2 size) {
    ImGui::BeginGroup();
    const ImVec2 p = ImGui::GetCursorScreenPos();
    ImGui::GetWindowDrawList()->AddRect(p, ImVec2(p.x + size.x, p.y + size.y), IM_COL32(255, 255, 255, 40));
    ImGui::SetCursorScreenPos(ImVec2(p.x + 10, p.y + 10));
    ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + size.x - 20);  // wrap positions are window-local
    ImGui::TextUnformatted("Confidence reliability");
    if (s.acceptance.kind == ACCEPT_TRACE)
        ImGui::TextDisabled("This trace run has no confidence head. The confidence-driven policies "
                            "(threshold, dspark) rank drafts by each domain's pooled α_k instead, so every "
                            "request of a domain looks alike to them.");
    else
        ImGui::TextDisabled("Parametric / iid source: each confidence is drawn from Beta(κα_k, κ(1-α_k)) and the "
                            "slot is accepted with that probability, so the confidences are calibrated by "
                            "construction. Load a trace with a confidence head to see a real one.");
    ImGui::PopTextWrapPos();
    ImGui::SetCursorScreenPos(p);
    ImGui::Dummy(size);
    ImGui::EndGroup();
}

// [SECTION] panel ----------------------------------------------------------------

static const char* source_name(AcceptanceKind k) {
    return k == ACCEPT_TRACE ? "trace" : k == ACCEPT_PARAMETRIC ? "parametric" : k == ACCEPT_STEPS ? "steps" : "iid";
}

void panel_acceptance(AppState& app) {
    if (!app.sweep) {
        ImGui::TextDisabled("Waiting for the first sweep...");
        return;
    }
    const SweepOutput& s = *app.sweep;
    const int G = s.acceptance.gamma;
    const Reliability& rel = s.reliability;

    const std::vector<DomainCurve> curves = domain_curves(s);
    const std::vector<double> mix = mix_survival(curves, G);
    const std::vector<double> tau = tau_by_block(mix);
    if (s.acceptance.kind == ACCEPT_TRACE)
        ImGui::Text("Source: trace %s, run %lld (block %d), %zu requests; engine γ = %d; workload mix τ(γ) = %.2f tokens per request per step",
                    s.scenario.acceptance.trace_path.c_str(), static_cast<long long>(s.scenario.acceptance.run_id),
                    s.acceptance.trace_gamma, s.acceptance.requests.size(), G, tau.empty() ? NAN : tau.back());
    else
        ImGui::Text("Source: %s acceptance, engine γ = %d; workload mix τ(γ) = %.2f tokens per request per step", source_name(s.acceptance.kind), G,
                    tau.empty() ? NAN : tau.back());
    ImGui::TextDisabled("τ counts the bonus or correction token; curves cover every slot (full-block verification).");

    const float sp = ImGui::GetStyle().ItemSpacing.x;
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const ImVec2 cell(std::max(200.0f, (avail.x - sp) / 2), std::max(180.0f, (avail.y - ImGui::GetStyle().ItemSpacing.y) / 2));
    plot_alpha(app, curves, G, cell);
    ImGui::SameLine();
    plot_tau(app, curves, mix, G, cell);
    plot_accepted(app, mix, G, cell);
    ImGui::SameLine();
    if (rel.source != RELIABILITY_NONE && rel.raw.total > 0) plot_reliability(app, rel, cell);
    else reliability_missing(s, cell);
}

}  // namespace sp
