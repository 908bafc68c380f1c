// test_drafter.cpp: the CPU drafters (engine/drafter.h) against references
// they do not share code with.
//
//  - DSpark, DFlash and EAGLE-3 against our PyTorch implementations
//    (tests/make_dspark_fixtures.py, tests/make_eagle3_fixtures.py, written
//    from the digest, trained briefly on tiny weights saved in the DeepSpec
//    layout): the target's hidden states
//    at the drafter's layers, the base logits of the block, the
//    Markov-corrected logits and confidence logits with teacher forcing, the
//    greedy block, and a block sampled at T = 1 with the counter RNG, at
//    three anchors. The drafter builds its context incrementally (one call
//    per anchor), the reference from scratch at each anchor.
//  - n-gram lookup against hand-worked histories.
//  - the contract every drafter keeps: a bad batch changes nothing; reset
//    forgets the request; draft k depends only on what came before it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/drafter.h"
#include "engine/dspark.h"
#include "engine/verify.h"

namespace sp {
namespace {

using json = nlohmann::json;

const std::string kFixtures = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";

json load_json(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
}

// Tolerance against PyTorch, both fp32: the same bound and reasoning as
// test_reference's kRtol (summation order and exp/rsqrt implementations
// differ by a few ulp per operation; the error of a dot product scales with
// its row, so the bound is on the tensor's scale). The drafter adds one
// projection (fc) and a rank-r product to the target's depth.
constexpr double kRtol = 1e-5;

// max |got - want| <= kRtol * max |want|; prints the worst error and the share of the bound used.
void expect_close(const std::vector<float>& got, const json& want_rows, const std::string& what) {
    std::vector<float> want;
    for (const json& row : want_rows) {
        if (row.is_array())
            for (const json& v : row) want.push_back(v.get<float>());
        else
            want.push_back(row.get<float>());
    }
    ASSERT_EQ(got.size(), want.size()) << what;
    double scale = 0, worst = 0;
    for (size_t i = 0; i < want.size(); i++) {
        scale = std::max(scale, double(std::fabs(want[i])));
        worst = std::max(worst, double(std::fabs(got[i] - want[i])));
    }
    const double bound = kRtol * std::max(scale, 1e-30);
    std::printf("  %-44s max err %.2e of scale %.2e (%.0f%% of bound)\n", what.c_str(), worst, scale,
                100 * worst / bound);
    EXPECT_LE(worst, bound) << what;
}

// The hidden states the drafter reads, by the CPU reference target.
struct TargetRun {
    ModelWeights w;
    std::vector<float> logits, hidden;  // (T, V), (m, T, d)
    int T = 0;
};

TargetRun run_target(const std::string& target, const std::vector<int>& tokens, const std::vector<int>& layers) {
    TargetRun r;
    r.w = weights_load(kFixtures + target);
    r.T = int(tokens.size());
    auto b = backend_cpu(r.w, 1);
    b->forward(RaggedBatch{{0}, {r.T}, tokens}, &r.logits, layers, &r.hidden);
    return r;
}

// Drafts at one anchor of `tokens`, feeding the context from `from` to the anchor.
DraftOutput draft_at(Drafter& d, const TargetRun& t, const std::vector<int>& tokens, int from, int anchor_pos,
                     float temperature, uint64_t request, uint64_t seed, const std::vector<int>& forced = {}) {
    DraftBatch in;
    in.slot = {0};
    in.n_ctx = {anchor_pos - from};
    for (int i = from; i < anchor_pos; i++) {
        in.ctx_tokens.push_back(tokens[size_t(i)]);
        in.ctx_row.push_back(i);
    }
    in.hidden = t.hidden.data();
    in.hidden_T = t.T;
    in.anchor = {tokens[size_t(anchor_pos)]};
    in.n_draft = {d.gamma()};
    in.temperature = {temperature};
    in.request = {request};
    in.seed = seed;
    in.forced = forced;
    DraftOutput out;
    d.draft(in, &out);
    return out;
}

// The Markov-corrected logits of the last draft call cannot be read from a
// DraftOutput, but q = softmax(logits / 1) at T = 1 can: compare it with the
// softmax of the reference's logits.
std::vector<float> softmax_rows(const json& rows) {
    std::vector<float> out;
    for (const json& row : rows) {
        std::vector<float> lg = row.get<std::vector<float>>(), p(lg.size());
        softmax_row(p.data(), lg.data(), int(lg.size()), 1.0f);
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

// `reference` is the fixture's dump: dspark_reference.json (DSpark, DFlash)
// or eagle3_reference.json (EAGLE-3: no confidence head, no target logits).
void check_drafter_fixture(const std::string& name, const std::string& reference) {
    const std::string dir = kFixtures + name;
    const json ref = load_json(dir + "/" + reference);
    const std::vector<int> tokens = ref["tokens"].get<std::vector<int>>();
    const std::vector<int> layers = ref["target_layer_ids"].get<std::vector<int>>();
    const TargetRun t = run_target("tiny-qwen3-4l", tokens, layers);
    const int d = t.w.cfg.hidden, V = t.w.cfg.vocab;

    // 1. the target's hidden states at the drafter's layers and its logits
    for (size_t i = 0; i < layers.size(); i++) {
        std::vector<float> h(t.hidden.begin() + long(i * t.T * d), t.hidden.begin() + long((i + 1) * t.T * d));
        expect_close(h, ref["target_layer_hidden"][std::to_string(layers[i])],
                     name + " target layer " + std::to_string(layers[i]));
    }
    if (ref.contains("target_logits")) expect_close(t.logits, ref["target_logits"], name + " target logits");

    // 2. per anchor, one incremental drafter per mode
    auto open = [&] { return drafter_open_cpu(dir, t.w, DrafterOptions{0, 1}); };
    auto greedy = open(), forced = open(), sampled = open();
    ASSERT_EQ(greedy->target_layers(), layers);
    const int G = greedy->gamma();
    ASSERT_EQ(G, ref["block_size"].get<int>());
    const bool confidence = greedy->has_confidence();
    int from = 0;
    for (const json& a : ref["anchors"]) {
        const int pos = a["anchor_pos"].get<int>();
        SCOPED_TRACE("anchor " + std::to_string(pos));
        ASSERT_EQ(tokens[size_t(pos)], a["anchor"].get<int>());
        const std::string at = name + " @" + std::to_string(pos) + " ";

        DraftOutput g = draft_at(*greedy, t, tokens, from, pos, 0, 0, 0);
        EXPECT_EQ(std::vector<int>(g.tokens.begin(), g.tokens.end()), a["greedy_block"].get<std::vector<int>>());
        if (confidence) expect_close(g.conf_logit, a["greedy_conf_logits"], at + "greedy conf logits");

        std::vector<int> f(size_t(G), -1);
        const std::vector<int> forced_tokens = a["forced"].get<std::vector<int>>();
        std::copy(forced_tokens.begin(), forced_tokens.end(), f.begin());
        // T = 1 exposes the logits through q = softmax(logits)
        DraftOutput fo = draft_at(*forced, t, tokens, from, pos, 1.0f, 0, 0, f);
        expect_close(std::vector<float>(fo.q, fo.q + size_t(G) * V), json(softmax_rows(a["forced_logits"])),
                     at + "forced q = softmax(logits)");
        if (confidence) {
            expect_close(fo.conf_logit, a["forced_conf_logits"], at + "forced conf logits");
            // calibrated: sigma(z / T_k) with calibration.json's temperatures
            const json cal = load_json(dir + "/calibration.json");
            for (int k = 0; k < G; k++) {
                const double z = a["forced_conf_logits"][size_t(k)].get<double>();
                EXPECT_NEAR(fo.conf[size_t(k)], 1 / (1 + std::exp(-z / cal["temperatures"][size_t(k)].get<double>())),
                            1e-5);
            }
        }

        const json& s = a["sampled"];
        DraftOutput so = draft_at(*sampled, t, tokens, from, pos, s["temperature"].get<float>(),
                                  s["request"].get<uint64_t>(), s["seed"].get<uint64_t>());
        EXPECT_EQ(std::vector<int>(so.tokens.begin(), so.tokens.end()), s["block"].get<std::vector<int>>());
        if (confidence) expect_close(so.conf_logit, s["conf_logits"], at + "sampled conf logits");
        from = pos;
    }
    (void)d;
}

// ---------------------------------------------------------------------------
// [SECTION] DSpark and DFlash against PyTorch

TEST(DSparkReference, MatchesPyTorchOnTheDSparkFixture) {
    check_drafter_fixture("tiny-dspark", "dspark_reference.json");
}
TEST(DSparkReference, MatchesPyTorchOnTheDFlashFixture) {
    check_drafter_fixture("tiny-dflash", "dspark_reference.json");
}
TEST(Eagle3Reference, MatchesPyTorchOnTheEagle3Fixture) {
    check_drafter_fixture("tiny-eagle3", "eagle3_reference.json");
}

TEST(DSparkReference, ReadsTheCheckpointConfig) {
    const DSparkConfig c = dspark_config_load(kFixtures + "tiny-dspark/config.json");
    EXPECT_EQ(c.target_layers, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(c.block_size, 4);
    EXPECT_EQ(c.mask_token, 3);
    EXPECT_EQ(c.markov_rank, 16);
    EXPECT_TRUE(c.confidence && c.confidence_with_markov);
    EXPECT_EQ(c.layers.n_layers, 2);
    const DSparkConfig f = dspark_config_load(kFixtures + "tiny-dflash/config.json");
    EXPECT_EQ(f.markov_rank, 0);
    EXPECT_FALSE(f.confidence);
}

// ---------------------------------------------------------------------------
// [SECTION] n-gram lookup

TEST(NgramDrafter, ProposesWhatFollowedTheLatestLongestMatch) {
    auto d = drafter_ngram(1, 4, 100, 3, 1);
    DraftBatch in;
    in.slot = {0};
    // history 5 6 7 8 | 9 5 6 7 1 2 | 5 6, anchor 7: the suffix "5 6 7" last
    // occurred at index 6, followed by 1 2 5 6 -> drafts 1 2 5 6
    in.ctx_tokens = {5, 6, 7, 8, 9, 5, 6, 7, 1, 2, 5, 6};
    in.n_ctx = {int(in.ctx_tokens.size())};
    in.anchor = {7};
    in.n_draft = {4};
    in.temperature = {0};
    in.request = {0};
    DraftOutput out;
    d->draft(in, &out);
    EXPECT_EQ(out.tokens, (std::vector<int>{1, 2, 5, 6}));
    EXPECT_EQ(out.q, nullptr);  // deterministic: q one-hot
    // next call: 7 accepted plus a correction 3; anchor 3 never seen: no drafts
    in.ctx_tokens = {7};
    in.n_ctx = {1};
    in.anchor = {3};
    d->draft(in, &out);
    EXPECT_EQ(out.tokens, (std::vector<int>{-1, -1, -1, -1}));
    // the match may run into the anchor: history ... 3, anchor 8 after "7 8" earlier
    // (suffix "3 8" unseen, "8" seen at index 3 followed by 9 5 6 7)
    in.ctx_tokens = {3};
    in.anchor = {8};
    d->draft(in, &out);
    EXPECT_EQ(out.tokens, (std::vector<int>{9, 5, 6, 7}));
    EXPECT_EQ(d->len(0), 14);
}

// ---------------------------------------------------------------------------
// [SECTION] the contract of every drafter

std::vector<std::pair<std::string, std::string>> drafters() {  // (target, drafter spec)
    return {{"tiny-qwen3-4l", kFixtures + "tiny-dspark"},
            {"tiny-qwen3-4l", kFixtures + "tiny-dflash"},
            {"tiny-qwen3-4l", kFixtures + "tiny-eagle3"},
            {"tiny-qwen3", kFixtures + "tiny-llama"},
            {"tiny-qwen3", "ngram"}};
}

TEST(DrafterContract, ABadBatchIsRefusedAndChangesNothing) {
    for (const auto& [target, spec] : drafters()) {
        SCOPED_TRACE(spec);
        const std::vector<int> tokens = {1, 5, 9, 23, 7, 5, 9, 23, 7};
        ModelWeights w = weights_load(kFixtures + target);
        auto d = drafter_open_cpu(spec, w, DrafterOptions{0, 2});
        const TargetRun t = run_target(target, tokens, d->target_layers());
        auto good = [&] {
            DraftBatch in;
            in.slot = {0};
            in.n_ctx = {4};
            in.ctx_tokens = {1, 5, 9, 23};
            in.ctx_row = {0, 1, 2, 3};
            in.hidden = t.hidden.data();
            in.hidden_T = t.T;
            in.anchor = {7};
            in.n_draft = {d->gamma()};
            in.temperature = {0};
            in.request = {0};
            return in;
        };
        std::vector<DraftBatch> bad(5, good());
        bad[0].slot = {2};                   // out of range
        bad[1].n_draft = {d->gamma() + 1};   // more than gamma
        bad[2].anchor = {w.cfg.vocab};       // outside the vocabulary
        bad[3].ctx_tokens = {1, 5, 9};       // fewer than n_ctx
        bad[4].slot = {0, 0};                // repeated (and arrays of the wrong size)
        DraftOutput out;
        for (const DraftBatch& b : bad) {
            EXPECT_THROW(d->draft(b, &out), Error);
            EXPECT_EQ(d->len(0), 0);
        }
        d->draft(good(), &out);
        const std::vector<int> first = out.tokens;
        EXPECT_EQ(d->len(0), 4);
        // reset forgets the request: the same call drafts the same again
        d->reset(0);
        EXPECT_EQ(d->len(0), 0);
        d->draft(good(), &out);
        EXPECT_EQ(out.tokens, first);
    }
}

// Draft k depends only on the context, the anchor and drafts before k: asking
// for fewer drafts gives a prefix of the same block.
TEST(DrafterContract, FewerDraftsAreAPrefixOfTheFullBlock) {
    for (const auto& [target, spec] : drafters()) {
        SCOPED_TRACE(spec);
        const std::vector<int> tokens = {1, 5, 9, 23, 7, 5, 9, 23, 7, 5};
        ModelWeights w = weights_load(kFixtures + target);
        const TargetRun t = run_target(target, tokens, drafter_open_cpu(spec, w, {})->target_layers());
        std::vector<int> full;
        for (int n = 4; n >= 1; n--) {
            auto d = drafter_open_cpu(spec, w, DrafterOptions{4, 1});
            DraftBatch in;
            in.slot = {0};
            in.n_ctx = {9};
            for (int i = 0; i < 9; i++) {
                in.ctx_tokens.push_back(tokens[size_t(i)]);
                in.ctx_row.push_back(i);
            }
            in.hidden = t.hidden.data();
            in.hidden_T = t.T;
            in.anchor = {tokens[9]};
            in.n_draft = {n};
            in.temperature = {1};
            in.request = {3};
            in.seed = 5;
            DraftOutput out;
            d->draft(in, &out);
            if (n == 4) full = out.tokens;
            for (int k = 0; k < n; k++) EXPECT_EQ(out.tokens[size_t(k)], full[size_t(k)]) << n << " " << k;
            for (int k = n; k < 4; k++) EXPECT_EQ(out.tokens[size_t(k)], -1);
        }
    }
}

}  // namespace
}  // namespace sp
