// cmd_calibrate_cost.cpp: `specplan calibrate-cost PROFILES`, the roofline's
// efficiencies, overlap and overheads (per step and per layer) fitted to a
// measured profile (simulator/cost_fit.h), its draft cells priced as the
// drafter the options name drafts; the error against the measured step
// times before and after, by phase and by context, and the [cost] keys that
// carry the calibration into a scenario.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/output_file.h"
#include "simulator/cost_fit.h"

namespace sp {

namespace {

struct CalibrateCostArgs {
    std::string profiles, gpu, model, gpu_preset, json;
    // The drafter of the draft cells. The defaults are the DSpark drafter of
    // `specplan live --drafter dspark` and of `specplan profile`'s stand-in:
    // dspark_config_preset (engine/dspark.h), 5 target-shaped layers, Markov
    // rank 256. -1: the kind's default (drafter_default_layers, as [cost.drafter]).
    std::string drafter = "dspark";
    int drafter_layers = -1;
    int markov_rank = 256;
};

// The datasheet preset for a profile's GPU name, when the name says it.
std::string guess_preset(const std::string& gpu) {
    if (gpu.find("H200") != std::string::npos) return "h200";
    if (gpu.find("H100") != std::string::npos) return "h100-sxm";
    if (gpu.find("A100") != std::string::npos) return "a100-80gb";
    if (gpu.find("B200") != std::string::npos) return "b200";
    return "";
}

std::string pct(double e) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%+.1f%%", 100 * e);
    return buf;
}

void print_errors(const char* what, const std::vector<CostFitCell>& cells,
                  bool (*keep)(const CostFitCell&, const void*), const void* ctx) {
    const CostErrors b = cost_fit_errors(cells, false, keep, ctx), a = cost_fit_errors(cells, true, keep, ctx);
    if (a.n == 0) return;
    std::printf("  %-22s %5d cells   MAPE %6.1f%% -> %5.1f%%   worst %8s -> %7s\n", what, a.n, 100 * b.mape,
                100 * a.mape, pct(b.worst).c_str(), pct(a.worst).c_str());
}

void run_calibrate_cost(const CalibrateCostArgs& a) {
    TraceDb db = trace_db_open(a.profiles, TRACE_READ);
    const MeasuredCost m = measured_cost_load(db, a.gpu, a.model);
    const std::string preset = a.gpu_preset.empty() ? guess_preset(m.gpu) : a.gpu_preset;
    Roofline r;
    if (!gpu_preset(preset, &r.gpu))
        throw Error(a.profiles + ": gpu '" + m.gpu + "': no datasheet preset " +
                    (preset.empty() ? std::string("recognised in the name") : "'" + preset + "'") +
                    "; name one with --gpu-preset (h100-sxm, h200, a100-80gb, b200)");
    const std::vector<Profile>& any = m.verify.empty() ? m.prefill : m.verify;
    if (any.empty()) throw Error(a.profiles + ": " + m.model + " on " + m.gpu + ": no verify or prefill cells");
    r.model = any.front().model;
    DrafterSpec d;
    drafter_kind_parse(a.drafter, &d.kind);  // a known name: the option's IsMember check
    d.n_layers = a.drafter_layers > 0 ? a.drafter_layers : drafter_default_layers(d.kind);
    d.markov_rank = a.markov_rank;
    const CostFit fit = cost_fit_roofline(r, m, d);
    const Roofline& f = fit.fitted;
    std::printf("%s: roofline of %s on %s (datasheet %s) fitted to %zu measured cells\n", a.profiles.c_str(),
                m.model.c_str(), m.gpu.c_str(), preset.c_str(), fit.cells.size());
    if (fit.drafter.kind == DRAFTER_NONE)
        std::printf("  draft cells: %s\n", m.draft.empty() ? "none in the store" : "not fitted (--drafter none)");
    else
        std::printf("  draft cells priced as a %s drafter of %d layers%s\n", drafter_kind_name(d.kind), d.n_layers,
                    d.kind == DRAFTER_DSPARK ? (", Markov rank " + std::to_string(d.markov_rank)).c_str() : "");
    auto overlap = [](const Roofline& x) {
        char buf[32];
        std::snprintf(buf, sizeof buf, x.overlap_n > 0 ? "%g" : "max", x.overlap_n);
        return std::string(buf);
    };
    auto print_roofline = [&](const char* what, const Roofline& x) {
        std::printf("  %-22s bw_efficiency %.2f, flops_efficiency %.2f, overhead %.0f us + %.2f us a layer, "
                    "overlap %s\n", what, x.bw_efficiency, x.flops_efficiency, x.gpu.overhead_s * 1e6,
                    x.gpu.overhead_s_per_layer * 1e6, overlap(x).c_str());
    };
    print_roofline("as given", r);
    print_roofline("fitted", f);
    if (!fit.per_layer_fitted)
        std::printf("  (the per-layer overhead is kept as given: every cell runs the target's layers per step, "
                    "so only their sum is seen)\n");
    std::printf("error, model / measured - 1 (as given -> fitted):\n");
    print_errors("all", fit.cells, nullptr, nullptr);
    for (Phase ph : {PHASE_DRAFT, PHASE_VERIFY, PHASE_PREFILL}) {
        const std::string label = std::string(phase_name(ph));
        print_errors(label.c_str(), fit.cells, [](const CostFitCell& c, const void* p) {
            return c.phase == *static_cast<const Phase*>(p);
        }, &ph);
    }
    std::map<int, int> contexts;
    for (const CostFitCell& c : fit.cells) contexts[c.context]++;
    for (const auto& kv : contexts) {
        const std::string label = "context " + std::to_string(kv.first);
        print_errors(label.c_str(), fit.cells, [](const CostFitCell& c, const void* p) {
            return c.context == *static_cast<const int*>(p);
        }, &kv.first);
    }
    const CostFitCell* worst = &fit.cells.front();
    for (const CostFitCell& c : fit.cells)
        if (std::fabs(c.after_s / c.measured_s - 1) > std::fabs(worst->after_s / worst->measured_s - 1)) worst = &c;
    std::printf("  worst fitted cell: %s R=%d B=%d context %d: measured %.3f ms, model %.3f ms\n",
                phase_name(worst->phase), worst->n_seqs, worst->n_tokens, worst->context, worst->measured_s * 1e3,
                worst->after_s * 1e3);
    std::printf("for a scenario's [cost] (model = \"roofline\", gpu = \"%s\"):\n", preset.c_str());
    std::printf("  bw_efficiency = %.2f\n  flops_efficiency = %.2f\n  overhead_us = %.0f\n", f.bw_efficiency,
                f.flops_efficiency, f.gpu.overhead_s * 1e6);
    if (fit.per_layer_fitted || f.gpu.overhead_s_per_layer > 0)
        std::printf("  overhead_us_per_layer = %.2f\n", f.gpu.overhead_s_per_layer * 1e6);
    if (f.overlap_n > 0) std::printf("  overlap = %g\n", f.overlap_n);
    std::printf("  calibrated = \"%s: %s on %s, MAPE %.1f %%\"\n", a.profiles.c_str(), m.model.c_str(), m.gpu.c_str(),
                100 * fit.after.mape);
    if (fit.drafter.kind != DRAFTER_NONE) {
        std::printf("[cost.drafter]\n  kind = \"%s\"\n  layers = %d\n", drafter_kind_name(d.kind), d.n_layers);
        if (d.kind == DRAFTER_DSPARK) std::printf("  markov_rank = %d\n", d.markov_rank);
    }
    if (!a.json.empty()) {
        nlohmann::ordered_json j;
        j["profiles"] = a.profiles;
        j["gpu"] = m.gpu;
        j["model"] = m.model;
        j["gpu_preset"] = preset;
        j["drafter"] = {{"kind", drafter_kind_name(fit.drafter.kind)},
                        {"layers", fit.drafter.n_layers},
                        {"markov_rank", fit.drafter.markov_rank}};
        j["per_layer_fitted"] = fit.per_layer_fitted;
        j["given"] = {{"bw_efficiency", r.bw_efficiency},
                      {"flops_efficiency", r.flops_efficiency},
                      {"overhead_us", r.gpu.overhead_s * 1e6},
                      {"overhead_us_per_layer", r.gpu.overhead_s_per_layer * 1e6},
                      {"overlap", r.overlap_n},
                      {"mape", fit.before.mape},
                      {"worst", fit.before.worst}};
        j["fitted"] = {{"bw_efficiency", f.bw_efficiency},
                       {"flops_efficiency", f.flops_efficiency},
                       {"overhead_us", f.gpu.overhead_s * 1e6},
                       {"overhead_us_per_layer", f.gpu.overhead_s_per_layer * 1e6},
                       {"overlap", f.overlap_n},
                       {"mape", fit.after.mape},
                       {"worst", fit.after.worst}};
        nlohmann::ordered_json cells = nlohmann::ordered_json::array();
        for (const CostFitCell& c : fit.cells)
            cells.push_back({{"phase", phase_name(c.phase)},
                             {"n_seqs", c.n_seqs},
                             {"n_tokens", c.n_tokens},
                             {"context", c.context},
                             {"measured_ms", c.measured_s * 1e3},
                             {"given_ms", c.before_s * 1e3},
                             {"fitted_ms", c.after_s * 1e3}});
        j["cells"] = cells;
        OutputFile out(a.json);
        out.stream() << j.dump(1) << "\n";
        out.commit();
    }
}

}  // namespace

