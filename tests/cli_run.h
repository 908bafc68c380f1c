// cli_run.h: runs the `specplan` binary (SPECPLAN_CLI, set per test target)
// through the shell and collects its exit code, stdout and stderr, through
// files in a ScratchDir. Shared by the suites that test commands end to end.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/scratch.h"

namespace sp {

struct CliResult {
    int code = -1;
    std::string out, err;
    int err_lines() const { return int(std::count(err.begin(), err.end(), '\n')); }
};

inline std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// `specplan ARGS`; ARGS is shell-quoted by the caller.
inline CliResult cli_run(const ScratchDir& dir, const std::string& args) {
    const std::string out = dir.file("stdout.txt"), err = dir.file("stderr.txt");
    const std::string cmd = std::string(SPECPLAN_CLI) + " " + args + " >" + out + " 2>" + err;
    const int status = std::system(cmd.c_str());
    CliResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

}  // namespace sp
