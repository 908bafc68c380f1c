// hf_fixture.h: the HF transformers fixtures under tests/fixtures/<name>/
// (config.json, model.safetensors, reference.json: tokens, logits, hidden
// states, greedy tokens; written by tests/make_fixtures.py). Shared by the
// CPU reference and the CUDA test suites.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

struct Fixture {
    std::string dir;       // tests/fixtures/<name>
    nlohmann::json ref;    // reference.json
};

// Loads tests/fixtures/<name>/reference.json; false when the fixture is not there.
inline bool load_fixture(const std::string& name, Fixture* f) {
    f->dir = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/" + name;
    std::ifstream in(f->dir + "/reference.json");
    if (!in) return false;
    f->ref = nlohmann::json::parse(in);
    return true;
}

#define LOAD_FIXTURE_OR_SKIP(name, f)                                           \
    if (!load_fixture(name, &f))                                                \
    GTEST_SKIP() << "no HF fixture at tests/fixtures/" << name                  \
                 << "/reference.json; make it with python3 tests/make_fixtures.py (needs torch and transformers)"
