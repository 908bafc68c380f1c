#!/usr/bin/env python3
"""make_dspark_fixtures.py: reference dumps for the C++ DSpark/DFlash drafter (engine/dspark.cpp).

A self-contained plain-PyTorch implementation (no transformers, no safetensors
package) of a Qwen3 target and of the DeepSpec Qwen3DSparkModel drafter
(digest docs: /work/shared/reference/dspark.md §1.1, 1.2, 1.4, 2.1). Writes:

    tiny-qwen3-4l/   target: the tiny-qwen3 config with 4 layers, random fp32
                     weights (matrices N(0, 0.2^2) except o_proj/down_proj
                     N(0, 0.01^2) and lm_head N(0, 0.5^2); norms 1 + 0.1 N(0, 1));
                     config.json + model.safetensors (HF names, "model." prefix)
    tiny-dspark/     DSpark drafter for it: 2 draft layers, block 4, mask id 3,
                     target layers [0, 1, 2], vanilla Markov head rank 16,
                     confidence head on [h ; W1[prev]]; config.json,
                     model.safetensors (DeepSpec names, no prefix),
                     calibration.json (STS temperatures), dspark_reference.json
    tiny-dflash/     the same class with markov_rank 0 and no confidence head;
                     config.json, model.safetensors, dspark_reference.json

The drafters are trained briefly on the CPU (Adam, a fixed number of steps) to
predict the target's own greedy continuations of random prompts, with the
DeepSpec objective (DSpark: 0.1 CE + 0.9 L1 + 1.0 BCE-confidence on
Markov-corrected, teacher-forced logits, slot weights exp(-k/4); DFlash: CE
only). Embedding and lm_head are frozen copies of the target's.

Before anything is written the Qwen3 forward is validated against
tests/fixtures/tiny-qwen3/reference.json (HF eager fp32): logits and every
decoder layer's raw output within 1e-4 of max|ref|, and its 200 greedy tokens
(EOS suppressed) exactly.

safetensors are written by hand (training/safetensors_io.py): u64 little-endian header length, a JSON
header {"__metadata__": {"format": "pt"}, name: {"dtype": "F32", "shape",
"data_offsets"}} with names sorted and padded with spaces to 8 bytes, then the
little-endian fp32 data in header order.

dspark_reference.json (version 1; floats with 9 significant digits):
    {"version": 1, "torch": ver, "drafter": "tiny-dspark"|"tiny-dflash",
     "target": "tiny-qwen3-4l", "block_size": 4, "mask_token_id": 3,
     "target_layer_ids": [0, 1, 2],
     "tokens": [24]                 8 random prompt tokens + 16 greedy target tokens
     "target_logits": [[V] x 24],
     "target_layer_hidden": {"0": [[d] x 24], "1": ..., "2": ...}   raw layer outputs
     "anchors": [ for anchor_pos a in 8, 13, 19:
        {"anchor_pos": a, "anchor": tokens[a],
         "base_logits": [[V] x 4]        U = lm_head(norm(h)), context = positions < a
         "forced": tokens[a+1 .. a+3],
         "forced_logits": [[V] x 4]      U[k] + W2 W1[prev_k], prev = [anchor] + forced
         "forced_conf_logits": [4]       (DSpark) proj([h_k ; W1[prev_k]]) + bias
         "greedy_block": [4],            T = 0, prev = own samples
         "greedy_conf_logits": [4],      (DSpark) along that path
         "greedy_margin": x,             smallest top-1 minus top-2 logit over the block
         "sampled": {"temperature": 1.0, "seed": 42, "request": 7, "block": [4],
                     "conf_logits": [4] (DSpark), "margin": x (top-1 minus top-2
                     of the perturbed score), "u_is_one": n (draws equal to 1.0)}} ]}
    For DFlash, forced_logits equals base_logits and the conf fields are absent.
Sampling at T > 0: row = counter_row(seed, RNG_DRAFT = 1, request, a) of
engine/counter_rng.h; slot k, entry v uses u = counter_uniform(row, k*V + v);
x_k = argmax_v (logits_k[v] / T - log(-log(u))) in fp32, lowest index on ties.

counter_uniform is (top 23 bits of the hash + 0.5) / 2^23, exact in fp32 and
strictly inside (0, 1); u_is_one counts draws of exactly 1 (must stay 0).

Run (4 to 6 minutes on one CPU core, about 110 s of it per drafter's training):
    /usr/bin/python3 tests/make_dspark_fixtures.py
Needs only torch (tested with Debian's python3-torch 1.13, CPU, reference
BLAS). Deterministic: fixed seeds, one thread, deterministic algorithms; other
BLAS builds may differ in the last bits, so regenerate and commit together.
Every anchor is also recomputed through the batched training path (whole
sequence, masked context) and must agree with the single-block path to 1e-4.
"""
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "training"))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