void calibrate_cost_commands(CLI::App& app) {
    auto a = std::make_shared<CalibrateCostArgs>();
    CLI::App* cmd = app.add_subcommand(
        "calibrate-cost", "Fit the roofline's bandwidth and FLOP efficiencies, overlap and overheads (per step, per "
                          "layer) to a measured profile, and report its error against the measured step times");
    cmd->add_option("PROFILES", a->profiles, "trace store with measured profiles (specplan profile, or live --db)")
        ->required();
    cmd->add_option("--gpu", a->gpu, "the profile's GPU name (default: the only one)");
    cmd->add_option("--model", a->model, "the profile's model name (default: the only one)");
    cmd->add_option("--gpu-preset", a->gpu_preset,
                    "datasheet numbers to fit from: h100-sxm, h200, a100-80gb, b200 (default: from the GPU name)");
    cmd->add_option("--drafter", a->drafter,
                    "the drafter that timed the draft cells: dspark, mtp, or none to leave them out (default: dspark)")
        ->check(CLI::IsMember({"none", "mtp", "dspark"}));
    cmd->add_option("--drafter-layers", a->drafter_layers,
                    "its decoder layers, each the size of a target layer (default: 5 for dspark, 1 for mtp)")
        ->check(CLI::Range(1, 100'000));
    cmd->add_option("--markov-rank", a->markov_rank, "DSpark's Markov head rank (default: 256)")
        ->check(CLI::Range(1, 1'000'000));
    cmd->add_option("--json", a->json, "write the fit and every cell's error as JSON ('-': stdout)");
    cmd->callback([a] { run_calibrate_cost(*a); });
}

}  // namespace sp
