// cmd_calibrate_cost.cpp: `specplan calibrate-cost PROFILES`, the roofline's
// efficiencies and per-step overhead fitted to a measured profile
// (simulator/cost_fit.h), its error against the measured step times before
// and after, by phase and by context, and the [cost] keys that carry the
// calibration into a scenario.
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
    const CostFit fit = cost_fit_roofline(r, m);
    const Roofline& f = fit.fitted;
    std::printf("%s: roofline of %s on %s (datasheet %s) fitted to %zu measured cells\n", a.profiles.c_str(),
                m.model.c_str(), m.gpu.c_str(), preset.c_str(), fit.cells.size());
    auto overlap = [](const Roofline& x) {
        char buf[32];
        std::snprintf(buf, sizeof buf, x.overlap_n > 0 ? "%g" : "max", x.overlap_n);
        return std::string(buf);
    };
    std::printf("  %-22s bw_efficiency %.2f, flops_efficiency %.2f, overhead %.0f us, overlap %s\n", "as given",
                r.bw_efficiency, r.flops_efficiency, r.gpu.overhead_s * 1e6, overlap(r).c_str());
    std::printf("  %-22s bw_efficiency %.2f, flops_efficiency %.2f, overhead %.0f us, overlap %s\n", "fitted",
                f.bw_efficiency, f.flops_efficiency, f.gpu.overhead_s * 1e6, overlap(f).c_str());
    std::printf("error, model / measured - 1 (as given -> fitted):\n");
    print_errors("all", fit.cells, nullptr, nullptr);
    for (Phase ph : {PHASE_VERIFY, PHASE_PREFILL}) {
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
    if (f.overlap_n > 0) std::printf("  overlap = %g\n", f.overlap_n);
    std::printf("  calibrated = \"%s: %s on %s, MAPE %.1f %%\"\n", a.profiles.c_str(), m.model.c_str(), m.gpu.c_str(),
                100 * fit.after.mape);
    if (!a.json.empty()) {
        nlohmann::ordered_json j;
        j["profiles"] = a.profiles;
        j["gpu"] = m.gpu;
        j["model"] = m.model;
        j["gpu_preset"] = preset;
        j["given"] = {{"bw_efficiency", r.bw_efficiency},
                      {"flops_efficiency", r.flops_efficiency},
                      {"overhead_us", r.gpu.overhead_s * 1e6},
                      {"overlap", r.overlap_n},
                      {"mape", fit.before.mape},
                      {"worst", fit.before.worst}};
        j["fitted"] = {{"bw_efficiency", f.bw_efficiency},
                       {"flops_efficiency", f.flops_efficiency},
                       {"overhead_us", f.gpu.overhead_s * 1e6},
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
        "calibrate-cost", "Fit the roofline's bandwidth and FLOP efficiencies and per-step overhead to a measured "
                          "profile, and report its error against the measured step times");
    cmd->add_option("PROFILES", a->profiles, "trace store with measured profiles (specplan profile, or live --db)")
        ->required();
    cmd->add_option("--gpu", a->gpu, "the profile's GPU name (default: the only one)");
    cmd->add_option("--model", a->model, "the profile's model name (default: the only one)");
    cmd->add_option("--gpu-preset", a->gpu_preset,
                    "datasheet numbers to fit from: h100-sxm, h200, a100-80gb, b200 (default: from the GPU name)");
    cmd->add_option("--json", a->json, "write the fit and every cell's error as JSON ('-': stdout)");
    cmd->callback([a] { run_calibrate_cost(*a); });
}

}  // namespace sp
