// test_cost.cpp: the cost models (simulator/cost.h), tested from the outside.
//
// Every expectation is a closed form written out here from the model
// presets' raw numbers (V, d, L, KVH, D, P) and the GPU datasheet numbers,
// never a value the code computed: the roofline regimes (memory-bound flat
// in B, compute-bound linear in B, the ridge between), the KV and MoE terms,
// tensor parallelism and its collectives, the drafters' growth in gamma;
// then the measured model's interpolation rule on a grid whose latency is an
// exact linear function, so that interpolation must reproduce it; then
// loading cells from a real trace store and the one-line validation messages.
#include "simulator/cost.h"

#include <gtest/gtest.h>

#include "tests/scratch.h"
#include <stdlib.h>

#include <cmath>
#include <functional>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "traces/models.h"

using namespace sp;

// [SECTION] helpers -------------------------------------------------------------------

static ModelShape preset(const char* name) {
    ModelShape m;
    EXPECT_TRUE(model_preset(name, &m)) << name;
    return m;
}

static CostModel roofline_model(const char* model, const char* gpu = "h100-sxm") {
    CostModel c;
    c.kind = COST_ROOFLINE;
    c.roofline.model = preset(model);
    EXPECT_TRUE(gpu_preset(gpu, &c.roofline.gpu)) << gpu;
    c.roofline.bw_efficiency = 0.8;
    c.roofline.flops_efficiency = 0.6;
    return c;
}

static BatchShape decode_batch(int n_seqs, int n_tokens, double context) {
    BatchShape b;
    b.n_decode_seqs = n_seqs;
    b.n_decode_tokens = n_tokens;
    b.decode_context = context;
    return b;
}

// Relative closeness, for values far from zero.
#define EXPECT_REL(actual, expected, tol) EXPECT_NEAR((actual) / (expected), 1.0, (tol)) << #actual

// H100 SXM datasheet numbers and the efficiencies used above; its NCCL
// all-reduce bus bandwidth and per-call latency (cost.cpp's sources).
static const double BW = 3.35e12 * 0.8, RATE = 989e12 * 0.6, OVERHEAD = 30e-6;
static const double AR_BUS = 360e9, AR_LATENCY = 10e-6;

// Llama-3-8B (untied embeddings): V = 128256, d = 4096, L = 32, KVH = 8, D = 128, H = 32.
static const double LLAMA_VD = 128256.0 * 4096;
static const double LLAMA_KV_PER_TOKEN = 2.0 * 32 * 8 * 128 * 2;  // K and V, 32 layers, bf16

// [SECTION] roofline -----------------------------------------------------------------

TEST(CostRoofline, MemoryBoundTimeIsWeightsAndKvOverBandwidthPlusOverhead) {
    CostModel c = roofline_model("llama3-8b");
    double weights = (double(c.roofline.model.n_params) - LLAMA_VD) * 2;  // input table only gathered
    // 4 sequences verifying 2 tokens each over 1000 cached tokens: the cache is
    // read once per sequence and the 8 new tokens' K/V written.
    double kv = LLAMA_KV_PER_TOKEN * (4 * 1000 + 8);
    EXPECT_REL(cost_forward_s(c, decode_batch(4, 8, 1000)), (weights + kv) / BW + OVERHEAD, 1e-9);
}

TEST(CostRoofline, MemoryBoundTimeIsNearlyFlatInB) {
    CostModel c = roofline_model("llama3-8b");
    double t1 = cost_forward_s(c, decode_batch(1, 1, 0));
    double t32 = cost_forward_s(c, decode_batch(8, 32, 0));
    EXPECT_GT(t32, t1);
    EXPECT_LT(t32 / t1, 1.001);  // 32x the tokens, the same weights: only KV writes grow
}

TEST(CostRoofline, UntiedModelsSkipTheInputTableAndTiedModelsReadTheirOneTable) {
    CostModel untied = roofline_model("qwen3-8b");
    double v_d_8b = 151936.0 * 4096;
    EXPECT_REL(roofline_weight_bytes(untied.roofline, 1), (double(untied.roofline.model.n_params) - v_d_8b) * 2,
               1e-12);
    CostModel tied = roofline_model("qwen3-0.6b");  // the table is the LM head, read in full
    EXPECT_REL(roofline_weight_bytes(tied.roofline, 1), double(tied.roofline.model.n_params) * 2, 1e-12);
}

// The projections and the attention are separate kernels (cost.cpp): the
// GEMMs are compute-bound here, while the attention of a token over itself
// (4*H*D FLOPs per layer) is bound by writing its K and V.
TEST(CostRoofline, ComputeBoundTimeIsTwoFlopsPerParameterPerTokenPlusTheKvWriteAndDoublesWithB) {
    CostModel c = roofline_model("llama3-8b");
    double params = double(c.roofline.model.n_params) - LLAMA_VD;
    int b = 16384;  // 16384 sequences of one token each, empty caches: ~74x the ridge
    double attention_flops = 4.0 * 32 * 32 * 128 * b;
    ASSERT_LT(attention_flops / RATE, LLAMA_KV_PER_TOKEN * b / BW);
    double t = cost_forward_s(c, decode_batch(b, b, 0));
    EXPECT_REL(t, 2 * params * b / RATE + LLAMA_KV_PER_TOKEN * b / BW + OVERHEAD, 1e-9);
    double t2 = cost_forward_s(c, decode_batch(2 * b, 2 * b, 0));
    EXPECT_NEAR((t2 - OVERHEAD) / (t - OVERHEAD), 2.0, 1e-9);
}

