// cmd_live.cpp: `specplan live`, a scenario's loads x policies served for
// real by the engine (serve/live.h), reported in `sweep`'s table, JSON and
// CSV, measured instead of simulated, plus the host loop's time per
// iteration.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "git_rev.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/spec_setup.h"
#include "cli/sweep_cli.h"
#include "serve/live.h"
#include "simulator/report.h"
#include "simulator/sweep.h"

namespace sp {

namespace {

struct LiveArgs {
    SpecArgs spec;
    std::string scenario, prompts, policies, json, csv, db, percentiles, trace_out;
    LoadFlags load;
    double time_limit_s = 0;
    WindowFlags window;
    bool quiet = false, replay = false;
};

constexpr int kCostReps = 3;  // timed forwards per (R, q) shape of the step-cost table

// What the engine measures at start: the verify table the cost-aware
// policies read (at the larger context), and with --db the rest of a
// measured cost model, so that `sweep --profiles` can simulate the run with
// this engine's own step costs: verify at a second context (attention
// grows with it), prefill chunks, and the draft phase per R at both contexts.
struct StartupCost {
    std::vector<StepCostTable> verify;      // ascending context; the policies read the last
    StepCostTable prefill;                  // R prompts of q tokens at context 0
    std::vector<int> draft_seqs;            // R grid of the draft phase
    std::vector<int> draft_contexts;        // one row of draft_s per context
    std::vector<std::vector<double>> draft_s;  // [context][R] seconds
    int gamma = 0;
};

// 16, 32, 64, ... below `limit`, then limit. Doubling: the simulator prices
// a batch that carries a prompt from these cells (cost.cpp,
// measured_chunk_us), and between cells 4x apart the linear interpolation of
// a convex curve ran high (H100, qwen3-8b, 7 decode tokens + a 64-token
// prompt, tiled to 128: 7.75 ms between the cells of 64 and 256 tokens,
// 7.34 ms live).
std::vector<int> prefill_grid(int limit) {
    std::vector<int> g;
    for (int v = 16; v < limit; v *= 2) g.push_back(v);
    g.push_back(limit);
    return g;
}

StartupCost startup_cost_measure(const Scenario& sc, SpecSetup& s, int slots, bool full, bool drafts) {
    StartupCost c;
    const int max_pos = s.target.cfg.max_position, hi = std::min(512, max_pos / 2);
    c.gamma = sc.engine.gamma;
    // no first call's timing inside the cells or the measured windows
    s.backend->warm(sc.engine.max_batch_tokens);
    if (s.drafter) s.drafter->warm(sc.engine.max_batch_tokens);
    for (int ctx : full ? std::vector<int>{std::max(1, hi / 8), hi} : std::vector<int>{hi})
        c.verify.push_back(step_cost_measure(*s.backend, slots, sc.engine.gamma + 1, ctx, kCostReps));
    if (!full) return c;
    // Up to 8 prompts of up to a chunk each, no more tokens a forward than
    // the scenario's budget allows (at least one whole chunk).
    const int chunk = std::min(sc.engine.prefill_chunk_tokens, max_pos - 1);
    const int most = std::clamp(sc.engine.max_batch_tokens / chunk, 1, std::min(slots, 8));
    std::vector<int> seqs;
    for (int r = 1; r <= most; r *= 2) seqs.push_back(r);
    c.prefill = step_cost_measure_grid(*s.backend, seqs, prefill_grid(chunk), 0, kCostReps);
    if (drafts && s.drafter) {
        c.draft_seqs = step_cost_grid(slots);
        for (const StepCostTable& v : c.verify) {
            c.draft_contexts.push_back(v.context);
            c.draft_s.push_back(
                draft_cost_measure(*s.backend, *s.drafter, c.draft_seqs, sc.engine.gamma, v.context, kCostReps));
        }
    }
    return c;
}

// The prompts file as token ids: text prompts through the target's tokenizer.
std::vector<LivePrompt> live_prompts(const std::string& path, const SpecSetup& s) {
    std::vector<LivePrompt> out;
    for (const PromptLine& p : prompts_load(path, s.target.cfg.vocab)) {
        LivePrompt lp;
        lp.domain = p.domain;
        if (!p.ids.empty()) {
            lp.ids = p.ids;
        } else {
            if (!s.tok) throw Error(path + ": prompt: text needs a tokenizer.json (--tokenizer), or use prompt_ids");
            lp.ids = tokenizer_encode(*s.tok, p.text);
            if (lp.ids.empty()) throw Error(path + ": prompt: \"" + p.text + "\" encodes to no tokens");
        }
        out.push_back(std::move(lp));
    }
    return out;
}

// One point into the trace store as a run of its own: every finished
// request (warmup included) with its live steps, and with the first run
// what the engine measured at start as profile cells: verify (R sequences,
// R q tokens, per context), prefill (R prompts of q tokens) and draft (R
// sequences, R gamma tokens, per context).
void live_record(TraceDb& db, const Scenario& sc, const SpecSetup& s, const LiveArgs& a, const Policy& p, double load,
                 const std::vector<LiveRequest>& finished, const StartupCost* cost) {
    Run run;
    run.producer = PRODUCER_ENGINE;
    run.target = config_shape(s.target.cfg);
    run.drafter_kind = p.kind == POLICY_AR || !s.drafter ? "none" : s.drafter->kind();
    run.drafter_name = p.kind == POLICY_AR || !s.drafter ? "none" : s.drafter->name();
    run.gpu = s.gpu;
    run.temperature = a.spec.temperature;
    run.gamma = sc.engine.gamma;
    char load_text[32];
    std::snprintf(load_text, sizeof load_text, "%g", load);
    run.notes = "specplan live " + sc.path + ": policy " + p.name + ", " +
                (sc.workload.mode == WORKLOAD_CLOSED ? "users " : "rate ") + load_text + ", device " +
                s.backend->name() + ", prompts " + a.prompts;
    trace_db_begin_run(db, run);
    TraceTxn txn(db);
    for (size_t i = 0; i < finished.size(); i++) {
        const LiveRequest& r = finished[i];
        Request req;
        req.run_id = run.id;
        req.idx = int(i);
        req.domain = sc.workload.mix[size_t(r.domain)].domain;
        req.prompt_len = int(r.prompt.size());
        req.output_len = int(r.output.size());
        trace_db_append_request(db, req);
        std::vector<Step> steps = r.steps;
        for (Step& st : steps) st.request_id = req.id;
        trace_db_append_steps(db, steps);
    }
    auto cell = [&](Phase phase, int n_seqs, int n_tokens, int context, double seconds) {
        Profile prof;
        prof.run_id = run.id;
        prof.gpu = s.gpu;
        prof.model = run.target;
        prof.phase = phase;
        prof.n_seqs = n_seqs;
        prof.n_tokens = n_tokens;
        prof.context = context;
        prof.latency_us_p10 = prof.latency_us_p50 = prof.latency_us_p90 = seconds * 1e6;
        prof.n_samples = kCostReps;
        trace_db_append_profile(db, prof);
    };
    auto table = [&](Phase phase, const StepCostTable& t) {
        for (size_t i = 0; i < t.seqs.size(); i++)
            for (size_t j = 0; j < t.per_seq.size(); j++)
                cell(phase, t.seqs[i], t.seqs[i] * t.per_seq[j], t.context, t.seconds[i * t.per_seq.size() + j]);
    };
    if (cost) {
        for (const StepCostTable& v : cost->verify) table(PHASE_VERIFY, v);
        if (!cost->prefill.seqs.empty()) table(PHASE_PREFILL, cost->prefill);
        for (size_t k = 0; k < cost->draft_contexts.size(); k++)
            for (size_t i = 0; i < cost->draft_seqs.size(); i++)
                cell(PHASE_DRAFT, cost->draft_seqs[i], cost->draft_seqs[i] * cost->gamma, cost->draft_contexts[k],
                     cost->draft_s[k][i]);
    }
    txn.commit();
    trace_db_finish_run(db, run.id);
}

void run_live(const LiveArgs& a) {
    Scenario sc = scenario_load(a.scenario);
    window_apply(sc, a.window);
    const std::vector<Policy> policies = a.policies.empty() ? sc.policies : parse_policies(a.policies, sc);
    const std::vector<double> loads = loads_from_flags(sc, a.load);
    const std::vector<double> percentiles = parse_percentiles(a.percentiles);
    keep_headline_if_run(sc, policies);
    const AcceptanceData acc = acceptance_load(sc);

    // Slots: every user of the largest load at once (closed loop), else the scenario's max_seqs.
    int slots = sc.engine.max_seqs;
    if (sc.workload.mode == WORKLOAD_CLOSED) slots = std::min(slots, static_cast<int>(loads.back()));
    std::unique_ptr<SpecSetup> s = spec_setup(a.spec, slots);
    const std::vector<LivePrompt> prompts = live_prompts(a.prompts, *s);
    live_check(sc, acc, prompts, s->target.cfg.max_position);
    if (s->drafter && sc.engine.gamma > s->drafter->gamma())
        throw Error(sc.path + ": engine.gamma: " + std::to_string(sc.engine.gamma) + " drafts per step, but the " +
                    s->drafter->kind() + " drafter " + s->drafter->name() + " drafts at most " +
                    std::to_string(s->drafter->gamma()));

    // The step-cost table the cost-aware policies read: timed on this
    // backend at the shapes the loop runs, before anything is measured.
    LiveOptions o;
    o.seed = a.spec.seed;
    o.temperature = static_cast<float>(a.spec.temperature);
    o.max_seqs = slots;
    o.time_limit_s = a.time_limit_s;
    o.replay = a.replay;
    if (a.replay && acc.requests.empty())
        throw Error(sc.path + ": acceptance.source: --replay needs the scenario's acceptance from a trace");
    if (a.replay) acceptance_check_policies(sc, acc, policies);
    bool timed = false, drafts = false;
    for (const Policy& p : policies) {
        timed = timed || policy_needs_step_time(p);
        drafts = drafts || policy_draft_len(p, sc.engine.gamma) > 0;
    }
    StartupCost cost;
    if (timed || !a.db.empty()) {
        cost = startup_cost_measure(sc, *s, slots, !a.db.empty(), drafts);
        o.step_time = step_cost_fn(cost.verify.back());
        o.step_time_adds_draft = true;  // the table times the verify forward alone
    }
    // Every policy must be servable by this drafter before the first point runs.
    for (const Policy& p : policies) {
        SpecOptions so;
        so.policy = p;
        so.gamma = p.kind == POLICY_AR ? 0 : sc.engine.gamma;
        so.step_time = o.step_time;
        try {
            Speculator check(*s->backend, p.kind == POLICY_AR ? nullptr : s->drafter.get(), so);
        } catch (const Error& e) {
            throw Error(std::string("--policies: ") + e.what());
        }
    }

    // --db: opened (or created) before the first point, so a bad store stops the run before it starts
    std::optional<TraceDb> db;
    if (!a.db.empty()) db.emplace(trace_db_open(a.db, TRACE_CREATE));
    std::vector<LiveRequest> finished;
    o.on_complete = [&](const LiveRequest& r) {
        if (db) finished.push_back(r);
    };

    // --trace-out: opened before the first point too; each point is a process of its own
    std::optional<OutputFile> trace_file;
    PerfettoTrace trace;
    if (!a.trace_out.empty()) {
        trace_file.emplace(a.trace_out);
        perfetto_begin(trace, trace_file->stream());
        o.trace = &trace;
    }

    SweepResult res;
    res.loads = loads;
    std::vector<LiveStats> stats;
    const bool tty = !a.quiet && isatty(STDERR_FILENO);
    const size_t total = policies.size() * loads.size();
    if (!a.quiet) window_warn(sc, loads);  // once the input is known good: an error stays one line
    for (size_t i = 0; i < total; i++) {
        const Policy& p = policies[i / loads.size()];
        const double load = loads[i % loads.size()];
        if (tty)
            o.progress = [&](int64_t done, int64_t of) {
                std::fprintf(stderr, "\r%s at %g: %lld/%lld measured, point %zu/%zu   ", p.name.c_str(), load,
                             static_cast<long long>(done), static_cast<long long>(of), i + 1, total);
            };
        LiveStats st;
        finished.clear();
        if (o.trace)
            perfetto_point(trace, {sc.path + ": " + p.name + " at " + report_load_text(sc, load) + " (live)", 1,
                                   acc.domains, sc.workload.mode == WORKLOAD_CLOSED, false});
        res.points.push_back(live_run_point(sc, acc, *s->backend, s->drafter.get(), p, load, prompts, o, &st));
        stats.push_back(st);
        if (o.trace) perfetto_flush(trace);
        if (db) live_record(*db, sc, *s, a, p, load, finished, i == 0 ? &cost : nullptr);
    }
    if (tty) std::fprintf(stderr, "\r%*s\r", 70, "");
    if (trace_file) {
        perfetto_end(trace);
        trace_file->commit();
    }
    sweep_finish(sc, policies, &res);

    if (!a.quiet) {
        report_table(stdout, sc, policies, res, SPECPLAN_GIT_REV,
                     a.percentiles.empty() ? std::vector<double>{} : percentiles);
        std::printf("host loop per iteration (us, p50 / p90):");
        for (size_t i = 0; i < stats.size(); i++)
            std::printf("%s %s@%g %.0f / %.0f", i ? "," : "", res.points[i].policy.c_str(), loads[i % loads.size()],
                        stats[i].host_ns.p50 * 1e-3, stats[i].host_ns.p90 * 1e-3);
        std::printf("\n");
        int64_t captures = 0;
        for (const LiveStats& st : stats) captures += st.graph_captures;
        if (captures > 0) {
            std::printf("CUDA graphs captured while serving:");
            for (size_t i = 0; i < stats.size(); i++)
                std::printf("%s %s@%g %lld", i ? "," : "", res.points[i].policy.c_str(), loads[i % loads.size()],
                            static_cast<long long>(stats[i].graph_captures));
            std::printf("\n");
        }
    }
    // sweep's JSON with what only a live run has: the device, and per point the host loop's time and the CUDA graphs it captured
    if (!a.json.empty())
        write_file(a.json, [&](std::ostream& out) {
            std::ostringstream sim;
            report_json(sim, sc, policies, res, SPECPLAN_GIT_REV, percentiles);
            nlohmann::ordered_json j = nlohmann::ordered_json::parse(sim.str());
            // what is synthetic in a live run: weights of a preset shape are random, and --replay takes
            // the accept decisions from the trace rather than the verifier
            namespace fs = std::filesystem;
            j["measured"] = {{"device", s->backend->name()}, {"gpu", s->gpu}, {"model", a.spec.model},
                             {"model_weights", fs::is_directory(a.spec.model) ? "checkpoint" : "random"},
                             {"drafter", a.spec.drafter},
                             {"drafter_weights", !s->drafter                         ? "none"
                                                 : fs::is_directory(a.spec.drafter) ? "checkpoint"
                                                 : a.spec.drafter.rfind("ngram", 0) == 0 ? "none (n-gram lookup)"
                                                                                         : "random"},
                             {"accept_decisions", a.replay ? "replayed from the scenario's trace" : "the verifier's"},
                             {"prompts", a.prompts}};
            for (size_t i = 0; i < stats.size(); i++) {
                j["points"][i]["host_loop_us"] = {{"mean", stats[i].host_ns.mean * 1e-3},
                                                  {"p50", stats[i].host_ns.p50 * 1e-3},
                                                  {"p90", stats[i].host_ns.p90 * 1e-3},
                                                  {"p99", stats[i].host_ns.p99 * 1e-3}};
                j["points"][i]["graph_captures"] = stats[i].graph_captures;
            }
            out << j.dump(2) << "\n";
        });
    if (!a.csv.empty())
        write_file(a.csv, [&](std::ostream& out) {
            std::ostringstream sim;
            report_csv(sim, sc, res, SPECPLAN_GIT_REV, percentiles);
            std::istringstream rows(sim.str());
            std::string line;
            for (size_t i = 0; std::getline(rows, line); i++) {
                out << line << ',';
                if (i == 0) out << "host_loop_us_p50,host_loop_us_p90\n";
                else out << csv_number(stats[i - 1].host_ns.p50 * 1e-3) << ',' << csv_number(stats[i - 1].host_ns.p90 * 1e-3) << '\n';
            }
        });
}

}  // namespace

void live_commands(CLI::App& app) {
    auto a = std::make_shared<LiveArgs>();
    CLI::App* cmd = app.add_subcommand(
        "live", "Serve every policy at every load of a scenario for real with the engine: the same table, JSON and "
                "CSV as sweep, measured, plus the host loop's time per iteration");
    cmd->add_option("SCENARIO", a->scenario, "scenario TOML file")->required();
    spec_add_flags(cmd, a->spec, false, /*per_request=*/false);
    cmd->add_option("--prompts", a->prompts, "JSON Lines: {\"prompt\": text | \"prompt_ids\": [...], \"domain\": ...}; "
                                            "every domain of the scenario's mix needs prompts")->required();
    cmd->add_option("--policies", a->policies, "comma-separated policies (default: the scenario's)");
    load_add_flags(cmd, &a->load, /*one=*/false);
    window_add_flags(cmd, &a->window);
    cmd->add_option("--percentiles", a->percentiles, PERCENTILES_HELP);
    cmd->add_option("--json", a->json, "write the results as JSON");
    cmd->add_option("--csv", a->csv, "write one CSV row per point");
    cmd->add_option("--db", a->db, "trace store to append to (created if missing): one run per point with every "
                                   "finished request and its live steps, and what the engine measured at start as "
                                   "profile cells (verify at two contexts, prefill, draft), which `sweep --profiles` "
                                   "reads");
    cmd->add_option("--time-limit", a->time_limit_s, "seconds a point may run before it is abandoned (default: none)")
        ->check(non_negative_number("a number of seconds >= 0"));
    cmd->add_flag("--replay", a->replay, "accept decisions from the scenario's trace instead of the verifier's "
                                         "(timing with random weights at a production shape)");
    cmd->add_option("--trace-out", a->trace_out,
                    "write every point as a Chrome/Perfetto trace (JSON), one process per point: steps with their "
                    "draft, verify and host times, a track per request, counters of batch tokens, running requests "
                    "and KV use");
    cmd->add_flag("--quiet", a->quiet, "print nothing but errors");
    cmd->callback([a] { run_live(*a); });
}

}  // namespace sp