VERSION = 1
FIXTURES = os.path.join(HERE, "fixtures")
EOS = 2
MASK_TOKEN = 3
FIRST_PLAIN_TOKEN = 4      # prompts avoid pad/bos/eos/mask
BLOCK = 4
TARGET_LAYER_IDS = [0, 1, 2]
MARKOV_RANK = 16
N_TOKENS, N_PROMPT = 24, 8
FIXTURE_ANCHORS = [8, 13, 19]
SAMPLE_SEED, SAMPLE_REQUEST, SAMPLE_T = 42, 7, 1.0
CALIBRATION_T = [1.0, 1.5, 2.0, 0.75]
# Target weights: matrices N(0, 0.2^2) (initializer_range), except that the
# residual-branch outputs (o_proj, down_proj) are 20x smaller, so the token's
# own embedding dominates the residual stream: about half of the greedy next
# tokens then follow from the previous token (learnable by a small drafter)
# while the context still keeps greedy text varied (~41 distinct tokens per 56);
# at 0.2 everywhere the bigram hit rate is 3% and a 2-minute drafter learns
# nothing. lm_head at 0.5 makes the target distributions LM-like peaked (mean
# top probability ~0.47 instead of ~0.08), so sampled runs accept too.
INIT_STD = 0.2
BRANCH_OUT_STD = 0.01
LM_HEAD_STD = 0.5
DRAFT_INIT_STD = 0.05      # small init trains faster; trained weights end up O(0.1)
RNG_DRAFT = 1

# training data and schedule: about 110 s per drafter on one core (reference BLAS)
TRAIN_SEQS, HELDOUT_SEQS, SEQ_LEN = 1024, 128, 64
TRAIN_STEPS, BATCH_SEQS, ANCHORS_PER_SEQ = 900, 8, 16
LR, WARMUP_FRAC = 1e-2, 0.04
LOSS_DECAY_GAMMA = 4.0
CE_ALPHA, L1_ALPHA, CONF_ALPHA = 0.1, 0.9, 1.0


# ---------------------------------------------------------------- files

def r9(x):
    """fp32 values as JSON numbers with 9 significant digits (round-trips fp32)."""
    if isinstance(x, torch.Tensor):
        x = x.tolist()
    if isinstance(x, list):
        return [r9(v) for v in x]
    return float("%.9g" % x)


def write_json(path, obj, compact):
    with open(path, "w") as f:
        if compact:
            json.dump(obj, f, separators=(",", ":"))
        else:
            json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def load_config(folder):
    with open(os.path.join(folder, "config.json")) as f:
        return json.load(f)


def rope_theta(cfg):
    if cfg.get("rope_theta") is not None:
        return float(cfg["rope_theta"])
    return float(cfg["rope_parameters"]["rope_theta"])


# ---------------------------------------------------------------- counter RNG (engine/counter_rng.h)

M64 = (1 << 64) - 1


def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def rng_row(seed, stream, request, position):
    s = seed if stream == 0 else mix(seed ^ ((0x5851f42d4c957f2d * stream) & M64))
    return mix(mix(s ^ mix(request)) ^ (position & 0xFFFFFFFF))


def rng_uniforms(row, start, n):
    # (h >> 41) + 0.5 has at most 24 significant bits: exact in fp32, as the
    # C++ computes it; the final / 2^23 is exact too.
    vals = [((mix(row ^ ((start + i) & 0xFFFFFFFF)) >> 41) + 0.5) / 8388608.0 for i in range(n)]
    return torch.tensor(vals, dtype=torch.float64).to(torch.float32)


# ---------------------------------------------------------------- Qwen3 pieces

def rms_norm(x, w, eps):
    x = x.float()
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_cos_sin(positions, head_dim, theta):
    """HF default rope: fp32 inv_freq = 1 / theta^(2i/D); angle = inv_freq * pos in fp32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    ang = positions.float()[..., None] * inv_freq
    emb = torch.cat([ang, ang], -1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    """x (..., T, heads, D); cos/sin (..., T, D). Pairs (i, i + D/2) as rotate_half."""
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def split_heads(x, w, n_heads):
    y = F.linear(x, w)
    return y.view(*y.shape[:-1], n_heads, y.shape[-1] // n_heads)


def attend(q, k, v, allowed):
    """q (B, Tq, H, D), k/v (B, Tk, Hkv, D), allowed (B|1, Tq, Tk). GQA: head h reads kv head h // (H/Hkv)."""
    b, tq, n_heads, d = q.shape
    rep = n_heads // k.shape[2]
    k = k.repeat_interleave(rep, dim=2)
    v = v.repeat_interleave(rep, dim=2)
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * (1.0 / math.sqrt(d))
    s = s.masked_fill(~allowed.unsqueeze(1), float("-inf"))
    p = torch.softmax(s, dim=-1)
    return torch.einsum("bhqk,bkhd->bqhd", p, v).reshape(b, tq, n_heads * d)