// overlap n combines each kernel family's memory and math time as their
// n-norm: 1 adds them, 2 is the Euclidean norm, the default (0) the max.
TEST(CostRoofline, TheOverlapExponentTakesTheNNormOfMemoryAndMathTimePerKernelFamily) {
    CostModel c = roofline_model("llama3-8b");
    const int b = 200;
    const double weights = (double(c.roofline.model.n_params) - LLAMA_VD) * 2;
    const double w_mem = weights / BW, w_math = 2 * (weights / 2) * b / RATE;
    const double a_mem = LLAMA_KV_PER_TOKEN * b / BW, a_math = 4.0 * 32 * 32 * 128 * b / RATE;
    auto norm = [](double x, double y, double n) { return std::pow(std::pow(x, n) + std::pow(y, n), 1 / n); };
    c.roofline.overlap_n = 1;
    EXPECT_REL(cost_forward_s(c, decode_batch(b, b, 0)), w_mem + w_math + a_mem + a_math + OVERHEAD, 1e-9);
    c.roofline.overlap_n = 2;
    EXPECT_REL(cost_forward_s(c, decode_batch(b, b, 0)), norm(w_mem, w_math, 2) + norm(a_mem, a_math, 2) + OVERHEAD,
               1e-9);
    for (double n : {1.25, 1.5, 3.0}) {  // 1.5 has a path of its own, the others std::pow
        c.roofline.overlap_n = n;
        EXPECT_REL(cost_forward_s(c, decode_batch(b, b, 0)), norm(w_mem, w_math, n) + norm(a_mem, a_math, n) + OVERHEAD,
                   1e-12)
            << n;
    }
    c.roofline.overlap_n = 0;
    EXPECT_REL(cost_forward_s(c, decode_batch(b, b, 0)),
               std::max(w_mem, w_math) + std::max(a_mem, a_math) + OVERHEAD, 1e-9);
}

TEST(CostRoofline, TheRidgeIsRateTimesBytesPerWeightOverTwiceTheBandwidth) {
    CostModel c = roofline_model("llama3-8b");
    EXPECT_REL(roofline_ridge_tokens(c.roofline), 989e12 * 0.6 * 2 / (2 * 3.35e12 * 0.8), 1e-12);
    c.roofline.bw_efficiency = 1;
    c.roofline.flops_efficiency = 1;
    // simulators.md s6.2: H100 SXM bf16, 989 TFLOPS / 3.35 TB/s ~ 295 tokens per step.
    EXPECT_NEAR(roofline_ridge_tokens(c.roofline), 295.2, 0.1);
}

TEST(CostRoofline, TheRidgeSeparatesTheFlatRegimeFromTheLinearOne) {
    CostModel c = roofline_model("llama3-8b");
    c.roofline.gpu.overhead_s = 0;
    int ridge = int(roofline_ridge_tokens(c.roofline));  // 221 at these efficiencies
    double weights = (double(c.roofline.model.n_params) - LLAMA_VD) * 2;
    // At half the ridge the weight read dominates; at twice it the FLOPs do.
    double half = cost_forward_s(c, decode_batch(ridge / 2, ridge / 2, 0));
    EXPECT_REL(half, (weights + LLAMA_KV_PER_TOKEN * (ridge / 2)) / BW, 1e-9);
    double twice = cost_forward_s(c, decode_batch(2 * ridge, 2 * ridge, 0));
    EXPECT_GT(twice, 1.9 * half);
}

TEST(CostRoofline, DoublingTheContextDoublesTheKvTerm) {
    CostModel c = roofline_model("llama3-8b");
    EXPECT_DOUBLE_EQ(roofline_kv_bytes_per_token(c.roofline.model), LLAMA_KV_PER_TOKEN);
    double t0 = cost_forward_s(c, decode_batch(16, 64, 0));
    double t1 = cost_forward_s(c, decode_batch(16, 64, 2000));
    double t2 = cost_forward_s(c, decode_batch(16, 64, 4000));
    EXPECT_REL(t1 - t0, 16 * 2000 * LLAMA_KV_PER_TOKEN / BW, 1e-6);
    EXPECT_REL(t2 - t0, 2 * (t1 - t0), 1e-9);
}

TEST(CostRoofline, AMoeForwardOfOneTokenReadsKOfEExpertsAndALargeBatchNearlyAll) {
    CostModel c = roofline_model("qwen3-8b");
    c.roofline.moe = {64, 4, 0.7};
    double p = double(c.roofline.model.n_params);
    double dense = p - 151936.0 * 4096 - 0.7 * p, expert = 0.7 * p;
    EXPECT_REL(roofline_weight_bytes(c.roofline, 1), (dense + expert * 4 / 64) * 2, 1e-12);
    EXPECT_REL(roofline_weight_bytes(c.roofline, 16), (dense + expert * (1 - std::pow(60.0 / 64, 16))) * 2, 1e-12);
    EXPECT_REL(roofline_weight_bytes(c.roofline, 4096), (dense + expert) * 2, 1e-9);
    // A token's FLOPs are those of its active parameters only.
    CostModel big = c;
    big.roofline.gpu.overhead_s = 0;
    int b = 65536;
    double t = cost_forward_s(big, decode_batch(b, b, 0));
    double kv_write = 2.0 * 36 * 8 * 128 * 2 * b;  // K and V of each token, every layer; the attention's bound
    EXPECT_REL(t, 2 * (dense + expert * 4 / 64) * b / RATE + kv_write / BW, 1e-9);
}

// Two GPUs halve the bytes and FLOPs each reads and does; the forward then
// pays its collectives on top: 2 x 32 + 1 all-reduces (two a layer, one for
// the embedding), each moving 2 (2 - 1) / 2 = 1 message through each GPU,
// and the logits' all-gather half of them.
TEST(CostRoofline, TwoWayTensorParallelismHalvesTheTimeLessOverheadAndAddsItsCollectives) {
    for (int b : {8, 20000}) {  // memory-bound (long contexts) and compute-bound (empty caches)
        CostModel one = roofline_model("llama3-8b"), two = one;
        two.roofline.tp = 2;
        BatchShape shape = decode_batch(b / 2, b, b < 100 ? 3000 : 0);
        const double T = b;  // tokens through the all-reduces, and logits gathered
        const double comm = 65 * (AR_LATENCY + T * 4096 * 2 / AR_BUS) + AR_LATENCY + T * 128256 * 4 * 0.5 / AR_BUS;
        EXPECT_REL(cost_forward_s(two, shape) - OVERHEAD - comm, (cost_forward_s(one, shape) - OVERHEAD) / 2, 1e-9);
    }
}

TEST(CostRoofline, AnEmptyBatchCostsNothingAndNonsenseInputsStayFinite) {
    CostModel c = roofline_model("llama3-8b");
    EXPECT_EQ(cost_forward_s(c, BatchShape{}), 0);
    double nan = std::numeric_limits<double>::quiet_NaN();
    for (BatchShape b : {decode_batch(-3, 5, nan), decode_batch(0, 5, -10), decode_batch(2, -1, 1e300)}) {
        double t = cost_forward_s(c, b);
        EXPECT_TRUE(std::isfinite(t) && t >= 0) << t;
    }
}

