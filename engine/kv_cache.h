// kv_cache.h: the paged KV cache of the CUDA backend, shared by all
// sequences (vLLM's PagedAttention layout, without its sharing of prefixes).
//
// Device memory is one allocation of fixed-size blocks of block_size token
// rows: for each layer a K and a V array (n_blocks * block_size, KVH * D)
// bf16. A sequence owns a list of blocks (its block table); a token at
// position p lives in row blocks[p / block_size] * block_size + p % block_size.
// Blocks come from a free list: growing a sequence reserves the blocks it
// needs, truncating (speculation dropping the rejected tail) returns the
// blocks past the new end. The host owns all bookkeeping; the device sees
// block tables only as the forward uploads them.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/cuda_common.h"
#include "engine/model.h"

namespace sp {

struct KvCacheOptions {
    int block_size = 16;           // tokens per block
    int64_t capacity_tokens = 0;   // > 0: room for this many tokens (rounded up to whole blocks)
    double memory_fraction = 0.5;  // otherwise: this share of the device's free memory now
};

class KvCache {
public:
    // n_seqs sequence slots, numbered 0..n_seqs-1, all empty.
    KvCache(const Config& c, int n_seqs, const KvCacheOptions& o = {});
    ~KvCache();
    KvCache(const KvCache&) = delete;
    KvCache& operator=(const KvCache&) = delete;

    int n_seqs() const { return static_cast<int>(len_.size()); }
    int len(int seq) const;  // tokens cached
    int block_size() const { return block_size_; }
    int n_blocks() const { return n_blocks_; }
    int free_blocks() const { return static_cast<int>(free_.size()); }
    int64_t capacity_tokens() const { return static_cast<int64_t>(n_blocks_) * block_size_; }
    const std::vector<int>& blocks(int seq) const;  // the block table of a sequence

    // Grows sequence seqs[i] by add[i] tokens, reserving their blocks, all or
    // nothing: when the free blocks do not cover the batch, throws sp::Error
    // "KV cache full: need N blocks, have M free (...)" and changes nothing.
    void grow(const std::vector<int>& seqs, const std::vector<int>& add);
    // Keeps the first new_len tokens of seq (new_len <= len(seq)) and frees
    // the blocks past them.
    void truncate(int seq, int new_len);

    bf16* k(int layer) const { return data_ + (2 * static_cast<size_t>(layer)) * layer_elems_; }
    bf16* v(int layer) const { return data_ + (2 * static_cast<size_t>(layer) + 1) * layer_elems_; }
    int n_layers() const { return n_layers_; }
    int kv_dim() const { return kv_dim_; }
    size_t bytes() const { return 2 * static_cast<size_t>(n_layers_) * layer_elems_ * sizeof(bf16); }

private:
    void check_seq(int seq, const char* what) const;

    int n_layers_ = 0, kv_dim_ = 0, block_size_ = 0, n_blocks_ = 0;
    size_t layer_elems_ = 0;  // n_blocks * block_size * kv_dim
    bf16* data_ = nullptr;
    std::vector<int> free_;                // free block ids; taken from the back
    std::vector<std::vector<int>> table_;  // [seq] its blocks in order
    std::vector<int> len_;                 // [seq]
};

}  // namespace sp
