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
    std::string model;     // the checkpoint: dir itself, or models/<name> for a trained demo model
                           // (training/hf_reference.py writes only its reference here)
    nlohmann::json ref;    // reference.json
};

// Loads tests/fixtures/<name>/reference.json; false when the fixture is not there.
inline bool load_fixture(const std::string& name, Fixture* f) {
    const std::string src = SPECPLAN_SOURCE_DIR;
    f->dir = src + "/tests/fixtures/" + name;
    f->model = std::ifstream(f->dir + "/config.json") ? f->dir : src + "/models/" + name;
    std::ifstream in(f->dir + "/reference.json");
    if (!in) return false;
    f->ref = nlohmann::json::parse(in);
    return true;
}

#define LOAD_FIXTURE_OR_SKIP(name, f)                                           \
    if (!load_fixture(name, &f))                                                \
    GTEST_SKIP() << "no HF fixture at tests/fixtures/" << name                  \
                 << "/reference.json; make it with python3 tests/make_fixtures.py (needs torch and transformers)"
