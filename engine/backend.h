// backend.h: the one interface of the two forwards, so that the speculative
// decoder, the tools and the tests drive the fp32 CPU reference and the bf16
// CUDA backend the same way. A backend owns a model and the KV cache of
// n_seqs sequence slots; everything else (which tokens, which slot, how many
// drafts survive) is the caller's.
//
// The contract, held by both (tests/test_reference.cpp for the CPU,
// tests/test_cuda.cpp for CUDA against the CPU):
//  - forward(b) appends b's new tokens to their sequences and returns logits
//    (T, V) fp32 for every new token (unless logits is null), and for
//    `hidden_layers` the residual stream after those decoder layers,
//    (hidden_layers.size(), T, d) fp32, into `hidden` when given and into
//    hidden_data() in any case;
//  - a bad batch (slot out of range or repeated, q_len < 1, token outside the
//    vocabulary, layer out of range) or a full cache throws sp::Error and
//    leaves every sequence as it was;
//  - truncate(seq, n) keeps the first n tokens: speculation dropping the
//    rejected tail. A forward after it equals one on a cache that never held
//    the tail.
//  - verify(b, v) is forward(b) followed by verify.h's lossless acceptance of
//    each sequence's drafts (b's tokens after its first), where the logits
//    live (on the device for CUDA: only the accept counts and the next
//    tokens come back).
//  - sample(b, s) is forward(b) followed by verify.h's draw from the last
//    row of each sequence (sample_reference), where the logits live: the
//    tokens and q_token come back, q stays in the backend's memory
//    (q_buffer). A draft model drafts through it (drafter_model.cpp).
//  - hidden_data() holds the last forward's or verify's hidden states of
//    `hidden_layers`, (hidden_layers.size(), T, d) fp32 in the backend's
//    memory (host for cpu, device for cuda), for a drafter of the same
//    device to read; valid until the next forward.
#pragma once

#include <memory>
#include <vector>

#include "engine/model.h"
#include "engine/reference.h"  // RaggedBatch
#include "engine/verify.h"

namespace sp {

class Backend {
public:
    virtual ~Backend() = default;
    virtual const Config& config() const = 0;
    virtual const char* name() const = 0;  // "cpu" or "cuda"
    virtual int n_seqs() const = 0;
    virtual int len(int seq) const = 0;    // tokens cached for slot seq
    virtual void forward(const RaggedBatch& b, std::vector<float>* logits, const std::vector<int>& hidden_layers = {},
                         std::vector<float>* hidden = nullptr) = 0;
    virtual void truncate(int seq, int new_len) = 0;
    virtual void verify(const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out,
                        const std::vector<int>& hidden_layers = {}) = 0;
    virtual void sample(const RaggedBatch& b, const SampleBatch& s, SampleResult* out) = 0;
    virtual const float* hidden_data() const = 0;
    // A buffer of n floats in the backend's memory for sample()'s q, owned
    // by the backend; its contents are kept until the next q_buffer() call.
    virtual float* q_buffer(size_t n) = 0;
    // Copies n floats from the host into the backend's memory (a host
    // drafter's q for a device verify); valid until the next stage(). The CPU
    // backend returns host itself.
    virtual const float* stage(const float* host, size_t n) = 0;
    // Readies every shape of up to max_tokens new tokens a forward, so that
    // none pays a one-off cost later (CUDA: cuBLAS's algorithm timing per
    // shape bucket); a serving loop calls it before timing anything.
    virtual void warm(int max_tokens) { (void)max_tokens; }
    // CUDA graphs captured since construction (CUDA; 0 on the CPU): a
    // serving loop's captures after warm-up are one-off costs inside its
    // measured iterations, which the start-up cells do not hold.
    virtual int64_t graphs_captured() const { return 0; }
};

// The Eigen fp32 reference (reference_forward over a CpuKvCache).
std::unique_ptr<Backend> backend_cpu(ModelWeights w, int n_seqs);

}  // namespace sp