def mlp(x, p):
    return F.linear(F.silu(F.linear(x, p["mlp.gate_proj.weight"])) * F.linear(x, p["mlp.up_proj.weight"]),
                    p["mlp.down_proj.weight"])


def layer_params(weights, prefix):
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


# ---------------------------------------------------------------- target

def target_forward(W, cfg, tokens, cache=None):
    """tokens (B, T) at positions start..start+T-1, start = cached length.
    Returns logits (B, T, V), raw decoder-layer outputs [L x (B, T, d)], new cache."""
    eps, n_h, n_kv = cfg["rms_norm_eps"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    b, t = tokens.shape
    start = 0 if cache is None else cache[0][0].shape[1]
    pos = torch.arange(start, start + t)
    cos, sin = rope_cos_sin(pos, cfg["head_dim"], rope_theta(cfg))
    allowed = (torch.arange(start + t)[None, :] <= pos[:, None]).unsqueeze(0)
    x = W["model.embed_tokens.weight"][tokens]
    hidden, new_cache = [], []
    for i in range(cfg["num_hidden_layers"]):
        p = layer_params(W, f"model.layers.{i}.")
        xn = rms_norm(x, p["input_layernorm.weight"], eps)
        q = apply_rope(rms_norm(split_heads(xn, p["self_attn.q_proj.weight"], n_h), p["self_attn.q_norm.weight"], eps),
                       cos, sin)
        k = apply_rope(rms_norm(split_heads(xn, p["self_attn.k_proj.weight"], n_kv), p["self_attn.k_norm.weight"], eps),
                       cos, sin)
        v = split_heads(xn, p["self_attn.v_proj.weight"], n_kv)
        if cache is not None:
            k = torch.cat([cache[i][0], k], 1)
            v = torch.cat([cache[i][1], v], 1)
        new_cache.append((k, v))
        x = x + F.linear(attend(q, k, v, allowed), p["self_attn.o_proj.weight"])
        x = x + mlp(rms_norm(x, p["post_attention_layernorm.weight"], eps), p)
        hidden.append(x)
    logits = F.linear(rms_norm(x, W["model.norm.weight"], eps), W["lm_head.weight"])
    return logits, hidden, new_cache


def greedy_generate(W, cfg, prompts, n_new, suppress=None):
    """prompts (B, P) -> (B, P + n_new), argmax with a KV cache (lowest index on ties)."""
    logits, _, cache = target_forward(W, cfg, prompts)
    out = [prompts]
    for step in range(n_new):
        last = logits[:, -1].clone()
        if suppress is not None:
            last[:, suppress] = float("-inf")
        nxt = last.argmax(-1, keepdim=True)
        out.append(nxt)
        if step + 1 < n_new:
            logits, _, cache = target_forward(W, cfg, nxt, cache)
    return torch.cat(out, 1)


def validate_target_forward():
    """Our Qwen3 forward against HF's eager fp32 dump of tiny-qwen3."""
    folder = os.path.join(FIXTURES, "tiny-qwen3")
    cfg = load_config(folder)
    W = read_safetensors(os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "reference.json")) as f:
        ref = json.load(f)
    tokens = torch.tensor([ref["tokens"]])
    logits, hidden, _ = target_forward(W, cfg, tokens)
    errs = {}
    checks = [("logits", logits[0], ref["logits"])]
    checks += [(f"hidden[{l}]", hidden[int(l)][0], ref["hidden"][l]) for l in sorted(ref["hidden"], key=int)]
    for name, got, want in checks:
        want = torch.tensor(want, dtype=torch.float32)
        err = (got - want).abs().max().item()
        scale = want.abs().max().item()
        errs[name] = (err, scale)
        print(f"  tiny-qwen3 {name:10s} max|err| {err:.3e}  max|ref| {scale:.3f}  rel {err / scale:.2e}")
        assert err <= 1e-4 * scale, f"{name} differs from HF"
    prompt = torch.tensor([ref["greedy_prompt"]])
    greedy = greedy_generate(W, cfg, prompt, len(ref["greedy"]), suppress=ref["eos_suppressed"])
    agree = sum(int(a == b) for a, b in zip(greedy[0, prompt.shape[1]:].tolist(), ref["greedy"]))
    print(f"  tiny-qwen3 greedy: {agree}/{len(ref['greedy'])} tokens as HF generate")
    assert agree == len(ref["greedy"]), "greedy generation differs from HF"
    return errs


