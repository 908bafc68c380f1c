// spec_run.h: the Speculator driven as the suites that compare speculative
// with autoregressive output drive it (test_speculative, test_demo,
// test_live).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/speculative.h"

namespace sp {

// A policy by name, "fixed:4"; a bad name fails the test that asked.
inline Policy policy_of(const std::string& text) {
    Policy p;
    std::string err;
    EXPECT_TRUE(policy_parse(text, &p, &err)) << err;
    return p;
}

// Greedy (T = 0) autoregressive output of each prompt, one request at a time
// through a Speculator without a drafter; eos -1: none.
inline std::vector<std::vector<int>> ar_outputs(Backend& b, const std::vector<std::vector<int>>& prompts, int max_new,
                                                int eos = -1) {
    SpecOptions o;
    o.eos = eos;
    Speculator ar(b, nullptr, o);
    std::vector<std::vector<int>> out;
    for (size_t i = 0; i < prompts.size(); i++) {
        SpecRequest r;
        r.id = i;
        r.prompt = prompts[i];
        r.max_new = max_new;
        ar.run(&r);
        out.push_back(r.output);
    }
    return out;
}

// All prompts as one ragged batch through spec, stepped until idle; the
// requests (outputs and steps) in prompt order.
inline std::vector<SpecRequest> spec_run_batch(Speculator& spec, const std::vector<std::vector<int>>& prompts,
                                               int max_new) {
    std::vector<SpecRequest> reqs(prompts.size());
    for (size_t i = 0; i < prompts.size(); i++) {
        reqs[i].id = i;
        reqs[i].prompt = prompts[i];
        reqs[i].max_new = max_new;
        spec.add(&reqs[i]);
    }
    while (!spec.idle()) spec.step();
    return reqs;
}

}  // namespace sp
