// weights.cpp: a checkpoint folder -> fp32 ModelWeights (a target or a draft
// model) or DSparkWeights (a DeepSpec drafter), and random weights.
//
// A folder holds config.json and either model.safetensors or
// model.safetensors.index.json, whose "weight_map" names the shard file of
// each tensor. Every file is opened and fully validated (safetensors.h) before
// anything is converted, and every tensor's shape is compared with the one
// config.json implies before its fp32 copy is allocated: an allocation is
// therefore never larger than twice the bytes the file really holds.
// Tensors the model does not use (an extra lm_head.weight in a tied
// checkpoint, old rotary_emb.inv_freq buffers) are ignored, as HF does.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "engine/dspark.h"
#include "engine/eagle3.h"
#include "traces/json_errors.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "traces/rng.h"

namespace sp {
namespace {

using json = nlohmann::json;

constexpr const char* SINGLE_FILE = "model.safetensors";
constexpr const char* INDEX_FILE = "model.safetensors.index.json";
constexpr size_t MAX_INDEX_BYTES = 64 << 20;  // a 1000-layer model's index is ~10 MB

bool is_file(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_small_file(const std::string& path, size_t cap) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    std::string s;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && s.size() <= cap) s.append(buf, n);
    bool failed = std::ferror(f);
    std::fclose(f);
    if (failed) throw Error(path + ": read failed");
    if (s.size() > cap) throw Error(path + ": larger than " + std::to_string(cap) + " bytes");
    return s;
}

// A shard must be a plain file name: "../x", "/etc/x" or "a/b" would let an
// index read outside the folder it came with. (Symlinks are followed: the HF
// cache links snapshot files to blobs elsewhere, and that is the user's own
// layout, not the index's.)
bool shard_name_ok(const std::string& s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
           s.find('\\') == std::string::npos && s.find('\0') == std::string::npos;
}

struct Checkpoint {
    std::string dir;
    std::string index_path;                        // empty: a single model.safetensors
    std::map<std::string, std::string> weight_map; // tensor -> shard file name (index only)
    std::map<std::string, SafeTensorsFile> files;  // by file name
};

Checkpoint checkpoint_open(const std::string& dir) {
    Checkpoint ck;
    ck.dir = dir;
    std::string index = dir + "/" + INDEX_FILE, single = dir + "/" + SINGLE_FILE;
    if (is_file(index)) {
        ck.index_path = index;
        json j;
        try {
            j = json::parse(read_small_file(index, MAX_INDEX_BYTES));
        } catch (const json::exception& e) {
            throw Error(index + ": not valid JSON: " + json_error_text(e));
        }
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw Error(index + ": weight_map: expected an object {tensor: shard file}");
        for (auto& [tensor, shard] : j["weight_map"].items()) {
            if (!shard.is_string())
                throw Error(index + ": weight_map: " + printable(tensor) + ": expected a shard file name, got " +
                            json_brief(shard));
            std::string file = shard.get<std::string>();
            if (!shard_name_ok(file))
                throw Error(index + ": weight_map: " + printable(tensor) + ": shard \"" + printable(file) +
                            "\" is not a file name inside the checkpoint folder");
            ck.weight_map[tensor] = file;
        }
        for (const auto& [tensor, file] : ck.weight_map)
            if (!ck.files.count(file)) ck.files.emplace(file, safetensors_open(dir + "/" + file));
    } else if (is_file(single)) {
        ck.files.emplace(SINGLE_FILE, safetensors_open(single));
    } else {
        throw Error(dir + ": no " + SINGLE_FILE + " or " + INDEX_FILE);
    }
    return ck;
}

// The fp32 values of `name`, after checking that it exists, has a float dtype
// and the shape config.json implies.
std::vector<float> checkpoint_read(const Checkpoint& ck, const std::string& name, const std::vector<int64_t>& shape) {
    std::string file = SINGLE_FILE;
    if (!ck.index_path.empty()) {
        auto w = ck.weight_map.find(name);
        if (w == ck.weight_map.end()) throw Error(ck.index_path + ": missing tensor " + name);
        file = w->second;
    }
    const SafeTensorsFile& f = ck.files.at(file);
    auto it = f.tensors.find(name);
    if (it == f.tensors.end())
        throw Error(f.path + ": missing tensor " + name +
                    (ck.index_path.empty() ? "" : std::string(" (") + INDEX_FILE + " maps it to this file)"));
    const TensorView& t = it->second;
    if (!dtype_is_float_convertible(t.dtype))
        throw Error(f.path + ": " + name + ": unsupported dtype " + dtype_name(t.dtype) + ", expected BF16, F16 or F32");
    if (t.shape != shape)
        throw Error(f.path + ": " + name + ": shape " + shape_str(t.shape) + ", expected " + shape_str(shape) +
                    " from config.json");
    std::vector<float> out(size_t(t.n_elements));
    tensor_to_f32(t, out.data());
    return out;
}

// One decoder layer under `prefix` ("model.layers.3." in a target,
// "layers.3." in a DeepSpec drafter); its q, k and v projections take
// attn_in inputs (d, or 2d in EAGLE-3's layer).
LayerWeights layer_read(const Checkpoint& ck, const std::string& p, const Config& c, int64_t attn_in = 0) {
    const int64_t d = c.hidden, F = c.ffn, D = c.head_dim, q = int64_t(c.n_heads) * D, kv = int64_t(c.n_kv_heads) * D;
    const int64_t in = attn_in > 0 ? attn_in : d;
    LayerWeights l;
    l.attn_norm = checkpoint_read(ck, p + "input_layernorm.weight", {d});
    l.wq = checkpoint_read(ck, p + "self_attn.q_proj.weight", {q, in});
    l.wk = checkpoint_read(ck, p + "self_attn.k_proj.weight", {kv, in});
    l.wv = checkpoint_read(ck, p + "self_attn.v_proj.weight", {kv, in});
    l.wo = checkpoint_read(ck, p + "self_attn.o_proj.weight", {d, q});
    if (c.qk_norm) {
        l.q_norm = checkpoint_read(ck, p + "self_attn.q_norm.weight", {D});
        l.k_norm = checkpoint_read(ck, p + "self_attn.k_norm.weight", {D});
    }
    l.mlp_norm = checkpoint_read(ck, p + "post_attention_layernorm.weight", {d});
    l.w_gate = checkpoint_read(ck, p + "mlp.gate_proj.weight", {F, d});
    l.w_up = checkpoint_read(ck, p + "mlp.up_proj.weight", {F, d});
    l.w_down = checkpoint_read(ck, p + "mlp.down_proj.weight", {d, F});
    return l;
}

// calibration.json: {"method": "sts", "temperatures": [G numbers > 0]}.
std::vector<float> sts_read(const std::string& path, int G) {
    json j;
    try {
        j = json::parse(read_small_file(path, 1 << 20));
    } catch (const json::exception& e) {
        throw Error(path + ": not valid JSON: " + json_error_text(e));
    }
    if (!j.is_object()) throw Error(path + ": expected a JSON object {\"method\": \"sts\", \"temperatures\": [...]}");
    if (!j.contains("method") || j["method"] != "sts")
        throw Error(path + ": method: expected \"sts\", got " + (j.contains("method") ? json_brief(j["method"]) : "nothing"));
    const std::string expected = "a list of " + std::to_string(G) + " positive numbers (one per block slot)";
    if (!j.contains("temperatures") || !j["temperatures"].is_array() || j["temperatures"].size() != size_t(G))
        throw Error(path + ": temperatures: expected " + expected + ", got " +
                    (j.contains("temperatures") ? json_brief(j["temperatures"]) : "nothing"));
    std::vector<float> t;
    for (const json& v : j["temperatures"]) {
        if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() < 1e6))
            throw Error(path + ": temperatures: expected " + expected + ", got " + json_brief(v));
        t.push_back(v.get<float>());
    }
    return t;
}

}  // namespace

