// backend_cpu.cpp: the Backend of the fp32 Eigen reference: reference_forward
// over a CpuKvCache, and verify_reference or sample_reference after it.
#include "engine/backend.h"

#include <string>
#include <utility>

namespace sp {

namespace {

class CpuBackend final : public Backend {
public:
    CpuBackend(ModelWeights w, int n_seqs) : w_(std::move(w)), kv_(kv_cache_init(w_.cfg, n_seqs)) {}
    const Config& config() const override { return w_.cfg; }
    const char* name() const override { return "cpu"; }
    int n_seqs() const override { return static_cast<int>(kv_.len.size()); }
    int len(int seq) const override {
        if (seq < 0 || seq >= n_seqs()) throw Error("Backend(cpu): sequence " + std::to_string(seq) + " out of range");
        return kv_.len[seq];
    }
    void forward(const RaggedBatch& b, std::vector<float>* logits, const std::vector<int>& hidden_layers,
                 std::vector<float>* hidden) override {
        reference_forward(w_, kv_, b, logits, hidden_layers, &hidden_);
        if (hidden) *hidden = hidden_;
    }
    void truncate(int seq, int new_len) override { kv_truncate(kv_, seq, new_len); }
    void verify(const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out,
                const std::vector<int>& hidden_layers) override {
        verify_check(b, v);
        reference_forward(w_, kv_, b, &logits_, hidden_layers, &hidden_);
        verify_reference(logits_.data(), w_.cfg.vocab, b, v, out);
    }
    void sample(const RaggedBatch& b, const SampleBatch& s, SampleResult* out) override {
        sample_check(b, s);
        reference_forward(w_, kv_, b, &logits_, {}, &hidden_);
        sample_reference(logits_.data(), w_.cfg.vocab, b, s, out);
    }
    const float* hidden_data() const override { return hidden_.data(); }
    float* q_buffer(size_t n) override {
        q_.resize(n);
        return q_.data();
    }
    const float* stage(const float* host, size_t) override { return host; }

private:
    ModelWeights w_;
    CpuKvCache kv_;
    std::vector<float> logits_, hidden_;  // of the last verify or sample
    std::vector<float> q_;                // q_buffer()
};

}  // namespace

std::unique_ptr<Backend> backend_cpu(ModelWeights w, int n_seqs) {
    if (n_seqs < 1) throw Error("backend_cpu: n_seqs must be >= 1, got " + std::to_string(n_seqs));
    return std::make_unique<CpuBackend>(std::move(w), n_seqs);
}

}  // namespace sp
