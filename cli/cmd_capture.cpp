// cmd_capture.cpp: `specplan capture`, the engine's acceptance traces: what
// the simulator replays. For each prompt of a JSON Lines file:
//  1. the speculative decoder generates the target's response; its live
//     steps go into `steps`;
//  2. one teacher-forced target forward over prompt + response gives the
//     hidden states and logits of every position;
//  3. the drafter runs at every anchor t of the response with the response's
//     own tokens forced as its previous tokens, which is acceptance
//     conditional on drafts 1..k-1 accepted. Into `positions`:
//       greedy    beta(t, k) = 1 when draft k equals response token t + k, else 0
//       sampling  beta(t, k) = min(1, p(x) / q(x)) of the drafted token x,
//                 p the target's distribution at that position (temperature T)
//     the draft's own probability of its token (q_token, every drafter: what
//     the draft-prob policy reads) and, for drafters with a head, the raw
//     confidence logit and the calibrated confidence.
// Each request is committed as it completes (one transaction: request,
// positions, steps), so a capture killed midway keeps them; --resume
// continues the file's last incomplete run from the first missing prompt.
// The prompts file is read and checked whole before anything is written.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/spec_setup.h"
#include "engine/verify.h"
#include "traces/trace_db.h"

namespace sp {

namespace {

struct CaptureArgs {
    SpecArgs spec;
    std::string prompts, out, notes;
    int max_new = 256;
    bool resume = false;
    bool quiet = false;
    std::string command;
};

// The teacher-forced positions of one generated request (the header's step 2 and 3).
Positions positions_capture(SpecSetup& s, const SpecRequest& r, int gamma) {
    Backend& target = *s.backend;
    Drafter& drafter = *s.drafter;
    const int P = int(r.prompt.size()), n = int(r.output.size()), V = target.config().vocab;
    const float T = r.temperature;
    Positions pos;
    pos.gamma = gamma;
    pos.n = n;
    pos.beta.assign(size_t(n) * size_t(gamma), 0.0f);
    pos.draft_prob.assign(pos.beta.size(), 0.0f);
    if (drafter.has_confidence()) {
        pos.conf_logit.assign(pos.beta.size(), 0.0f);
        pos.conf_prob.assign(pos.beta.size(), 0.0f);
    }
    // prompt + response through the target (slot 0 is free once the request finished)
    std::vector<int> all = r.prompt;
    all.insert(all.end(), r.output.begin(), r.output.end());
    std::vector<float> logits;
    target.truncate(0, 0);
    target.forward(RaggedBatch{{0}, {P + n}, all}, T > 0 ? &logits : nullptr, drafter.target_layers());
    drafter.reset(0);

    // under sampling: each slot's drafted token and its q, for beta once every
    // block is drafted (then each target row's softmax is computed once, not
    // once per anchor that drafts its position)
    std::vector<int> drafted(T > 0 ? pos.beta.size() : 0, -1);
    std::vector<float> q_drafted(drafted.size(), 0.0f);
    DraftOutput out;
    for (int t = 0; t < n; t++) {
        DraftBatch in;
        in.slot = {0};
        const int first = t == 0 ? 0 : P + t - 1;  // context: positions < P + t
        in.n_ctx = {P + t - first};
        for (int i = first; i < P + t; i++) {
            in.ctx_tokens.push_back(all[size_t(i)]);
            in.ctx_row.push_back(i);
        }
        in.hidden = target.hidden_data();
        in.hidden_T = P + n;
        in.anchor = {r.output[size_t(t)]};
        const int real = std::min(gamma, n - 1 - t);  // slots whose token is in the response
        in.n_draft = {real};
        in.temperature = {T};
        in.request = {r.id};
        in.seed = s.opt.seed;
        in.forced.assign(size_t(drafter.gamma()), -1);
        for (int k = 0; k + 1 < real; k++) in.forced[size_t(k)] = r.output[size_t(t + k + 1)];
        drafter.draft(in, &out);
        for (int k = 0; k < real; k++) {
            const size_t at = size_t(t) * size_t(gamma) + size_t(k);
            const int x = out.tokens[size_t(k)];
            if (x < 0) break;  // n-gram lookup proposed no more: beta stays 0
            pos.draft_prob[at] = out.q_token[size_t(k)];
            if (T <= 0) {
                pos.beta[at] = x == r.output[size_t(t + k + 1)] ? 1.0f : 0.0f;
            } else {
                drafted[at] = x;
                q_drafted[at] = out.q_token[size_t(k)];
            }
            if (!out.conf_logit.empty()) {
                pos.conf_logit[at] = out.conf_logit[size_t(k)];
                pos.conf_prob[at] = out.conf[size_t(k)];
            }
        }
    }
    // beta = min(1, p / q): the draft of slot k at anchor t is response token
    // j = t + k + 1, whose target distribution is logits row P + j - 1
    std::vector<float> p(drafted.empty() ? 0 : static_cast<size_t>(V));
    for (int j = 1; j < n && !drafted.empty(); j++) {
        softmax_row(p.data(), logits.data() + size_t(P + j - 1) * size_t(V), V, T);
        for (int k = 0; k < gamma && k < j; k++) {
            const size_t at = size_t(j - 1 - k) * size_t(gamma) + size_t(k);
            if (drafted[at] >= 0) pos.beta[at] = std::min(1.0f, p[size_t(drafted[at])] / std::max(q_drafted[at], 1e-30f));
        }
    }
    target.truncate(0, 0);
    drafter.reset(0);
    return pos;
}

void run_capture(CaptureArgs& a) {
    if (a.max_new < 1) throw Error("--max-new " + std::to_string(a.max_new) + ": expected >= 1");
    std::unique_ptr<SpecSetup> s = spec_setup(a.spec, 1);
    if (!s->drafter) throw Error("--drafter none: capture records a drafter's acceptance; name one");
    const std::vector<PromptLine> prompts = prompts_load(a.prompts, s->target.cfg.vocab);
    std::vector<std::vector<int>> tokens;
    for (size_t i = 0; i < prompts.size(); i++) {
        if (!prompts[i].ids.empty()) {
            tokens.push_back(prompts[i].ids);
            continue;
        }
        if (!s->tok)
            throw Error(a.prompts + ":" + std::to_string(i + 1) + ": prompt: text needs a tokenizer.json beside " +
                        a.spec.model + " (or --tokenizer); give prompt_ids otherwise");
        tokens.push_back(tokenizer_encode(*s->tok, prompts[i].text));
        if (tokens.back().empty()) throw Error(a.prompts + ":" + std::to_string(i + 1) + ": prompt: encodes to no tokens");
    }
    Speculator spec(*s->backend, s->drafter.get(), s->opt);
    const int gamma = s->opt.gamma;

    Run run;
    run.producer = PRODUCER_ENGINE;
    run.target = config_shape(s->target.cfg);
    run.drafter_kind = s->drafter->kind();
    run.drafter_name = s->drafter->name();
    run.gpu = s->gpu;
    run.temperature = a.spec.temperature;
    run.gamma = gamma;
    run.notes = "policy " + s->opt.policy.name + ", seed " + std::to_string(a.spec.seed) + ", device " +
                s->backend->name() + (a.notes.empty() ? "" : "; " + a.notes) + "; " + a.command;

    TraceDb db = trace_db_open(a.out, a.resume ? TRACE_WRITE : TRACE_CREATE);
    size_t start = 0;
    if (a.resume) {
        const std::vector<Run> runs = trace_db_runs(db);
        if (runs.empty() || runs.back().complete)
            throw Error(a.out + ": --resume: expected an incomplete run to continue, found none");
        const Run& last = runs.back();
        if (last.target.name != run.target.name || last.drafter_name != run.drafter_name || last.gamma != gamma ||
            last.temperature != run.temperature)
            throw Error(a.out + ": --resume: the incomplete run " + std::to_string(last.id) + " was captured with " +
                        last.target.name + " / " + last.drafter_name + ", gamma " + std::to_string(last.gamma) +
                        ", T " + std::to_string(last.temperature) + ": not these flags");
        run = last;
        start = trace_db_requests(db, run.id).size();
        if (start > prompts.size())
            throw Error(a.out + ": --resume: the run holds " + std::to_string(start) + " requests, the prompts file " +
                        std::to_string(prompts.size()));
    } else {
        trace_db_begin_run(db, run);
    }

    const bool tty = !a.quiet && isatty(STDERR_FILENO);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t n_tokens = 0;
    for (size_t i = start; i < prompts.size(); i++) {
        SpecRequest r;
        r.id = i;
        r.prompt = tokens[i];
        r.max_new = a.max_new;
        r.temperature = float(a.spec.temperature);
        spec.run(&r);
        const Positions pos_raw = positions_capture(*s, r, gamma);

        TraceTxn txn(db);
        Request req;
        req.run_id = run.id;
        req.idx = int(i);
        req.domain = prompts[i].domain;
        req.prompt_len = int(r.prompt.size());
        req.output_len = int(r.output.size());
        trace_db_append_request(db, req);
        Positions pos = pos_raw;
        pos.request_id = req.id;
        trace_db_append_positions(db, pos);
        for (Step& st : r.steps) st.request_id = req.id;
        trace_db_append_steps(db, r.steps);
        txn.commit();

        n_tokens += int64_t(r.output.size());
        if (tty) {
            const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const size_t d = i + 1, total = prompts.size(), width = 30, fill = d * width / total;
            std::fprintf(stderr, "\r[%s%s] %zu/%zu prompts, %.0f tokens/s", std::string(fill, '#').c_str(),
                         std::string(width - fill, ' ').c_str(), d, total, el > 0 ? double(n_tokens) / el : 0.0);
        }
    }
    if (tty) std::fprintf(stderr, "\n");
    trace_db_finish_run(db, run.id);
    if (!a.quiet)
        std::printf("run %lld: %zu requests (%zu this time), %lld output tokens, %s drafter %s, gamma %d, T %g -> %s\n",
                    static_cast<long long>(run.id), prompts.size(), prompts.size() - start,
                    static_cast<long long>(n_tokens), run.drafter_kind.c_str(), run.drafter_name.c_str(), gamma,
                    run.temperature, a.out.c_str());
}

}  // namespace

void capture_commands(CLI::App& app, int argc, char** argv) {
    auto a = std::make_shared<CaptureArgs>();
    for (int i = 0; i < argc; i++) a->command += (i ? " " : "") + std::string(argv[i]);
    CLI::App* c = app.add_subcommand("capture", "Record acceptance traces: generate each prompt's response, then run "
                                                "the drafter teacher-forced at every anchor; writes a trace store");
    spec_add_flags(c, a->spec, true);
    c->add_option("--prompts", a->prompts, "JSON Lines: {\"prompt\": text | \"prompt_ids\": [...], \"domain\": ...}")
        ->required();
    c->add_option("-o,--out", a->out, "trace store to write (created if missing; a new run is appended)")->required();
    c->add_option("--max-new", a->max_new, "output tokens per prompt at most (default 256)");
    c->add_flag("--resume", a->resume, "continue the file's last incomplete run from its first missing prompt");
    c->add_option("--notes", a->notes, "free text for the run");
    c->add_flag("--quiet", a->quiet, "no progress bar or summary");
    c->callback([a] { run_capture(*a); });
}

}  // namespace sp
