"""qwen3.py: a batched, trainable Qwen3 decoder in plain PyTorch, with HF
Qwen3ForCausalLM's math and state-dict names, and HF folders (config.json +
model.safetensors) in and out.

The math is tests/make_dspark_fixtures.py's target_forward (validated there
against HF eager): pre-norm blocks, RMSNorm statistics in fp32, per-head RMSNorm
on q and k before RoPE (rotate_half: pairs (i, i + D/2)), GQA (query head h reads
KV head h // (H / Hkv)), SwiGLU MLP, causal attention, lm_head optionally tied to
the embedding. Runs on torch 1.13 (CPU, fp32) and torch 2.x (CUDA, under bf16
autocast: matmuls in bf16, residual stream, norms and logits in fp32). No
padding: every row starts at position 0; an optional KV cache (new_cache) lets
generation feed a prompt and then one token a step, all rows in lockstep.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors_io import read_safetensors, write_safetensors

USE_SDPA = hasattr(F, "scaled_dot_product_attention")  # torch >= 2.0; flash/efficient kernels on CUDA


def make_config(vocab=8192, hidden=256, layers=6, heads=4, head_dim=64, kv_heads=2, intermediate=768, tied=True,
                theta=10000.0, max_position=2048, eps=1e-6, bos=0, eos=0, pad=1, init_std=0.02):
    """An HF Qwen3ForCausalLM config.json (transformers 5's fields, which 4.x reads too).
    Defaults: the demo target of issue 10; ids are training/tokenizer.py's
    (<|endoftext|> 0 is BOS and EOS, as Qwen3's own config has it, <|pad|> 1)."""
    return {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": bos, "dtype": "bfloat16", "eos_token_id": eos, "head_dim": head_dim, "hidden_act": "silu",
        "hidden_size": hidden, "initializer_range": init_std, "intermediate_size": intermediate,
        "layer_types": ["full_attention"] * layers, "max_position_embeddings": max_position,
        "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads, "pad_token_id": pad, "rms_norm_eps": eps,
        "rope_parameters": {"rope_theta": float(theta), "rope_type": "default"}, "rope_scaling": None,
        "rope_theta": float(theta), "sliding_window": None, "tie_word_embeddings": tied, "torch_dtype": "bfloat16",
        "use_cache": True, "use_sliding_window": False, "vocab_size": vocab,
    }


def rope_theta(cfg):
    if cfg.get("rope_theta") is not None:
        return float(cfg["rope_theta"])
    return float(cfg["rope_parameters"]["rope_theta"])


def rope_cos_sin(t, head_dim, theta, device):
    """cos, sin (T, D) fp32 of positions 0..T-1; HF default rope: inv_freq = 1 / theta^(2i/D) in fp32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    ang = torch.arange(t, dtype=torch.float32, device=device)[:, None] * inv_freq.to(device)
    emb = torch.cat([ang, ang], -1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    """x (B, T, heads, D); cos/sin (T, D)."""
    cos, sin = cos[:, None], sin[:, None]
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def causal_attention(q, k, v):
    """q (B, H, T, D), k/v (B, Hkv, T, D) of one dtype -> (B, H, T, D); scale 1/sqrt(D)."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    if USE_SDPA:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[2]
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    p = torch.softmax(s.float().masked_fill(future, float("-inf")), -1)
    return p.to(v.dtype) @ v


def cached_attention(q, k, v, kv):
    """Appends k/v (B, Hkv, T, D) to the layer's cache kv at kv["len"] and attends q (B, H, T, D) to all
    cached positions, causally within the new T."""
    start, t = kv["len"], q.shape[2]
    if "k" not in kv:  # allocated on first use: the dtype and device of what autocast produces
        shape = (k.shape[0], k.shape[1], kv["max"], k.shape[3])
        kv["k"], kv["v"] = k.new_zeros(shape), v.new_zeros(shape)
    assert start + t <= kv["max"], "KV cache full"
    kv["k"][:, :, start:start + t] = k
    kv["v"][:, :, start:start + t] = v
    kv["len"] = start + t
    rep = q.shape[1] // k.shape[1]
    k, v = kv["k"][:, :, :start + t].repeat_interleave(rep, 1), kv["v"][:, :, :start + t].repeat_interleave(rep, 1)
    pos = torch.arange(start + t, device=q.device)
    allowed = pos[None, :] <= pos[start:, None]
    if USE_SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=None if t == 1 else allowed)
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    p = torch.softmax(s.float().masked_fill(~allowed, float("-inf")), -1)
    return p.to(v.dtype) @ v


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        # statistics in fp32 also under autocast; back to x's dtype so bf16 q/k stay bf16
        xf = x.float()
        return (self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps))).to(x.dtype)