TEST(CostRoofline, APrefillChunkAttendsItsCachedContextPlusHalfItself) {
    CostModel c = roofline_model("llama3-8b");
    c.roofline.gpu.overhead_s = 0;
    BatchShape b;
    b.n_prefill_seqs = 2;
    b.n_prefill_tokens = 8192;  // two chunks of 4096, compute-bound
    b.prefill_context = 4096;
    double layers = double(c.roofline.model.n_params) - 2 * LLAMA_VD;
    // Each chunk token sees 4096 cached keys plus (4096 + 1) / 2 of its own chunk
    // on average; the LM head runs once per chunk, on its last token.
    double keys = 8192 * (4096 + 4097 / 2.0);
    double flops = 2 * layers * 8192 + 2 * LLAMA_VD * 2 + 4.0 * 32 * 32 * 128 * keys;
    EXPECT_REL(cost_forward_s(c, b), flops / RATE, 1e-9);
}

// [SECTION] drafters -------------------------------------------------------------------

static CostModel with_drafter(CostModel c, DrafterKind kind, int n_layers) {
    c.drafter.kind = kind;
    c.drafter.n_layers = n_layers;
    c.drafter.markov_rank = 256;
    return c;
}

TEST(CostDraft, NoDrafterOrNoDraftsCostsNothing) {
    CostModel c = roofline_model("qwen3-8b");
    EXPECT_EQ(cost_draft_s(c, 8, 4, 1000), 0);  // DRAFTER_NONE
    EXPECT_EQ(cost_draft_s(with_drafter(c, DRAFTER_MTP, 1), 8, 0, 1000), 0);
    EXPECT_EQ(cost_draft_s(with_drafter(c, DRAFTER_DSPARK, 5), 8, 0, 1000), 0);
}

// Qwen3-8B (untied): one decoder layer is (P - 2*V*d) / L parameters.
static const double QWEN_VD = 151936.0 * 4096;
static double qwen8b_layer_params() { return (double(preset("qwen3-8b").n_params) - 2 * QWEN_VD) / 36; }

TEST(CostDraft, MtpCostsGammaSequentialForwardsEachAtLeastTheOverhead) {
    CostModel c = with_drafter(roofline_model("qwen3-8b"), DRAFTER_MTP, 1);
    const double kv_layer = 2.0 * 8 * 128 * 2;  // K and V of one token in one layer, bf16
    for (int r : {1, 4})
        for (double ctx : {0.0, 2000.0})
            for (int gamma : {1, 3, 7}) {
                // Step j reads a draft layer and the LM head, reads R*(ctx + j) cached
                // K/V and writes R new ones, and pays one overhead (memory-bound at small R).
                double expected = 0;
                for (int j = 0; j < gamma; j++)
                    expected += ((qwen8b_layer_params() + QWEN_VD) * 2 + kv_layer * r * (ctx + j + 1)) / BW + OVERHEAD;
                double t = cost_draft_s(c, r, gamma, ctx);
                EXPECT_GE(t, gamma * OVERHEAD);
                EXPECT_REL(t, expected, 1e-9) << "R=" << r << " ctx=" << ctx << " gamma=" << gamma;
            }
}

TEST(CostDraft, DSparkGrowsByOneMarkovStepPerDraftWhileMtpGrowsByAWholeForward) {
    CostModel mtp = with_drafter(roofline_model("qwen3-8b"), DRAFTER_MTP, 1);
    CostModel dspark = with_drafter(roofline_model("qwen3-8b"), DRAFTER_DSPARK, 5);
    double mtp_slope = (qwen8b_layer_params() + QWEN_VD) * 2 / BW + OVERHEAD;
    double markov_slope = 256.0 * 151936 * 2 / BW + OVERHEAD;  // W2 (r x V) read, bf16
    for (int r : {1, 4}) {
        double d_mtp = cost_draft_s(mtp, r, 8, 2000) - cost_draft_s(mtp, r, 4, 2000);
        double d_dspark = cost_draft_s(dspark, r, 8, 2000) - cost_draft_s(dspark, r, 4, 2000);
        EXPECT_REL(d_mtp / 4, mtp_slope, 3e-2) << "R=" << r;  // plus the growing draft KV read
        EXPECT_REL(d_dspark / 4, markov_slope, 1e-2) << "R=" << r;
        EXPECT_LT(d_dspark, d_mtp / 5) << "R=" << r;
    }
    // Its one parallel forward: five layers and the LM head over the block.
    double forward = (5 * qwen8b_layer_params() + QWEN_VD) * 2 / BW + OVERHEAD;
    EXPECT_REL(cost_draft_s(dspark, 1, 4, 0), forward + 4 * markov_slope, 1e-4);
}

// A forward over n decoder layers pays overhead_s + n * overhead_s_per_layer:
// the target its 36, the DSpark forward its 5, each MTP forward its 1; a
// Markov step runs no layer and pays overhead_s alone. Every case here is
// memory-bound (max roofline), so each time is bytes / BW plus overheads.
TEST(CostDraft, EachForwardPaysThePerLayerOverheadOfItsOwnLayersAndAMarkovStepNone) {
    const double PER_LAYER = 20e-6, KV_LAYER = 2.0 * 8 * 128 * 2;  // K and V of one token in one layer, bf16
    CostModel c = roofline_model("qwen3-8b");
    c.roofline.gpu.overhead_s_per_layer = PER_LAYER;
    // The target: one sequence of 1 token over 1000 cached, the untied input table only gathered.
    const double target_weights = (double(c.roofline.model.n_params) - QWEN_VD) * 2;
    EXPECT_REL(cost_forward_s(c, decode_batch(1, 1, 1000)),
               (target_weights + 36 * KV_LAYER * 1001) / BW + OVERHEAD + 36 * PER_LAYER, 1e-9);
    // DSpark, R = 2, gamma = 4, context 1000: one forward over the 8 block
    // tokens (5 layers and the LM head; 2 x 1000 cached K/V read and 8 written
    // in each layer), then 4 Markov steps, each reading W2 (256 x V).
    const double forward =
        ((5 * qwen8b_layer_params() + QWEN_VD) * 2 + 5 * KV_LAYER * (2 * 1000 + 8)) / BW + OVERHEAD + 5 * PER_LAYER;
    const double markov = 256.0 * 151936 * 2 / BW + OVERHEAD;
    EXPECT_REL(cost_draft_s(with_drafter(c, DRAFTER_DSPARK, 5), 2, 4, 1000), forward + 4 * markov, 1e-9);
    // MTP, R = 1, gamma = 3: step j reads the layer and the LM head and
    // 1000 + j cached K/V, writes one, and pays one layer's overhead.
    double mtp = 0;
    for (int j = 0; j < 3; j++)
        mtp += ((qwen8b_layer_params() + QWEN_VD) * 2 + KV_LAYER * (1000 + j + 1)) / BW + OVERHEAD + PER_LAYER;
    EXPECT_REL(cost_draft_s(with_drafter(c, DRAFTER_MTP, 1), 1, 3, 1000), mtp, 1e-9);
}

