// backend_cuda.cpp: the Backend of the bf16 CUDA forward: a CudaModel and its
// paged KvCache. Batches of up to graph_max_tokens new tokens (decode and
// verify steps) run through CUDA graphs, larger ones (prefill chunks) eagerly.
// verify() and sample() keep the logits on the device: the forward, then
// verify_forward or markov.cu's draw on the same stream, and only the
// accept counts and tokens come back.
#include "engine/cuda_model.h"

#include <numeric>
#include <string>

namespace sp {

namespace {

class CudaBackend final : public Backend {
public:
    CudaBackend(const ModelWeights& w, int n_seqs, const CudaBackendOptions& o)
        : model_(w), kv_(w.cfg, n_seqs, o.kv), graph_max_tokens_(o.graph_max_tokens) {}
    CudaBackend(const Config& c, uint64_t seed, int n_seqs, const CudaBackendOptions& o)
        : model_(c, seed), kv_(c, n_seqs, o.kv), graph_max_tokens_(o.graph_max_tokens) {}
    ~CudaBackend() override {  // unchecked: destructors must not throw
        cudaFree(staged_);
        cudaFree(q_);
    }
    CudaBackend(const CudaBackend&) = delete;
    CudaBackend& operator=(const CudaBackend&) = delete;
    const Config& config() const override { return model_.config(); }
    const char* name() const override { return "cuda"; }
    int n_seqs() const override { return kv_.n_seqs(); }
    int len(int seq) const override { return kv_.len(seq); }
    // logits null: the forward runs, nothing but `hidden` comes back
    void forward(const RaggedBatch& b, std::vector<float>* logits, const std::vector<int>& hidden_layers,
                 std::vector<float>* hidden) override {
        model_.forward(kv_, b, logits, hidden_layers, hidden, use_graph(b));
    }
    void truncate(int seq, int new_len) override { kv_.truncate(seq, new_len); }
    void verify(const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out,
                const std::vector<int>& hidden_layers) override {
        verify_check(b, v);  // before the forward: a bad call leaves the cache alone
        if (use_graph(b))
            model_.forward_graph(kv_, b, hidden_layers);
        else
            model_.forward_device(kv_, b, hidden_layers);
        model_.verify(b, v, out);  // same stream, no synchronisation in between
    }
    void sample(const RaggedBatch& b, const SampleBatch& s, SampleResult* out) override {
        sample_check(b, s);
        if (use_graph(b))
            model_.forward_graph(kv_, b);
        else
            model_.forward_device(kv_, b);
        model_.sample(b, s, out);
    }
    const float* hidden_data() const override { return model_.hidden_device(); }
    void warm(int max_tokens) override { model_.gemm_warm(max_tokens); }
    int64_t graphs_captured() const override { return model_.graphs_captured(); }
    float* q_buffer(size_t n) override {
        if (n > q_cap_) {
            CUDA_CHECK(cudaFree(q_));  // synchronises
            q_ = nullptr;
            q_cap_ = 0;
            CUDA_CHECK(cudaMalloc(&q_, n * sizeof(float)));
            q_cap_ = n;
        }
        return q_;
    }
    // On the model's stream, so ordered before the verify that reads it (and
    // after the last one that read the old contents).
    const float* stage(const float* host, size_t n) override {
        if (n > staged_cap_) {
            CUDA_CHECK(cudaFree(staged_));  // synchronises
            staged_ = nullptr;
            CUDA_CHECK(cudaMalloc(&staged_, n * sizeof(float)));
            staged_cap_ = n;
        }
        if (n > 0)  // pageable source: returns once staged, so `host` may go
            CUDA_CHECK(cudaMemcpyAsync(staged_, host, n * sizeof(float), cudaMemcpyHostToDevice, model_.stream()));
        return staged_;
    }

private:
    bool use_graph(const RaggedBatch& b) const {
        return std::accumulate(b.q_len.begin(), b.q_len.end(), 0L) <= graph_max_tokens_;
    }

    CudaModel model_;
    KvCache kv_;
    int graph_max_tokens_;
    float* staged_ = nullptr;  // stage()'s buffer, grown on demand
    size_t staged_cap_ = 0;    // floats
    float* q_ = nullptr;       // q_buffer(), grown on demand
    size_t q_cap_ = 0;         // floats
};

}  // namespace

std::unique_ptr<Backend> backend_cuda(const ModelWeights& w, int n_seqs, const CudaBackendOptions& o) {
    if (n_seqs < 1) throw Error("backend_cuda: n_seqs must be >= 1, got " + std::to_string(n_seqs));
    return std::make_unique<CudaBackend>(w, n_seqs, o);
}

std::unique_ptr<Backend> backend_cuda_random(const Config& c, uint64_t seed, int n_seqs, const CudaBackendOptions& o) {
    if (n_seqs < 1) throw Error("backend_cuda_random: n_seqs must be >= 1, got " + std::to_string(n_seqs));
    config_check(c, c.name);
    return std::make_unique<CudaBackend>(c, seed, n_seqs, o);
}

}  // namespace sp
