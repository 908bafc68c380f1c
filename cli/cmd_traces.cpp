// cmd_traces.cpp: `specplan traces info|synth|export|import`; import also
// reads other engines' acceptance data (--format, traces/trace_vllm.h,
// trace_aiperf.h, trace_deepspec.h).
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/args.h"
#include "cli/commands.h"
#include "traces/models.h"
#include "traces/synth.h"
#include "traces/trace_aiperf.h"
#include "traces/trace_db.h"
#include "traces/trace_deepspec.h"
#include "traces/trace_jsonl.h"
#include "traces/trace_vllm.h"
#include "traces/trace_stats.h"

namespace sp {

// [SECTION] info --------------------------------------------------------------

static void print_shape(const ModelShape& m) {
    std::printf("  target    %s (%.2fB params, %d layers, hidden %d, %d/%d heads x %d, ffn %d, vocab %d, "
                "%g B/weight)\n",
                m.name.c_str(), static_cast<double>(m.n_params) / 1e9, m.n_layers, m.hidden, m.n_heads,
                m.n_kv_heads, m.head_dim, m.ffn, m.vocab, m.bytes_per_weight);
}

static void print_value(double v) {
    if (std::isnan(v)) std::printf("      -");
    else std::printf(" %6.3f", v);
}

// NaN (alpha past a survival of 0, tau without anchors) as JSON null.
static nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); }

// What info prints per run, as JSON: run metadata, acceptance per domain
// (trace_stats.h's definitions, with the requests that record draft_prob)
// and the live steps' tau.
static nlohmann::json info_json(TraceDb& db, const std::string& path) {
    nlohmann::json runs = nlohmann::json::array();
    for (const Run& r : trace_db_runs(db)) {
        nlohmann::json acc = nlohmann::json::array();
        for (const AcceptanceStats& a : trace_acceptance_stats(db, r.id)) {
            nlohmann::json alpha = nlohmann::json::array(), survival = nlohmann::json::array();
            for (double v : a.alpha) alpha.push_back(number_or_null(v));
            for (double v : a.survival) survival.push_back(number_or_null(v));
            acc.push_back({{"domain", a.domain}, {"requests", a.n_requests}, {"anchors", a.n_anchors},
                           {"tau", number_or_null(a.tau)}, {"alpha", alpha}, {"survival", survival},
                           {"draft_prob_requests", a.n_draft_prob}});
        }
        const StepStats s = trace_step_stats(db, r.id);
        nlohmann::json step_alpha = nlohmann::json::array();
        for (double v : s.alpha) step_alpha.push_back(number_or_null(v));
        runs.push_back({{"id", r.id}, {"producer", producer_name(r.producer)}, {"complete", r.complete},
                        {"verify_method", r.verify_method == VERIFY_UNRECORDED ? nlohmann::json() : nlohmann::json(verify_method_name(r.verify_method))},
                        {"target", r.target.name}, {"target_params", r.target.n_params},
                        {"drafter_kind", r.drafter_kind}, {"drafter", r.drafter_name}, {"gpu", r.gpu},
                        {"temperature", r.temperature}, {"gamma", r.gamma}, {"created_at", r.created_at},
                        {"git_rev", r.git_rev}, {"notes", r.notes}, {"acceptance", acc},
                        {"live_steps", {{"steps", s.n_steps}, {"tau", s.n_steps ? nlohmann::json(s.tau) : nlohmann::json()},
                                        {"mean_verify_len", s.n_steps ? nlohmann::json(s.mean_verify_len) : nlohmann::json()},
                                        {"drafted", s.drafted}, {"verified", s.verified}, {"accepted", s.accepted},
                                        {"alpha", step_alpha}}}});
    }
    return {{"file", path}, {"schema", db.version}, {"runs", runs}};
}