def linear(n_in, n_out):
    return nn.Linear(n_in, n_out, bias=False)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, hd, eps = cfg["hidden_size"], cfg["head_dim"], cfg["rms_norm_eps"]
        self.n_heads, self.n_kv, self.head_dim = cfg["num_attention_heads"], cfg["num_key_value_heads"], hd
        self.q_proj = linear(d, self.n_heads * hd)
        self.k_proj = linear(d, self.n_kv * hd)
        self.v_proj = linear(d, self.n_kv * hd)
        self.o_proj = linear(self.n_heads * hd, d)
        self.q_norm = RMSNorm(hd, eps)
        self.k_norm = RMSNorm(hd, eps)

    def forward(self, x, cos, sin, kv=None):
        b, t, _ = x.shape
        q = apply_rope(self.q_norm(self.q_proj(x).view(b, t, self.n_heads, self.head_dim)), cos, sin)
        k = apply_rope(self.k_norm(self.k_proj(x).view(b, t, self.n_kv, self.head_dim)), cos, sin)
        v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim)
        # RoPE's fp32 cos/sin promote q, k under autocast; attention wants one dtype
        q, k, v = q.to(v.dtype).transpose(1, 2), k.to(v.dtype).transpose(1, 2), v.transpose(1, 2)
        o = causal_attention(q, k, v) if kv is None else cached_attention(q, k, v, kv)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, f = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj, self.up_proj, self.down_proj = linear(d, f), linear(d, f), linear(f, d)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, kv=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, kv)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen3(nn.Module):
    """Parameters named as HF's state dict: model.embed_tokens.weight, model.layers.{i}.*,
    model.norm.weight, and lm_head.weight unless tie_word_embeddings."""

    def __init__(self, cfg):
        super().__init__()
        assert cfg.get("model_type", "qwen3") == "qwen3" and not cfg.get("attention_bias")
        assert cfg["num_attention_heads"] % cfg["num_key_value_heads"] == 0
        self.cfg = dict(cfg)
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        self.theta = rope_theta(cfg)
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.model.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.model.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        if not self.tied:
            self.lm_head = linear(cfg["hidden_size"], cfg["vocab_size"])
        std = cfg.get("initializer_range", 0.02)
        with torch.no_grad():  # HF's init: matrices N(0, std^2), norms 1
            for p in self.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, std)

    def new_cache(self, max_len):
        """An empty KV cache for forward(..., cache=) of up to max_len positions per row."""
        return [{"len": 0, "max": max_len} for _ in self.model.layers]

    def forward(self, input_ids, hidden_layers=(), cache=None):
        """input_ids (B, T) int64 -> logits (B, T, V) fp32, and [(B, T, d)] per index in
        hidden_layers: that decoder layer's raw output (residual stream, before the final norm).
        With a cache (new_cache) the ids continue the cached positions and their K/V are appended."""
        n_layers = len(self.model.layers)
        assert all(0 <= i < n_layers for i in hidden_layers), hidden_layers
        start, t = (0 if cache is None else cache[0]["len"]), input_ids.shape[1]
        cos, sin = rope_cos_sin(start + t, self.cfg["head_dim"], self.theta, input_ids.device)
        cos, sin = cos[start:], sin[start:]
        x = self.model.embed_tokens(input_ids)
        hidden = {}
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, None if cache is None else cache[i])
            if i in hidden_layers:
                hidden[i] = x
        head = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        logits = F.linear(self.model.norm(x), head).float()
        return logits, [hidden[i] for i in hidden_layers]


def load_hf(folder, device="cpu"):
    """An HF folder (config.json + one model.safetensors, F32 or BF16) as an fp32 Qwen3."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    if cfg.get("tie_word_embeddings"):
        weights.pop("lm_head.weight", None)  # HF ignores a stored copy too
    model = Qwen3(cfg)
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    return model.to(device)


def save_hf(model, folder, dtype="BF16"):
    """config.json (keys sorted, as HF writes it) and model.safetensors in dtype ("BF16" or "F32")."""
    os.makedirs(folder, exist_ok=True)
    cfg = dict(model.cfg)
    cfg["dtype"] = cfg["torch_dtype"] = {"BF16": "bfloat16", "F32": "float32"}[dtype]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(folder, "model.safetensors"), model.state_dict(), dtype)