// [SECTION] tensor-parallel collectives ---------------------------------------------

// The same model with collectives that cost nothing: the rest of the price.
static CostModel without_comm(CostModel c) {
    c.roofline.gpu.allreduce_latency_s = 0;
    c.roofline.gpu.allreduce_bus_bytes_per_s = 1e300;
    return c;
}

// One ring all-reduce of M bytes: latency + M * 2 (tp - 1) / tp / busbw.
TEST(CostComm, AnAllReduceIsItsLatencyPlusTwiceTpLessOneOverTpOfItsBytesOverTheBusBandwidth) {
    Roofline r = roofline_model("llama3-70b").roofline;
    const double m = 4194304;  // 256 tokens x 8192 x 2 bytes
    for (int tp : {2, 4, 8}) {
        r.tp = tp;
        EXPECT_REL(roofline_allreduce_s(r, m), AR_LATENCY + m * 2 * (tp - 1) / tp / AR_BUS, 1e-12) << "tp " << tp;
    }
    r.tp = 1;
    EXPECT_EQ(roofline_allreduce_s(r, m), 0);
    r.tp = 4;
    EXPECT_EQ(roofline_allreduce_s(r, 0), 0);  // no message, no call
}

// Llama-3-70B (L = 80, d = 8192, V = 128256) at tp 4, 256 sequences decoding
// one token each: 2 x 80 all-reduces (and one for the embedding) of 256 x
// 8192 x 2 = 4,194,304 bytes, each moving 2 x 3 / 4 = 1.5 of it, and one
// all-gather of the 256 tokens' fp32 logits, 3 / 4 of 256 x 128256 x 4
// bytes; all of it added to the step.
TEST(CostComm, ALlama70bDecodeAtTp4PaysTwoAllReducesALayerOneForTheEmbeddingAndOneLogitGather) {
    CostModel c = roofline_model("llama3-70b");
    c.roofline.tp = 4;
    const double comm = 161 * (AR_LATENCY + 4194304 * 1.5 / AR_BUS) + AR_LATENCY + 256 * 128256 * 4 * 0.75 / AR_BUS;
    EXPECT_REL(roofline_comm_s(c.roofline, 80, 256, 256), comm, 1e-12);
    const BatchShape b = decode_batch(256, 256, 1000);
    EXPECT_REL(cost_forward_s(c, b) - cost_forward_s(without_comm(c), b), comm, 1e-9);
    // A prefill chunk's tokens all cross the all-reduces; only its last token's logits are gathered.
    BatchShape p;
    p.n_prefill_seqs = 1;
    p.n_prefill_tokens = 256;
    const double prefill = 161 * (AR_LATENCY + 4194304 * 1.5 / AR_BUS) + AR_LATENCY + 128256 * 4 * 0.75 / AR_BUS;
    EXPECT_REL(cost_forward_s(c, p) - cost_forward_s(without_comm(c), p), prefill, 1e-9);
}

// At tp 1 there is nothing to communicate, whatever the figures say: every
// price is the one before the collectives existed, to the bit.
TEST(CostComm, OneGpuPaysExactlyNothingForCollectives) {
    CostModel c = with_drafter(roofline_model("llama3-70b"), DRAFTER_DSPARK, 5), slow = c;
    slow.roofline.gpu.allreduce_latency_s = 1;
    slow.roofline.gpu.allreduce_bus_bytes_per_s = 1;
    EXPECT_EQ(roofline_comm_s(c.roofline, 80, 256, 256), 0);
    for (int r : {1, 256}) {
        EXPECT_EQ(cost_forward_s(slow, decode_batch(r, 4 * r, 1000)), cost_forward_s(c, decode_batch(r, 4 * r, 1000)));
        EXPECT_EQ(cost_draft_s(slow, r, 4, 1000), cost_draft_s(c, r, 4, 1000));
    }
}

// A drafter forward communicates as the target's does, over its own layers,
// its embedding and its tokens: MTP each of its gamma forwards over R
// tokens, DSpark its one block forward over R * gamma tokens (every slot's
// logits gathered for the Markov head). The Markov steps run replicated on
// every GPU: no collective, so DSpark's communication does not grow with
// its steps.
TEST(CostComm, DrafterForwardsCommunicateOverTheirLayersAndDSparksMarkovStepsDoNot) {
    const double d = 4096, V = 151936;  // qwen3-8b
    for (int tp : {2, 8}) {
        const double ar = 2.0 * (tp - 1) / tp, ag = double(tp - 1) / tp;
        for (int r : {1, 64}) {
            CostModel dspark = with_drafter(roofline_model("qwen3-8b"), DRAFTER_DSPARK, 5);
            dspark.roofline.tp = tp;
            for (int gamma : {2, 7}) {
                const double block = r * gamma;
                const double comm = (2 * 5 + 1) * (AR_LATENCY + block * d * 2 * ar / AR_BUS) + AR_LATENCY +
                                    block * V * 4 * ag / AR_BUS;
                EXPECT_REL(cost_draft_s(dspark, r, gamma, 500) - cost_draft_s(without_comm(dspark), r, gamma, 500),
                           comm, 1e-9)
                    << "tp " << tp << " R " << r << " gamma " << gamma;
            }
            CostModel mtp = with_drafter(roofline_model("qwen3-8b"), DRAFTER_MTP, 1);
            mtp.roofline.tp = tp;
            const double step = (2 * 1 + 1) * (AR_LATENCY + r * d * 2 * ar / AR_BUS) + AR_LATENCY +
                                r * V * 4 * ag / AR_BUS;
            EXPECT_REL(cost_draft_s(mtp, r, 3, 500) - cost_draft_s(without_comm(mtp), r, 3, 500), 3 * step, 1e-9)
                << "tp " << tp << " R " << r;
        }
    }
}

