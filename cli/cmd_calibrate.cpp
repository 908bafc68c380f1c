// cmd_calibrate.cpp: `specplan calibrate`, Sequential Temperature Scaling of a
// DSpark confidence head from a captured trace (traces/calibrate.h has the
// math and the definitions of every score printed here):
//  1. read one run's positions (raw confidence logits and beta per anchor and
//     slot); split its requests by a hash of (request order, --seed) into a
//     fit part and a held-out part;
//  2. fit T_1..T_gamma on the fit part, slot by slot;
//  3. score the held-out part before (every T = 1) and after: ECE, Brier and
//     AUROC of the prefix-survival prediction, per slot and pooled;
//  4. write {"method": "sts", "temperatures": [...]} where the DSpark loader
//     reads it (engine/weights.cpp, sts_read: gamma numbers > 0), by
//     output_file.h's rule: a regular file through a temporary file in the
//     same folder renamed over the target, so a reader never sees half a
//     file and a refused run leaves the old one as it was.
// Everything is checked, and the fit done, before anything is written.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/output_file.h"
#include "engine/dspark.h"
#include "traces/calibrate.h"
#include "traces/trace_db.h"

namespace sp {

namespace {

namespace fs = std::filesystem;

struct CalibrateArgs {
    std::string trace, out;
    std::optional<int64_t> run;  // none: the file's last run
    double heldout = 0.3;
    uint64_t seed = 1;
};

// The number as the file holds it: six significant digits, so the table, the
// file and the loader's float agree on one value.
double temperature_round(double t) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", t);
    return std::strtod(buf, nullptr);
}

std::string calibration_json(const std::vector<double>& temps) {
    std::string s = "{\n  \"method\": \"sts\",\n  \"temperatures\": [";
    for (size_t i = 0; i < temps.size(); i++) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.6g", i ? ", " : "", temps[i]);
        s += buf;
    }
    return s + "]\n}\n";
}

// Where the file goes: its folder must exist, and the path must not be a folder.
void out_check(const std::string& out) {
    std::error_code ec;
    const fs::path p(out);
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (out.empty() || !p.has_filename())
        throw Error(out + ": -o: expected a file path, e.g. DRAFTER_DIR/calibration.json");
    if (!fs::is_directory(dir, ec)) throw Error(out + ": -o: expected an existing folder " + dir.string());
    if (fs::is_directory(p, ec))
        throw Error(out + ": -o: expected a file path, e.g. " + (p / "calibration.json").string() +
                    "; this is a folder");
    if (fs::exists(p, ec) && !fs::is_regular_file(p, ec)) throw Error(out + ": -o: expected a regular file");
    if (::access(dir.c_str(), W_OK) != 0)
        throw Error(out + ": -o: cannot write in " + dir.string() + ": " + std::strerror(errno));
    // A file already there is replaced only when it is an earlier calibration,
    // so a slip of the finger (-o DIR/config.json, -o TRACE) costs nothing.
    if (fs::exists(p, ec)) {
        std::ifstream in(out, std::ios::binary);
        std::string text(4096, '\0');
        in.read(text.data(), std::streamsize(text.size()));
        text.resize(size_t(in.gcount()));
        const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("method") || j["method"] != "sts")
            throw Error(out + ": -o: expected a new file or an earlier {\"method\": \"sts\", ...} to replace; "
                        "this file holds something else and is left as it is");
    }
}

// The drafter beside the output, when there is one: its block must be the
// run's gamma (the loader wants block_size temperatures) and it must have a head.
void drafter_check(const std::string& out, const Run& run, const std::string& trace) {
    const fs::path config = fs::path(out).parent_path() / "config.json";
    std::error_code ec;
    if (!fs::is_regular_file(config, ec)) return;
    const DSparkConfig dc = dspark_config_load(config.string());
    if (!dc.confidence)
        throw Error(config.string() +
                    ": enable_confidence_head: expected a drafter with a confidence head to calibrate");
    if (dc.block_size != run.gamma)
        throw Error(config.string() + ": block_size: the drafter drafts " + std::to_string(dc.block_size) +
                    " slots and its loader wants as many temperatures; " + trace + " run " + std::to_string(run.id) +
                    " has gamma " + std::to_string(run.gamma) + " (capture with --gamma " +
                    std::to_string(dc.block_size) + ")");
}

