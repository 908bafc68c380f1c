// kernels.h: the launchers of the CUDA backend's own kernels, one family per
// .cu file (llm.c's layout). Plain C++: the .cpp files of the backend and the
// tests include it. Every launcher enqueues on `stream`, checks the launch,
// and returns without synchronising.
//
// Shapes use model.h's legend (V d L H KVH D F T S). Activations are bf16
// except the residual stream x and the logits, which stay fp32; reductions
// (norms, softmax, dot products) accumulate in fp32. Row-major throughout.
// Per-token metadata, as the forward uploads it:
//   tok_seq (T)  index 0..S-1 of the token's sequence in the batch
//   tok_pos (T)  the token's absolute position in its sequence
//   slot    (T)  its row in the paged KV cache: block * block_size + offset
//   block_tables (S, max_blocks)  each sequence's cache blocks, in order
#pragma once

#include <cstdint>
#include <vector>

#include "engine/cuda_common.h"

namespace sp {

// --- embed.cu
// x (T, d) fp32 = embed[tokens[t]]; embed (V, d) bf16. Tokens are checked on
// the host before upload.
void embed_forward(float* x, const int* tokens, const bf16* embed, int T, int d, cudaStream_t stream);

// --- rmsnorm.cu
// Residual add fused with RMSNorm, per row t:
//   if y: x[t] += y[t]          x (T, d) fp32, y (T, d) bf16 or nullptr
//   out[t] = rmsnorm(x[t]) * w  out (T, d) bf16, w (d) bf16
void rmsnorm_forward(bf16* out, float* x, const bf16* y, const bf16* w, int T, int d, float eps,
                     cudaStream_t stream);

// --- rope.cu
// In place on qkv (T, (H + 2 KVH) D), each row [q heads | k heads | v heads]:
// when q_norm (D) and k_norm (D) are given (Qwen3), RMSNorm of each q and k
// head first; then RoPE at tok_pos[t] on every q and k head, HF's rotate_half
// pairing (i, i + D/2), angle fp32(inv_freq[i]) * pos. inv_freq (D/2) fp32.
// With k_cache, v_cache and slot given it also does kv_append's work (the
// rotated k and the v of token t into cache row slot[t]), saving a launch.
void rope_forward(bf16* qkv, const int* tok_pos, const float* inv_freq, const bf16* q_norm, const bf16* k_norm,
                  int T, int H, int KVH, int D, float eps, cudaStream_t stream, bf16* k_cache = nullptr,
                  bf16* v_cache = nullptr, const int* slot = nullptr);

// --- swiglu.cu
// The fused gate|up projection's rows come interleaved in groups of
// kGluGroup: rows 16 j .. 16 j + 7 are gate rows 8 j .. 8 j + 7 and rows
// 16 j + 8 .. 16 j + 15 the matching up rows (so that gemv.cu's 16-row tile
// holds both halves of its 8 outputs; F must be a multiple of 8).
// out (T, F) = silu(gate) * up of gu (T, 2F) in that layout.
constexpr int kGluGroup = 8;
void swiglu_forward(bf16* out, const bf16* gu, int T, int F, cudaStream_t stream);

// --- kv_append.cu
// Copies each token's k and v (from qkv (T, (H + 2 KVH) D), after RoPE) into
// its cache row slot[t]: k_cache, v_cache (n_blocks * block_size, KVH D).
void kv_append(bf16* k_cache, bf16* v_cache, const bf16* qkv, const int* slot, int T, int H, int KVH, int D,
               cudaStream_t stream);

// --- attention.cu
// out (T, H D): for each token t and head h, softmax(q k^T / sqrt(D)) v over
// positions 0..tok_pos[t] of its sequence (the cached prefix plus the new
// tokens up to itself: causal), read through the block table from the paged
// cache, which already holds this forward's new rows. GQA: head h reads KV
// head h / (H / KVH). q is read from qkv (T, (H + 2 KVH) D).
// The fast path (flash-decoding: query tiles of one sequence's consecutive
// tokens, the context split into chunks, a merge) needs a device workspace
// of attention_workspace_bytes(T, H, KVH, D, max_blocks, block_size) bytes
// (0 when the launch needs none, and enough for any n_seqs); it depends only
// on those arguments, so it can be sized outside a graph capture.
// Consecutive tokens of a sequence must come in position order (the
// forward's layout) to share a tile; any order is correct. n_seqs, the
// number of sequences among the T tokens (T when each is its own) or any
// larger planning figure, sets how the context is split and nothing else;
// attention_splits says into how many chunks, which a captured graph must
// key on.
size_t attention_workspace_bytes(int T, int H, int KVH, int D, int max_blocks, int block_size);
int attention_splits(int T, int n_seqs, int H, int KVH, int D, int max_blocks, int block_size);
void attention_forward(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                       const int* block_tables, int max_blocks, int block_size, const int* tok_seq,
                       const int* tok_pos, int T, int n_seqs, int H, int KVH, int D, void* work, size_t work_bytes,
                       cudaStream_t stream);
// The same, by the plain first version (one block per token and head, no
// workspace): the tests' reference for the fast path.
void attention_forward_reference(bf16* out, const bf16* qkv, const bf16* k_cache, const bf16* v_cache,
                                 const int* block_tables, int max_blocks, int block_size, const int* tok_seq,
                                 const int* tok_pos, int T, int H, int KVH, int D, cudaStream_t stream);

// --- sampling.cu
// ids (T) = argmax of each logits row (T, V); ties go to the lowest index.
void argmax_forward(int* ids, const float* logits, int T, int V, cudaStream_t stream);
// probs (T, V) = softmax(logits / temperature[t]) per row; temperature > 0.
void softmax_forward(float* probs, const float* logits, const float* temperature, int T, int V,
                     cudaStream_t stream);
// ids (T): one draw per row from softmax(logits / temperature[t]) by the
// Gumbel-max trick, argmax_i logits_i / temp + g_i, with g_i from a
// counter-based hash of (seed, request[t], position[t], i): reproducible, the
// same for a request whatever batch it is in, no host round trip, no state.
// temperature[t] == 0 gives the argmax.
void sample_forward(int* ids, const float* logits, const float* temperature, const uint64_t* request,
                    const int* position, uint64_t seed, int T, int V, cudaStream_t stream);
// The uniform (0, 1) that sample_forward draws for vocab entry i (host copy
// of the device hash, for tests).
double sample_uniform(uint64_t seed, uint64_t request, int position, int i);

// --- verify.cu
// verify.h's lossless acceptance (verify_reference's rule and RNG keys) for
// a ragged batch of S sequences, one block per sequence, so that only the
// results leave the device:
//   logits (T, V) fp32 of the target's forward over tokens (T), each
//   sequence's anchor then its drafts; seqs (S) as below; q: the draft
//   probabilities, draft k of sequence s at q + (q_row * q_gamma + k) * V,
//   or nullptr for one-hot drafts (not read for greedy sequences);
//   writes n_accepted (S), 0 .. q_len - 1, and next (S), the correction or
//   bonus token, -1 when an accepted eos (-1: none) ended the sequence.
struct VerifySeq {
    uint64_t request;   // RNG key
    float temperature;  // 0 = greedy
    int q_len;          // 1 + its drafts
    int first_row;      // its anchor's row in logits and tokens
    int anchor_pos;     // its anchor's position (RNG key)
    int q_row;          // its block of rows in q
};
void verify_forward(int* n_accepted, int* next, const float* logits, const int* tokens, const VerifySeq* seqs,
                    const float* q, int q_gamma, int eos, uint64_t seed, int S, int V, cudaStream_t stream);

// --- gather.cu
// The DSpark and EAGLE-3 drafters' context features: f (n, m d) bf16, row
// j the concatenation over the m target layers i of hidden[i][rows[j]],
// hidden (m, hidden_T, d) fp32 as the forward's hidden_layers output lays
// it out.
void gather_features(bf16* f, const float* hidden, const int* rows, int n, int m, int hidden_T, int d,
                     cudaStream_t stream);
// out (n, width) bf16 = table[ids[j]] for each j; table (rows, width) bf16.
void gather_rows(bf16* out, const bf16* table, const int* ids, int n, int width, cudaStream_t stream);
// dst[dst_rows[j]] = src[src_rows[j]] for j < n, rows of width fp32; a null
// list is the identity (row j). Destination rows must be distinct.
void copy_rows(float* dst, const int* dst_rows, const float* src, const int* src_rows, int n, int width,
               cudaStream_t stream);

// --- eagle3.cu
// The EAGLE-3 draft layer's attention input, x2 (T, 2d) bf16, row t =
//   [rmsnorm(embed[tok_t]) * input_norm ; rmsnorm(h[t]) * hidden_norm]
// with embed (V, d) bf16, h (T, d) fp32, the norms (d) bf16 (rmsnorm_forward's
// numerics per half). tok_t = tokens[t] when tokens is given; otherwise the
// chain's previous token, read on the device: forced[t gamma + k] where
// forced is given and that entry is >= 0, else drafted[out_row[t] gamma + k]
// (markov_step_forward's (S, gamma) tokens; out_row (T) as MarkovStep's).
void eagle3_input_forward(bf16* x2, const bf16* embed, const float* h, const bf16* input_norm,
                          const bf16* hidden_norm, int T, int d, float eps, cudaStream_t stream,
                          const int* tokens, const int* forced = nullptr, const int* drafted = nullptr,
                          const int* out_row = nullptr, int k = 0, int gamma = 0);

// --- markov.cu
// One step k of the DSpark drafter's sequential loop for R drafting
// requests (digest §1.2, §2.1; G block slots, r Markov rank, gamma output
// slots): logits = U[j G + k] + bias[j]; confidence z = conf_w . [h[j G + k] ;
// w1_rows[j]] + conf_b, c = sigma(z / sts[k]); the draft x = argmax at T = 0,
// else the Gumbel-max draw of RNG_DRAFT row rng[j], entry k V + v (as
// sample_row); q = softmax(logits / T) at T > 0 and q_token = its entry x
// (softmax at temperature 1 when greedy); then w1_rows[j] = W1[x], or
// W1[forced] where forced[j gamma + k] >= 0. Requests with k >= n_draft[j]
// are skipped. Outputs go to row out_row[j] of (S, gamma) (q: (S, gamma, V)).
struct MarkovStep {
    const float* U = nullptr;        // (R G, V) fp32 base logits lm_head h
    float* bias = nullptr;           // (R, V) fp32 W2 W1[prev], made the logits in place; null: no Markov head
    const bf16* h = nullptr;         // (R G, d) the final-normed hidden states
    bf16* w1_rows = nullptr;         // (R, r) W1[prev] per request, advanced by the step; null without a head
    const bf16* w1 = nullptr;        // (V, r) the Markov embedding
    const float* conf_w = nullptr;   // (d + r) or (d) fp32; null: no confidence head
    const float* conf_b = nullptr;   // (1)
    const float* sts = nullptr;      // (G) STS temperatures
    int conf_markov = 0;             // the confidence head reads W1[prev] too
    const int* n_draft = nullptr;    // (R)
    const float* temperature = nullptr;  // (R); 0 = argmax
    const uint64_t* rng = nullptr;   // (R) counter_row(seed, RNG_DRAFT, request, anchor_pos)
    const int* out_row = nullptr;    // (R) the request's index s in the batch
    const int* forced = nullptr;     // (R, gamma) teacher-forced previous tokens, -1: the draft's own
    int* tokens = nullptr;           // (S, gamma)
    float* conf_logit = nullptr;     // (S, gamma)
    float* conf = nullptr;           // (S, gamma)
    float* q_token = nullptr;        // (S, gamma) q of the drawn token (at temperature 1 when greedy)
    float* q = nullptr;              // (S, gamma, V), written for T > 0; null: no request samples
    const int* u_row = nullptr;      // (R) the row of U holding request j's logits; null: j G + k
    void* scratch = nullptr;         // markov_scratch_bytes(R G), cleared by markov_scratch_clear
    int R = 0, G = 0, gamma = 0, V = 0, d = 0, r = 0;
};
// Steps k0 .. k0 + n_steps - 1 (n_steps must be 1 with a Markov head: each
// step reads the W1 row the one before wrote), k0 + n_steps <= G.
void markov_step_forward(const MarkovStep& m, int k0, int n_steps, cudaStream_t stream);
// The step's scratch for `rows` = R G (request, slot) rows: per-block
// partials and a ticket counter per row. Clear it before the steps of each
// batch (the counters must start at zero; the partials' offset moves with rows).
size_t markov_scratch_bytes(int rows);
void markov_scratch_clear(void* scratch, int rows, cudaStream_t stream);

// --- init.cu
// p (n) bf16 = scale * (2 u_i - 1), u_i uniform (0, 1) from a counter-based
// hash of (seed, i): reproducible, no state, no host copy. Uniform on
// (-scale, scale) has standard deviation scale / sqrt(3).
void init_uniform(bf16* p, size_t n, float scale, uint64_t seed, cudaStream_t stream);
// p (n) bf16 = value.
void init_fill(bf16* p, size_t n, float value, cudaStream_t stream);

// --- matmul.cu
// The one cuBLAS wrapper: a handle bound to a stream, its workspace, and the
// cuBLASLt algorithm timed fastest for each GEMM shape met so far.
struct GemmPlans;  // matmul.cu
struct Cublas {
    cublasHandle_t handle = nullptr;
    cublasLtHandle_t lt = nullptr;
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
    cudaStream_t stream = nullptr;
    bool gemv = true;  // false: every projection through cuBLAS, gemv.cu never (its reference, for tests and timing)
    bool tune = true;  // false: cuBLAS's default algorithm for every shape (the untuned reference, for timing)
    GemmPlans* plans = nullptr;  // owned; cublas_destroy frees it
};
Cublas cublas_create(cudaStream_t stream);
void cublas_destroy(Cublas& c);
// What a projection does with its product P (T, n_out) = x @ W^T:
//   Bf16     y (T, n_out) bf16 = P              Fp32  y fp32 = P
//   AddFp32  y (T, n_out) fp32 += P (the residual add of wo and w_down; no rounding)
//   SwiGLU   W's rows gate/up interleaved (kGluGroup); y (T, n_out / 2) bf16 =
//            silu(bf16(gate)) * bf16(up), as matmul + swiglu_forward would give
enum class Epilogue { Bf16, Fp32, AddFp32, SwiGLU };
// A projection's input given as rmsnorm(x) * w of the fp32 residual stream
// x (T, n_in) (w (n_in) bf16), as rmsnorm_forward computes it (see
// matmul_forward for where it is fused).
struct RmsnormInput {
    const float* x;
    const bf16* w;
    float eps;
};
// y = epilogue(x (T, n_in) @ W (n_out, n_in)^T); x and W bf16, fp32
// accumulation (CUBLAS_COMPUTE_32F). Small T (gemv_supported, and c.gemv)
// goes to gemv.cu's kernel, the rest to cuBLAS (SwiGLU then needs `scratch`, (T,
// n_out) bf16, for the product before swiglu_forward). With `norm`, the
// input is rmsnorm(norm->x) * norm->w: fused into the GEMV up to
// kGemvNormMaxT tokens; otherwise rmsnorm_forward writes it into x (T,
// n_in) first. (At 16 tokens the fused norm's fp32 x reads cost 6.5 us on
// each of qkv and gate|up of qwen3-8b, H100, 2026-11-23: more than a norm
// kernel.)
constexpr int kGemvNormMaxT = 8;
void matmul_forward(const Cublas& c, void* y, Epilogue epi, bf16* x, const bf16* W, int T, int n_in, int n_out,
                    bf16* scratch = nullptr, const RmsnormInput* norm = nullptr);
// n rounded up to a multiple of max(min_step, its power-of-two floor /
// parts): `parts` buckets per doubling. The shape buckets of graphs
// (blocks_bucket) and of cuBLAS's algorithm choice (gemm_bucket).
inline int octave_round_up(int n, int parts, int min_step) {
    int p = 1;
    while (p <= n / 2) p *= 2;
    const int g = p / parts > min_step ? p / parts : min_step;
    return (n + g - 1) / g * g;
}
// cuBLAS's algorithm is timed once per shape and bucket of T (matmul.cu): T
// rounded up to a multiple of a quarter of its power-of-two floor, at least
// 8 (24, 32, 40, .., 64, 80, .., 128, 160, ..).
inline int gemm_bucket(int T) { return octave_round_up(T, 4, 8); }
// Times and keeps the algorithm matmul_forward would take for this shape's
// bucket, without the product's output (nothing when the shape goes to
// gemv.cu or tuning is off): a serving loop tunes its shapes before it runs.
// x (T, n_in) and W as for matmul_forward; their values only steer timing.
void matmul_tune(const Cublas& c, Epilogue epi, const bf16* x, const bf16* W, int T, int n_in, int n_out);
// matmul_tune of each shape at every bucket of T up to its max_T (inputs of
// zeros): what a model does before serving, so that no forward pays a timing.
struct GemmShape {
    Epilogue epi;
    const bf16* W;  // (n_out, n_in)
    int n_in, n_out;
    int max_T;  // most tokens a call of this shape takes
};
void matmul_warm(const Cublas& c, const std::vector<GemmShape>& shapes);
// The plain product, bf16 or fp32 out (the form cli/cmd_profile.cpp uses).
inline void matmul_forward(const Cublas& c, void* y, bool y_fp32, const bf16* x, const bf16* W, int T, int n_in,
                           int n_out) {
    matmul_forward(c, y, y_fp32 ? Epilogue::Fp32 : Epilogue::Bf16, const_cast<bf16*>(x), W, T, n_in, n_out);
}

// --- gemv.cu
// The same product for a few tokens, memory-bound: W streamed once with
// 16-byte loads through tensor-core mma (tokens as the n side), fp32
// accumulation. Needs 1 <= T <= kGemvMaxT, n_in a multiple of 8, the input
// (x, or norm->x) and W 16-byte aligned, and for SwiGLU n_out a multiple of
// 16 (gemv_supported); with `norm` (T <= kGemvNormMaxT, 16-byte aligned
// weights) the input is rmsnorm(norm->x) * norm->w, fused. matmul_forward
// dispatches.
constexpr int kGemvMaxT = 16;
bool gemv_supported(const void* x, const bf16* W, int T, int n_in, int n_out, Epilogue epi);
void gemv_forward(void* y, Epilogue epi, const bf16* x, const bf16* W, int T, int n_in, int n_out,
                  cudaStream_t stream, const RmsnormInput* norm = nullptr);

}  // namespace sp
