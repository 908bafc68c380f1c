// cuda_model.cpp: weights (uploaded, or random and made on the device), and the
// CUDA forward over a ragged batch.
// Host code only: the kernels are behind kernels.h, cuBLAS behind matmul.cu.
//
// The forward, per layer (x is the fp32 residual stream; the projections
// that feed it add their fp32 product into it, Epilogue::AddFp32):
//   qkv = rmsnorm(x, attn_norm) @ wqkv^T
//   q/k norm + RoPE (in place) and the KV append, one kernel;  att = attention(q, cache)
//   x += att @ wo^T
//   act = swiglu(rmsnorm(x, mlp_norm) @ wgu^T)
//   x += act @ w_down^T
// then logits = rmsnorm(x, final_norm) @ lm_head^T in fp32. For up to
// kGemvNormMaxT tokens each line is one kernel (a GEMV with the norm in its
// prologue, SwiGLU or the residual add in its epilogue), attention two (its
// chunks' merge): 7 per layer; up to kGemvMaxT the norms run as kernels of
// their own.
// Layer l's output (the hidden state) is x after its w_down. wgu's rows are
// stored gate/up interleaved in groups of kGluGroup (kernels.h). Every kernel
// is launched with programmatic dependent launch (cuda_common.h), so a
// projection's first weight loads overlap the tail of the kernel before it.
#include "engine/cuda_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace sp {

namespace {

// Every tensor's size against the config, before anything is uploaded.
void check_sizes(const ModelWeights& w) {
    const Config& c = w.cfg;
    const size_t d = c.hidden, D = c.head_dim, q_dim = c.n_heads * D, kv_dim = c.n_kv_heads * D, F = c.ffn;
    auto want = [](const std::vector<float>& t, size_t n, const std::string& what) {
        if (t.size() != n)
            throw Error("CudaModel: weight " + what + ": expected " + std::to_string(n) + " floats, got " +
                        std::to_string(t.size()));
    };
    want(w.embed, c.vocab * d, "embed");
    if (!c.tie_embeddings) want(w.lm_head, c.vocab * d, "lm_head");
    want(w.final_norm, d, "final_norm");
    if (c.ffn % kGluGroup != 0)
        throw Error("CudaModel: intermediate_size " + std::to_string(c.ffn) + " must be a multiple of " +
                    std::to_string(kGluGroup));
    for (int l = 0; l < c.n_layers; l++) {
        const LayerWeights& lw = w.layers[l];
        const std::string p = "layers." + std::to_string(l) + ".";
        want(lw.attn_norm, d, p + "attn_norm");
        want(lw.mlp_norm, d, p + "mlp_norm");
        want(lw.wq, q_dim * d, p + "wq");
        want(lw.wk, kv_dim * d, p + "wk");
        want(lw.wv, kv_dim * d, p + "wv");
        want(lw.wo, d * q_dim, p + "wo");
        want(lw.w_gate, F * d, p + "w_gate");
        want(lw.w_up, F * d, p + "w_up");
        want(lw.w_down, d * F, p + "w_down");
        if (c.qk_norm) {
            want(lw.q_norm, D, p + "q_norm");
            want(lw.k_norm, D, p + "k_norm");
        }
    }
}

}  // namespace

void layer_stage(bf16* host, const bf16* device, const CudaLayer& L, const LayerWeights& lw, const Config& c) {
    auto put = [&](const bf16* at, std::initializer_list<const std::vector<float>*> parts) {
        bf16* dst = host + (at - device);
        for (const auto* part : parts)
            for (float v : *part) *dst++ = __float2bfloat16(v);
    };
    put(L.attn_norm, {&lw.attn_norm});
    put(L.wqkv, {&lw.wq, &lw.wk, &lw.wv});
    if (c.qk_norm) {
        put(L.q_norm, {&lw.q_norm});
        put(L.k_norm, {&lw.k_norm});
    }
    put(L.wo, {&lw.wo});
    put(L.mlp_norm, {&lw.mlp_norm});
    {  // gate/up interleaved in groups of kGluGroup rows
        bf16* dst = host + (L.wgu - device);
        for (int r = 0; r < 2 * c.ffn; r++) {
            const int grp = r / (2 * kGluGroup), k = r % (2 * kGluGroup);
            const std::vector<float>& src = k < kGluGroup ? lw.w_gate : lw.w_up;
            const size_t from = static_cast<size_t>(grp * kGluGroup + k % kGluGroup) * c.hidden;
            for (int j = 0; j < c.hidden; j++) *dst++ = __float2bfloat16(src[from + j]);
        }
    }
    put(L.w_down, {&lw.w_down});
}

