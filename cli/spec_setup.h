// spec_setup.h: what `specplan generate` and `specplan capture` share: the
// target, its tokenizer, the backend (cpu or cuda), the drafter and the
// speculative decoder's options, built from the same flags.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/drafter.h"
#include "engine/speculative.h"
#include "engine/step_cost.h"
#include "traces/tokenizer.h"

namespace CLI {
class App;
}

namespace sp {

struct SpecArgs {
    std::string model;                // target checkpoint folder, or a preset shape with random weights
    std::string drafter = "none";     // none | ngram[:N[:M]] | folder
    std::string tokenizer;            // tokenizer.json; default: the model folder's, when there
    std::string device;               // cpu | cuda; default: cuda when built with it and a GPU answers
    std::string policy;               // default: fixed:gamma with a drafter, ar without
    std::string acceptance;           // "" or replay:TRACE.specdb
    int gamma = 0;                    // 0: the drafter's own
    double temperature = 0;
    uint64_t seed = 1;
};

// Adds the shared flags to a subcommand; per_request: also --gamma, --policy
// and --acceptance (`live` takes gamma and the policies from the scenario).
void spec_add_flags(CLI::App* cmd, SpecArgs& a, bool drafter_required, bool per_request = true);

// Everything the two commands drive, built in dependency order (the target's
// weights outlive the backend and the drafter that read them).
struct SpecSetup {
    ModelWeights target;
    std::optional<Tokenizer> tok;
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Drafter> drafter;
    SpecOptions opt;
    StepCostTable step_cost;          // measured when the policy needs it
    std::string gpu = "none";         // the device's name for the trace store
    std::vector<Positions> replay;    // --acceptance replay: one per trace request with positions
};

// Loads and checks everything; throws sp::Error with one line naming the
// file or flag at fault. n_seqs: sequence slots of the target and drafter.
std::unique_ptr<SpecSetup> spec_setup(const SpecArgs& a, int n_seqs);

// One line of a prompts file (JSON Lines), as `capture` and `live` read it.
struct PromptLine {
    std::string text;        // "prompt"
    std::vector<int> ids;    // or "prompt_ids"
    std::string domain = "default";
};

// Reads the whole prompts file; "<file>:<line>: <field>: expected ..." on the first bad line.
std::vector<PromptLine> prompts_load(const std::string& path, int vocab);

}  // namespace sp