def init_target(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    d, v = cfg["hidden_size"], cfg["vocab_size"]

    def mat(*shape, std=INIT_STD):
        return torch.randn(*shape, generator=g) * std

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=g)

    W = {"model.embed_tokens.weight": mat(v, d)}
    for i in range(cfg["num_hidden_layers"]):
        W.update(layer_weights(f"model.layers.{i}.", cfg, mat, norm, BRANCH_OUT_STD))
    W["model.norm.weight"] = norm(d)
    W["lm_head.weight"] = mat(v, d, std=LM_HEAD_STD)
    return W


def layer_weights(prefix, cfg, mat, norm, out_std):
    d, f, hd = cfg["hidden_size"], cfg["intermediate_size"], cfg["head_dim"]
    qd = cfg["num_attention_heads"] * hd
    kd = cfg["num_key_value_heads"] * hd
    return {
        prefix + "input_layernorm.weight": norm(d),
        prefix + "self_attn.q_proj.weight": mat(qd, d),
        prefix + "self_attn.k_proj.weight": mat(kd, d),
        prefix + "self_attn.v_proj.weight": mat(kd, d),
        prefix + "self_attn.o_proj.weight": mat(d, qd, std=out_std),
        prefix + "self_attn.q_norm.weight": norm(hd),
        prefix + "self_attn.k_norm.weight": norm(hd),
        prefix + "post_attention_layernorm.weight": norm(d),
        prefix + "mlp.gate_proj.weight": mat(f, d),
        prefix + "mlp.up_proj.weight": mat(f, d),
        prefix + "mlp.down_proj.weight": mat(d, f, std=out_std),
    }


# ---------------------------------------------------------------- drafter

def drafter_config(target_cfg, dspark):
    cfg = copy.deepcopy(target_cfg)
    cfg.update({
        "architectures": ["Qwen3DSparkModel"],
        "num_hidden_layers": 2,
        "num_target_layers": target_cfg["num_hidden_layers"],
        "block_size": BLOCK,
        "mask_token_id": MASK_TOKEN,
        "target_layer_ids": list(TARGET_LAYER_IDS),
        "num_anchors": 64,
        "enable_confidence_head": dspark,
        "markov_rank": MARKOV_RANK if dspark else 0,
        "tie_word_embeddings": False,
        "layer_types": ["full_attention"] * 2,
    })
    if dspark:
        cfg["confidence_head_with_markov"] = True
        cfg["markov_head_type"] = "vanilla"
    return cfg


def init_drafter(cfg, W_target, seed):
    g = torch.Generator().manual_seed(seed)
    d, v, r = cfg["hidden_size"], cfg["vocab_size"], cfg["markov_rank"]
    m = len(cfg["target_layer_ids"])

    def mat(*shape, std=DRAFT_INIT_STD):
        return torch.randn(*shape, generator=g) * std

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=g)

    P = {
        "embed_tokens.weight": W_target["model.embed_tokens.weight"].clone(),
        "lm_head.weight": W_target["lm_head.weight"].clone(),
        "fc.weight": mat(d, m * d),
        "hidden_norm.weight": norm(d),
    }
    for i in range(cfg["num_hidden_layers"]):
        P.update(layer_weights(f"layers.{i}.", cfg, mat, norm, DRAFT_INIT_STD))
    P["norm.weight"] = norm(d)
    if r > 0:
        P["markov_head.markov_w1.weight"] = mat(v, r)
        P["markov_head.markov_w2.weight"] = mat(v, r)
    if cfg["enable_confidence_head"]:
        P["confidence_head.proj.weight"] = mat(1, d + (r if cfg.get("confidence_head_with_markov") else 0))
        P["confidence_head.proj.bias"] = torch.zeros(1)
    return P


def target_features(hidden, layer_ids):
    return torch.cat([hidden[l] for l in layer_ids], -1)