static void info(const std::string& path, const std::string& json_out) {
    TraceDb db = trace_db_open(path, TRACE_READ);
    if (!json_out.empty()) {
        std::ofstream f(json_out);
        if (!(f << info_json(db, path).dump(1) << "\n") || !f.flush()) throw Error(json_out + ": cannot write");
        return;
    }
    TraceCounts c = trace_db_counts(db);
    std::printf("%s: specplan trace store, schema %d\n", path.c_str(), db.version);
    std::printf("  runs %lld  requests %lld  positions %lld (%lld anchors)  steps %lld  profiles %lld\n",
                (long long)c.runs, (long long)c.requests, (long long)c.positions, (long long)c.anchors,
                (long long)c.steps, (long long)c.profiles);
    for (const Run& r : trace_db_runs(db)) {
        std::printf("\nrun %lld  %s  %s\n", (long long)r.id, producer_name(r.producer),
                    r.complete ? "complete" : "INCOMPLETE (writer stopped before finishing)");
        print_shape(r.target);
        std::printf("  drafter   %s / %s\n", r.drafter_kind.c_str(), r.drafter_name.c_str());
        std::printf("  gpu       %s  temperature %g  gamma %d  verification %s\n", r.gpu.c_str(), r.temperature,
                    r.gamma, r.verify_method == VERIFY_UNRECORDED ? "not recorded" : verify_method_name(r.verify_method));
        std::printf("  written   %s  git %s\n", r.created_at.c_str(), r.git_rev.c_str());
        if (!r.notes.empty()) std::printf("  notes     %s\n", r.notes.c_str());

        std::vector<AcceptanceStats> stats = trace_acceptance_stats(db, r.id);
        std::printf("  acceptance from positions, full-block verification (tau = 1 + sum_k prod_{i<=k} alpha_i):\n");
        std::printf("  %-12s %8s %9s %7s ", "domain", "requests", "anchors", "tau");
        for (int k = 1; k <= r.gamma; k++) std::printf(" alpha%-2d", k);
        std::printf("\n");
        for (const AcceptanceStats& a : stats) {
            std::printf("  %-12s %8lld %9lld", a.domain.c_str(), (long long)a.n_requests, (long long)a.n_anchors);
            print_value(a.tau);
            std::printf(" ");
            for (double v : a.alpha) print_value(v);
            std::printf("\n");
        }
        // what the draft-prob policy replays (schema 3 captures record it)
        const AcceptanceStats& all = stats.front();
        if (all.n_requests > 0 && all.n_draft_prob == all.n_requests)
            std::printf("  draft_prob recorded: draft-prob can replay this run\n");
        else if (all.n_requests > 0 && all.n_draft_prob == 0)
            std::printf("  draft_prob not recorded: draft-prob cannot replay this run\n");
        else if (all.n_requests > 0)
            std::printf("  draft_prob recorded for %lld of %lld requests: draft-prob cannot replay this run\n",
                        (long long)all.n_draft_prob, (long long)all.n_requests);
        StepStats s = trace_step_stats(db, r.id);
        if (s.n_steps > 0) {
            std::printf("  live steps %lld: tau %.3f, mean verify length %.2f, mean batch %.1f\n",
                        (long long)s.n_steps, s.tau, s.mean_verify_len, s.mean_batch);
            std::printf("  drafts %lld drafted, %lld verified, %lld accepted; alpha from verified slots:",
                        (long long)s.drafted, (long long)s.verified, (long long)s.accepted);
            for (double v : s.alpha) print_value(v);
            std::printf("\n");
        }
    }
    std::vector<Profile> profiles = trace_db_profiles(db);
    if (!profiles.empty()) {
        std::printf("\nprofiles: %zu cells\n", profiles.size());
        // One line per (gpu, model, phase) table, in order of first appearance.
        struct Table {
            const Profile* first;
            size_t cells = 0;
            int min_r = 0, max_r = 0, min_b = 0, max_b = 0, min_c = 0, max_c = 0;
        };
        std::vector<Table> tables;
        for (const Profile& p : profiles) {
            Table* t = nullptr;
            for (Table& u : tables)
                if (u.first->gpu == p.gpu && u.first->model == p.model && u.first->phase == p.phase) t = &u;
            if (!t) {
                tables.push_back({&p, 0, p.n_seqs, p.n_seqs, p.n_tokens, p.n_tokens, p.context, p.context});
                t = &tables.back();
            }
            t->cells++;
            t->min_r = std::min(t->min_r, p.n_seqs), t->max_r = std::max(t->max_r, p.n_seqs);
            t->min_b = std::min(t->min_b, p.n_tokens), t->max_b = std::max(t->max_b, p.n_tokens);
            t->min_c = std::min(t->min_c, p.context), t->max_c = std::max(t->max_c, p.context);
        }
        for (const Table& t : tables)
            std::printf("  %-8s %s on %s: %zu cells, R %d..%d, B %d..%d, context %d..%d\n",
                        phase_name(t.first->phase), t.first->model.name.c_str(), t.first->gpu.c_str(), t.cells,
                        t.min_r, t.max_r, t.min_b, t.max_b, t.min_c, t.max_c);
    }
}