ModelWeights weights_load(const std::string& dir) {
    ModelWeights w;
    w.cfg = config_load(dir + "/config.json");
    w.cfg.name = dir;
    const Config& c = w.cfg;
    Checkpoint ck = checkpoint_open(dir);

    const int64_t V = c.vocab, d = c.hidden;
    w.embed = checkpoint_read(ck, "model.embed_tokens.weight", {V, d});
    w.layers.resize(size_t(c.n_layers));
    for (int i = 0; i < c.n_layers; i++) w.layers[size_t(i)] = layer_read(ck, "model.layers." + std::to_string(i) + ".", c);
    w.final_norm = checkpoint_read(ck, "model.norm.weight", {d});
    if (!c.tie_embeddings) w.lm_head = checkpoint_read(ck, "lm_head.weight", {V, d});
    return w;
}

namespace {

// What a drafter reading the target's hidden states shares with it: the
// embedding and LM head it reads, the residual width its feature projection
// takes, and the target layers it was trained on.
void drafter_target_check(const std::string& config_path, const char* arch, const Config& c, int n_target_layers,
                          const std::vector<int>& target_layers, const Config& target) {
    auto mismatch = [&](const char* key, int got, int want) {
        if (got != want)
            throw Error(config_path + ": " + key + ": the drafter has " + std::to_string(got) + ", the target (" +
                        target.name + ") " + std::to_string(want));
    };
    mismatch("vocab_size", c.vocab, target.vocab);
    mismatch("hidden_size", c.hidden, target.hidden);
    mismatch("num_target_layers", n_target_layers, target.n_layers);
    if (target.arch != ARCH_QWEN3)
        throw Error(config_path + ": architectures: a " + arch + " drafts for a Qwen3 target, got " + target.name);
    for (int l : target_layers)
        if (l >= target.n_layers - 1)
            throw Error(config_path + ": target_layer_ids: layer " + std::to_string(l) + " is outside the target's " +
                        "layers 0.." + std::to_string(target.n_layers - 2) + " (its final layer's HF output is normed)");
}

}  // namespace

