// test_speculative_cuda.cpp: the speculative decoder on the CUDA backend
// (GPU machine; every test skips where no CUDA device answers), with every
// drafter: the CUDA DSpark, DFlash and EAGLE-3 drafters, a draft model on its
// own CUDA backend, n-gram lookup on the host.
//
//  - greedy speculative output equals the CUDA backend's greedy
//    autoregressive output, token for token, except where the target's
//    top-two margin is within bf16's reach: at the first differing token the
//    CPU reference's top-2 gap is compared with twice the largest |cuda - cpu|
//    logit difference at that position; a divergence inside that margin is
//    reported as a near tie (the request stops being compared there), one
//    outside it fails;
//  - the chi-square losslessness test of test_speculative.cpp, on the GPU:
//    the second output token's distribution at T = 1 over many seeds against
//    the target's exact marginal (computed by the CPU reference, fp32; the
//    bf16 forward's own distribution differs from it by far less than the
//    test can resolve at this sample size).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "engine/cuda_model.h"
#include "engine/drafter_cuda.h"
#include "engine/speculative.h"
#include "engine/verify.h"
#include "tests/chi_square.h"
#include "tests/needs_gpu.h"

namespace sp {
namespace {

const std::string kFixtures = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/";

CudaBackendOptions small_cache() {
    CudaBackendOptions o;
    o.kv.capacity_tokens = 16384;
    return o;
}

struct DrafterCase {
    std::string target, drafter;
};
std::vector<DrafterCase> cases() {
    return {{"tiny-qwen3-4l", kFixtures + "tiny-dspark"},
            {"tiny-qwen3-4l", kFixtures + "tiny-dflash"},
            {"tiny-qwen3-4l", kFixtures + "tiny-eagle3"},
            {"tiny-qwen3", kFixtures + "tiny-qwen3"},
            {"tiny-qwen3", kFixtures + "tiny-llama"},
            {"tiny-qwen3", "ngram"}};
}

std::unique_ptr<Drafter> open_cuda(const std::string& spec, const ModelWeights& w, int n_slots) {
    return drafter_open_cuda(spec, w, DrafterOptions{0, n_slots});
}

Policy policy_of(const std::string& text) {
    Policy p;
    std::string err;
    EXPECT_TRUE(policy_parse(text, &p, &err)) << err;
    return p;
}

// Top-2 gap of the CPU reference's next-token logits after `prefix`, and the
// largest |cuda - cpu| logit difference there.
void margins(const ModelWeights& w, const std::vector<int>& prefix, double* gap, double* diff) {
    const int V = w.cfg.vocab, T = int(prefix.size());
    std::vector<float> cpu, gpu;
    backend_cpu(w, 1)->forward(RaggedBatch{{0}, {T}, prefix}, &cpu);
    backend_cuda(w, 1, small_cache())->forward(RaggedBatch{{0}, {T}, prefix}, &gpu);
    const float* c = cpu.data() + size_t(T - 1) * V;
    const float* g = gpu.data() + size_t(T - 1) * V;
    float a = -INFINITY, b = -INFINITY;
    *diff = 0;
    for (int v = 0; v < V; v++) {
        if (c[v] > a) {
            b = a;
            a = c[v];
        } else if (c[v] > b) {
            b = c[v];
        }
        *diff = std::max(*diff, double(std::fabs(c[v] - g[v])));
    }
    *gap = a - b;
}

TEST(SpeculativeCuda, GreedyEqualsCudaAutoregressiveExceptAtNearTies) {
    const std::vector<std::vector<int>> prompts = {{1, 5, 9, 23, 7, 5, 9}, {203, 62, 340, 95, 178, 91, 302, 93}};
    const int max_new = 80;
    int compared = 0, near_ties = 0;
    for (const DrafterCase& dc : cases()) {
        const ModelWeights w = weights_load(kFixtures + dc.target);
        auto target = backend_cuda(w, int(prompts.size()), small_cache());
        auto drafter = open_cuda(dc.drafter, w, int(prompts.size()));
        for (const std::string& pol : std::vector<std::string>{"fixed:1", "fixed:" + std::to_string(drafter->gamma()), "goodput"}) {
            SCOPED_TRACE(dc.drafter + " " + pol);
            std::vector<SpecRequest> ar(prompts.size()), sp(prompts.size());
            {
                Speculator plain(*target, nullptr, SpecOptions{});
                for (size_t i = 0; i < prompts.size(); i++) {
                    ar[i].prompt = prompts[i];
                    ar[i].max_new = max_new;
                    plain.run(&ar[i]);
                }
            }
            SpecOptions o;
            o.policy = policy_of(pol);
            o.step_time.fn = [](const void*, int, int n) { return 1e-3 + 0.25e-3 * n; };
            Speculator spec(*target, drafter.get(), o);
            for (size_t i = 0; i < prompts.size(); i++) {
                sp[i].id = i;
                sp[i].prompt = prompts[i];
                sp[i].max_new = max_new;
                spec.add(&sp[i]);
            }
            while (!spec.idle()) spec.step();
            for (size_t i = 0; i < prompts.size(); i++) {
                const std::vector<int>& a = ar[i].output;
                const std::vector<int>& b = sp[i].output;
                size_t j = 0;
                while (j < a.size() && j < b.size() && a[j] == b[j]) j++;
                compared += int(j);
                if (j == a.size() && j == b.size()) continue;
                std::vector<int> prefix = prompts[i];
                prefix.insert(prefix.end(), a.begin(), a.begin() + long(j));
                double gap = 0, diff = 0;
                margins(w, prefix, &gap, &diff);
                std::printf("  %s %s prompt %zu: differs at token %zu (%d vs %d); CPU top-2 gap %.4f, |cuda - cpu| "
                            "up to %.4f: %s\n",
                            dc.drafter.c_str(), pol.c_str(), i, j, j < a.size() ? a[j] : -1,
                            j < b.size() ? b[j] : -1, gap, diff, gap <= 2 * diff ? "near tie" : "FAILURE");
                EXPECT_LE(gap, 2 * diff) << "a divergence outside bf16's reach";
                near_ties++;
            }
        }
    }
    std::printf("  %d tokens equal; %d requests stopped at a near tie\n", compared, near_ties);
}

// ---------------------------------------------------------------------------
// [SECTION] chi-square, as in test_speculative.cpp

TEST(SpeculativeCuda, EveryDrafterKeepsTheTargetsDistribution) {
    const int n = 3000;
    const std::vector<int> prompt = {1, 5, 9, 23, 7, 5, 9, 23};
    for (const DrafterCase& dc : cases()) {
        SCOPED_TRACE(dc.drafter);
        const ModelWeights w = weights_load(kFixtures + dc.target);
        const std::vector<double> m = second_token_marginal(w, prompt);
        auto target = backend_cuda(w, 1, small_cache());
        auto drafter = open_cuda(dc.drafter, w, 1);
        const std::vector<int> counts = second_tokens(*target, drafter.get(), prompt, n);
        int dof = 0;
        const double stat = chi_square(counts, m, n, &dof);
        std::printf("  %-40s chi2 %.1f, dof %d, critical (0.1 %%) %.1f\n", dc.drafter.c_str(), stat, dof,
                    chi_square_critical(dof));
        EXPECT_LT(stat, chi_square_critical(dof));
    }
}

}  // namespace
}  // namespace sp
