// cmd_generate.cpp: `specplan generate`, one prompt through the speculative
// decoder, streamed. On a terminal the tokens that came from accepted drafts
// are shown in green. It ends with tau (tokens per verify step), tokens/s,
// and the same request run again without a drafter, for the speedup.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/spec_setup.h"

namespace sp {

namespace {

struct GenerateArgs {
    SpecArgs spec;
    std::string prompt;     // text (needs a tokenizer) or, with --ids, comma-separated token ids
    bool ids = false;
    int max_new = 128;
    bool no_baseline = false;
};

std::vector<int> prompt_tokens(const GenerateArgs& a, const SpecSetup& s) {
    if (a.ids) {
        std::vector<int> out;
        for (const std::string& item : split_list(a.prompt)) {
            const double v = parse_number(item, "PROMPT", a.prompt);
            if (v != double(int(v)) || v < 0 || v >= s.target.cfg.vocab)
                throw Error("PROMPT '" + a.prompt + "': expected token ids in 0.." +
                            std::to_string(s.target.cfg.vocab - 1) + ", got '" + item + "'");
            out.push_back(int(v));
        }
        return out;
    }
    if (!s.tok)
        throw Error(a.spec.model + ": no tokenizer.json (give --tokenizer FILE, or token ids with --ids)");
    std::vector<int> out = tokenizer_encode(*s.tok, a.prompt);
    if (out.empty()) throw Error("PROMPT: encodes to no tokens");
    return out;
}

// The text of one token, or "<id>" without a tokenizer.
std::string token_text(const SpecSetup& s, int id) {
    if (!s.tok) return "<" + std::to_string(id) + ">";
    try {
        return tokenizer_decode(*s.tok, {id});
    } catch (const Error&) {
        return "<" + std::to_string(id) + ">";
    }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_generate(const GenerateArgs& a) {
    if (a.max_new < 1) throw Error("--max-new " + std::to_string(a.max_new) + ": expected >= 1");
    std::unique_ptr<SpecSetup> s = spec_setup(a.spec, 1);
    const std::vector<int> prompt = prompt_tokens(a, *s);
    const bool tty = isatty(STDOUT_FILENO);

    SpecRequest r;
    r.prompt = prompt;
    r.max_new = a.max_new;
    r.temperature = float(a.spec.temperature);
    if (!s->replay.empty()) r.replay = &s->replay[0];
    Speculator spec(*s->backend, s->drafter.get(), s->opt);
    const auto t0 = std::chrono::steady_clock::now();
    spec.add(&r);
    size_t shown = 0;
    auto show = [&] {
        for (; shown < r.output.size(); shown++) {
            const std::string text = token_text(*s, r.output[shown]);
            if (tty && r.drafted[shown]) std::printf("\x1b[32m%s\x1b[0m", text.c_str());
            else std::fputs(text.c_str(), stdout);
        }
        std::fflush(stdout);
    };
    show();
    const double t_first = seconds_since(t0);
    while (!spec.idle()) {
        spec.step();
        show();
    }
    const double t_all = seconds_since(t0);
    std::printf("\n");

    // tau: tokens committed per verify step (the first token came from the prefill)
    const int steps = int(r.steps.size());
    const int decoded = int(r.output.size()) - 1;
    const double decode_s = t_all - t_first;
    std::printf("drafter %s, policy %s, %s, T %g: %d tokens, %d steps, tau %.3f, %.1f tokens/s (decode)\n",
                s->drafter ? s->drafter->name().c_str() : "none", s->opt.policy.name.c_str(), s->backend->name(),
                a.spec.temperature, int(r.output.size()), steps, steps ? double(decoded) / steps : 0.0,
                decode_s > 0 ? decoded / decode_s : 0.0);
    if (!s->drafter || a.no_baseline) return;

    // The same request without a drafter, for the speedup.
    SpecRequest base = r;
    base.output.clear();
    base.steps.clear();
    base.replay = nullptr;
    base.max_new = int(r.output.size());
    SpecOptions ar = s->opt;
    ar.policy = Policy{};
    Speculator plain(*s->backend, nullptr, ar);
    const auto b0 = std::chrono::steady_clock::now();
    plain.add(&base);
    const double b_first = seconds_since(b0);
    while (!plain.idle()) plain.step();
    const double b_decode = seconds_since(b0) - b_first;
    const int b_decoded = int(base.output.size()) - 1;
    const double spec_rate = decode_s > 0 ? decoded / decode_s : 0, ar_rate = b_decode > 0 ? b_decoded / b_decode : 0;
    std::printf("without a drafter: %.1f tokens/s; speedup %.2fx%s\n", ar_rate, ar_rate > 0 ? spec_rate / ar_rate : 0.0,
                a.spec.temperature == 0 && base.output != r.output ? " (WARNING: greedy outputs differ)" : "");
}

}  // namespace

void generate_commands(CLI::App& app) {
    auto a = std::make_shared<GenerateArgs>();
    CLI::App* g = app.add_subcommand("generate", "Generate from one prompt with speculative decoding, streamed; "
                                                 "ends with tau, tokens/s and the speedup over no drafter");
    spec_add_flags(g, a->spec, false);
    g->add_option("PROMPT", a->prompt, "the prompt text (or token ids with --ids)")->required();
    g->add_flag("--ids", a->ids, "PROMPT is comma-separated token ids (models without a tokenizer.json)");
    g->add_option("--max-new", a->max_new, "output tokens at most (default 128)");
    g->add_flag("--no-baseline", a->no_baseline, "skip the run without a drafter");
    g->callback([a] { run_generate(*a); });
}

}  // namespace sp
