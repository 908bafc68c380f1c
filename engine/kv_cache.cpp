// kv_cache.cpp: the paged KV cache's allocator and bookkeeping (host side).
#include "engine/kv_cache.h"

#include <string>

namespace sp {

KvCache::KvCache(const Config& c, int n_seqs, const KvCacheOptions& o)
    : n_layers_(c.n_layers), kv_dim_(c.n_kv_heads * c.head_dim), block_size_(o.block_size) {
    if (n_seqs < 1 || block_size_ < 1 || n_layers_ < 1 || kv_dim_ < 1)
        throw Error("KvCache: need n_seqs, block_size, layers and KVH*D >= 1");
    const size_t block_bytes = 2 * static_cast<size_t>(n_layers_) * block_size_ * kv_dim_ * sizeof(bf16);
    int64_t blocks = 0;
    if (o.capacity_tokens > 0) {
        blocks = (o.capacity_tokens + block_size_ - 1) / block_size_;
    } else {
        if (!(o.memory_fraction > 0 && o.memory_fraction < 1))
            throw Error("KvCache: memory_fraction must be in (0, 1), got " + std::to_string(o.memory_fraction));
        size_t free_bytes = 0, total_bytes = 0;
        CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
        blocks = static_cast<int64_t>(static_cast<double>(free_bytes) * o.memory_fraction / static_cast<double>(block_bytes));
    }
    if (blocks < 1 || blocks > (1ll << 30))
        throw Error("KvCache: capacity of " + std::to_string(blocks) + " blocks is out of range");
    n_blocks_ = static_cast<int>(blocks);
    layer_elems_ = static_cast<size_t>(n_blocks_) * block_size_ * kv_dim_;
    CUDA_CHECK(cudaMalloc(&data_, bytes()));
    free_.reserve(n_blocks_);
    for (int b = n_blocks_ - 1; b >= 0; b--) free_.push_back(b);  // block 0 is taken first
    table_.assign(n_seqs, {});
    len_.assign(n_seqs, 0);
}

KvCache::~KvCache() { cudaFree(data_); }  // unchecked: a destructor must not throw

void KvCache::check_seq(int seq, const char* what) const {
    if (seq < 0 || seq >= n_seqs())
        throw Error(std::string("KvCache::") + what + ": sequence " + std::to_string(seq) + " out of range [0, " +
                    std::to_string(n_seqs()) + ")");
}

int KvCache::len(int seq) const {
    check_seq(seq, "len");
    return len_[seq];
}

const std::vector<int>& KvCache::blocks(int seq) const {
    check_seq(seq, "blocks");
    return table_[seq];
}

void KvCache::grow(const std::vector<int>& seqs, const std::vector<int>& add) {
    if (seqs.size() != add.size()) throw Error("KvCache::grow: seqs and add differ in length");
    int64_t need = 0;
    for (size_t i = 0; i < seqs.size(); i++) {
        check_seq(seqs[i], "grow");
        if (add[i] < 0) throw Error("KvCache::grow: negative length");
        const int64_t new_len = static_cast<int64_t>(len_[seqs[i]]) + add[i];
        need += (new_len + block_size_ - 1) / block_size_ - static_cast<int64_t>(table_[seqs[i]].size());
    }
    if (need > free_blocks())
        throw Error("KV cache full: need " + std::to_string(need) + " blocks, have " + std::to_string(free_blocks()) +
                    " free (" + std::to_string(n_blocks_) + " blocks of " + std::to_string(block_size_) +
                    " tokens in all)");
    for (size_t i = 0; i < seqs.size(); i++) {
        const int s = seqs[i];
        len_[s] += add[i];
        while (static_cast<int64_t>(table_[s].size()) * block_size_ < len_[s]) {
            table_[s].push_back(free_.back());
            free_.pop_back();
        }
    }
}

void KvCache::truncate(int seq, int new_len) {
    check_seq(seq, "truncate");
    if (new_len < 0 || new_len > len_[seq])
        throw Error("KvCache::truncate: new length " + std::to_string(new_len) + " outside [0, " +
                    std::to_string(len_[seq]) + "]");
    len_[seq] = new_len;
    const size_t keep = static_cast<size_t>((new_len + block_size_ - 1) / block_size_);
    while (table_[seq].size() > keep) {
        free_.push_back(table_[seq].back());
        table_[seq].pop_back();
    }
}

}  // namespace sp
