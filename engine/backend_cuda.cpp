// backend_cuda.cpp: the Backend of the bf16 CUDA forward: a CudaModel and its
// paged KvCache. Batches of up to graph_max_tokens new tokens (decode and
// verify steps) run through CUDA graphs, larger ones (prefill chunks) eagerly.
#include "engine/cuda_model.h"

#include <numeric>
#include <string>

namespace sp {

namespace {

class CudaBackend final : public Backend {
public:
    CudaBackend(const ModelWeights& w, int n_seqs, const CudaBackendOptions& o)
        : model_(w), kv_(w.cfg, n_seqs, o.kv), graph_max_tokens_(o.graph_max_tokens) {}
    const Config& config() const override { return model_.config(); }
    const char* name() const override { return "cuda"; }
    int n_seqs() const override { return kv_.n_seqs(); }
    int len(int seq) const override { return kv_.len(seq); }
    void forward(const RaggedBatch& b, std::vector<float>* logits, const std::vector<int>& hidden_layers,
                 std::vector<float>* hidden) override {
        const long T = std::accumulate(b.q_len.begin(), b.q_len.end(), 0L);
        model_.forward(kv_, b, logits, hidden_layers, hidden, T <= graph_max_tokens_);
    }
    void truncate(int seq, int new_len) override { kv_.truncate(seq, new_len); }

private:
    CudaModel model_;
    KvCache kv_;
    int graph_max_tokens_;
};

}  // namespace

std::unique_ptr<Backend> backend_cuda(const ModelWeights& w, int n_seqs, const CudaBackendOptions& o) {
    if (n_seqs < 1) throw Error("backend_cuda: n_seqs must be >= 1, got " + std::to_string(n_seqs));
    return std::make_unique<CudaBackend>(w, n_seqs, o);
}

}  // namespace sp