// [SECTION] presets and names --------------------------------------------------------

TEST(CostGpuPresets, TheFourPresetsCarryTheirDatasheetAndNcclNumbers) {
    struct Row {
        const char* name;
        double bw, flops, bytes, bus;  // bus: NCCL all-reduce bus bandwidth, 80 % of one NVLink direction
    };
    const Row rows[] = {{"h100-sxm", 3.35e12, 989e12, 80e9, 360e9},
                        {"h200", 4.8e12, 989e12, 141e9, 360e9},
                        {"a100-80gb", 2.039e12, 312e12, 80e9, 240e9},
                        {"b200", 8e12, 2.25e15, 180e9, 720e9}};
    for (const Row& row : rows) {
        GpuSpec g;
        ASSERT_TRUE(gpu_preset(row.name, &g)) << row.name;
        EXPECT_EQ(g.name, row.name);
        EXPECT_DOUBLE_EQ(g.hbm_bytes_per_s, row.bw) << row.name;
        EXPECT_DOUBLE_EQ(g.bf16_flops, row.flops) << row.name;
        EXPECT_DOUBLE_EQ(g.hbm_bytes, row.bytes) << row.name;
        EXPECT_DOUBLE_EQ(g.allreduce_bus_bytes_per_s, row.bus) << row.name;
        EXPECT_DOUBLE_EQ(g.allreduce_latency_s, 10e-6) << row.name;
        EXPECT_GT(g.overhead_s, 0) << row.name;
        EXPECT_EQ(g.overhead_s_per_layer, 0) << row.name;  // all of the presets' overhead is per step
        EXPECT_NE(g.label.find("(datasheet)"), std::string::npos) << g.label;
    }
    EXPECT_EQ(gpu_preset_names(), (std::vector<std::string>{"h100-sxm", "h200", "a100-80gb", "b200"}));
}

TEST(CostGpuPresets, AnUnknownNameIsRefused) {
    GpuSpec g;
    EXPECT_FALSE(gpu_preset("h100", &g));
    EXPECT_FALSE(gpu_preset("", &g));
}

TEST(CostDrafterKinds, NamesParseBackAndUnknownNamesAreRefused) {
    for (int k = 0; k < DRAFTER_COUNT; k++) {
        DrafterKind back = DRAFTER_COUNT;
        ASSERT_TRUE(drafter_kind_parse(drafter_kind_name(DrafterKind(k)), &back));
        EXPECT_EQ(back, k);
    }
    EXPECT_STREQ(drafter_kind_name(DRAFTER_DSPARK), "dspark");
    DrafterKind k;
    EXPECT_FALSE(drafter_kind_parse("eagle3", &k));
}

// [SECTION] measured -------------------------------------------------------------------

// The synthetic truth: latency (us) exactly linear in B, context and R.
static double linear_us(double r, double b, double ctx) { return 100 + 2.5 * b + 0.01 * ctx + 3 * r; }

static Profile cell(Phase phase, int r, int b, int ctx, double us) {
    Profile p;
    p.gpu = "H100";
    p.model = preset("qwen3-8b");
    p.phase = phase;
    p.n_seqs = r;
    p.n_tokens = b;
    p.context = ctx;
    p.latency_us_p10 = p.latency_us_p50 = p.latency_us_p90 = us;
    p.n_samples = 10;
    return p;
}

// R in {1, 4, 16}, B in {1, 2, 4, ..., 512} with B >= R, context in {512, 4096}.
static std::vector<Profile> linear_grid(Phase phase, double offset = 0) {
    std::vector<Profile> cells;
    for (int r : {1, 4, 16})
        for (int ctx : {512, 4096})
            for (int b = 1; b <= 512; b *= 2)
                if (b >= r) cells.push_back(cell(phase, r, b, ctx, linear_us(r, b, ctx) + offset));
    return cells;
}

static CostModel measured_model() {
    CostModel c;
    c.kind = COST_MEASURED;
    c.drafter.kind = DRAFTER_DSPARK;
    c.measured.gpu = "H100";
    c.measured.model = "qwen3-8b";
    c.measured.verify = linear_grid(PHASE_VERIFY);
    c.measured.prefill = linear_grid(PHASE_PREFILL, 1000);
    c.measured.draft = linear_grid(PHASE_DRAFT, 50);
    return c;
}

TEST(CostMeasured, OffGridPointsReproduceALinearLatencyExactly) {
    CostModel c = measured_model();
    struct Q {
        int r, b;
        double ctx;
    };
    for (Q q : {Q{2, 5, 1000}, Q{10, 100, 3000}, Q{4, 300, 512}, Q{16, 17, 4095.5}, Q{1, 3, 600}}) {
        EXPECT_REL(cost_forward_s(c, decode_batch(q.r, q.b, q.ctx)), linear_us(q.r, q.b, q.ctx) * 1e-6, 1e-9)
            << "R=" << q.r << " B=" << q.b << " ctx=" << q.ctx;
    }
}

TEST(CostMeasured, BeyondTheLargestBTheLastSegmentIsExtended) {
    CostModel c = measured_model();
    EXPECT_REL(cost_forward_s(c, decode_batch(4, 2000, 1000)), linear_us(4, 2000, 1000) * 1e-6, 1e-9);
    // A curve whose last segment bends: 256 -> 512 rises by 1000 us, so 1024 adds 2000 more.
    c.measured.verify = {cell(PHASE_VERIFY, 1, 128, 0, 500), cell(PHASE_VERIFY, 1, 256, 0, 600),
                         cell(PHASE_VERIFY, 1, 512, 0, 1600)};
    EXPECT_REL(cost_forward_s(c, decode_batch(1, 1024, 0)), 3600e-6, 1e-12);
    // A last segment that falls (noise) does not extrapolate downwards.
    c.measured.verify.back().latency_us_p50 = 550;
    EXPECT_REL(cost_forward_s(c, decode_batch(1, 1024, 0)), 550e-6, 1e-12);
}