def drafter_backbone(P, cfg, feats, anchors, anchor_tokens):
    """feats (B, S, m*d): target features of positions 0..S-1; anchors (B, K) positions,
    anchor_tokens (B, K). Block k of row b sees context positions < anchors[b, k] and
    its own block (no causal mask). Returns final-normed h (B, K, bs, d), U (B, K, bs, V)."""
    eps, n_h, n_kv = cfg["rms_norm_eps"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    bs, hd, theta = cfg["block_size"], cfg["head_dim"], rope_theta(cfg)
    b, s, _ = feats.shape
    k_blocks = anchors.shape[1]
    hctx = rms_norm(F.linear(feats, P["fc.weight"]), P["hidden_norm.weight"], eps)
    ids = torch.full((b, k_blocks, bs), cfg["mask_token_id"], dtype=torch.long)
    ids[..., 0] = anchor_tokens
    x = P["embed_tokens.weight"][ids].reshape(b, k_blocks * bs, -1)
    bpos = (anchors[..., None] + torch.arange(bs)).reshape(b, k_blocks * bs)
    cpos = torch.arange(s)
    cos_b, sin_b = rope_cos_sin(bpos, hd, theta)
    cos_c, sin_c = rope_cos_sin(cpos, hd, theta)
    allowed_ctx = cpos[None, None, :] < anchors.repeat_interleave(bs, 1)[..., None]
    blk = torch.arange(k_blocks).repeat_interleave(bs)
    allowed_blk = (blk[:, None] == blk[None, :]).unsqueeze(0).expand(b, -1, -1)
    allowed = torch.cat([allowed_ctx, allowed_blk], -1)
    for i in range(cfg["num_hidden_layers"]):
        p = layer_params(P, f"layers.{i}.")
        xn = rms_norm(x, p["input_layernorm.weight"], eps)
        q = apply_rope(rms_norm(split_heads(xn, p["self_attn.q_proj.weight"], n_h), p["self_attn.q_norm.weight"], eps),
                       cos_b, sin_b)
        kb = apply_rope(rms_norm(split_heads(xn, p["self_attn.k_proj.weight"], n_kv), p["self_attn.k_norm.weight"], eps),
                        cos_b, sin_b)
        vb = split_heads(xn, p["self_attn.v_proj.weight"], n_kv)
        # context K/V straight from H_ctx: no input_layernorm on the injected features
        kc = apply_rope(rms_norm(split_heads(hctx, p["self_attn.k_proj.weight"], n_kv), p["self_attn.k_norm.weight"], eps),
                        cos_c, sin_c)
        vc = split_heads(hctx, p["self_attn.v_proj.weight"], n_kv)
        att = attend(q, torch.cat([kc, kb], 1), torch.cat([vc, vb], 1), allowed)
        x = x + F.linear(att, p["self_attn.o_proj.weight"])
        x = x + mlp(rms_norm(x, p["post_attention_layernorm.weight"], eps), p)
    h = rms_norm(x, P["norm.weight"], eps)
    u = F.linear(h, P["lm_head.weight"])
    return h.view(b, k_blocks, bs, -1), u.view(b, k_blocks, bs, -1)


def markov_step(P, cfg, h, u, prev):
    """Logits U + W2 W1[prev] and the confidence logit proj([h ; W1[prev]]) + b; any leading shape."""
    conf = None
    if cfg["markov_rank"] == 0:
        logits, e = u, None
    else:
        e = P["markov_head.markov_w1.weight"][prev]
        logits = u + F.linear(e, P["markov_head.markov_w2.weight"])
    if cfg["enable_confidence_head"]:
        inp = torch.cat([h, e], -1) if cfg.get("confidence_head_with_markov") else h
        conf = F.linear(inp, P["confidence_head.proj.weight"], P["confidence_head.proj.bias"])[..., 0]
    return logits, conf


def top2_gap(x):
    t = x.topk(2).values
    return (t[0] - t[1]).item()


def draft_block(P, cfg, h, u, anchor, forced=None, temperature=0.0, seed=0, request=0, anchor_pos=0):
    """The sequential loop over one block: h (bs, d), u (bs, V). Teacher-forced when
    `forced` (bs - 1 tokens) is given, else prev = own samples (argmax at T = 0,
    Gumbel-max on the RNG_DRAFT row at T > 0)."""
    bs, v = cfg["block_size"], cfg["vocab_size"]
    row = rng_row(seed, RNG_DRAFT, request, anchor_pos) if temperature > 0 else None
    prev, tokens, logits, confs, margin, ones = anchor, [], [], [], float("inf"), 0
    for k in range(bs):
        lk, ck = markov_step(P, cfg, h[k], u[k], torch.tensor(prev))
        logits.append(lk)
        if ck is not None:
            confs.append(ck.item())
        if temperature > 0:
            un = rng_uniforms(row, k * v, v)
            ones += int((un == 1.0).sum())
            score = lk / temperature - torch.log(-torch.log(un))
        else:
            score = lk
        tok = int(score.argmax())
        margin = min(margin, top2_gap(score))
        tokens.append(tok)
        prev = forced[k] if forced is not None and k < bs - 1 else tok
    return {"tokens": tokens, "logits": torch.stack(logits), "conf": confs, "margin": margin, "u_is_one": ones}


# ---------------------------------------------------------------- training

def make_sequences(W, cfg, n, seed):
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(FIRST_PLAIN_TOKEN, cfg["vocab_size"], (n, N_PROMPT), generator=g)
    return greedy_generate(W, cfg, prompts, SEQ_LEN - N_PROMPT)


def target_data(W, cfg, seqs, chunk=128):
    feats, probs = [], []
    for i in range(0, seqs.shape[0], chunk):
        logits, hidden, _ = target_forward(W, cfg, seqs[i:i + chunk])
        feats.append(target_features(hidden, TARGET_LAYER_IDS))
        probs.append(torch.softmax(logits, -1))
    return torch.cat(feats), torch.cat(probs)


def block_losses(P, cfg, seqs, feats, p_target, anchors):
    """Teacher-forced DeepSpec losses of blocks at `anchors` (B, K). Slot k is labelled
    tokens[a + k + 1]; its prev is tokens[a + k]; p_t is the target at position a + k."""
    bs = cfg["block_size"]
    idx = anchors[..., None] + torch.arange(bs)                     # (B, K, bs): a + k
    rows = torch.arange(seqs.shape[0])[:, None, None]
    prev, labels, pt = seqs[rows, idx], seqs[rows, idx + 1], p_target[rows, idx]
    h, u = drafter_backbone(P, cfg, feats, anchors, seqs[rows[..., 0], anchors])
    logits, conf = markov_step(P, cfg, h, u, prev)
    w = torch.exp(-torch.arange(bs, dtype=torch.float32) / LOSS_DECAY_GAMMA).expand_as(labels)
    ce = (F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
          * w.reshape(-1)).sum() / w.sum()
    out = {"ce": ce, "logits": logits, "labels": labels, "conf": conf}
    if conf is not None:
        l1 = (torch.softmax(logits, -1) - pt).abs().sum(-1)
        target_c = (1.0 - 0.5 * l1).clamp(0.0, 1.0).detach()
        out["l1"] = (l1 * w).sum() / w.sum()
        out["bce"] = (F.binary_cross_entropy_with_logits(conf, target_c, reduction="none") * w).sum() / w.sum()
    return out


def sample_anchors(g, n_rows, k):
    """k distinct sorted anchors per row with every label inside the greedy continuation."""
    lo, hi = N_PROMPT - 1, SEQ_LEN - 1 - BLOCK
    order = torch.rand(n_rows, hi - lo + 1, generator=g).argsort(-1)[:, :k]
    return order.sort(-1).values + lo


def train_drafter(P, cfg, data, seed, name):
    seqs, feats, pt = data
    trainable = [n for n in sorted(P) if n not in ("embed_tokens.weight", "lm_head.weight")]
    params = [P[n].requires_grad_() for n in trainable]
    opt = torch.optim.Adam(params, lr=LR)
    warm = max(1, int(WARMUP_FRAC * TRAIN_STEPS))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (TRAIN_STEPS - warm))))
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for step in range(TRAIN_STEPS):
        rows = torch.randint(seqs.shape[0], (BATCH_SEQS,), generator=g)
        anchors = sample_anchors(g, BATCH_SEQS, ANCHORS_PER_SEQ)
        o = block_losses(P, cfg, seqs[rows], feats[rows], pt[rows], anchors)
        if "l1" in o:
            loss = CE_ALPHA * o["ce"] + L1_ALPHA * o["l1"] + CONF_ALPHA * o["bce"]
        else:
            loss = o["ce"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == TRAIN_STEPS - 1:
            extra = f" l1 {o['l1'].item():.3f} bce {o['bce'].item():.3f}" if "l1" in o else ""
            print(f"  {name} step {step:5d} loss {loss.item():.4f} ce {o['ce'].item():.3f}{extra}"
                  f"  ({time.time() - t0:.0f} s)")
    for n in trainable:
        P[n] = P[n].detach()
    return time.time() - t0


def acceptance(P, cfg, data):
    """Greedy draft vs greedy target on every valid anchor of held-out sequences. With both
    greedy, slot k is reached only if slots < k matched, so prev = own samples equals the
    teacher-forced prev on every block prefix that counts."""
    seqs, feats, pt = data
    lo, hi = N_PROMPT - 1, SEQ_LEN - 1 - BLOCK
    anchors = torch.arange(lo, hi + 1).expand(seqs.shape[0], -1)
    with torch.no_grad():
        o = block_losses(P, cfg, seqs, feats, pt, anchors)
    match = (o["logits"].argmax(-1) == o["labels"]).float().reshape(-1, cfg["block_size"])
    prefix = match.cumprod(-1)
    reached = torch.cat([torch.ones(prefix.shape[0], 1), prefix[:, :-1]], -1)
    cond = (prefix.sum(0) / reached.sum(0)).tolist()
    res = {"conditional": cond, "prefix": prefix.mean(0).tolist(), "tau": 1.0 + prefix.sum(-1).mean().item(),
           "blocks": prefix.shape[0]}
    if o["conf"] is not None:
        res["mean_sigmoid_conf_teacher_forced"] = torch.sigmoid(o["conf"]).reshape(-1, cfg["block_size"]).mean(0).tolist()
    return res


# ---------------------------------------------------------------- fixtures

def fixture_sequence(W, cfg, seed):
    """8 random prompt tokens + 16 greedy tokens; redrawn until EOS-free and until a plain
    forward over the sequence reproduces every greedy token with a clear top-2 gap."""
    g = torch.Generator().manual_seed(seed)
    while True:
        prompt = torch.randint(FIRST_PLAIN_TOKEN, cfg["vocab_size"], (1, N_PROMPT), generator=g)
        seq = greedy_generate(W, cfg, prompt, N_TOKENS - N_PROMPT)
        logits, _, _ = target_forward(W, cfg, seq)
        pred = logits[0, N_PROMPT - 1:-1]
        gaps = [top2_gap(r) for r in pred]
        ok = (pred.argmax(-1) == seq[0, N_PROMPT:]).all().item() and EOS not in seq[0].tolist()
        if ok and min(gaps) > 1e-3:
            print(f"  fixture tokens {seq[0].tolist()} (smallest greedy top-2 gap {min(gaps):.3e})")
            return seq


def reference(P, cfg, W_target, target_cfg, seq, name):
    dspark = cfg["enable_confidence_head"]
    logits_t, hidden, _ = target_forward(W_target, target_cfg, seq)
    feats = target_features(hidden, cfg["target_layer_ids"])
    tokens = seq[0].tolist()
    bs = cfg["block_size"]
    ref = {
        "version": VERSION, "torch": torch.__version__, "drafter": name, "target": "tiny-qwen3-4l",
        "block_size": bs, "mask_token_id": cfg["mask_token_id"], "target_layer_ids": cfg["target_layer_ids"],
        "tokens": tokens,
        "target_logits": r9(logits_t[0]),
        "target_layer_hidden": {str(l): r9(hidden[l][0]) for l in cfg["target_layer_ids"]},
        "anchors": [],
    }
    for a in FIXTURE_ANCHORS:
        h, u = drafter_backbone(P, cfg, feats[:, :a], torch.tensor([[a]]), torch.tensor([[tokens[a]]]))
        h, u = h[0, 0], u[0, 0]
        forced = tokens[a + 1:a + bs]
        tf = draft_block(P, cfg, h, u, tokens[a], forced=forced)
        gr = draft_block(P, cfg, h, u, tokens[a])
        sa = draft_block(P, cfg, h, u, tokens[a], temperature=SAMPLE_T, seed=SAMPLE_SEED, request=SAMPLE_REQUEST,
                         anchor_pos=a)
        # the batched training path (whole sequence, masked) must agree with this one
        o = block_losses(P, cfg, seq, feats, torch.softmax(logits_t, -1), torch.tensor([[a]]))
        diff = (o["logits"][0, 0] - tf["logits"]).abs().max().item()
        if dspark:
            diff = max(diff, (o["conf"][0, 0] - torch.tensor(tf["conf"])).abs().max().item())
        assert diff < 1e-4, f"batched and single-block drafter paths differ by {diff}"
        entry = {"anchor_pos": a, "anchor": tokens[a], "base_logits": r9(u), "forced": forced,
                 "forced_logits": r9(tf["logits"])}
        if dspark:
            entry["forced_conf_logits"] = r9(tf["conf"])
        entry["greedy_block"] = gr["tokens"]
        if dspark:
            entry["greedy_conf_logits"] = r9(gr["conf"])
        entry["greedy_margin"] = r9(gr["margin"])
        sampled = {"temperature": SAMPLE_T, "seed": SAMPLE_SEED, "request": SAMPLE_REQUEST, "block": sa["tokens"]}
        if dspark:
            sampled["conf_logits"] = r9(sa["conf"])
        sampled["margin"] = r9(sa["margin"])
        sampled["u_is_one"] = sa["u_is_one"]
        entry["sampled"] = sampled
        ref["anchors"].append(entry)
        print(f"  {name} anchor {a}: truth {tokens[a + 1:a + 1 + bs]} greedy {gr['tokens']} "
              f"(margin {gr['margin']:.2e}) sampled {sa['tokens']} (margin {sa['margin']:.2e}, u=1: {sa['u_is_one']}); "
              f"batched path max|diff| {diff:.1e}")
    return ref


def save_model(folder, cfg, tensors):
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "config.json"), cfg, compact=False)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)


