// cost.cpp: the roofline and measured cost models behind cost.h.
//
// Roofline, one GPU step (a target forward, a draft forward, a Markov step):
//   part  = max(bytes / (bw * bw_efficiency * tp), flops / (rate * flops_efficiency * tp))
//           (or, with overlap_n = n > 0, the n-norm of the two times: 1 adds them)
//   time  = part(weights) + part(attention) + overhead_s + n * overhead_s_per_layer + comm
// where n is the decoder layers the step runs: the target's L, the
// drafter's layers, 0 for a Markov step (one GEMM and its sampling kernels).
// The projections and the attention are separate kernels that run one after
// the other, so each is bound by its own resource: a batch whose GEMMs are
// compute-bound still reads its KV cache at memory speed. (Taking one max
// over the sums hid the KV read of a compute-bound step; against our H100
// profile of qwen3-8b the fitted roofline's MAPE went 13.8 -> 12.9 %, and
// the overlap exponent 1 took it to 9.4 %.)
// Bytes and FLOPs are split evenly over the tp GPUs (weights and KV heads both
// sharded). Not modelled: activations, norms, sampling and the drafters'
// input projections (DSpark's fc, m*d x d; MTP's eh_proj), each small next
// to the weights a step reads.
// comm, tensor parallelism's collectives (0 at tp 1), Megatron-style as
// engine/tp.h partitions a decoder: a forward over n layers and T tokens
// all-reduces T x d bf16 activations twice a layer (after attention's o
// projection, after the MLP's down projection) and once for its
// vocabulary-split embedding, and its LM head, split likewise, all-gathers
// the fp32 logits of the tokens it samples. A ring all-reduce of M bytes moves
// 2 (tp - 1) / tp of M through each GPU's links, an all-gather (tp - 1) / tp
// of its output, so each takes latency + those bytes / bus bandwidth: NCCL's
// convention, in which nccl-tests report a "bus bandwidth" busbw = algbw * 2
// (tp - 1) / tp for all-reduce (nccl-tests doc/PERFORMANCE.md). Assumptions,
// none measured on our engine yet: the collectives are added to the step,
// not overlapped with its compute; one latency for every call whatever tp
// and message (NCCL's model grows it with tp, below); the DSpark Markov
// steps are replicated on every GPU and communicate nothing.
// Legend: P = n_params, L = n_layers, d = hidden, V = vocab, H = n_heads,
// KVH = n_kv_heads, D = head_dim, E / k = experts / experts per token.
#include "simulator/cost.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "traces/models.h"