CudaModel::CudaModel(const ModelWeights& w) : cfg_(w.cfg) {
    const Config& c = cfg_;
    if (static_cast<int>(w.layers.size()) != c.n_layers || c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0 ||
        c.head_dim % 2 != 0)
        throw Error("CudaModel: inconsistent config (" + c.name + ")");
    check_sizes(w);
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    cublas_ = cublas_create(stream_);

    // lay the tensors out, then convert into host staging and upload once
    weight_bytes_ = lay_out(nullptr) * sizeof(bf16);
    CUDA_CHECK(cudaMalloc(&params_, weight_bytes_));
    lay_out(params_);
    std::vector<bf16> host(weight_bytes_ / sizeof(bf16), __float2bfloat16(0.0f));
    auto put = [&](const bf16* at, std::initializer_list<const std::vector<float>*> parts) {
        size_t i = static_cast<size_t>(at - params_);
        for (const auto* part : parts)
            for (float v : *part) host[i++] = __float2bfloat16(v);
    };
    put(embed_, {&w.embed});
    put(final_norm_, {&w.final_norm});
    if (!c.tie_embeddings) put(lm_head_, {&w.lm_head});
    for (int l = 0; l < c.n_layers; l++) layer_stage(host.data(), params_, layers_[l], w.layers[l], c);
    CUDA_CHECK(cudaMemcpy(params_, host.data(), weight_bytes_, cudaMemcpyHostToDevice));
    init_constants();
}