TEST(CostMeasured, BelowTheSmallestBTheSmallestCellsLatencyIsUsed) {
    CostModel c = measured_model();
    std::vector<Profile> only_r16;
    for (const Profile& p : c.measured.verify)
        if (p.n_seqs == 16) only_r16.push_back(p);
    c.measured.verify = only_r16;  // B starts at 16
    EXPECT_REL(cost_forward_s(c, decode_batch(16, 8, 512)), linear_us(16, 16, 512) * 1e-6, 1e-12);
}

TEST(CostMeasured, ContextAndROutsideTheMeasuredRangeAreClamped) {
    CostModel c = measured_model();
    EXPECT_REL(cost_forward_s(c, decode_batch(4, 64, 100)), linear_us(4, 64, 512) * 1e-6, 1e-12);
    EXPECT_REL(cost_forward_s(c, decode_batch(4, 64, 32768)), linear_us(4, 64, 4096) * 1e-6, 1e-12);
    EXPECT_REL(cost_forward_s(c, decode_batch(64, 128, 512)), linear_us(16, 128, 512) * 1e-6, 1e-12);
}

TEST(CostMeasured, AnIrregularGridStillGivesFiniteLatenciesAboveTheFloor) {
    CostModel c = measured_model();
    std::vector<Profile> holes;
    for (size_t i = 0; i < c.measured.verify.size(); i++)
        if (i % 3 != 1) holes.push_back(c.measured.verify[i]);  // a third of the cells gone
    holes.push_back(cell(PHASE_VERIFY, 7, 300, 2000, linear_us(7, 300, 2000)));  // a lone level
    c.measured.verify = holes;
    double nan = std::numeric_limits<double>::quiet_NaN();
    for (int r : {0, 1, 3, 7, 9, 16, 100})
        for (int b : {-5, 1, 5, 77, 300, 511, 5000})
            for (double ctx : {nan, -1.0, 0.0, 700.0, 2000.0, 1e9}) {
                double t = cost_forward_s(c, decode_batch(r, b, ctx));
                ASSERT_TRUE(std::isfinite(t)) << r << " " << b << " " << ctx;
                if (b > 0) ASSERT_GE(t, 100e-6) << r << " " << b << " " << ctx;  // a + the smallest terms
                else ASSERT_EQ(t, 0);
            }
}

// Riding along with verify blocks, a chunk adds to the policies' price what
// it costs beyond the same sequences at one token each: the weights are read
// once per forward.
TEST(CostMeasured, APrefillChunkRidingAlongAddsOnlyItsMarginalLatencyToThePrice) {
    CostModel c = measured_model();
    BatchShape b = decode_batch(4, 20, 1000);
    b.n_prefill_seqs = 4;  // a measured R level, whose smallest B is 4: one token each
    b.n_prefill_tokens = 300;
    b.prefill_context = 2048;
    // linear_us(4, 300, .) - linear_us(4, 4, .): the per-token term times 296; the +1000 offset cancels
    double expected = linear_us(4, 20, 1000) + linear_us(4, 300, 2048) - linear_us(4, 4, 2048);
    EXPECT_REL(cost_forward_s(c, b), expected * 1e-6, 1e-9);
    for (Profile& p : c.measured.verify) p.latency_us_p50 *= 4;  // a steeper verify table changes only its own term
    EXPECT_REL(cost_forward_s(c, b), (expected + 3 * linear_us(4, 20, 1000)) * 1e-6, 1e-9);
}

// When the forward runs, the chunk costs the larger of that marginal and
// what its tokens add to the verify batch where it runs.
TEST(CostMeasured, ARunningPromptChunkCostsAtLeastItsRiseInTheVerifyTable) {
    CostModel c = measured_model();
    c.measured.prefill = linear_grid(PHASE_PREFILL);  // no offset: the whole batch's prefill price stays below
    BatchShape b = decode_batch(4, 20, 1000);
    b.n_prefill_seqs = 4;
    b.n_prefill_tokens = 300;
    b.prefill_context = 2048;
    // A flat verify table (weight-bound): the chunk's own marginal, 2.5 us x 296.
    for (Profile& p : c.measured.verify) p.latency_us_p50 = 500;
    EXPECT_REL(cost_forward_run_s(c, b), (500 + 2.5 * 296) * 1e-6, 1e-9);
    // A verify table of 10 us a token (compute-bound): 300 tokens more there cost 3,000 us.
    for (Profile& p : c.measured.verify) p.latency_us_p50 = 4 * linear_us(p.n_seqs, p.n_tokens, p.context);
    EXPECT_REL(cost_forward_run_s(c, b), (4 * linear_us(4, 20, 1000) + 10.0 * 300) * 1e-6, 1e-9);
    EXPECT_REL(cost_forward_s(c, b), (4 * linear_us(4, 20, 1000) + 2.5 * 296) * 1e-6, 1e-9) << "not in the price";
    // Past one doubling of the table's reach (R 4 x 512 tokens a sequence, twice): the chunk's own marginal.
    b.n_prefill_tokens = 4100 - 20;
    EXPECT_REL(cost_forward_run_s(c, b), (4 * linear_us(4, 20, 1000) + 2.5 * (4080 - 4)) * 1e-6, 1e-9);
    b.n_prefill_tokens = 4096 - 20;
    EXPECT_REL(cost_forward_run_s(c, b), (4 * linear_us(4, 20, 1000) + 10.0 * 4076) * 1e-6, 1e-9);
}

// And at least the prefill table's price of the whole batch: R + n_prefill_seqs
// sequences of B + n_prefill_tokens tokens at the chunk's context (the
// prefill cells here cost 1,000 us more than the verify cells, as an eager
// forward costs more than a CUDA graph's).
TEST(CostMeasured, ARunningPromptChunkCostsAtLeastThePrefillPriceOfTheWholeBatch) {
    CostModel c = measured_model();
    BatchShape b = decode_batch(4, 20, 1000);
    b.n_prefill_seqs = 4;
    b.n_prefill_tokens = 300;
    b.prefill_context = 2048;
    EXPECT_REL(cost_forward_run_s(c, b), (linear_us(8, 320, 2048) + 1000) * 1e-6, 1e-9);
    EXPECT_REL(cost_forward_s(c, b), (linear_us(4, 20, 1000) + 2.5 * 296) * 1e-6, 1e-9) << "not in the price";
}

