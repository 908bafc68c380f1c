// cuda_model.h: the CUDA forward of a Qwen3 or Llama decoder: bf16 weights
// and activations, fp32 residual stream, logits and accumulation; the
// projections through matmul_forward (gemv.cu for up to kGemvMaxT tokens,
// cuBLAS above), everything else through kernels.h.
//
// Same contract as reference_forward (reference.h): a RaggedBatch of new
// tokens, each sequence at its own position, attention causal within the new
// tokens and full over the cached prefix; the new K and V rows go into the
// paged KvCache. q, k and v come from one fused projection (wq|wk|wv rows),
// gate and up from another (w_gate and w_up rows interleaved in groups of
// kGluGroup, so that the projection's epilogue can apply SwiGLU).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda_common.h"
#include "engine/kernels.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/reference.h"  // RaggedBatch

namespace sp {

struct CudaLayer {
    const bf16* attn_norm;  // (d)
    const bf16* wqkv;       // ((H + 2 KVH) D, d)
    const bf16* q_norm;     // (D) or nullptr (Llama)
    const bf16* k_norm;     // (D) or nullptr
    const bf16* wo;         // (d, H D)
    const bf16* mlp_norm;   // (d)
    const bf16* wgu;        // (2F, d), gate/up rows interleaved in groups of kGluGroup
    const bf16* w_down;     // (d, F)
};

// The four projections of a decoder layer of shape c as matmul_forward runs
// them (qkv with the norm fused, wo and w_down onto the residual, gate|up
// through SwiGLU), for matmul_warm: CudaModel's layers and the CUDA DSpark
// drafter's block.
std::vector<GemmShape> layer_gemm_shapes(const CudaLayer& L, const Config& c, int max_T);

// Stages one decoder layer's fp32 weights as bf16 into `host`, the host copy
// of a device allocation that starts at `device`: tensor L.x goes to host +
// (L.x - device), gate and up interleaved as CudaLayer::wgu wants them. The
// uploads of CudaModel and of the CUDA DSpark drafter both use it.
void layer_stage(bf16* host, const bf16* device, const CudaLayer& L, const LayerWeights& lw, const Config& c);

class CudaModel {
public:
    // Uploads w to the device as bf16, in one allocation.
    explicit CudaModel(const ModelWeights& w);
    // Random weights of any shape, made on the device (no host copy): every
    // matrix uniform on (-scale, scale) from init_uniform's counter-based
    // hash of (seed, element), the norm weights at 1. For timing: 0.02 * sqrt(3)
    // gives the std 0.02 of weights_random, whose values it does not reproduce.
    CudaModel(const Config& c, uint64_t seed, float scale = 0.0346f);
    ~CudaModel();
    CudaModel(const CudaModel&) = delete;
    CudaModel& operator=(const CudaModel&) = delete;

    const Config& config() const { return cfg_; }
    cudaStream_t stream() const { return stream_; }
    size_t weight_bytes() const { return weight_bytes_; }

    // Runs the batch, enqueued on stream(); returns without synchronising.
    // Afterwards logits_device() holds (T, V) fp32 and, for hidden_layers,
    // hidden_device() holds (hidden_layers.size(), T, d) fp32: the residual
    // stream after those layers. Checks the batch and grows the cache first:
    // a bad batch or a full cache throws and leaves the cache as it was.
    void forward_device(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers = {});
    // forward_device in two halves, for CUDA graphs. prepare() checks the
    // batch, grows the cache, uploads the metadata (tokens, positions, cache
    // rows, block tables) and sizes the activations; enqueue() launches the
    // kernels of the last prepared batch and nothing else (no allocation, no
    // host copy, no synchronisation), so it can be captured on stream() and
    // the graph replayed after a prepare() of a batch of the same shape (same
    // T and max_blocks, and no larger: buffers must not move).
    void prepare(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers = {});
    void enqueue(const KvCache& kv);
    const float* logits_device() const { return logits_; }
    const float* hidden_device() const { return hidden_; }
    int last_T() const { return T_; }

