// commands.h: the subcommand groups of `specplan`. Each adds its subcommands
// to the app; their callbacks throw sp::Error on bad input.
#pragma once

namespace CLI {
class App;
}

namespace sp {

void traces_commands(CLI::App& app);  // cmd_traces.cpp
void sim_commands(CLI::App& app);     // cmd_sim.cpp
// cmd_profile.cpp; argv is kept for the run's notes. Without CUDA the
// subcommand is there but fails with one line, "built without CUDA".
void profile_commands(CLI::App& app, int argc, char** argv);
void generate_commands(CLI::App& app);                       // cmd_generate.cpp
void capture_commands(CLI::App& app, int argc, char** argv); // cmd_capture.cpp; argv for the run's notes
void calibrate_commands(CLI::App& app);                      // cmd_calibrate.cpp
void live_commands(CLI::App& app);                           // cmd_live.cpp
void plan_commands(CLI::App& app);                           // cmd_plan.cpp
void compare_commands(CLI::App& app);                        // cmd_compare.cpp
void calibrate_cost_commands(CLI::App& app);                 // cmd_calibrate_cost.cpp

}  // namespace sp
