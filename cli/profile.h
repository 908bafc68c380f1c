// profile.h: the flags of `specplan profile` (cmd_profile.cpp registers them;
// profile_cuda.cpp, in the GPU module, runs the command).
#pragma once

#include <cstdint>
#include <string>

namespace sp {

struct ProfileArgs {
    std::string model, out;
    std::string r = "1,2,4,8,16,32,64,128,256", q = "1,2,4,8,16", context = "512,2048,8192";
    std::string prefill_b = "256,512,1024,2048";
    int reps = 20, warmup = 3, draft_layers = 5, markov_rank = 256;
    std::string drafter = "dspark";  // dspark | dflash: the drafter kind timed
    uint64_t seed = 1;
    std::string command;  // the whole command line, for the run's notes
};

// Times the grid on this machine's GPU into a.out (profile_cuda.cpp).
void profile_cuda(const ProfileArgs& a);

}  // namespace sp
