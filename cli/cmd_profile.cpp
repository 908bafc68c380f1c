// cmd_profile.cpp: `specplan profile`, the measured cost model's source: the
// engine's step time on one GPU, written into a trace store's profiles. This
// file registers the command; the timing itself is profile_cuda.cpp, in the
// GPU module that only the GPU commands load (cli/gpu.h).
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/gpu.h"
#include "cli/profile.h"

namespace sp {

// [SECTION] registration --------------------------------------------------------

void profile_commands(CLI::App& app, int argc, char** argv) {
    auto a = std::make_shared<ProfileArgs>();
    for (int i = 0; i < argc; i++) a->command += (i ? " " : "") + std::string(argv[i]);
    CLI::App* p = app.add_subcommand(
        "profile", "Measure the engine's step time on this GPU (verify, prefill, draft) into a trace store's profiles");
    p->add_option("--model", a->model,
                  "random weights of this shape: a preset (qwen3-0.6b, qwen3-4b, qwen3-8b, qwen3-14b, qwen3-32b, "
                  "llama3-8b, llama3-70b), or an HF "
                  "config.json or a folder holding one")
        ->required();
    p->add_option("-o,--out", a->out, "trace database to create or append to")->required();
    p->add_option("--r", a->r, "running sequences R, comma-separated")->capture_default_str();
    p->add_option("--q", a->q, "new tokens per sequence (verify) and gamma (draft)")->capture_default_str();
    p->add_option("--context", a->context, "cached tokens per sequence")->capture_default_str();
    p->add_option("--prefill-b", a->prefill_b, "prefill chunk tokens (R = 1; contexts 0 and --context)")
        ->capture_default_str();
    p->add_option("--reps", a->reps, "timed replays per cell")->capture_default_str();
    p->add_option("--warmup", a->warmup, "untimed replays per cell")->capture_default_str();
    p->add_option("--draft-layers", a->draft_layers, "layers of the DSpark drafter timed; 0 = no draft cells")
        ->capture_default_str();
    p->add_option("--drafter", a->drafter, "the drafter kind timed: dspark or dflash (rank 0, no head)")
        ->capture_default_str();
    p->add_option("--markov-rank", a->markov_rank, "the DSpark drafter's Markov head rank")->capture_default_str();
    p->add_option("--seed", a->seed, "weight and token seed")->capture_default_str()->transform(seed_number());
    p->callback([a] { gpu_require("profile").profile(*a); });
}

}  // namespace sp
