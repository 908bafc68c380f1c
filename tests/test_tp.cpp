// test_tp.cpp: the tensor-parallel partition (engine/tp.h) against the
// unsplit CPU reference forward: the same logits and the same K/V, split by
// KV heads, within fp32 rounding, for tp 2, 4 and 8 on a ragged batch.
#include "engine/tp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace sp;

namespace {

// A tiny decoder every tp up to 8 divides (16 query heads in 8 GQA groups of
// 2, 48 FFN columns) with a vocabulary of 97, which no tp > 1 divides: the
// last rank's slice is shorter.
Config tp_config(Arch arch) {
    Config c;
    EXPECT_TRUE(config_preset(arch == ARCH_QWEN3 ? "tiny-qwen3" : "tiny-llama", &c));
    c.vocab = 97;
    c.hidden = 128;
    c.ffn = 48;
    c.n_heads = 16;
    c.n_kv_heads = 8;
    c.head_dim = 8;
    c.bos_id = 1;
    c.eos_id = 2;
    config_check(c, "tp_config");
    return c;
}

RaggedBatch batch(std::vector<int> seq, std::vector<int> q_len, int first_token) {
    RaggedBatch b{std::move(seq), std::move(q_len), {}};
    int n = 0;
    for (int q : b.q_len) n += q;
    for (int i = 0; i < n; i++) b.tokens.push_back((first_token + 37 * i) % 97);
    return b;
}

// max |a - b| over max |b|
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); i++) {
        num = std::max(num, double(std::abs(a[i] - b[i])));
        den = std::max(den, double(std::abs(b[i])));
    }
    return den > 0 ? num / den : num;
}

// A prefill of three ragged prompts, then a verify-shaped step over two of
// them, split tp ways and whole: logits per step, then every cached K/V row.
void expect_split_equals_whole(Arch arch, int tp) {
    const Config c = tp_config(arch);
    const ModelWeights w = weights_random(c, 7);
    std::vector<ModelWeights> shards;
    std::vector<CpuKvCache> kvs;
    for (int r = 0; r < tp; r++) {
        shards.push_back(tp_shard(w, tp, r));
        kvs.push_back(kv_cache_init(shards.back().cfg, 3));
    }
    CpuKvCache kv = kv_cache_init(c, 3);
    for (const RaggedBatch& b : {batch({0, 1, 2}, {5, 3, 1}, 3), batch({2, 0}, {4, 1}, 11)}) {
        std::vector<float> whole, split;
        reference_forward(w, kv, b, &whole);
        reference_forward_tp(shards, kvs, b, &split);
        EXPECT_LT(rel_diff(split, whole), 1e-5) << "tp " << tp;
    }
    // rank r caches KV heads [r g, (r + 1) g) of every row
    const int g = c.n_kv_heads / tp, D = c.head_dim, kv_dim = c.n_kv_heads * D;
    for (int s = 0; s < 3; s++)
        for (int l = 0; l < c.n_layers; l++) {
            std::vector<float> k, v;
            for (int j = 0; j < kv.len[s]; j++)
                for (int r = 0; r < tp; r++) {
                    ASSERT_EQ(kvs[r].len[s], kv.len[s]);
                    const float* kr = kvs[r].k[s][l].data() + static_cast<size_t>(j) * g * D;
                    const float* vr = kvs[r].v[s][l].data() + static_cast<size_t>(j) * g * D;
                    k.insert(k.end(), kr, kr + g * D);
                    v.insert(v.end(), vr, vr + g * D);
                }
            ASSERT_EQ(k.size(), static_cast<size_t>(kv.len[s]) * kv_dim);
            EXPECT_LT(rel_diff(k, kv.k[s][l]), 1e-5) << "tp " << tp << " seq " << s << " layer " << l;
            EXPECT_LT(rel_diff(v, kv.v[s][l]), 1e-5) << "tp " << tp << " seq " << s << " layer " << l;
        }
}

}  // namespace

TEST(Tp, TheSplitForwardEqualsTheWholeOneForQwen3) {
    for (int tp : {1, 2, 4, 8}) expect_split_equals_whole(ARCH_QWEN3, tp);
}