CudaModel::CudaModel(const Config& config, uint64_t seed, float scale) : cfg_(config) {
    const Config& c = cfg_;
    config_check(c, "CudaModel(" + c.name + ")");
    if (c.ffn % kGluGroup != 0)
        throw Error("CudaModel(" + c.name + "): intermediate_size must be a multiple of " + std::to_string(kGluGroup));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    cublas_ = cublas_create(stream_);
    const size_t elems = lay_out(nullptr);
    weight_bytes_ = elems * sizeof(bf16);
    CUDA_CHECK(cudaMalloc(&params_, weight_bytes_));
    lay_out(params_);
    // every element uniform (padding too), then the norm weights at 1
    init_uniform(params_, elems, scale, seed, stream_);
    const size_t d = c.hidden, D = c.head_dim;
    auto ones = [&](const bf16* at, size_t n) { init_fill(params_ + (at - params_), n, 1.0f, stream_); };
    ones(final_norm_, d);
    for (const CudaLayer& L : layers_) {
        ones(L.attn_norm, d);
        ones(L.mlp_norm, d);
        if (c.qk_norm) {
            ones(L.q_norm, D);
            ones(L.k_norm, D);
        }
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    init_constants();
}

size_t CudaModel::lay_out(bf16* base) {
    const Config& c = cfg_;
    const size_t d = c.hidden, D = c.head_dim, F = c.ffn, H = c.n_heads, KVH = c.n_kv_heads;
    size_t elems = 0;
    auto add = [&](size_t n) -> const bf16* {
        const size_t start = elems;
        elems += aligned(n * sizeof(bf16)) / sizeof(bf16);
        return base ? base + start : nullptr;
    };
    embed_ = add(c.vocab * d);
    final_norm_ = add(d);
    lm_head_ = c.tie_embeddings ? embed_ : add(c.vocab * d);
    layers_.assign(c.n_layers, CudaLayer{});
    for (CudaLayer& L : layers_) {
        L.attn_norm = add(d);
        L.wqkv = add((H + 2 * KVH) * D * d);
        L.q_norm = c.qk_norm ? add(D) : nullptr;
        L.k_norm = c.qk_norm ? add(D) : nullptr;
        L.wo = add(d * H * D);
        L.mlp_norm = add(d);
        L.wgu = add(2 * F * d);
        L.w_down = add(d * F);
    }
    return elems;
}

void CudaModel::init_constants() {
    const Config& c = cfg_;
    const std::vector<double> inv_freq = rope_inv_freq(c);
    std::vector<float> f(inv_freq.begin(), inv_freq.end());  // fp32, as the reference's angles use it
    CUDA_CHECK(cudaMalloc(&inv_freq_, f.size() * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(inv_freq_, f.data(), f.size() * sizeof(float), cudaMemcpyHostToDevice));
    const float neg_inf = -INFINITY;
    CUDA_CHECK(cudaMalloc(&neg_inf_, sizeof(float)));
    CUDA_CHECK(cudaMemcpy(neg_inf_, &neg_inf, sizeof(float), cudaMemcpyHostToDevice));
}

CudaModel::~CudaModel() {
    // unchecked: destructors must not throw
    cudaStreamSynchronize(stream_);
    for (Graph& g : graphs_) cudaGraphExecDestroy(g.exec);
    cublas_destroy(cublas_);
    cudaFree(params_);
    cudaFree(inv_freq_);
    cudaFree(neg_inf_);
    cudaFree(acts_);
    cudaFree(meta_);
    cudaFree(attn_work_);
    cudaFree(verify_buf_);
    cudaFree(sample_buf_);
    cudaStreamDestroy(stream_);
}

void CudaModel::ensure_activations(int T, int n_hidden) {
    if (T <= cap_T_ && n_hidden <= cap_hidden_) return;
    const Config& c = cfg_;
    const int newT = std::max(T, cap_T_), newH = std::max(n_hidden, cap_hidden_);
    const size_t t = static_cast<size_t>(newT), d = c.hidden, D = c.head_dim;
    const size_t sizes[] = {
        aligned(t * d * sizeof(float)),                                       // x
        aligned(t * d * sizeof(bf16)),                                        // xn
        aligned(t * (c.n_heads + 2 * c.n_kv_heads) * D * sizeof(bf16)),      // qkv
        aligned(t * c.n_heads * D * sizeof(bf16)),                            // att
        aligned(t * 2 * c.ffn * sizeof(bf16)),                                // gu
        aligned(t * c.ffn * sizeof(bf16)),                                    // act
        aligned(t * c.vocab * sizeof(float)),                                 // logits
        aligned(static_cast<size_t>(newH) * t * d * sizeof(float)) + 256,    // hidden
    };
    size_t total = 0;
    for (size_t s : sizes) total += s;
    graphs_clear();  // waits for the stream: the old buffers may be in use
    CUDA_CHECK(cudaFree(acts_));
    acts_ = nullptr;
    CUDA_CHECK(cudaMalloc(&acts_, total));
    char* p = static_cast<char*>(acts_);
    auto next = [&](size_t i) {
        char* at = p;
        p += sizes[i];
        return at;
    };
    x_ = reinterpret_cast<float*>(next(0));
    xn_ = reinterpret_cast<bf16*>(next(1));
    qkv_ = reinterpret_cast<bf16*>(next(2));
    att_ = reinterpret_cast<bf16*>(next(3));
    gu_ = reinterpret_cast<bf16*>(next(4));
    act_ = reinterpret_cast<bf16*>(next(5));
    logits_ = reinterpret_cast<float*>(next(6));
    hidden_ = reinterpret_cast<float*>(next(7));
    cap_T_ = newT;
    cap_hidden_ = newH;
}

void CudaModel::forward_device(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers) {
    prepare(kv, b, hidden_layers);
    enqueue(kv);
}

void CudaModel::prepare(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers) {
    prepare_batch(kv, b, hidden_layers, false);
}

void CudaModel::prepare_batch(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers,
                              bool bucket) {
    const Config& c = cfg_;
    const int KVH = c.n_kv_heads, D = c.head_dim, V = c.vocab;
    const int S = static_cast<int>(b.seq.size());

    // --- check the batch against the cache and the config (nothing changed yet)
    if (kv.n_layers() != c.n_layers || kv.kv_dim() != KVH * D)
        throw Error("CudaModel::forward: KV cache was made for another config");
    if (static_cast<int>(b.q_len.size()) != S) throw Error("CudaModel::forward: seq and q_len differ in length");
    std::vector<bool> seen(kv.n_seqs(), false);
    int T = 0;
    for (int s = 0; s < S; s++) {
        const int slot = b.seq[s];
        if (slot < 0 || slot >= kv.n_seqs() || seen[slot])
            throw Error("CudaModel::forward: sequence slot " + std::to_string(slot) + " out of range or repeated");
        if (b.q_len[s] < 1) throw Error("CudaModel::forward: q_len must be >= 1");
        seen[slot] = true;
        T += b.q_len[s];
    }
    if (static_cast<int>(b.tokens.size()) != T)
        throw Error("CudaModel::forward: " + std::to_string(b.tokens.size()) + " tokens for a total q_len of " +
                    std::to_string(T));
    for (int tok : b.tokens)
        if (tok < 0 || tok >= V) throw Error("CudaModel::forward: token " + std::to_string(tok) + " out of range");
    for (int l : hidden_layers)
        if (l < 0 || l >= c.n_layers)
            throw Error("CudaModel::forward: hidden layer " + std::to_string(l) + " out of range");

    // --- reserve the new rows (throws "KV cache full" before anything changes)
    std::vector<int> old_len(S);
    for (int s = 0; s < S; s++) old_len[s] = kv.len(b.seq[s]);
    kv.grow(b.seq, b.q_len);

    // --- metadata: tokens, tok_seq, tok_pos, slot (T each), block tables (S, max_blocks)
    int max_blocks = 1;
    for (int s = 0; s < S; s++) max_blocks = std::max(max_blocks, static_cast<int>(kv.blocks(b.seq[s]).size()));
    if (bucket) max_blocks = blocks_bucket(max_blocks);
    std::vector<int> meta(4 * static_cast<size_t>(T) + static_cast<size_t>(S) * max_blocks, 0);
    int* m_tokens = meta.data();
    int* m_seq = m_tokens + T;
    int* m_pos = m_seq + T;
    int* m_slot = m_pos + T;
    int* m_tables = m_slot + T;
    const int bs = kv.block_size();
    for (int s = 0, t = 0; s < S; s++) {
        const std::vector<int>& blocks = kv.blocks(b.seq[s]);
        std::copy(blocks.begin(), blocks.end(), m_tables + static_cast<size_t>(s) * max_blocks);
        for (int i = 0; i < b.q_len[s]; i++, t++) {
            const int pos = old_len[s] + i;
            m_tokens[t] = b.tokens[t];
            m_seq[t] = s;
            m_pos[t] = pos;
            m_slot[t] = blocks[pos / bs] * bs + pos % bs;
        }
    }
    if (meta.size() > cap_meta_) {
        graphs_clear();
        CUDA_CHECK(cudaFree(meta_));
        meta_ = nullptr;
        CUDA_CHECK(cudaMalloc(&meta_, meta.size() * sizeof(int)));
        cap_meta_ = meta.size();
    }
    // pageable source: the call returns once the data is staged, so `meta` may go
    CUDA_CHECK(cudaMemcpyAsync(meta_, meta.data(), meta.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
    ensure_activations(T, static_cast<int>(hidden_layers.size()));
    // Sized for the longest context the model takes, not this batch's: the
    // split count grows with the context up to a cap set by T alone, and a
    // workspace that grew during a decode would drop every graph each time.
    const int plan_blocks = std::max(max_blocks, ceil_div(c.max_position, bs));
    const size_t attn_need = attention_workspace_bytes(T, c.n_heads, KVH, D, plan_blocks, bs);
    if (attn_need > attn_work_bytes_) {
        graphs_clear();
        CUDA_CHECK(cudaFree(attn_work_));
        attn_work_ = nullptr;
        CUDA_CHECK(cudaMalloc(&attn_work_, attn_need));
        attn_work_bytes_ = attn_need;
    }
    T_ = T;
    plan_seqs_ = bucket ? octave_round_up(S, 1, 1) : S;
    max_blocks_ = max_blocks;
    hidden_layers_ = hidden_layers;
}

void CudaModel::enqueue(const KvCache& kv) {
    const Config& c = cfg_;
    const int d = c.hidden, H = c.n_heads, KVH = c.n_kv_heads, D = c.head_dim, F = c.ffn, V = c.vocab;
    const float eps = static_cast<float>(c.rms_eps);
    const int T = T_, max_blocks = max_blocks_, bs = kv.block_size();
    if (T == 0) throw Error("CudaModel::enqueue: no prepared batch");
    const int* d_tokens = meta_;
    const int* d_seq = d_tokens + T;
    const int* d_pos = d_seq + T;
    const int* d_slot = d_pos + T;
    const int* d_tables = d_slot + T;
    const std::vector<int>& hidden_layers = hidden_layers_;
    const int n_hidden = static_cast<int>(hidden_layers.size());
    // the residual stream after layer l is x once the next norm has added y
    auto save_hidden = [&](int l) {
        for (int k = 0; k < n_hidden; k++)
            if (hidden_layers[k] == l)
                CUDA_CHECK(cudaMemcpyAsync(hidden_ + static_cast<size_t>(k) * T * d, x_,
                                           static_cast<size_t>(T) * d * sizeof(float), cudaMemcpyDeviceToDevice,
                                           stream_));
    };

    embed_forward(x_, d_tokens, embed_, T, d, stream_);
    for (int l = 0; l < c.n_layers; l++) {
        const CudaLayer& L = layers_[l];
        // attention block
        const RmsnormInput attn_in{x_, L.attn_norm, eps}, mlp_in{x_, L.mlp_norm, eps};
        matmul_forward(cublas_, qkv_, Epilogue::Bf16, xn_, L.wqkv, T, d, (H + 2 * KVH) * D, nullptr, &attn_in);
        rope_forward(qkv_, d_pos, inv_freq_, L.q_norm, L.k_norm, T, H, KVH, D, eps, stream_, kv.k(l), kv.v(l),
                     d_slot);
        attention_forward(att_, qkv_, kv.k(l), kv.v(l), d_tables, max_blocks, bs, d_seq, d_pos, T, plan_seqs_, H, KVH, D,
                          attn_work_, attn_work_bytes_, stream_);
        matmul_forward(cublas_, x_, Epilogue::AddFp32, att_, L.wo, T, H * D, d);
        // MLP block
        matmul_forward(cublas_, act_, Epilogue::SwiGLU, xn_, L.wgu, T, d, 2 * F, gu_, &mlp_in);
        matmul_forward(cublas_, x_, Epilogue::AddFp32, act_, L.w_down, T, F, d);
        save_hidden(l);
    }
    const RmsnormInput final_in{x_, final_norm_, eps};
    matmul_forward(cublas_, logits_, Epilogue::Fp32, xn_, lm_head_, T, d, V, nullptr, &final_in);
}

std::vector<GemmShape> layer_gemm_shapes(const CudaLayer& L, const Config& c, int max_T) {
    const int d = c.hidden, q = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim, o = c.n_heads * c.head_dim, F = c.ffn;
    return {{Epilogue::Bf16, L.wqkv, d, q, max_T},
            {Epilogue::AddFp32, L.wo, o, d, max_T},
            {Epilogue::SwiGLU, L.wgu, d, 2 * F, max_T},
            {Epilogue::AddFp32, L.w_down, F, d, max_T}};
}

void CudaModel::gemm_warm(int max_T) {
    std::vector<GemmShape> shapes = layer_gemm_shapes(layers_.front(), cfg_, max_T);  // every layer's are alike
    shapes.push_back({Epilogue::Fp32, lm_head_, cfg_.hidden, cfg_.vocab, max_T});
    matmul_warm(cublas_, shapes);
}

int blocks_bucket(int n) { return octave_round_up(n, 4, 1); }

void CudaModel::graphs_clear() {
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // no launch of them in flight
    for (Graph& g : graphs_) CUDA_CHECK(cudaGraphExecDestroy(g.exec));
    graphs_.clear();
}

void CudaModel::forward_graph(KvCache& kv, const RaggedBatch& b, const std::vector<int>& hidden_layers) {
    prepare_batch(kv, b, hidden_layers, true);
    const Config& c = cfg_;
    const int attn_splits =
        attention_splits(T_, plan_seqs_, c.n_heads, c.n_kv_heads, c.head_dim, max_blocks_, kv.block_size());
    auto hit = std::find_if(graphs_.begin(), graphs_.end(), [&](const Graph& g) {
        return g.T == T_ && g.max_blocks == max_blocks_ && g.attn_splits == attn_splits && g.kv == kv.k(0) &&
               g.kv_blocks == kv.n_blocks() &&
               g.hidden_layers == hidden_layers_;
    });
    if (hit == graphs_.end()) {
        if (static_cast<int>(graphs_.size()) >= kGraphCacheMax) {
            auto lru = std::min_element(graphs_.begin(), graphs_.end(),
                                        [](const Graph& a, const Graph& z) { return a.last_use < z.last_use; });
            CUDA_CHECK(cudaStreamSynchronize(stream_));
            CUDA_CHECK(cudaGraphExecDestroy(lru->exec));
            graphs_.erase(lru);
        }
        // A T met for the first time runs once eagerly: its GEMM shapes are
        // timed then (matmul.cu), which a capture cannot (GEMV-sized T have
        // none). The forward is idempotent (the same KV rows, the same outputs).
        if (cublas_.tune && (!cublas_.gemv || T_ > kGemvMaxT) &&
            std::find(tuned_T_.begin(), tuned_T_.end(), T_) == tuned_T_.end()) {
            enqueue(kv);
            tuned_T_.push_back(T_);
        }
        Graph g{T_, max_blocks_, attn_splits, kv.k(0), kv.n_blocks(), hidden_layers_, nullptr, 0};
        cudaGraph_t graph = nullptr;
        CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        try {
            enqueue(kv);
        } catch (...) {
            cudaStreamEndCapture(stream_, &graph);  // unchecked: the capture is invalid already
            if (graph) cudaGraphDestroy(graph);
            throw;
        }
        CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
        const cudaError_t err = cudaGraphInstantiate(&g.exec, graph, 0);
        cudaGraphDestroy(graph);
        CUDA_CHECK(err);
        graphs_.push_back(std::move(g));
        graphs_captured_++;
        hit = graphs_.end() - 1;
    }
    hit->last_use = ++graph_clock_;
    CUDA_CHECK(cudaGraphLaunch(hit->exec, stream_));
}

void CudaModel::set_cublas_only(bool on) {
    if (cublas_.gemv == !on) return;
    graphs_clear();  // they hold the other path's kernels
    cublas_.gemv = !on;
}

void CudaModel::set_gemm_tuning(bool on) {
    if (cublas_.tune == on) return;
    graphs_clear();
    cublas_.tune = on;
}

void CudaModel::forward(KvCache& kv, const RaggedBatch& b, std::vector<float>* logits,
                        const std::vector<int>& hidden_layers, std::vector<float>* hidden, bool graph) {
    if (graph)
        forward_graph(kv, b, hidden_layers);
    else
        forward_device(kv, b, hidden_layers);
    const size_t T = static_cast<size_t>(T_), V = cfg_.vocab, d = cfg_.hidden;
    if (logits) {
        logits->resize(T * V);
        CUDA_CHECK(cudaMemcpyAsync(logits->data(), logits_, T * V * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    }
    if (hidden) {
        hidden->resize(hidden_layers.size() * T * d);
        CUDA_CHECK(cudaMemcpyAsync(hidden->data(), hidden_, hidden->size() * sizeof(float), cudaMemcpyDeviceToHost,
                                   stream_));
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaModel::verify(const RaggedBatch& b, const VerifyBatch& v, VerifyResult* out) {
    verify_check(b, v);
    const int S = static_cast<int>(b.seq.size());
    int T = 0;
    for (int l : b.q_len) T += l;
    // verify_forward reads the tokens of the last prepared batch from meta_
    if (T != T_ || static_cast<int>(b.tokens.size()) != T)
        throw Error("CudaModel::verify: the batch is not the one the last forward ran");
    out->n_accepted.assign(S, 0);
    out->next.assign(S, -1);
    if (S == 0) return;
    std::vector<VerifySeq> seqs(S);
    for (int s = 0, row = 0; s < S; row += b.q_len[s], s++) {
        const int ctx = verify_n_context(v, size_t(s));  // a prefill chunk's context rows: not drafts
        seqs[s] = VerifySeq{v.request[s], v.temperature[s], b.q_len[s] - ctx, row + ctx, v.anchor_pos[s],
                            v.q ? v.q_row[s] : 0};
    }
    const size_t seq_bytes = aligned(seqs.size() * sizeof(VerifySeq));
    const size_t need = seq_bytes + 2 * static_cast<size_t>(S) * sizeof(int);
    if (need > verify_bytes_) {
        CUDA_CHECK(cudaFree(verify_buf_));  // synchronises: no verify in flight reads it
        verify_buf_ = nullptr;
        CUDA_CHECK(cudaMalloc(&verify_buf_, need));
        verify_bytes_ = need;
    }
    auto* d_seqs = static_cast<VerifySeq*>(verify_buf_);
    int* d_res = reinterpret_cast<int*>(static_cast<char*>(verify_buf_) + seq_bytes);  // n_accepted (S), next (S)
    // pageable source: the call returns once the data is staged, so `seqs` may go
    CUDA_CHECK(cudaMemcpyAsync(d_seqs, seqs.data(), seqs.size() * sizeof(VerifySeq), cudaMemcpyHostToDevice, stream_));
    verify_forward(d_res, d_res + S, logits_, meta_, d_seqs, v.q, v.q_gamma, v.eos, v.seed, S, cfg_.vocab, stream_);
    std::vector<int> res(2 * static_cast<size_t>(S));
    CUDA_CHECK(cudaMemcpyAsync(res.data(), d_res, res.size() * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::copy(res.begin(), res.begin() + S, out->n_accepted.begin());
    std::copy(res.begin() + S, res.end(), out->next.begin());
}

void CudaModel::sample(const RaggedBatch& b, const SampleBatch& s, SampleResult* out) {
    sample_check(b, s);
    const int S = static_cast<int>(b.seq.size()), G = s.q_gamma;
    int T = 0;
    for (int l : b.q_len) T += l;
    if (T != T_ || static_cast<int>(b.tokens.size()) != T)
        throw Error("CudaModel::sample: the batch is not the one the last forward ran");
    out->token.assign(S, 0);
    out->q_token.assign(S, 0.0f);
    if (S == 0) return;
    // arguments, 32-bit words: rng (2 S, first: 8-byte aligned), temperature, n_draft, u_row, out_row (S each)
    std::vector<uint32_t> args(6 * static_cast<size_t>(S));
    int rows = 0;
    bool sampling = false;
    for (int i = 0, row = -1; i < S; i++) {
        row += b.q_len[i];
        std::memcpy(&args[2 * size_t(i)], &s.rng[i], sizeof(uint64_t));
        std::memcpy(&args[2 * size_t(S) + i], &s.temperature[i], sizeof(float));
        args[3 * size_t(S) + i] = static_cast<uint32_t>(s.k + 1);
        args[4 * size_t(S) + i] = static_cast<uint32_t>(row);
        args[5 * size_t(S) + i] = static_cast<uint32_t>(s.q_row[i]);
        rows = std::max(rows, s.q_row[i] + 1);
        sampling = sampling || s.temperature[i] > 0;
    }
    const size_t out_n = static_cast<size_t>(rows) * G;  // tokens, then q_token
    const size_t args_bytes = aligned(args.size() * 4), out_bytes = aligned(2 * out_n * 4);
    const size_t need = args_bytes + out_bytes + markov_scratch_bytes(S * G);
    if (need > sample_bytes_) {
        CUDA_CHECK(cudaFree(sample_buf_));  // synchronises: no sample in flight reads it
        sample_buf_ = nullptr;
        sample_bytes_ = 0;
        CUDA_CHECK(cudaMalloc(&sample_buf_, need));
        sample_bytes_ = need;
    }
    char* buf = static_cast<char*>(sample_buf_);
    const auto* d_args = reinterpret_cast<const uint32_t*>(buf);
    int* d_out = reinterpret_cast<int*>(buf + args_bytes);
    // pageable source: the call returns once the data is staged, so `args` may go
    CUDA_CHECK(cudaMemcpyAsync(buf, args.data(), args.size() * 4, cudaMemcpyHostToDevice, stream_));
    MarkovStep m;
    m.U = logits_;
    m.rng = reinterpret_cast<const uint64_t*>(d_args);
    m.temperature = reinterpret_cast<const float*>(d_args + 2 * S);
    m.n_draft = reinterpret_cast<const int*>(d_args + 3 * S);
    m.u_row = reinterpret_cast<const int*>(d_args + 4 * S);
    m.out_row = reinterpret_cast<const int*>(d_args + 5 * S);
    m.tokens = d_out;
    m.q_token = reinterpret_cast<float*>(d_out + out_n);
    m.q = sampling ? s.q : nullptr;
    m.scratch = buf + args_bytes + out_bytes;
    m.R = S;
    m.G = G;
    m.gamma = G;
    m.V = cfg_.vocab;
    markov_scratch_clear(m.scratch, S * G, stream_);
    markov_step_forward(m, s.k, 1, stream_);
    std::vector<int> res(2 * out_n);
    CUDA_CHECK(cudaMemcpyAsync(res.data(), d_out, res.size() * 4, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (int i = 0; i < S; i++) {
        const size_t at = static_cast<size_t>(s.q_row[i]) * G + s.k;
        out->token[i] = res[at];
        std::memcpy(&out->q_token[i], &res[out_n + at], sizeof(float));
    }
}

std::vector<int> CudaModel::greedy(KvCache& kv, int seq, const std::vector<int>& prompt, int n_new, int suppress) {
    const int V = cfg_.vocab;
    int* d_id = nullptr;
    CUDA_CHECK(cudaMalloc(&d_id, sizeof(int)));
    std::vector<int> out;
    try {
        std::vector<int> tokens = prompt;
        for (int i = 0; i < n_new; i++) {
            forward_device(kv, RaggedBatch{{seq}, {static_cast<int>(tokens.size())}, tokens});
            float* last = logits_ + static_cast<size_t>(T_ - 1) * V;
            if (suppress >= 0 && suppress < V)
                CUDA_CHECK(cudaMemcpyAsync(last + suppress, neg_inf_, sizeof(float),
                                           cudaMemcpyDeviceToDevice, stream_));
            argmax_forward(d_id, last, 1, V, stream_);
            int id = 0;
            CUDA_CHECK(cudaMemcpyAsync(&id, d_id, sizeof(int), cudaMemcpyDeviceToHost, stream_));
            CUDA_CHECK(cudaStreamSynchronize(stream_));
            out.push_back(id);
            tokens = {id};
        }
    } catch (...) {
        cudaFree(d_id);
        throw;
    }
    CUDA_CHECK(cudaFree(d_id));
    return out;
}

}  // namespace sp