    // forward_device through CUDA graphs: one graph per shape bucket,
    // captured the first time the bucket is seen and replayed after that.
    // A bucket is (T, the block-table width rounded up by blocks_bucket, the
    // hidden layers, the cache); the batch's own tokens, positions and block
    // tables travel as metadata, so any batch of the bucket replays the same
    // graph. Attention plans its context split for the bucket's width and
    // for the sequence count rounded up to a power of two rather than the
    // batch's own (so a graph serves 5 to 8 sequences of the same T and
    // width alike); where that changes the chunk length its partial
    // sums merge in another order, so the logits equal forward_device's to
    // fp32 rounding inside attention (bitwise in every step of the tests on
    // the tiny presets, H100, 2026-12-06). Graphs are dropped when a buffer
    // they point to moves (a larger T, metadata or attention workspace than
    // seen before) and, beyond kGraphCacheMax, the least recently used first.
    void forward_graph(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers = {});
    static constexpr int kGraphCacheMax = 128;
    int graphs_cached() const { return static_cast<int>(graphs_.size()); }
    void graphs_clear();  // drops every cached graph (synchronises the stream first)
    int graphs_captured() const { return graphs_captured_; }  // since construction

    // forward_device (or forward_graph when `graph`), then copies the results
    // to the host (synchronises); logits null: not copied.
    void forward(KvCache& kv, const RaggedBatch& b, std::vector<float>* logits,
                 const std::vector<int>& hidden_layers = {}, std::vector<float>* hidden = nullptr,
                 bool graph = false);

    // verify.h's acceptance of b, the batch the last forward ran (its
    // logits_device() and uploaded tokens), by verify_forward enqueued after
    // it on stream(); v.q is device memory. One upload of the per-sequence
    // metadata, one copy back of n_accepted and next (2 S ints); synchronises.
    void verify(const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out);
    // verify.h's draw from the last row of each sequence of b, the batch the
    // last forward ran, by markov_step_forward (no Markov head): s.q is
    // device memory. One upload, one copy back of the tokens and q_token;
    // synchronises.
    void sample(const RaggedBatch& b, const SampleBatch& s, SampleResult* out);

    // Times cuBLAS's algorithm for every projection shape and bucket of T up
    // to max_T tokens (matmul_tune), so that no forward of up to max_T tokens
    // pays a timing later: what a serving loop does before its first request.
    void gemm_warm(int max_T);

    // Every projection through cuBLAS (true), or the default: gemv.cu up to
    // kGemvMaxT tokens, cuBLAS above. The cuBLAS-only forward is the
    // reference the GEMV path is tested and timed against.
    void set_cublas_only(bool on);
    // cuBLASLt's timed algorithm per GEMM shape (the default, matmul.cu), or
    // cublasGemmEx's default algorithm (off: the untuned baseline, for timing).
    void set_gemm_tuning(bool on);

    // Greedy decoding of one sequence: prefill `prompt` into slot seq, then
    // n_new argmax steps (argmax on the device; the logit of token
    // `suppress` is set to -inf first when >= 0, as HF's min_new_tokens does
    // for EOS). Copies each token id back to build the next batch.
    std::vector<int> greedy(KvCache& kv, int seq, const std::vector<int>& prompt, int n_new, int suppress = -1);

private:
    struct Graph {
        int T = 0, max_blocks = 0;
        int attn_splits = 0;       // attention_splits of the batch: a graph bakes its launch shape in
        const bf16* kv = nullptr;  // the cache's first K array and size: which KvCache
        int kv_blocks = 0;
        std::vector<int> hidden_layers;
        cudaGraphExec_t exec = nullptr;
        uint64_t last_use = 0;
    };
    void prepare_batch(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers, bool bucket);
    void ensure_activations(int T, int n_hidden);
    size_t lay_out(bf16* base);  // sets the weight pointers into base (sizes only when null); returns elements
    void init_constants();       // inv_freq_, neg_inf_

