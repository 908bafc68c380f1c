// main.cpp: `specplan`, the one command-line tool. Each subcommand group
// registers itself from its own file; this file only parses and reports.
//
// Exit codes: 0 success, 1 bad input or a failed operation (one line on
// stderr: "specplan: <file>: <what>"), 2 bad command line.

// defines: traces_commands (info, synth, export, import), sim_commands (sim, sweep),
// profile_commands (profile: CUDA builds only), generate_commands (generate),
// capture_commands (capture), calibrate_commands (calibrate), live_commands (live),
// plan_commands (plan), compare_commands (compare), calibrate_cost_commands (calibrate-cost)
#include "cli/commands.h"

#include <CLI/CLI.hpp>

#include "git_rev.h"

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    CLI::App app{"specplan: capacity planning for speculative decoding"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "specplan " SPECPLAN_GIT_REV);
    sp::traces_commands(app);
    sp::sim_commands(app);
    sp::profile_commands(app, argc, argv);
    sp::generate_commands(app);
    sp::capture_commands(app, argc, argv);
    sp::calibrate_commands(app);
    sp::live_commands(app);
    sp::plan_commands(app);
    sp::compare_commands(app);
    sp::calibrate_cost_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "specplan: %s (see --help)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "specplan: %s\n", e.what());
        return 1;
    }
    return 0;
}