// Writes text to path by output_file.h's rule: a regular file through a
// unique temporary file in the same folder, synced and renamed over it.
void file_write_atomic(const std::string& path, const std::string& text) {
    write_file(path, [&](std::ostream& out) { out << text; });
}

void print_value(double v, int width, int decimals) {
    if (std::isnan(v)) std::printf(" %*s", width, "-");
    else std::printf(" %*.*f", width, decimals, v);
}

void run_calibrate(const CalibrateArgs& a) {
    if (!(a.heldout >= 0 && a.heldout < 1)) {
        char got[32];
        std::snprintf(got, sizeof got, "%g", a.heldout);
        throw Error(std::string("--heldout ") + got + ": expected a fraction of the requests in [0, 1)");
    }
    out_check(a.out);

    // 1. the run and its positions
    TraceDb db = trace_db_open(a.trace, TRACE_READ);
    const std::vector<Run> runs = trace_db_runs(db);
    if (runs.empty()) throw Error(a.trace + ": runs: expected a captured DSpark run, the file holds none");
    const Run* run = a.run ? nullptr : &runs.back();
    std::string ids;
    for (const Run& r : runs) {
        if (a.run && r.id == *a.run) run = &r;
        ids += (ids.empty() ? "" : ", ") + std::to_string(r.id);
    }
    if (!run) throw Error(a.trace + ": --run " + std::to_string(*a.run) + ": expected one of the file's runs: " + ids);
    const std::string at = a.trace + ": run " + std::to_string(run->id) + ": ";

    CalibRows fit, held;
    fit.gamma = held.gamma = run->gamma;
    int n_fit = 0, n_held = 0, n_pos = 0;
    for (const Request& q : trace_db_requests(db, run->id)) {
        Positions p;
        if (!trace_db_positions(db, q.id, &p)) continue;
        n_pos++;
        if (p.conf_logit.empty())
            throw Error(at + "positions: conf_logit: expected the confidence head's raw logits, the run's drafter (" +
                        run->drafter_kind + " / " + run->drafter_name + ") recorded none");
        const bool h = request_heldout(q.idx, a.seed, a.heldout);
        calib_rows_append(h ? held : fit, p);
        (h ? n_held : n_fit)++;
    }
    if (n_pos == 0)
        throw Error(at + "positions: expected teacher-forced positions (specplan capture writes them), found none");
    const bool in_sample = a.heldout == 0;
    const CalibRows& scored = in_sample ? fit : held;
    for (int k = 1; k <= run->gamma; k++) {
        const int64_t n = calib_rows_count(fit, k);
        const std::string slot = "positions: slot " + std::to_string(k) + ": ";
        if (n < STS_MIN_SLOTS)
            throw Error(at + slot + "expected at least " + std::to_string(STS_MIN_SLOTS) +
                        " real slots in the fit requests to fit T_" + std::to_string(k) + ", got " + std::to_string(n) +
                        " from " + std::to_string(n_fit) + " requests (capture more, or lower --heldout)");
        double survived = 0;
        for (double r : survival_realise(fit, k)) survived += r;
        if (!(survived > 0) || !(survived < double(n)))
            throw Error(at + slot + "expected both surviving and rejected prefixes in the fit requests, every one of " +
                        std::to_string(n) + (survived > 0 ? " survived" : " was rejected"));
        if (!in_sample && calib_rows_count(held, k) == 0)
            throw Error(at + slot + "expected real slots in the held-out requests, got none from " +
                        std::to_string(n_held) + " requests (capture more, or --heldout 0 to score the fit requests)");
    }
    drafter_check(a.out, *run, a.trace);

    // 2. the fit, 3. the scores
    std::vector<double> temps = sts_fit(fit);
    for (double& t : temps) t = temperature_round(t);
    std::vector<SlotScores> rows;
    for (int k = 1; k <= run->gamma; k++) rows.push_back(slot_scores_compute(scored, temps, k));
    rows.push_back(slot_scores_compute(scored, temps, 0));

    // 4. the file, then the report
    const bool existed = fs::exists(a.out);
    file_write_atomic(a.out, calibration_json(temps));

    int64_t fit_slots = 0;
    for (int k = 1; k <= run->gamma; k++) fit_slots += calib_rows_count(fit, k);
    char mode[32] = "greedy";
    if (run->temperature > 0) std::snprintf(mode, sizeof mode, "T %g", run->temperature);
    std::printf("run %lld of %s: %s / %s, gamma %d, %s%s\n", static_cast<long long>(run->id), a.trace.c_str(),
                run->drafter_kind.c_str(), run->drafter_name.c_str(), run->gamma, mode,
                run->complete ? "" : " (incomplete run)");
    std::printf("fit on %d requests (%lld slots); scored on %d %s requests (%lld slots); --heldout %g --seed %llu\n",
                n_fit, static_cast<long long>(fit_slots), in_sample ? n_fit : n_held,
                in_sample ? "fit (in-sample)" : "held-out", static_cast<long long>(rows.back().n), a.heldout,
                static_cast<unsigned long long>(a.seed));
    std::printf(run->temperature > 0 ? "realised survival = prod beta, an acceptance probability (soft label)\n"
                                     : "realised survival = prod beta, 0 or 1 (greedy)\n");
    std::printf("%4s %8s %8s %8s %8s %9s %9s %9s %9s\n", "slot", "T", "slots", "ECE raw", "ECE cal", "Brier raw",
                "Brier cal", "AUROC raw", "AUROC cal");
    for (const SlotScores& s : rows) {
        if (s.k) std::printf("%4d %8.4f", s.k, s.temperature);
        else std::printf("%4s %8s", "all", "-");
        std::printf(" %8lld", static_cast<long long>(s.n));
        print_value(s.ece_raw, 8, 4);
        print_value(s.ece_cal, 8, 4);
        print_value(s.brier_raw, 9, 4);
        print_value(s.brier_cal, 9, 4);
        print_value(s.auroc_raw, 9, 3);
        print_value(s.auroc_cal, 9, 3);
        std::printf("\n");
    }
    for (const SlotScores& s : rows)
        if (s.k && (s.temperature <= STS_T_MIN * 1.0001 || s.temperature >= STS_T_MAX * 0.9999))
            std::printf("note: T_%d is at the search bound [%g, %g]: the head's logits may carry no signal there\n",
                        s.k, STS_T_MIN, STS_T_MAX);
    std::printf("%s %s\n", existed ? "replaced" : "wrote", a.out.c_str());
    if (fs::path(a.out).filename() != "calibration.json")
        std::printf("note: the DSpark loader reads DRAFTER_DIR/calibration.json, no other name\n");
}

}  // namespace

void calibrate_commands(CLI::App& app) {
    auto a = std::make_shared<CalibrateArgs>();
    CLI::App* c = app.add_subcommand(
        "calibrate", "Fit Sequential Temperature Scaling of a DSpark confidence head on a captured trace; "
                     "print held-out ECE, Brier and AUROC per slot before and after; write calibration.json");
    c->add_option("TRACE", a->trace, "trace store with a captured DSpark run (specplan capture)")->required();
    c->add_option("--run", a->run, "run id (default: the file's last run)");
    c->add_option("-o,--out", a->out,
                  "file to write, DRAFTER_DIR/calibration.json, where the DSpark loader reads it; replaced atomically")
        ->required();
    c->add_option("--heldout", a->heldout, "fraction of requests held out for the scores; 0 scores the fit requests")
        ->capture_default_str();
    c->add_option("--seed", a->seed, "seed of the fit/held-out split")->capture_default_str()->transform(seed_number());
    c->callback([a] { run_calibrate(*a); });
}

}  // namespace sp