namespace sp {

// [SECTION] GPU presets and names ------------------------------------------------

// Datasheet numbers, dense (the datasheets print tensor-core rates "with
// sparsity", twice the dense rate), bandwidth and capacity in decimal units:
//   H100 SXM5 80GB   NVIDIA H100 Tensor Core GPU datasheet: BF16 1,979 TFLOPS sparse (989 dense),
//                    3.35 TB/s HBM3, 80 GB
//   H200 SXM 141GB   NVIDIA H200 Tensor Core GPU datasheet: BF16 1,979 TFLOPS sparse (989 dense),
//                    4.8 TB/s HBM3e, 141 GB
//   A100 80GB SXM    NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS dense (624 sparse),
//                    2,039 GB/s HBM2e, 80 GB
//   B200 (HGX/DGX)   NVIDIA HGX B200 per-GPU table: FP16/BF16 4.5 PFLOPS sparse (2.25 dense), 180 GB;
//                    DGX B200 datasheet: 8 GPUs, 1,440 GB and 64 TB/s in all, i.e. 8 TB/s per GPU
//                    (a later HGX B200 table prints 7.7 TB/s per GPU; we keep the DGX figure).
// NVLink and NCCL all-reduce, per GPU; published figures, not datasheet ones.
// Bus bandwidth, of large messages:
//   H100, H200       NVLink 4, 900 GB/s bidirectional, 450 GB/s a direction. nccl-tests
//                    all-reduce busbw: 366 GB/s on 4x H100 (waynehacking8.github.io,
//                    "Where tensor-parallel inference hits the NVLink wall", 2026-05-31),
//                    460-480 on 8x H100 SXM (docs.alayanew.com, "NCCL-tests in practice",
//                    2026-05-06; above a direction's 450 GB/s, which we read as NVLink
//                    SHARP reducing in the switch). We take 360 GB/s: 80 % of a direction,
//                    about the 4x H100 figure.
//   A100             NVLink 3, 600 GB/s bidirectional, 300 a direction; 8x A100 busbw
//                    230-250 GB/s (the same alayanew page). We take 240, 80 % again.
//   B200             NVLink 5, 1.8 TB/s bidirectional, 900 a direction. No B200 run found;
//                    720 GB/s is our assumption, 80 % as above (2 x 4 GB200 over NVLink 5
//                    measured 811 GB/s, lixueduan.com "GB200 MNNVL").
// A decode step's messages are smaller (T x d x 2 bytes: 16 KB at 1 token of
// llama3-70b, 4 MB at 256) than those busbw peaks at, so these figures are
// optimistic for them; at one token the latency dominates anyway. Latency 10
// us a call, every GPU: NCCL's own tuning model (NVIDIA/nccl src/graph/
// tuning.cc at b647562) prices a ring all-reduce with the LL protocol over
// NVLink at 6.6 + 2 (tp - 1) x 0.6 us: 7.8 us at tp 2, 10.2 at tp 4, 15.0 at
// tp 8. We take 10 us for all tp.
// overhead_s = 30 us per step is our assumption, not a datasheet number: host
// scheduling plus the launch of one CUDA graph and its per-kernel bubbles
// (engines.md s7: ~1.3 us per kernel even inside CUDA graphs, after the
// Hazy Research megakernel post). It is what makes each sequential step cost
// something however small its weights are. overhead_s_per_layer is 0 in every
// preset (all of it per step); calibrate-cost fits the split for an engine.
static const GpuSpec GPU_PRESETS[] = {
    {"h100-sxm", "NVIDIA H100 SXM5 80GB (datasheet)", 3.35e12, 360e9, 10e-6, 989e12, 80e9, 30e-6},
    {"h200", "NVIDIA H200 SXM 141GB (datasheet)", 4.8e12, 360e9, 10e-6, 989e12, 141e9, 30e-6},
    {"a100-80gb", "NVIDIA A100 SXM4 80GB (datasheet)", 2.039e12, 240e9, 10e-6, 312e12, 80e9, 30e-6},
    {"b200", "NVIDIA B200 HGX, per GPU (datasheet)", 8e12, 720e9, 10e-6, 2.25e15, 180e9, 30e-6},
};

bool gpu_preset(const std::string& name, GpuSpec* out) {
    for (const GpuSpec& g : GPU_PRESETS)
        if (g.name == preset_key(name)) {
            *out = g;
            return true;
        }
    return false;
}

std::vector<std::string> gpu_preset_names() {
    std::vector<std::string> out;
    for (const GpuSpec& g : GPU_PRESETS) out.push_back(g.name);
    return out;
}

static const char* const DRAFTER_NAMES[] = {"none", "mtp", "dspark"};
static_assert(sizeof(DRAFTER_NAMES) / sizeof(DRAFTER_NAMES[0]) == DRAFTER_COUNT, "one name per DrafterKind");

const char* drafter_kind_name(DrafterKind k) {
    return k >= 0 && k < DRAFTER_COUNT ? DRAFTER_NAMES[k] : "?";
}

int drafter_default_layers(DrafterKind k) { return k == DRAFTER_DSPARK ? 5 : 1; }

bool drafter_kind_parse(const std::string& s, DrafterKind* out) {
    for (int k = 0; k < DRAFTER_COUNT; k++)
        if (s == DRAFTER_NAMES[k]) {
            *out = DrafterKind(k);
            return true;
        }
    return false;
}

// [SECTION] roofline ---------------------------------------------------------------

// Inputs from the simulator are trusted to be sane; anything else (negative,
// NaN, infinite) counts as 0 so that no query can produce NaN.
static double nonneg(double x) { return std::isfinite(x) && x > 0 ? x : 0; }

// ModelShape does not say whether the embeddings are tied, and it matters: an
// untied input table is only gathered (B rows, negligible) while the LM head
// reads all of V*d. We guess from n_params: tied when it is nearer the tied
// than the untied parameter count of the shape (they differ by V*d; MoE
// models, far above both, count as untied, the usual case for large models).
static bool embeddings_tied(const ModelShape& m) {
    double tied = double(model_count_params(m, true, false));
    double untied = tied + double(m.vocab) * m.hidden;
    return std::fabs(double(m.n_params) - tied) < std::fabs(double(m.n_params) - untied);
}

// One decoder layer's parameters: P less the embedding table(s), spread
// evenly over L; the routed experts (expert_param_fraction of P) apart.
// Invariant: L * (dense + expert) + V*d = the params a target forward reads.
struct LayerParams {
    double dense = 0, expert = 0;
};
static LayerParams layer_params(const Roofline& r) {
    const ModelShape& m = r.model;
    double vd = double(m.vocab) * m.hidden;
    double body = double(m.n_params) - vd * (embeddings_tied(m) ? 1 : 2);
    double expert = r.moe.n_experts > 0 ? nonneg(r.moe.expert_param_fraction) * double(m.n_params) : 0;
    double n_layers = std::max(m.n_layers, 1);
    return {std::max(body - expert, 0.0) / n_layers, std::max(expert, 0.0) / n_layers};
}

// Expected fraction of experts that n tokens touch: 1 - (1 - k/E)^n.
static double experts_touched(const MoeShape& moe, double n_tokens) {
    if (n_tokens <= 0) return 0;
    if (moe.n_experts <= 0) return 1;
    double p = std::clamp(double(moe.experts_per_token) / moe.n_experts, 0.0, 1.0);
    return 1 - std::pow(1 - p, n_tokens);
}

struct Work {
    double bytes = 0, flops = 0;
    Work& operator+=(const Work& o) {
        bytes += o.bytes;
        flops += o.flops;
        return *this;
    }
};

// n_layers target-size layers over n_tokens: each weight (each touched
// expert) read once; 2 FLOPs per active parameter per token.
static Work layers_work(const Roofline& r, double n_layers, double n_tokens) {
    if (n_tokens <= 0) return {};
    LayerParams p = layer_params(r);
    double active = r.moe.n_experts > 0 ? double(r.moe.experts_per_token) / r.moe.n_experts : 1;
    return {n_layers * (p.dense + p.expert * experts_touched(r.moe, n_tokens)) * r.model.bytes_per_weight,
            2 * n_tokens * n_layers * (p.dense + p.expert * active)};
}

// The LM head (V x d) over the tokens whose logits are used.
static Work head_work(const Roofline& r, double n_tokens) {
    if (n_tokens <= 0) return {};
    double vd = double(r.model.vocab) * r.model.hidden;
    return {vd * r.model.bytes_per_weight, 2 * n_tokens * vd};
}

// Attention of n_new tokens of n_seqs sequences, each sequence holding
// `context` cached tokens: the cache is read once per sequence (all its new
// queries share the read, as flash attention does), the new K/V written once;
// 4*H*D FLOPs per layer per (query, key) pair (QK^T and PV).
static Work attention_work(const Roofline& r, double n_layers, double n_seqs, double context, double n_new,
                           double n_keys) {
    const ModelShape& m = r.model;
    double kv_layer = 2.0 * m.n_kv_heads * m.head_dim * m.bytes_per_kv;
    return {n_layers * kv_layer * (n_seqs * context + n_new), 4.0 * n_layers * m.n_heads * m.head_dim * n_keys};
}

// (query, key) pairs of causal blocks: each of n_seqs sequences appends
// l = n_new / n_seqs tokens after `context` cached ones; its i-th new token
// (1-based) sees context + i keys, so the mean is context + (l + 1) / 2.
// A prefill chunk is such a block (chunk_len / 2 on average past its context).
static double causal_keys(double n_new, double n_seqs, double context) {
    if (n_new <= 0) return 0;
    return n_new * (context + (n_new / std::max(n_seqs, 1.0) + 1) / 2);
}

// v^(2/3) for v in [1, 2]: Newton on g^3 = v^2 from a quadratic through
// the ends and middle of [1, 4], three steps (relative error 5e-3, 3e-5,
// 1e-9, below 1e-16). glibc's cbrt took half the default sweep's time.
static double pow_two_thirds_1_2(double v) {
    const double w = v * v;
    double g = 0.69131 + w * (0.33691 - 0.02822 * w);
    for (int i = 0; i < 3; i++) g -= (g * g * g - w) / (3 * g * g);
    return g;
}

// Seconds for one GPU step; an invalid model (refused by cost_validate)
// gives 0 rather than NaN or infinity.
static double part_s(const Roofline& r, const Work& w) {
    double tp = std::max(r.tp, 1);
    double t_mem = w.bytes / (r.gpu.hbm_bytes_per_s * r.bw_efficiency * tp);
    double t_math = w.flops / (r.gpu.bf16_flops * r.flops_efficiency * tp);
    if (!(r.overlap_n > 0) || !(t_mem > 0) || !(t_math > 0)) return std::max(t_mem, t_math);
    // hi (1 + x^n)^(1/n), x = lo / hi in (0, 1]: scaled, so that no power
    // overflows. The exponents calibrate-cost picks most (1, 1.5, 2) skip
    // std::pow, which made the default sweep (overlap 1.5) 2.3x slower, 3.2
    // against 1.4 s on 2 cores.
    const double hi = std::max(t_mem, t_math), x = std::min(t_mem, t_math) / hi, n = r.overlap_n;
    if (n == 1) return hi * (1 + x);
    if (n == 2) return hi * std::sqrt(1 + x * x);
    if (n == 1.5) return hi * pow_two_thirds_1_2(1 + x * std::sqrt(x));
    return hi * std::pow(1 + std::pow(x, n), 1 / n);
}
// A step that runs no decoder layer (a Markov step): the fixed overhead only.
static double step_s(const Roofline& r, const Work& w) {
    double t = part_s(r, w) + r.gpu.overhead_s;
    return std::isfinite(t) && t > 0 ? t : 0;
}
// A forward over n_layers decoder layers and n_tokens tokens, n_logits of
// them through the LM head: the projections (weights) and the attention (KV
// cache) in turn, the launch cost of its layers' kernels, and its collectives.
static double forward_s(const Roofline& r, double n_layers, const Work& weights, const Work& attention,
                        double n_tokens, double n_logits) {
    double t = part_s(r, weights) + part_s(r, attention) + r.gpu.overhead_s + n_layers * r.gpu.overhead_s_per_layer +
               roofline_comm_s(r, n_layers, n_tokens, n_logits);
    return std::isfinite(t) && t > 0 ? t : 0;
}

double roofline_weight_bytes(const Roofline& r, int n_tokens) {
    return layers_work(r, r.model.n_layers, n_tokens).bytes + head_work(r, n_tokens).bytes;
}

double roofline_kv_bytes_per_token(const ModelShape& m) {
    return 2.0 * m.n_layers * m.n_kv_heads * m.head_dim * m.bytes_per_kv;
}

// Dense decode reads the weights' W params once (W * bytes_per_weight bytes)
// and does 2 * W * B FLOPs; the two times meet at
//   B = rate * flops_efficiency * bytes_per_weight / (2 * bw * bw_efficiency),
// independent of W and of tp (989e12 * 2 / (2 * 3.35e12) = 295 for H100 bf16).
double roofline_ridge_tokens(const Roofline& r) {
    double t = r.gpu.bf16_flops * r.flops_efficiency * r.model.bytes_per_weight /
               (2 * r.gpu.hbm_bytes_per_s * r.bw_efficiency);
    return std::isfinite(t) ? t : 0;
}

// A collective moving `moved` bytes through each GPU: one call, latency
// included. None at tp 1, where the share moved, tp - 1 over tp, is 0.
static double collective_s(const Roofline& r, double moved) {
    return moved > 0 ? r.gpu.allreduce_latency_s + moved / r.gpu.allreduce_bus_bytes_per_s : 0;
}

double roofline_allreduce_s(const Roofline& r, double bytes) {
    double t = collective_s(r, nonneg(bytes) * 2 * (r.tp - 1) / r.tp);
    return std::isfinite(t) ? t : 0;
}

double roofline_comm_s(const Roofline& r, double n_layers, double n_tokens, double n_logits) {
    const double ACTIVATION_BYTES = 2, LOGIT_BYTES = 4;  // bf16 hidden states, fp32 logits
    const double n_allreduces = 2 * nonneg(n_layers) + 1;  // two a layer, one for the embedding
    double t = n_allreduces * roofline_allreduce_s(r, nonneg(n_tokens) * r.model.hidden * ACTIVATION_BYTES) +
               collective_s(r, nonneg(n_logits) * r.model.vocab * LOGIT_BYTES * (r.tp - 1) / r.tp);
    return std::isfinite(t) ? t : 0;
}

static double roofline_forward_s(const Roofline& r, const BatchShape& b) {
    double n_dec = nonneg(b.n_decode_tokens), n_pre = nonneg(b.n_prefill_tokens);
    if (n_dec + n_pre <= 0) return 0;  // nothing to run
    double r_dec = n_dec > 0 ? std::max(nonneg(b.n_decode_seqs), 1.0) : 0;
    double r_pre = n_pre > 0 ? std::max(nonneg(b.n_prefill_seqs), 1.0) : 0;
    double c_dec = nonneg(b.decode_context), c_pre = nonneg(b.prefill_context);
    double n_layers = r.model.n_layers;
    Work w = layers_work(r, n_layers, n_dec + n_pre);
    // Logits where they are sampled: every verified token, and the last token
    // of each prefill chunk (only a prompt's final chunk needs it; an upper bound).
    w += head_work(r, n_dec + r_pre);
    Work a = attention_work(r, n_layers, r_dec, c_dec, n_dec, causal_keys(n_dec, r_dec, c_dec));
    a += attention_work(r, n_layers, r_pre, c_pre, n_pre, causal_keys(n_pre, r_pre, c_pre));
    return forward_s(r, n_layers, w, a, n_dec + n_pre, n_dec + r_pre);
}

// Drafters, every dependent step paying overhead_s, every forward its layers'
// overhead_s_per_layer too:
//   MTP     gamma forwards, step j over R tokens at context c + j: draft
//           layers + LM head + attention. The steps differ only in context, so
//           they are costed as gamma steps at the mean context c + (gamma-1)/2
//           (exact unless the memory/compute regime flips within the draft).
//   DSpark  one forward over R*gamma block tokens (draft layers, LM head for
//           every slot, block queries seeing the context and the whole block),
//           then gamma Markov steps, each reading W2 (r x V) and doing
//           2*R*r*V FLOPs and paying no layer term and no collective.
static double roofline_draft_s(const Roofline& r, const DrafterSpec& d, double n_seqs, double gamma,
                               double context) {
    double n_layers = std::max(d.n_layers, 0);
    if (d.kind == DRAFTER_MTP) {
        double c = context + (gamma - 1) / 2;
        Work w = layers_work(r, n_layers, n_seqs);
        w += head_work(r, n_seqs);
        return gamma * forward_s(r, n_layers, w, attention_work(r, n_layers, n_seqs, c, n_seqs, n_seqs * (c + 1)),
                                 n_seqs, n_seqs);
    }
    if (d.kind == DRAFTER_DSPARK) {
        double n_block = n_seqs * gamma;
        Work w = layers_work(r, n_layers, n_block);
        w += head_work(r, n_block);
        Work a = attention_work(r, n_layers, n_seqs, context, n_block, n_block * (context + gamma));
        double rv = std::max(d.markov_rank, 0) * double(r.model.vocab);
        Work markov{rv * r.model.bytes_per_weight, 2 * n_seqs * rv};
        return forward_s(r, n_layers, w, a, n_block, n_block) + gamma * step_s(r, markov);
    }
    return 0;
}

// [SECTION] measured ---------------------------------------------------------------

// Where a query q falls among the values a key takes: the bracketing values
// lo <= q <= hi and the weight w of hi. Outside the range both are the end
// value (clamp). `found` is false when no cell passes the filter.
struct Bracket {
    double lo = 0, hi = 0, w = 0;
    bool found = false;
};
template <class Keep, class Key>
static Bracket bracket_find(const std::vector<Profile>& cells, Keep keep, Key key, double q) {
    bool below = false, above = false;
    double mn = 0, mx = 0, lo = 0, hi = 0;
    Bracket b;
    for (const Profile& p : cells) {
        if (!keep(p)) continue;
        double k = key(p);
        if (!b.found || k < mn) mn = k;
        if (!b.found || k > mx) mx = k;
        b.found = true;
        if (k <= q && (!below || k > lo)) lo = k, below = true;
        if (k >= q && (!above || k < hi)) hi = k, above = true;
    }
    if (!below) lo = hi = mn;
    else if (!above) lo = hi = mx;
    b.lo = lo;
    b.hi = hi;
    b.w = hi > lo ? (q - lo) / (hi - lo) : 0;
    return b;
}

// Latency (us) of the cell at exactly (R, context, B); a later cell replaces
// an earlier one at the same point (the newest measurement wins).
static double cell_us(const std::vector<Profile>& cells, double n_seqs, double context, double n_tokens) {
    double us = 0;
    for (const Profile& p : cells)
        if (p.n_seqs == n_seqs && p.context == context && p.n_tokens == n_tokens) us = p.latency_us_p50;
    return us;
}

// The 1-D curve in B of one (R, context) level.
static double curve_us(const std::vector<Profile>& cells, double n_seqs, double context, double n_tokens) {
    auto level = [&](const Profile& p) { return p.n_seqs == n_seqs && p.context == context; };
    auto tokens = [](const Profile& p) { return double(p.n_tokens); };
    Bracket b = bracket_find(cells, level, tokens, n_tokens);
    double y_lo = cell_us(cells, n_seqs, context, b.lo);
    if (b.hi > b.lo) return y_lo + b.w * (cell_us(cells, n_seqs, context, b.hi) - y_lo);
    if (n_tokens <= b.hi) return y_lo;  // on a cell, or below the smallest B: clamp
    // Beyond the largest B: extend the last segment, never downwards.
    auto below_top = [&](const Profile& p) { return level(p) && p.n_tokens < b.hi; };
    Bracket prev = bracket_find(cells, below_top, tokens, b.hi);
    if (!prev.found) return y_lo;
    double slope = (y_lo - cell_us(cells, n_seqs, context, prev.lo)) / (b.hi - prev.lo);
    return y_lo + std::max(slope, 0.0) * (n_tokens - b.hi);
}

// The interpolation rule, the same for every phase (see cost_forward_s).
static double table_us(const std::vector<Profile>& cells, double n_seqs, double n_tokens, double context) {
    if (cells.empty()) return 0;
    auto any = [](const Profile&) { return true; };
    auto seqs = [](const Profile& p) { return double(p.n_seqs); };
    auto ctx = [](const Profile& p) { return double(p.context); };
    auto at_seqs = [&](double level) {
        auto in_level = [&](const Profile& p) { return p.n_seqs == level; };
        Bracket c = bracket_find(cells, in_level, ctx, context);
        double y = curve_us(cells, level, c.lo, n_tokens);
        return c.hi > c.lo ? y + c.w * (curve_us(cells, level, c.hi, n_tokens) - y) : y;
    };
    Bracket r = bracket_find(cells, any, seqs, n_seqs);
    double us = at_seqs(r.lo);
    if (r.hi > r.lo) us += r.w * (at_seqs(r.hi) - us);
    return std::isfinite(us) && us > 0 ? us : 0;
}

// Measured forward: the verify table at (R = n_decode_seqs, B = n_decode_tokens,
// context = decode_context). A prefill chunk riding along adds its marginal
// cost, the prefill table at (n_prefill_seqs, n_prefill_tokens,
// prefill_context) less the same sequences at one token each: both cells
// are whole forwards, so adding the chunk's own cell would read the weights
// twice (about 5 ms of a 15 ms qwen3-8b step on an H100, where the roofline
// reads them once). When the forward runs (cost_forward_run_s, not the
// policies' price), at least the verify table's rise from B to B +
// n_prefill_tokens and what the prefill table gives for the whole batch
// (measured_chunk_us). A prefill alone pays its whole cell.
// Each table lookup (draft likewise):
//   R        linear between the two measured R levels that bracket it,
//            clamped outside. Verify latency depends mostly on B and on the
//            KV read, R * context, which is linear in R.
//   context  within each R level, linear between the bracketing measured
//            contexts, clamped outside the measured range.
//   B        within each (R, context) level, linear between the two nearest
//            measured B. Below the smallest B: that cell's latency (the
//            memory-bound floor is flat; extrapolating down could go
//            negative). Above the largest: the last segment extended, its
//            slope floored at 0. A level with one cell is constant.
// Levels come from the cells present, so an irregular grid works; results
// are finite and >= 0 for any query. Cells are whole-step latencies
// (latency_us_p50); nothing is added to them.
//
// The chunk's cost when the forward runs, us: the larger of its marginal in
// the prefill table and its tokens' rise in the verify table at the batch's
// R and context, what they cost the projections where the batch already
// runs. The prefill cells' few sequences sit where the projections are
// weight-bound and a token is nearly free; a verify batch of 1,000 tokens is
// compute-bound, where it is not: with the marginal alone, the H100 live
// runs' iterations that carried a 64-token prompt beside 112 to 256
// verifying requests took 1.06 to 1.15x their duration, with the larger of
// the two 0.95 to 1.04x (qwen3-8b shape, 2026-12-07, bench/README
// "Fidelity, third pass"). The rise only up to one doubling past what the
// table measured (B + n_prefill_tokens at most twice R times its cells'
// largest tokens per sequence): beyond, a few users' blocks plus a whole
// prompt extended the last segment of small batches (across the engine's
// GEMV/GEMM switch) far past its end, and the simulated TTFT p90 at 4 users
// went from +55 to +138 % of the live one. And at least the prefill table's
// price of the whole batch, R + n_prefill_seqs sequences of B +
// n_prefill_tokens tokens at the chunk's context, less the decode part: a
// few decode tokens are measured on the engine's CUDA-graph GEMV path, but
// beside a prompt they run its eager cuBLAS path, as a prefill does. At 1-8
// users the iterations that carried a 64-token prompt beside 1-7 decoding
// requests took 7.7-8.2 ms; the verify table plus the marginal said 6.5,
// the prefill table of the whole batch 7.8-7.9 (same runs); the simulated
// TTFT p90 error at 2 and 4 users went from 9-55 % to under 6 %. Not in
// the price: the engine's step-cost table, which its policies read, holds
// no prompt chunk.
// decode_us: the verify table at (R, B, decode context), measured_forward_s's
// own lookup.
static double measured_chunk_us(const MeasuredCost& mc, const BatchShape& b, bool running, double decode_us) {
    const std::vector<Profile>& cells = mc.prefill.empty() ? mc.verify : mc.prefill;
    const int seqs = std::max(b.n_prefill_seqs, 1);
    const double ctx = nonneg(b.prefill_context);
    const double chunk = table_us(cells, seqs, b.n_prefill_tokens, ctx);
    if (b.n_decode_tokens <= 0) return chunk;
    const double marginal = std::max(0.0, chunk - table_us(cells, seqs, seqs, ctx));
    if (!running) return marginal;
    const int R = std::max(b.n_decode_seqs, 1);
    const double B = b.n_decode_tokens, c = nonneg(b.decode_context), P = b.n_prefill_tokens;
    double per_seq = 0;  // the verify cells' largest q = B / R
    for (const Profile& p : mc.verify) per_seq = std::max(per_seq, double(p.n_tokens) / p.n_seqs);
    const double whole = mc.prefill.empty() ? 0 : table_us(mc.prefill, R + seqs, B + P, ctx) - decode_us;
    if (B + P > 2 * per_seq * R) return std::max(marginal, whole);
    return std::max({marginal, whole, table_us(mc.verify, R, B + P, c) - decode_us});
}

static double measured_forward_s(const MeasuredCost& mc, const BatchShape& b, bool running) {
    const double decode_us =
        b.n_decode_tokens > 0
            ? table_us(mc.verify, std::max(b.n_decode_seqs, 1), b.n_decode_tokens, nonneg(b.decode_context))
            : 0;
    // No prefill cells (cost_validate refuses that): the verify table stands in.
    const double chunk_us = b.n_prefill_tokens > 0 ? measured_chunk_us(mc, b, running, decode_us) : 0;
    return (decode_us + chunk_us) * 1e-6;
}

double cost_forward_s(const CostModel& m, const BatchShape& b) {
    if (m.kind == COST_ROOFLINE) return roofline_forward_s(m.roofline, b);
    return measured_forward_s(m.measured, b, false);
}

double cost_forward_run_s(const CostModel& m, const BatchShape& b) {
    if (m.kind == COST_ROOFLINE) return roofline_forward_s(m.roofline, b);
    const int tile = m.token_tile;
    const int T = std::max(b.n_decode_tokens, 0) + std::max(b.n_prefill_tokens, 0);
    if (tile <= 0 || T == 0) return measured_forward_s(m.measured, b, true);
    // The next power of two up to the tile, then the next multiple of it. The
    // extra tokens join the prompt chunk when one rides along: as decode
    // tokens they took a verify table measured to 8 tokens a request out to
    // 64 (1 decode + 64 prompt tokens padded to 128: 8.5 ms against 7.8 live).
    int run = 1;
    while (run < T && run < tile) run *= 2;
    if (T > run) run = (T + tile - 1) / tile * tile;
    BatchShape padded = b;
    (b.n_prefill_tokens > 0 ? padded.n_prefill_tokens : padded.n_decode_tokens) += run - T;
    return measured_forward_s(m.measured, padded, true);
}

double cost_draft_s(const CostModel& m, int n_seqs, int gamma, double context) {
    if (gamma <= 0 || n_seqs <= 0 || m.drafter.kind == DRAFTER_NONE) return 0;
    if (m.kind == COST_MEASURED)
        return table_us(m.measured.draft, n_seqs, double(n_seqs) * gamma, nonneg(context)) * 1e-6;
    return roofline_draft_s(m.roofline, m.drafter, n_seqs, gamma, nonneg(context));
}

// [SECTION] validation and loading ---------------------------------------------------

static std::string num(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
}

static void require(bool ok, const std::string& where, const std::string& key, const std::string& expected,
                    double got) {
    if (!ok) throw Error(where + ": " + key + ": expected " + expected + ", got " + num(got));
}

static void validate_table(const MeasuredCost& mc, Phase phase, const std::vector<Profile>& cells,
                           const std::string& where, const char* why) {
    std::string name = phase_name(phase);
    if (cells.empty())
        throw Error(where + ": no '" + name + "' cells for gpu '" + mc.gpu + "' model '" + mc.model + "'; " + why);
    for (const Profile& p : cells) {
        std::string key = name + " cell (R=" + std::to_string(p.n_seqs) + ", B=" + std::to_string(p.n_tokens) +
                          ", context=" + std::to_string(p.context) + ")";
        require(p.n_seqs >= 1 && p.n_tokens >= p.n_seqs, where, key, "1 <= R <= B", p.n_seqs);
        require(p.context >= 0, where, key, "context >= 0", p.context);
        require(std::isfinite(p.latency_us_p50) && p.latency_us_p50 >= 0, where, key,
                "a finite latency_us_p50 >= 0", p.latency_us_p50);
    }
}

void cost_validate(const CostModel& m, bool needs_draft, const std::string& where) {
    if (m.kind == COST_MEASURED) {
        const MeasuredCost& mc = m.measured;
        validate_table(mc, PHASE_VERIFY, mc.verify, where, "every run verifies");
        validate_table(mc, PHASE_PREFILL, mc.prefill, where, "every run prefills its prompts");
        if (needs_draft)
            validate_table(mc, PHASE_DRAFT, mc.draft, where, "a policy with drafts needs them");
        return;
    }
    const Roofline& r = m.roofline;
    const ModelShape& s = r.model;
    const std::pair<double, const char*> positives[] = {
        {r.gpu.hbm_bytes_per_s, "gpu.hbm_bytes_per_s"}, {r.gpu.bf16_flops, "gpu.bf16_flops"},
        {r.gpu.hbm_bytes, "gpu.hbm_bytes"}, {s.n_layers, "model.n_layers"}, {s.hidden, "model.hidden"},
        {s.n_heads, "model.n_heads"}, {s.n_kv_heads, "model.n_kv_heads"}, {s.head_dim, "model.head_dim"},
        {s.vocab, "model.vocab"}, {s.bytes_per_weight, "model.bytes_per_weight"},
        {s.bytes_per_kv, "model.bytes_per_kv"}};
    for (const auto& [v, key] : positives) require(std::isfinite(v) && v > 0, where, key, "> 0", v);
    require(std::isfinite(r.gpu.overhead_s) && r.gpu.overhead_s >= 0, where, "gpu.overhead_s", ">= 0",
            r.gpu.overhead_s);
    require(std::isfinite(r.gpu.overhead_s_per_layer) && r.gpu.overhead_s_per_layer >= 0, where,
            "gpu.overhead_s_per_layer", ">= 0", r.gpu.overhead_s_per_layer);
    require(r.tp >= 1, where, "tp", ">= 1", r.tp);
    if (r.tp > 1) {  // the collectives are priced from these; at tp 1 there are none
        require(std::isfinite(r.gpu.allreduce_bus_bytes_per_s) && r.gpu.allreduce_bus_bytes_per_s > 0, where,
                "gpu.allreduce_bus_bytes_per_s", "> 0 at tp > 1 (allreduce_bus_gb_s)", r.gpu.allreduce_bus_bytes_per_s);
        require(std::isfinite(r.gpu.allreduce_latency_s) && r.gpu.allreduce_latency_s >= 0, where,
                "gpu.allreduce_latency_s", ">= 0", r.gpu.allreduce_latency_s);
    }
    require(r.bw_efficiency > 0 && r.bw_efficiency <= 1, where, "bw_efficiency", "in (0, 1]", r.bw_efficiency);
    require(r.flops_efficiency > 0 && r.flops_efficiency <= 1, where, "flops_efficiency", "in (0, 1]",
            r.flops_efficiency);
    require(r.overlap_n == 0 || (r.overlap_n >= 1 && r.overlap_n <= 64), where, "overlap", "0 (max) or in [1, 64]",
            r.overlap_n);
    double vd = double(s.vocab) * s.hidden;
    require(double(s.n_params) > vd, where, "model.n_params", "more than the embedding table vocab*hidden = " + num(vd),
            double(s.n_params));
    if (r.moe.n_experts != 0) {
        require(r.moe.n_experts > 0, where, "moe.n_experts", ">= 0", r.moe.n_experts);
        require(r.moe.experts_per_token >= 1 && r.moe.experts_per_token <= r.moe.n_experts, where,
                "moe.experts_per_token", "in [1, n_experts]", r.moe.experts_per_token);
        double most = (double(s.n_params) - vd * (embeddings_tied(s) ? 1 : 2)) / double(s.n_params);
        require(r.moe.expert_param_fraction > 0 && r.moe.expert_param_fraction <= most, where,
                "moe.expert_param_fraction", "in (0, " + num(most) + "] (the non-embedding share)",
                r.moe.expert_param_fraction);
    }
    if (!needs_draft) return;
    const DrafterSpec& d = m.drafter;
    if (d.kind != DRAFTER_MTP && d.kind != DRAFTER_DSPARK)
        throw Error(where + ": drafter.kind: expected mtp or dspark for a policy with drafts, got '" +
                    drafter_kind_name(d.kind) + "' (drafting would cost nothing)");
    require(d.n_layers >= 1, where, "drafter.n_layers", ">= 1", d.n_layers);
    if (d.kind == DRAFTER_DSPARK) require(d.markov_rank >= 1, where, "drafter.markov_rank", ">= 1", d.markov_rank);
}

// "'H100'/'qwen3-8b', ..." for messages, at most 8 pairs.
static std::string pairs_join(const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size() && i < 8; i++) out += (i ? ", " : "") + v[i];
    return v.size() > 8 ? out + ", ..." : out;
}