// [SECTION] synth -------------------------------------------------------------

// "code=0.9,0.8,0.7" -> domain "code" with three conditional acceptances.
static SynthDomain parse_domain(const std::string& arg, int n_requests) {
    size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0)
        throw Error("--domain '" + arg + "': expected NAME=a1,a2,...");
    SynthDomain d;
    d.name = arg.substr(0, eq);
    d.n_requests = n_requests;
    for (const std::string& item : split_list(arg.substr(eq + 1))) d.alpha.push_back(parse_number(item, "--domain", arg));
    return d;
}

// "64:384" -> [64, 384]; "200" -> [200, 200].
static void parse_range(const std::string& arg, const char* flag, int* lo, int* hi) {
    size_t colon = arg.find(':');
    try {
        size_t used = 0;
        *lo = std::stoi(arg.substr(0, colon), &used);
        if (used != arg.substr(0, colon).size()) throw std::invalid_argument("");
        if (colon == std::string::npos) { *hi = *lo; return; }
        std::string h = arg.substr(colon + 1);
        *hi = std::stoi(h, &used);
        if (used != h.size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
        throw Error(std::string(flag) + " '" + arg + "': expected MIN:MAX or N (tokens)");
    }
}

struct SynthArgs {
    std::string out, model = "qwen3-8b", notes, prompt_len = "128:1024", output_len = "64:512";
    std::vector<std::string> domains;
    double alpha = -1;
    int gamma = 0, requests = 64;
    uint64_t seed = 1;
    double kappa = 4, raw_temperature = 1.5;
};

static void synth(const SynthArgs& a) {
    SynthSpec spec;
    spec.seed = a.seed;
    spec.kappa = a.kappa;
    spec.raw_temperature = a.raw_temperature;
    spec.notes = a.notes;
    if (!model_preset(a.model, &spec.target)) {
        std::string known;
        for (const std::string& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
        throw Error("--model '" + a.model + "': expected one of " + known);
    }
    parse_range(a.prompt_len, "--prompt-len", &spec.prompt_min, &spec.prompt_max);
    parse_range(a.output_len, "--output-len", &spec.output_min, &spec.output_max);
    if (a.alpha >= 0 && !a.domains.empty()) throw Error("--alpha and --domain: give one or the other");
    if (a.alpha >= 0) {
        if (a.gamma < 1) throw Error("--alpha: needs --gamma (the block size)");
        spec.domains.push_back({"iid", std::vector<double>(a.gamma, a.alpha), a.requests});
    }
    for (const std::string& d : a.domains) spec.domains.push_back(parse_domain(d, a.requests));
    if (spec.domains.empty()) throw Error("synth: give --alpha A --gamma G, or one --domain NAME=a1,...,aG per domain");
    spec.gamma = a.gamma > 0 ? a.gamma : static_cast<int>(spec.domains[0].alpha.size());
    synth_validate(spec);

    TraceDb db = trace_db_open(a.out, TRACE_CREATE);
    int64_t run = synth_write(db, spec);
    TraceCounts c = trace_db_counts(db);
    std::printf("%s: wrote run %lld (%zu domains, gamma %d); the file now holds %lld runs, %lld requests\n",
                a.out.c_str(), (long long)run, spec.domains.size(), spec.gamma, (long long)c.runs,
                (long long)c.requests);
}

// [SECTION] export / import ---------------------------------------------------

// -o FILE: a regular file, or a new one, is written to a temporary file
// beside it (mkstemp, the old file's permissions or 0666 less the umask) and
// renamed over it once complete, so a failed export leaves the old file as it
// was and no partial one; a symlink, device or FIFO is written in place.
static void export_jsonl(const std::string& db_path, const std::string& out_path) {
    TraceDb db = trace_db_open(db_path, TRACE_READ);
    JsonlSummary s;
    if (out_path.empty() || out_path == "-") {
        s = trace_export_jsonl(db, std::cout, "stdout");
        std::cout.flush();
        if (!std::cout) throw Error("stdout: write failed");
    } else {
        struct stat st {};
        const bool exists = ::lstat(out_path.c_str(), &st) == 0;
        std::string tmp;
        if (!exists || S_ISREG(st.st_mode)) {
            tmp = out_path + ".XXXXXX";
            const int fd = ::mkstemp(tmp.data());
            if (fd < 0) throw Error(out_path + ": cannot open for writing (" + std::strerror(errno) + ")");
            const mode_t mask = ::umask(0);
            ::umask(mask);
            const int rc = ::fchmod(fd, exists ? st.st_mode & 07777 : 0666 & ~mask);
            ::close(fd);
            if (rc != 0) {
                ::unlink(tmp.c_str());
                throw Error(out_path + ": cannot set the permissions of " + tmp);
            }
        }
        try {
            std::ofstream out(tmp.empty() ? out_path : tmp, std::ios::binary | std::ios::trunc);
            if (!out) throw Error(out_path + ": cannot open for writing");
            s = trace_export_jsonl(db, out, out_path);
            out.close();
            if (!out) throw Error(out_path + ": write failed");
            if (!tmp.empty() && std::rename(tmp.c_str(), out_path.c_str()) != 0)
                throw Error(out_path + ": cannot rename " + tmp + " over it (" + std::strerror(errno) + ")");
        } catch (...) {
            if (!tmp.empty()) ::unlink(tmp.c_str());
            throw;
        }
        std::fprintf(stderr, "%s: %lld runs, %lld requests, %lld positions, %lld steps, %lld profiles\n",
                     out_path.c_str(), (long long)s.runs, (long long)s.requests, (long long)s.positions,
                     (long long)s.steps, (long long)s.profiles);
    }
}

// A run imported again: equal to a run the store held before the import in
// everything recorded, ids aside: the run's fields (producer, target,
// drafter, gpu, temperature, gamma, created_at to the second, git_rev,
// notes), its requests (idx, domain, prompt and output length), every
// request's positions (beta, confidences, draft probabilities, compared as
// stored) and its steps. No schema change: both runs are in the store while
// the import's transaction is open, so they are compared as stored. Runs
// that differ in any of these (a re-capture, an edited file) import as new.
static bool same_run(TraceDb& db, const Run& a, const Run& b) {
    Run x = a, y = b;
    x.id = y.id = 0;
    x.complete = y.complete = false;
    if (!(x == y)) return false;
    const std::vector<Request> ra = trace_db_requests(db, a.id), rb = trace_db_requests(db, b.id);
    if (ra.size() != rb.size()) return false;
    for (size_t i = 0; i < ra.size(); i++) {
        Request p = ra[i], q = rb[i];
        p.id = q.id = p.run_id = q.run_id = 0;
        if (!(p == q)) return false;
        Positions pa, pb;
        const bool ha = trace_db_positions(db, ra[i].id, &pa), hb = trace_db_positions(db, rb[i].id, &pb);
        pa.request_id = pb.request_id = 0;
        if (ha != hb || (ha && !(pa == pb))) return false;
    }
    auto steps = [&](int64_t run) {
        std::vector<Step> out;
        trace_db_for_each_step(db, run, [&](const Step& st) {
            out.push_back(st);
            out.back().request_id = 0;
        });
        return out;
    };
    return steps(a.id) == steps(b.id);
}

// Refuses, in one line, an import that holds a run the store already had
// (`before`: the store's runs before the import); the caller's transaction
// then rolls the whole import back.
static void refuse_duplicate_runs(TraceDb& db, const std::vector<Run>& before, const std::string& in_path,
                                  const std::string& db_path) {
    int64_t last_old = 0;
    for (const Run& r : before) last_old = std::max(last_old, r.id);
    for (const Run& r : trace_db_runs(db)) {
        if (r.id <= last_old) continue;
        for (const Run& old : before)
            if (same_run(db, old, r))
                throw Error(in_path + ": run created " + r.created_at + " (" + r.target.name + ", drafter " +
                            r.drafter_name + ") is already in " + db_path + " as run " + std::to_string(old.id) +
                            ": importing the same runs twice would duplicate them; nothing was imported");
    }
}

static void import_jsonl(const std::string& in_path, const std::string& db_path) {
    std::ifstream in(in_path, std::ios::binary);
    if (!in) throw Error(in_path + ": cannot open for reading");
    TraceDb db = trace_db_open(db_path, TRACE_CREATE);
    const std::vector<Run> before = trace_db_runs(db);
    TraceTxn txn(db);  // the import's own transaction nests inside: a duplicate undoes it
    JsonlSummary s = trace_import_jsonl(db, in, in_path);
    refuse_duplicate_runs(db, before, in_path, db_path);
    txn.commit();
    std::printf("%s: imported %lld runs, %lld requests, %lld positions, %lld steps, %lld profiles\n",
                db_path.c_str(), (long long)s.runs, (long long)s.requests, (long long)s.positions,
                (long long)s.steps, (long long)s.profiles);
}

// Other engines' acceptance data (--format): one importer run, written in
// one transaction by the format's reader.
struct ForeignArgs {
    std::string format = "jsonl", verify;
    ImportOptions opt;
};

static void import_foreign(const std::string& in_path, const std::string& db_path, const ForeignArgs& f) {
    std::ifstream in(in_path, std::ios::binary);
    if (!in) throw Error(in_path + ": cannot open for reading");
    ImportOptions opt = f.opt;
    if (!f.verify.empty()) verify_method_parse(f.verify, &opt.verify_method);  // checked by CLI11
    std::vector<ImportedRequest> reqs;
    if (f.format == "vllm-requests") reqs = vllm_requests_read(in, in_path, opt, TRACE_JSONL_MAX_LINE);
    if (f.format == "aiperf") {
        AiperfRead a = aiperf_records_read(in, in_path, opt, TRACE_JSONL_MAX_LINE);
        if (a.skipped) std::fprintf(stderr, "%s: %lld records without spec_decode_acceptance skipped\n", in_path.c_str(), (long long)a.skipped);
        if (opt.drafter_name.empty() && !a.engine.empty()) opt.drafter_name = "aiperf/" + a.engine;
        reqs = std::move(a.requests);
    }
    TraceDb db = trace_db_open(db_path, TRACE_CREATE);
    ImportSummary s = f.format == "deepspec" ? deepspec_import(db, in, in_path, opt, TRACE_JSONL_MAX_LINE)
                                             : trace_import_steps(db, opt, f.format, in_path, reqs);
    std::printf("%s: imported run %lld (%s, gamma %d): %lld requests, %lld steps, %lld positions rows\n",
                db_path.c_str(), (long long)s.run_id, f.format.c_str(), s.gamma, (long long)s.requests,
                (long long)s.steps, (long long)s.positions);
}

// vllm-prom: the counters give rates, not steps: print the conversion and a
// [[workload.domain]] alpha line; no store is written.
static void import_prom(const std::string& in_path, const std::string& model) {
    std::ifstream in(in_path, std::ios::binary);
    if (!in) throw Error(in_path + ": cannot open for reading");
    VllmRates r = vllm_prom_read(in, in_path, model);
    for (const std::string& n : r.notes) std::fprintf(stderr, "%s: note: %s\n", in_path.c_str(), n.c_str());
    std::printf("# %s: vLLM spec-decode counters%s: %.10g drafts, k = %zu, mean acceptance length %.4f\n",
                in_path.c_str(), r.model_name.empty() ? "" : (" of model \"" + r.model_name + "\"").c_str(),
                r.drafts, r.survival.size(), r.mean_acceptance_length);
    std::printf("# unconditional s_k = accepted_per_pos[k-1] / drafts:");
    for (double v : r.survival) std::printf(" %.4f", v);
    std::printf("\n# conditional alpha_k = s_k / s_(k-1), the parametric source's per-slot rate:\n%s\n",
                alpha_toml_line(r.alpha).c_str());
}

// import_jsonl (or the foreign formats), after refusing an input that is not a regular file (a
// device such as /dev/zero never ends). A refused import leaves no store
// behind when there was none before: the one it created is removed if it
// is still empty (another writer may have filled it meanwhile).
static void import_checked(const std::string& in_path, const std::string& db_path, const ForeignArgs& f) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(in_path, ec) && !fs::is_regular_file(in_path, ec)) throw Error(in_path + ": not a regular file");
    const bool existed = fs::exists(fs::symlink_status(db_path, ec));
    try {
        if (f.format == "jsonl") import_jsonl(in_path, db_path);
        else import_foreign(in_path, db_path, f);
    } catch (...) {
        if (!existed && fs::exists(db_path, ec)) {
            bool empty = false;
            try {
                TraceDb db = trace_db_open(db_path, TRACE_READ);
                TraceCounts c = trace_db_counts(db);
                empty = c.runs == 0 && c.requests == 0 && c.positions == 0 && c.steps == 0 && c.profiles == 0;
            } catch (const Error&) {
            }
            if (empty)
                for (const char* ext : {"", "-wal", "-shm"}) fs::remove(db_path + ext, ec);
        }
        throw;
    }
}

