// tp.h: tensor parallelism's partition of a decoder (issue 15), Megatron-style,
// and the CPU reference forward over the partition, the shards' partial sums
// added on the host where NCCL's all-reduce will add them on the GPUs. It
// tests the partitioning in CI, where no GPU is: the split forward must equal
// reference_forward within fp32 rounding.
//
// Rank r of tp holds (h = H / tp query heads, g = KVH / tp KV heads, f = F / tp):
//   wq rows of query heads [r h, (r + 1) h), wk and wv rows of KV heads
//   [r g, (r + 1) g) (column-parallel: the heads' GQA groups stay on one rank
//   because g divides them the same way), wo the matching h D columns
//   (row-parallel: a partial d-vector);
//   w_gate and w_up rows [r f, (r + 1) f), w_down the same f columns;
//   embed and lm_head rows of the vocabulary slice tp_vocab_range(V, tp, r)
//   (a token's embedding comes from the one rank holding it, the others add
//   zero; the logits are gathered slice after slice);
//   every norm whole (replicated), and its own KV cache of g heads.
// A forward then sums the ranks' partial outputs twice a layer, after
// attention's wo and after the MLP's w_down (the two all-reduces of a
// layer), and once for the embedding; the LM head's slices are concatenated
// (an all-gather).
#pragma once

#include <vector>

#include "engine/model.h"
#include "engine/reference.h"

namespace sp {

// Throws sp::Error "tp N: expected ..." unless tp >= 1 divides c's query
// heads, KV heads and FFN columns and is at most its vocabulary.
void tp_check(const Config& c, int tp);

// The vocabulary rows [*begin, *end) of rank r: slices of ceil(V / tp) rows,
// the last one shorter when tp does not divide V.
void tp_vocab_range(int vocab, int tp, int rank, int* begin, int* end);

// Rank r's shard of w: its config has a tp-th of the heads, KV heads and FFN
// columns and its vocabulary slice's size as n_heads, n_kv_heads, ffn and
// vocab (hidden, head_dim, layers and the rest unchanged). Throws as tp_check.
ModelWeights tp_shard(const ModelWeights& w, int tp, int rank);

// reference_forward over the shards of one model (shards[r] = tp_shard(w,
// tp, r)) with one cache per rank (kv_cache_init(shards[r].cfg, n_seqs)):
// the same batch rules, the same logits (T, V) within fp32 rounding, each
// rank's cache holding its KV heads. Throws sp::Error when the shards or
// caches do not belong together or the batch is bad, before any cache is
// touched.
void reference_forward_tp(const std::vector<ModelWeights>& shards, std::vector<CpuKvCache>& kv,
                          const RaggedBatch& b, std::vector<float>* logits);

}  // namespace sp