    Config cfg_;
    cudaStream_t stream_ = nullptr;
    Cublas cublas_;
    // weights: one allocation
    bf16* params_ = nullptr;
    size_t weight_bytes_ = 0;
    const bf16* embed_ = nullptr;       // (V, d)
    const bf16* final_norm_ = nullptr;  // (d)
    const bf16* lm_head_ = nullptr;     // (V, d); embed_ when tied
    std::vector<CudaLayer> layers_;     // (L)
    float* inv_freq_ = nullptr;         // (D/2)
    // activations for up to cap_T_ tokens: one allocation, grown on demand
    void* acts_ = nullptr;
    int cap_T_ = 0, cap_hidden_ = 0, T_ = 0, max_blocks_ = 0;
    int plan_seqs_ = 0;  // the sequences attention plans its split for: the batch's, or (graphs) its power of two
    std::vector<int> hidden_layers_;  // of the prepared batch
    std::vector<int> tuned_T_;        // token counts whose GEMM shapes have been timed (forward_graph)
    float* x_ = nullptr;        // (T, d) residual stream
    bf16* xn_ = nullptr;        // (T, d) normed input of a projection
    bf16* qkv_ = nullptr;       // (T, (H + 2 KVH) D)
    bf16* att_ = nullptr;       // (T, H D)
    bf16* gu_ = nullptr;        // (T, 2F), gate/up interleaved: the cuBLAS path's product before swiglu
    bf16* act_ = nullptr;       // (T, F)
    float* logits_ = nullptr;   // (T, V)
    float* hidden_ = nullptr;   // (n_hidden, T, d)
    float* neg_inf_ = nullptr;  // one -inf, for greedy's suppress
    // per-forward metadata: tokens, tok_seq, tok_pos, slot (T each), block tables
    int* meta_ = nullptr;
    size_t cap_meta_ = 0;
    // attention's split-context partials (attention_workspace_bytes), grown in prepare()
    void* attn_work_ = nullptr;
    size_t attn_work_bytes_ = 0;
    // verify's buffer, grown on demand: VerifySeq (S), then n_accepted and next (S each)
    void* verify_buf_ = nullptr;
    size_t verify_bytes_ = 0;
    // sample's buffer, grown on demand: per-sequence arguments, outputs, markov.cu's scratch
    void* sample_buf_ = nullptr;
    size_t sample_bytes_ = 0;
    // forward_graph's cache
    std::vector<Graph> graphs_;
    uint64_t graph_clock_ = 0;
    int graphs_captured_ = 0;
};

// The block-table width a graph is captured for: n rounded up to a multiple
// of a quarter of its power-of-two floor (exact up to 7 blocks). So 4
// buckets per doubling of the context, and attention's chunking is planned
// for at most 25 % more blocks than the batch holds. (Eighths gave a few
// hundred graph keys in a serving run against a cache of kGraphCacheMax, and
// each capture cost a step 2-3 ms: issue 12's 1-8 user residue.)
int blocks_bucket(int n);

// The Backend (backend.h) of this forward: a CudaModel of w and a KvCache of
// n_seqs slots.
struct CudaBackendOptions {
    KvCacheOptions kv;
    int graph_max_tokens = 16;  // batches of at most this many new tokens go through forward_graph
};
std::unique_ptr<Backend> backend_cuda(const ModelWeights& w, int n_seqs, const CudaBackendOptions& o = {});
// The same over random weights of shape c made on the device
// (CudaModel(c, seed)): timing at full shape without a checkpoint.
std::unique_ptr<Backend> backend_cuda_random(const Config& c, uint64_t seed, int n_seqs,
                                             const CudaBackendOptions& o = {});

}  // namespace sp