TEST(Tp, TheSplitForwardEqualsTheWholeOneForLlamaWithTiedEmbeddings) {
    ASSERT_TRUE(tp_config(ARCH_LLAMA).tie_embeddings) << "the tied case is the point of this test";
    for (int tp : {2, 8}) expect_split_equals_whole(ARCH_LLAMA, tp);
}

// Rank r holds the rows and columns tp.h names, checked against hand-made indices.
TEST(Tp, AShardHoldsItsHeadsItsFfnColumnsAndItsVocabularySlice) {
    const Config c = tp_config(ARCH_QWEN3);
    const ModelWeights w = weights_random(c, 3);
    const int d = c.hidden, D = c.head_dim;
    const ModelWeights s = tp_shard(w, 4, 1);  // heads 4..7, KV heads 2..3, FFN 12..23, vocab 25..49
    EXPECT_EQ(s.cfg.n_heads, 4);
    EXPECT_EQ(s.cfg.n_kv_heads, 2);
    EXPECT_EQ(s.cfg.ffn, 12);
    EXPECT_EQ(s.cfg.vocab, 25);
    const LayerWeights &a = w.layers[1], &b = s.layers[1];
    EXPECT_EQ(b.wq[0], a.wq[size_t(4 * D) * d]);                           // row 4 D, column 0
    EXPECT_EQ(b.wk.back(), a.wk[size_t(4 * D) * d - 1]);                   // last row of KV head 3
    EXPECT_EQ(b.wo[size_t(1) * 4 * D + 5], a.wo[size_t(1) * 16 * D + 4 * D + 5]);  // row 1, column 4 D + 5
    EXPECT_EQ(b.w_up[0], a.w_up[size_t(12) * d]);
    EXPECT_EQ(b.w_down[size_t(2) * 12 + 11], a.w_down[size_t(2) * 48 + 23]);  // row 2, column 23
    EXPECT_EQ(s.embed[0], w.embed[size_t(25) * d]);
    EXPECT_EQ(s.lm_head.back(), w.lm_head[size_t(50) * d - 1]);
    int v0 = 0, v1 = 0;
    tp_vocab_range(97, 8, 7, &v0, &v1);  // slices of 13: the last holds 91..96
    EXPECT_EQ(v0, 91);
    EXPECT_EQ(v1, 97);
}

TEST(Tp, ATpThatDoesNotDivideTheModelIsRefusedInOneLine) {
    const Config c = tp_config(ARCH_QWEN3);
    for (int tp : {0, 3, 16}) {
        try {
            tp_check(c, tp);
            ADD_FAILURE() << "tp " << tp << " accepted";
        } catch (const Error& e) {
            const std::string msg = e.what();
            EXPECT_EQ(msg.rfind("tp " + std::to_string(tp) + ": expected", 0), 0u) << msg;
            EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        }
    }
    EXPECT_THROW(tp_shard(weights_random(c, 1), 2, 2), Error);  // rank outside [0, tp)
}

// A bad batch or mismatched caches throw before any rank's cache grows.
TEST(Tp, ABadBatchLeavesEveryRanksCacheAsItWas) {
    const Config c = tp_config(ARCH_QWEN3);
    const ModelWeights w = weights_random(c, 5);
    std::vector<ModelWeights> shards{tp_shard(w, 2, 0), tp_shard(w, 2, 1)};
    std::vector<CpuKvCache> kvs{kv_cache_init(shards[0].cfg, 2), kv_cache_init(shards[1].cfg, 2)};
    std::vector<float> logits;
    RaggedBatch bad = batch({0}, {2}, 0);
    bad.tokens[1] = 97;  // past the vocabulary
    EXPECT_THROW(reference_forward_tp(shards, kvs, bad, &logits), Error);
    std::vector<CpuKvCache> one{kvs[0]};
    EXPECT_THROW(reference_forward_tp(shards, one, batch({0}, {2}, 0), &logits), Error);
    for (const CpuKvCache& kv : kvs) {
        EXPECT_EQ(kv.len, (std::vector<int>{0, 0}));
        EXPECT_TRUE(kv.k[0][0].empty());
    }
}