// The live H100 cells (qwen3-8b shape, `specplan live` start-up, 2026-12-07,
// bench/results/fidelity-2026-12-07): verify measured to 8 tokens a request,
// prefill chunks from 16 tokens. One decode token beside a 64-token prompt,
// tiled to 128 tokens: the extra 63 join the prompt, and the batch costs the
// prefill table's 2 sequences of 128 tokens, 7,782.852 us (the live
// iterations of that shape took 7.76 ms). As decode tokens they would
// extrapolate the verify table from 8 tokens to 64 (8.5 ms); the verify
// table plus the chunk's marginal says 7.27 ms.
TEST(CostMeasured, ATiledMixedBatchOfFewDecodeTokensCostsWhatTheLivePrefillCellsSay) {
    CostModel c = measured_model();
    c.token_tile = 128;
    c.measured.verify = {cell(PHASE_VERIFY, 1, 1, 64, 5671.151), cell(PHASE_VERIFY, 1, 2, 64, 5681.633),
                         cell(PHASE_VERIFY, 1, 4, 64, 5770.671), cell(PHASE_VERIFY, 1, 8, 64, 5899.387)};
    c.measured.prefill = {cell(PHASE_PREFILL, 1, 16, 0, 6317.977),  cell(PHASE_PREFILL, 1, 64, 0, 7114.095),
                          cell(PHASE_PREFILL, 1, 256, 0, 9553.991), cell(PHASE_PREFILL, 2, 32, 0, 7111.135),
                          cell(PHASE_PREFILL, 2, 128, 0, 7782.852), cell(PHASE_PREFILL, 2, 512, 0, 15144.039)};
    BatchShape b = decode_batch(1, 1, 64);
    b.n_prefill_seqs = 1;
    b.n_prefill_tokens = 64;
    EXPECT_REL(cost_forward_run_s(c, b), 7782.852e-6, 1e-9);
}

TEST(CostMeasured, APrefillAloneCostsItsWholeCell) {
    CostModel c = measured_model();
    BatchShape b;
    b.n_prefill_seqs = 2;
    b.n_prefill_tokens = 300;
    b.prefill_context = 2048;
    EXPECT_REL(cost_forward_s(c, b), (linear_us(2, 300, 2048) + 1000) * 1e-6, 1e-9);
}

// The engine's token tiles: the running forward is priced at its tokens
// rounded up to the next power of two up to the tile and to a multiple of
// the tile above it, the extra tokens as prompt tokens (decode tokens when
// no chunk rides along); the policies' price, cost_forward_s, is not rounded.
TEST(CostMeasured, ATokenTileRoundsTheRunningForwardUpButNotThePrice) {
    CostModel c = measured_model();
    c.token_tile = 128;
    const BatchShape over = decode_batch(4, 129, 1000);
    EXPECT_REL(cost_forward_run_s(c, over), linear_us(4, 256, 1000) * 1e-6, 1e-9);
    EXPECT_REL(cost_forward_s(c, over), linear_us(4, 129, 1000) * 1e-6, 1e-9);
    for (auto [b, run] : std::vector<std::pair<int, int>>{{4, 4}, {5, 8}, {9, 16}, {100, 128}, {128, 128}, {256, 256},
                                                         {300, 384}})
        EXPECT_REL(cost_forward_run_s(c, decode_batch(4, b, 1000)), linear_us(4, run, 1000) * 1e-6, 1e-9) << b;
    BatchShape mixed = decode_batch(4, 20, 1000);  // 20 + 300 = 320 tokens: 64 more prompt tokens
    mixed.n_prefill_seqs = 4;
    mixed.n_prefill_tokens = 300;
    mixed.prefill_context = 2048;
    // the whole batch of 384 tokens, 8 sequences, at the prefill table's price
    EXPECT_REL(cost_forward_run_s(c, mixed), (linear_us(8, 384, 2048) + 1000) * 1e-6, 1e-9);
    BatchShape prompt;  // 300 prompt tokens alone: priced as 384
    prompt.n_prefill_seqs = 2;
    prompt.n_prefill_tokens = 300;
    prompt.prefill_context = 2048;
    EXPECT_REL(cost_forward_run_s(c, prompt), (linear_us(2, 384, 2048) + 1000) * 1e-6, 1e-9);
    CostModel roof;  // the roofline is smooth: no tile
    roof.token_tile = 128;
    EXPECT_EQ(cost_forward_run_s(roof, over), cost_forward_s(roof, over));
}

TEST(CostMeasured, TheDraftIsLookedUpAtRSequencesAndRTimesGammaTokens) {
    CostModel c = measured_model();
    EXPECT_REL(cost_draft_s(c, 4, 3, 1000), (linear_us(4, 12, 1000) + 50) * 1e-6, 1e-9);
    EXPECT_EQ(cost_draft_s(c, 4, 0, 1000), 0);
}

// [SECTION] loading and validation -------------------------------------------------------

// A scratch trace store. Members are destroyed in reverse order, so the
// handle closes before its directory goes.
struct ScratchStore {
    ScratchDir dir{"specplan_cost"};
    TraceDb db = trace_db_open(dir.file("t.specdb"), TRACE_CREATE);
    void add(const std::string& gpu, const char* model, Phase phase, int n) {
        for (int i = 0; i < n; i++) {
            Profile p = cell(phase, 1, 1 << i, 512, 100.0 + i);
            p.gpu = gpu;
            p.model = preset(model);
            trace_db_append_profile(db, p);
        }
    }
};

static std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(MeasuredCostLoad, KeepsOnlyTheCellsOfTheNamedGpuAndModel) {
    ScratchStore s;
    s.add("H100", "qwen3-8b", PHASE_VERIFY, 5);
    s.add("H100", "qwen3-8b", PHASE_PREFILL, 3);
    s.add("H100", "qwen3-8b", PHASE_DRAFT, 2);
    s.add("H100", "llama3-8b", PHASE_VERIFY, 4);
    s.add("A100", "qwen3-8b", PHASE_VERIFY, 6);
    MeasuredCost mc = measured_cost_load(s.db, "H100", "qwen3-8b");
    EXPECT_EQ(mc.gpu, "H100");
    EXPECT_EQ(mc.model, "qwen3-8b");
    EXPECT_EQ(mc.verify.size(), 5u);
    EXPECT_EQ(mc.prefill.size(), 3u);
    EXPECT_EQ(mc.draft.size(), 2u);
    for (const Profile& p : mc.verify) EXPECT_TRUE(p.gpu == "H100" && p.model.name == "qwen3-8b");
    EXPECT_EQ(measured_cost_load(s.db, "A100", "").verify.size(), 6u);  // one name picks the only match
}