MeasuredCost measured_cost_load(TraceDb& db, const std::string& gpu, const std::string& model) {
    std::vector<Profile> cells = trace_db_profiles(db);
    if (cells.empty()) throw Error(db.path + ": no profile cells (the profiles table is empty)");
    auto wanted = [&](const Profile& p) {
        return (gpu.empty() || p.gpu == gpu) && (model.empty() || p.model.name == model);
    };
    std::vector<std::string> present, matching;  // (gpu, model) pairs, each once
    for (const Profile& p : cells) {
        std::string pair = "'" + p.gpu + "'/'" + p.model.name + "'";
        if (std::find(present.begin(), present.end(), pair) != present.end()) continue;
        present.push_back(pair);
        if (wanted(p)) matching.push_back(pair);
    }
    std::string asked = "gpu '" + (gpu.empty() ? "*" : gpu) + "' model '" + (model.empty() ? "*" : model) + "'";
    if (matching.empty())
        throw Error(db.path + ": no profile cells for " + asked + "; present (gpu/model): " + pairs_join(present));
    if (matching.size() > 1)
        throw Error(db.path + ": profile cells for several (gpu, model) pairs match " + asked + ": " +
                    pairs_join(matching) + "; name the gpu and the model");
    MeasuredCost mc;
    const ModelShape* shape = nullptr;
    for (const Profile& p : cells) {
        if (!wanted(p)) continue;
        if (shape && !(p.model == *shape))
            throw Error(db.path + ": profile cells for model '" + p.model.name + "' on gpu '" + p.gpu +
                        "' come from two different model shapes");
        shape = &p.model;
        mc.gpu = p.gpu;
        mc.model = p.model.name;
        (p.phase == PHASE_DRAFT ? mc.draft : p.phase == PHASE_VERIFY ? mc.verify : mc.prefill).push_back(p);
    }
    return mc;
}

}  // namespace sp