def main():
    t_start = time.time()
    torch.set_num_threads(1)  # one reduction order
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}")

    print("validating the Qwen3 forward against tiny-qwen3/reference.json")
    validate_target_forward()

    tcfg = load_config(os.path.join(FIXTURES, "tiny-qwen3"))
    tcfg["num_hidden_layers"] = 4
    tcfg["layer_types"] = ["full_attention"] * 4
    W = init_target(tcfg, seed=4004)
    # written back and re-read so the fixtures come from exactly the stored bytes
    tdir = os.path.join(FIXTURES, "tiny-qwen3-4l")
    save_model(tdir, tcfg, W)
    W = read_safetensors(os.path.join(tdir, "model.safetensors"))

    with torch.no_grad():
        print("generating target sequences")
        train_seqs = make_sequences(W, tcfg, TRAIN_SEQS, seed=11)
        held_seqs = make_sequences(W, tcfg, HELDOUT_SEQS, seed=12)
        gen = train_seqs[:, N_PROMPT:]
        distinct = sum(len(set(r)) for r in gen.tolist()) / gen.shape[0]
        print(f"  {TRAIN_SEQS}+{HELDOUT_SEQS} sequences of {SEQ_LEN}; distinct tokens per "
              f"{SEQ_LEN - N_PROMPT}-token continuation: {distinct:.1f}")
        train = (train_seqs,) + target_data(W, tcfg, train_seqs)
        held = (held_seqs,) + target_data(W, tcfg, held_seqs)
        seq = fixture_sequence(W, tcfg, seed=13)

    results = {}
    for name, dspark, seed in (("tiny-dspark", True, 21), ("tiny-dflash", False, 22)):
        cfg = drafter_config(tcfg, dspark)
        P = init_drafter(cfg, W, seed)
        before = acceptance(P, cfg, held)
        secs = train_drafter(P, cfg, train, seed + 100, name)
        after = acceptance(P, cfg, held)
        train_acc = acceptance(P, cfg, tuple(t[:HELDOUT_SEQS] for t in train))
        results[name] = (before, after, train_acc, secs)
        folder = os.path.join(FIXTURES, name)
        save_model(folder, cfg, P)
        P = read_safetensors(os.path.join(folder, "model.safetensors"))
        if dspark:
            write_json(os.path.join(folder, "calibration.json"),
                       {"method": "sts", "temperatures": CALIBRATION_T}, compact=False)
        with torch.no_grad():
            ref = reference(P, cfg, W, tcfg, seq, name)
        write_json(os.path.join(folder, "dspark_reference.json"), ref, compact=True)

    for name, (before, after, train_acc, secs) in results.items():
        fmt = lambda xs: " ".join(f"{x:.3f}" for x in xs)
        print(f"{name}: trained {secs:.0f} s; held-out greedy acceptance over {after['blocks']} blocks")
        print(f"    untrained  conditional {fmt(before['conditional'])}  tau {before['tau']:.3f}")
        print(f"    trained    conditional {fmt(after['conditional'])}  prefix {fmt(after['prefix'])}"
              f"  tau {after['tau']:.3f}")
        print(f"    train set  conditional {fmt(train_acc['conditional'])}  tau {train_acc['tau']:.3f}")
        if "mean_sigmoid_conf_teacher_forced" in after:
            print(f"    mean sigmoid(conf), teacher-forced: {fmt(after['mean_sigmoid_conf_teacher_forced'])}")
    for d in ("tiny-qwen3-4l", "tiny-dspark", "tiny-dflash"):
        for fn in sorted(os.listdir(os.path.join(FIXTURES, d))):
            print(f"  {d}/{fn}: {os.path.getsize(os.path.join(FIXTURES, d, fn))} bytes")
    print(f"done in {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