TEST(MeasuredCostLoad, WithNoNamesTheOnlyPairIsTaken) {
    ScratchStore s;
    s.add("H200", "llama3-8b", PHASE_VERIFY, 4);
    MeasuredCost mc = measured_cost_load(s.db, "", "");
    EXPECT_EQ(mc.gpu, "H200");
    EXPECT_EQ(mc.model, "llama3-8b");
    EXPECT_EQ(mc.verify.size(), 4u);
}

TEST(MeasuredCostLoad, WithNoNamesAndSeveralPairsItRefusesOnOneLine) {
    ScratchStore s;
    s.add("H100", "qwen3-8b", PHASE_VERIFY, 2);
    s.add("A100", "qwen3-8b", PHASE_VERIFY, 2);
    std::string msg = error_of([&] { measured_cost_load(s.db, "", ""); });
    EXPECT_NE(msg.find(s.db.path), std::string::npos) << msg;
    EXPECT_NE(msg.find("'H100'/'qwen3-8b'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'A100'/'qwen3-8b'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(error_of([&] { measured_cost_load(s.db, "", "qwen3-8b"); }), "");  // still two gpus
}

TEST(MeasuredCostLoad, AnAbsentPairOrAnEmptyStoreIsRefusedNamingWhatIsThere) {
    ScratchStore s;
    EXPECT_NE(error_of([&] { measured_cost_load(s.db, "", ""); }).find("empty"), std::string::npos);
    s.add("H100", "qwen3-8b", PHASE_VERIFY, 2);
    std::string msg = error_of([&] { measured_cost_load(s.db, "B200", "qwen3-8b"); });
    EXPECT_NE(msg.find("'B200'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'H100'/'qwen3-8b'"), std::string::npos) << msg;
}

TEST(CostValidate, AMissingDraftTableIsReportedOnOneLineStartingWithWhere) {
    ScratchStore s;
    s.add("H100", "qwen3-8b", PHASE_VERIFY, 3);
    s.add("H100", "qwen3-8b", PHASE_PREFILL, 3);
    CostModel c;
    c.kind = COST_MEASURED;
    c.measured = measured_cost_load(s.db, "H100", "qwen3-8b");
    EXPECT_NO_THROW(cost_validate(c, false, "scenarios/x.toml: cost.profile"));
    EXPECT_EQ(error_of([&] { cost_validate(c, true, "scenarios/x.toml: cost.profile"); }),
              "scenarios/x.toml: cost.profile: no 'draft' cells for gpu 'H100' model 'qwen3-8b'; "
              "a policy with drafts needs them");
    c.measured.prefill.clear();
    std::string msg = error_of([&] { cost_validate(c, false, "w"); });
    EXPECT_EQ(msg.rfind("w: no 'prefill' cells", 0), 0u) << msg;
    c.measured.verify.clear();
    EXPECT_EQ(error_of([&] { cost_validate(c, false, "w"); }).rfind("w: no 'verify' cells", 0), 0u);
}

TEST(CostValidate, RooflineNumbersMustBePositiveWithTpAtLeastOneAndEfficienciesInZeroOne) {
    CostModel ok = with_drafter(roofline_model("qwen3-8b"), DRAFTER_DSPARK, 5);
    EXPECT_NO_THROW(cost_validate(ok, true, "s.toml"));
    struct Case {
        const char* key;
        void (*spoil)(CostModel&);
    };
    const Case cases[] = {
        {"gpu.hbm_bytes_per_s", [](CostModel& c) { c.roofline.gpu.hbm_bytes_per_s = 0; }},
        {"gpu.bf16_flops", [](CostModel& c) { c.roofline.gpu.bf16_flops = -1; }},
        {"gpu.overhead_s_per_layer", [](CostModel& c) { c.roofline.gpu.overhead_s_per_layer = -1e-6; }},
        {"tp", [](CostModel& c) { c.roofline.tp = 0; }},
        {"gpu.allreduce_bus_bytes_per_s",
         [](CostModel& c) { c.roofline.tp = 2, c.roofline.gpu.allreduce_bus_bytes_per_s = 0; }},
        {"gpu.allreduce_latency_s",
         [](CostModel& c) { c.roofline.tp = 8, c.roofline.gpu.allreduce_latency_s = -1e-6; }},
        {"bw_efficiency", [](CostModel& c) { c.roofline.bw_efficiency = 1.5; }},
        {"flops_efficiency", [](CostModel& c) { c.roofline.flops_efficiency = 0; }},
        {"model.n_layers", [](CostModel& c) { c.roofline.model.n_layers = 0; }},
        {"model.n_params", [](CostModel& c) { c.roofline.model.n_params = 1000; }},
        {"moe.experts_per_token", [](CostModel& c) { c.roofline.moe = {8, 9, 0.5}; }},
        {"drafter.kind", [](CostModel& c) { c.drafter.kind = DRAFTER_NONE; }},
        {"drafter.n_layers", [](CostModel& c) { c.drafter.n_layers = 0; }},
    };
    for (const Case& k : cases) {
        CostModel bad = ok;
        k.spoil(bad);
        std::string msg = error_of([&] { cost_validate(bad, true, "s.toml"); });
        EXPECT_EQ(msg.rfind(std::string("s.toml: ") + k.key + ": expected", 0), 0u) << k.key << ": " << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    CostModel no_drafts = ok;
    no_drafts.drafter.kind = DRAFTER_NONE;
    EXPECT_NO_THROW(cost_validate(no_drafts, false, "s.toml"));  // the drafter only matters with drafts
    CostModel no_links = ok;  // a GPU without all-reduce figures is fine alone
    no_links.roofline.gpu.allreduce_bus_bytes_per_s = no_links.roofline.gpu.allreduce_latency_s = 0;
    EXPECT_NO_THROW(cost_validate(no_links, true, "s.toml"));
}