// [SECTION] registration ------------------------------------------------------

// Option values live in one shared struct owned by the callbacks, since CLI11
// binds options by reference and parses after this function returns.
struct TracesArgs {
    std::string db, out, jsonl, info_json;
    SynthArgs synth;
    ForeignArgs foreign;
};

void traces_commands(CLI::App& app) {
    auto a = std::make_shared<TracesArgs>();
    CLI::App* traces = app.add_subcommand("traces", "Inspect, generate, export and import trace databases (.specdb)");
    traces->require_subcommand(1);

    CLI::App* info_cmd = traces->add_subcommand("info", "Counts per table; per run gamma, tau and per-slot acceptance");
    info_cmd->add_option("FILE", a->db, "trace database")->required();
    info_cmd->add_option("--json", a->info_json, "write the per-run acceptance (tau, alpha_k, survival per domain) to this file as JSON instead of printing");
    info_cmd->callback([a] { info(a->db, a->info_json); });

    SynthArgs& sa = a->synth;
    CLI::App* syn = traces->add_subcommand(
        "synth", "Append a seeded synthetic run (greedy; model in traces/synth.h) to a trace database");
    syn->add_option("-o,--out", sa.out, "trace database to create or append to")->required();
    syn->add_option("--domain", sa.domains,
                    "NAME=a1,...,aG: conditional acceptance per draft slot for one domain (repeatable)");
    syn->add_option("--alpha", sa.alpha, "i.i.d. acceptance for every slot (with --gamma)")->check(CLI::Range(0.0, 1.0));
    syn->add_option("--gamma", sa.gamma, "block size: drafts per step");
    syn->add_option("--requests", sa.requests, "requests per domain")->capture_default_str();
    syn->add_option("--prompt-len", sa.prompt_len, "prompt tokens, uniform MIN:MAX")->capture_default_str();
    syn->add_option("--output-len", sa.output_len, "output tokens, uniform MIN:MAX")->capture_default_str();
    syn->add_option("--seed", sa.seed, "random seed")->capture_default_str()->transform(seed_number());
    syn->add_option("--kappa", sa.kappa, "confidence concentration: small = sharp confidence")->capture_default_str();
    syn->add_option("--raw-temperature", sa.raw_temperature, "raw logit = T * logit(calibrated confidence)")
        ->capture_default_str();
    syn->add_option("--model", sa.model, "target model preset recorded in the run")->capture_default_str();
    syn->add_option("--notes", sa.notes, "free text stored with the run");
    syn->callback([a] { synth(a->synth); });

    CLI::App* ex = traces->add_subcommand("export", "Write a trace database as JSON Lines");
    ex->add_option("FILE", a->db, "trace database")->required();
    ex->add_option("-o,--out", a->out, "JSON Lines file (default: stdout)");
    ex->callback([a] { export_jsonl(a->db, a->out); });

    CLI::App* im = traces->add_subcommand(
        "import", "Append JSON Lines (from export), or another engine's acceptance data, to a trace database, all or nothing");
    ForeignArgs& fa = a->foreign;
    im->add_option("FILE", a->jsonl, "input file")->required();
    im->add_option("DB", a->db, "trace database to create or append to (none for vllm-prom)");
    im->add_option("--format", fa.format,
                   "jsonl (specplan export), vllm-prom (/metrics text: prints scenario alpha), vllm-requests "
                   "(per-request detailed metrics, JSON Lines), aiperf (profile_export.jsonl records), deepspec "
                   "(confidence_records.jsonl)")
        ->check(CLI::IsMember({"jsonl", "vllm-prom", "vllm-requests", "aiperf", "deepspec"}))->capture_default_str();
    im->add_option("--model", fa.opt.model, "target model name recorded in the run; vllm-prom: the model_name to read");
    im->add_option("--drafter-kind", fa.opt.drafter_kind, "drafter kind recorded in the run (dspark, eagle3, mtp, ...)");
    im->add_option("--drafter-name", fa.opt.drafter_name, "drafter name recorded in the run (default: the format)");
    im->add_option("--gpu", fa.opt.gpu, "GPU recorded in the run");
    im->add_option("--temperature", fa.opt.temperature, "sampling temperature of the measured run")->check(CLI::Range(0.0, 1e6));
    im->add_option("--verify", fa.verify, "verification method of the measured run")
        ->check(CLI::IsMember({"greedy", "sampling", "block"}));
    im->add_option("--gamma", fa.opt.gamma, "block size (default: the most drafts any step shows)")->check(CLI::Range(1, TRACE_MAX_GAMMA));
    im->add_option("--domain", fa.opt.domain, "domain of every request (default: the record's \"domain\", or deepspec's <dataset> folder)");
    im->add_option("--notes", fa.opt.notes, "free text stored with the run");
    im->callback([a, im] {
        const ForeignArgs& f = a->foreign;
        if (f.format == "vllm-prom") {
            if (!a->db.empty()) throw Error(a->db + ": vllm-prom gives rates, not steps: it prints alpha and writes no store");
            import_prom(a->jsonl, im->count("--model") ? f.opt.model : "");
            return;
        }
        if (a->db.empty()) throw Error("traces import: DB: expected a trace database to append to, got nothing");
        if (f.format == "jsonl")
            for (const char* flag : {"--model", "--drafter-kind", "--drafter-name", "--gpu", "--temperature", "--verify",
                                     "--gamma", "--domain", "--notes"})
                if (im->count(flag))
                    throw Error(std::string("traces import: ") + flag +
                                ": describes a run of another --format; a jsonl export carries its own");
        import_checked(a->jsonl, a->db, f);
    });
}

}  // namespace sp