DSparkWeights dspark_load(const std::string& dir, const Config& target) {
    DSparkWeights w;
    const std::string config_path = dir + "/config.json";
    w.cfg = dspark_config_load(config_path);
    const DSparkConfig& dc = w.cfg;
    const Config& c = dc.layers;
    drafter_target_check(config_path, "Qwen3DSparkModel", c, dc.n_target_layers, dc.target_layers, target);

    Checkpoint ck = checkpoint_open(dir);
    const int64_t d = c.hidden, m = int64_t(dc.target_layers.size()), V = c.vocab, r = dc.markov_rank;
    w.fc = checkpoint_read(ck, "fc.weight", {d, m * d});
    w.hidden_norm = checkpoint_read(ck, "hidden_norm.weight", {d});
    w.layers.resize(size_t(c.n_layers));
    for (int i = 0; i < c.n_layers; i++) w.layers[size_t(i)] = layer_read(ck, "layers." + std::to_string(i) + ".", c);
    w.final_norm = checkpoint_read(ck, "norm.weight", {d});
    if (r > 0) {
        w.markov_w1 = checkpoint_read(ck, "markov_head.markov_w1.weight", {V, r});
        w.markov_w2 = checkpoint_read(ck, "markov_head.markov_w2.weight", {V, r});
    }
    if (dc.confidence) {
        const int64_t in = dc.confidence_with_markov ? d + r : d;
        w.conf_w = checkpoint_read(ck, "confidence_head.proj.weight", {1, in});
        w.conf_b = checkpoint_read(ck, "confidence_head.proj.bias", {1})[0];
    }
    const std::string cal = dir + "/calibration.json";
    w.sts = is_file(cal) ? sts_read(cal, dc.block_size) : std::vector<float>(size_t(dc.block_size), 1.0f);
    return w;
}

Eagle3Weights eagle3_load(const std::string& dir, const Config& target) {
    Eagle3Weights w;
    const std::string config_path = dir + "/config.json";
    w.cfg = eagle3_config_load(config_path);
    const Config& c = w.cfg.layers;
    drafter_target_check(config_path, "Qwen3Eagle3Model", c, w.cfg.n_target_layers, w.cfg.target_layers, target);
    Checkpoint ck = checkpoint_open(dir);
    const int64_t d = c.hidden, m = int64_t(w.cfg.target_layers.size());
    w.fc = checkpoint_read(ck, "fc.weight", {d, m * d});
    w.hidden_norm = checkpoint_read(ck, "layers.0.hidden_norm.weight", {d});
    w.layer = layer_read(ck, "layers.0.", c, 2 * d);
    w.final_norm = checkpoint_read(ck, "norm.weight", {d});
    return w;
}

ModelWeights weights_random(const Config& c, uint64_t seed) {
    config_check(c, c.name.empty() ? "weights_random" : c.name);
    ModelWeights w;
    w.cfg = c;
    // One RNG stream per tensor, so each tensor's values depend only on the
    // seed and its place in this list, not on the shapes before it.
    uint64_t stream = 0;
    auto normal = [&](int64_t rows, int64_t cols) {
        Rng r = rng_seed(seed, stream++);
        std::vector<float> v(size_t(rows * cols));
        for (float& x : v) x = float(0.02 * rng_normal(r));
        return v;
    };
    auto ones = [](int64_t n) { return std::vector<float>(size_t(n), 1.0f); };

    int64_t V = c.vocab, d = c.hidden, F = c.ffn, D = c.head_dim, q = int64_t(c.n_heads) * D,
            kv = int64_t(c.n_kv_heads) * D;
    w.embed = normal(V, d);
    w.layers.resize(size_t(c.n_layers));
    for (LayerWeights& l : w.layers) {
        l.attn_norm = ones(d);
        l.wq = normal(q, d);
        l.wk = normal(kv, d);
        l.wv = normal(kv, d);
        l.wo = normal(d, q);
        if (c.qk_norm) {
            l.q_norm = ones(D);
            l.k_norm = ones(D);
        }
        l.mlp_norm = ones(d);
        l.w_gate = normal(F, d);
        l.w_up = normal(F, d);
        l.w_down = normal(d, F);
    }
    w.final_norm = ones(d);
    if (!c.tie_embeddings) w.lm_head = normal(V, d);
    return w;
}

}  // namespace sp
