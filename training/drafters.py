"""drafters.py: batched, trainable DSpark/DFlash and EAGLE-3 drafters in DeepSpec's
checkpoint layout (digest /work/shared/reference/dspark.md §1.4), which
engine/weights.cpp loads: parameter names without a prefix, config.json a deep
copy of the target's with the drafter keys added, model.safetensors in bf16.

The math is tests/make_dspark_fixtures.py's drafter_backbone + markov_step and
tests/make_eagle3_fixtures.py's ttt_forward (the references the C++ engine is
checked against); training/test_drafters.py holds them equal.

  DSpark/DFlash (Qwen3DSparkModel): blocks [anchor, MASK x (bs - 1)] at RoPE
    positions anchor + k; every block of a sequence in one attention call whose
    keys are [H_ctx of all positions ; all block tokens] and whose mask lets a
    block see context positions < its anchor and its own block (both ways).
    DFlash is the same class with markov_rank 0 and no confidence head.
  EAGLE-3 (Qwen3Eagle3Model): one layer on [input_layernorm(embed) ;
    hidden_norm(h)]; test-time training runs every chain root at once.

Embedding and lm_head are frozen copies of the target's (requires_grad False).
Runs on torch 1.13 (CPU, explicit masked softmax) and torch 2.x
(scaled_dot_product_attention with a boolean mask; bf16 under the caller's
autocast: logits and losses in fp32).
"""
import copy
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import qwen3
from safetensors_io import read_safetensors, write_safetensors

USE_SDPA = hasattr(F, "scaled_dot_product_attention")
LOSS_DECAY_GAMMA = 4.0                       # DeepSpec's code: w_k = exp(-k / 4), k 0-based
DSPARK_ALPHAS = {"ce": 0.1, "l1": 0.9, "bce": 1.0}
DFLASH_ALPHAS = {"ce": 1.0, "l1": 0.0, "bce": 0.0}
FROZEN = ("embed_tokens.weight", "lm_head.weight")


# ---------------------------------------------------------------- configs

def dspark_config(target_cfg, *, layers=2, block_size=7, mask_token_id=2, target_layer_ids=(1, 3, 4),
                  markov_rank=64, confidence=True, num_anchors=32):
    """DeepSpec's build_draft_config: the target's config with the drafter keys (markov_rank 0 and no
    confidence head is DFlash)."""
    ids = list(target_layer_ids)
    n_target = target_cfg["num_hidden_layers"]
    assert ids == sorted(set(ids)) and 0 <= ids[0] and ids[-1] < n_target - 1, "final target layer is forbidden"
    assert 0 <= mask_token_id < target_cfg["vocab_size"]
    cfg = copy.deepcopy(target_cfg)
    cfg.update({
        "architectures": ["Qwen3DSparkModel"], "num_hidden_layers": layers, "num_target_layers": n_target,
        "block_size": block_size, "mask_token_id": mask_token_id, "target_layer_ids": ids,
        "num_anchors": num_anchors, "enable_confidence_head": bool(confidence), "markov_rank": markov_rank,
        "tie_word_embeddings": False, "layer_types": ["full_attention"] * layers,
    })
    if markov_rank > 0:
        cfg["markov_head_type"] = "vanilla"
    if confidence:
        cfg["confidence_head_with_markov"] = markov_rank > 0
    return cfg


def eagle3_config(target_cfg, *, target_layer_ids=(1, 3, 4), ttt_length=7, step_loss_decay=0.8):
    ids = list(target_layer_ids)
    n_target = target_cfg["num_hidden_layers"]
    assert ids == sorted(set(ids)) and 0 <= ids[0] and ids[-1] < n_target - 1, "final target layer is forbidden"
    cfg = copy.deepcopy(target_cfg)
    cfg.update({
        "architectures": ["Qwen3Eagle3Model"], "num_hidden_layers": 1, "draft_num_hidden_layers": 1,
        "num_target_layers": n_target, "target_layer_ids": ids, "ttt_length": ttt_length,
        "step_loss_decay": step_loss_decay, "tie_word_embeddings": False, "layer_types": ["full_attention"],
    })
    return cfg


# ---------------------------------------------------------------- pieces

def rope_at(positions, head_dim, theta):
    """cos, sin (..., D) fp32 of integer positions of any shape, as the fixtures' rope_cos_sin."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    ang = positions.float()[..., None] * inv_freq.to(positions.device)
    emb = torch.cat([ang, ang], -1)
    return emb.cos(), emb.sin()


def rope(x, cos, sin):
    """x (B, T, heads, D); cos/sin (B|1, T, D)."""
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


def heads(y, n):
    return y.view(*y.shape[:-1], n, y.shape[-1] // n)


def masked_attention(q, k, v, allowed):
    """q (B, T, H, D), k/v (B, S, Hkv, D), allowed (B|1, T, S) bool -> (B, T, H * D). GQA: query head h
    reads kv head h // (H / Hkv); every query must be allowed at least one key."""
    b, t, n_h, d = q.shape
    rep = n_h // k.shape[2]
    q = q.transpose(1, 2)
    k, v = k.repeat_interleave(rep, 2).transpose(1, 2), v.repeat_interleave(rep, 2).transpose(1, 2)
    q, k = q.to(v.dtype), k.to(v.dtype)       # RoPE's fp32 cos/sin promote q, k under autocast
    if USE_SDPA:
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed.unsqueeze(1))
    else:
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
        p = torch.softmax(s.float().masked_fill(~allowed.unsqueeze(1), float("-inf")), -1)
        o = p.to(v.dtype) @ v
    return o.transpose(1, 2).reshape(b, t, n_h * d)


def init_weights(module, std, frozen_from):
    """HF's init for the trained part (matrices N(0, std^2), norms 1, biases 0); embed_tokens and lm_head
    copied from the target (a Qwen3 module) and frozen."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 2:
                p.normal_(0.0, std)
        if frozen_from is not None:
            emb = frozen_from.model.embed_tokens.weight
            module.embed_tokens.weight.copy_(emb)
            module.lm_head.weight.copy_(emb if frozen_from.tied else frozen_from.lm_head.weight)
    module.embed_tokens.weight.requires_grad_(False)
    module.lm_head.weight.requires_grad_(False)


def trainable(module):
    return [p for p in module.parameters() if p.requires_grad]


# ---------------------------------------------------------------- DSpark / DFlash

class DSpark(nn.Module):
    """Qwen3DSparkModel. forward(tokens, feats, anchors) -> teacher-forced logits (B, K, bs, V) fp32 and
    confidence logits (B, K, bs) (None without the head); feats are the target's raw layer outputs at
    target_layer_ids concatenated, (B, S, m d), for positions 0..S-1 of tokens (B, S)."""

    def __init__(self, cfg, target=None):
        super().__init__()
        self.cfg = dict(cfg)
        d, v, r, eps = cfg["hidden_size"], cfg["vocab_size"], cfg["markov_rank"], cfg["rms_norm_eps"]
        m = len(cfg["target_layer_ids"])
        self.embed_tokens = nn.Embedding(v, d)
        self.lm_head = qwen3.linear(d, v)
        self.fc = qwen3.linear(m * d, d)
        self.hidden_norm = qwen3.RMSNorm(d, eps)
        self.layers = nn.ModuleList(qwen3.Layer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = qwen3.RMSNorm(d, eps)
        if r > 0:
            self.markov_head = nn.Module()
            self.markov_head.markov_w1 = nn.Embedding(v, r)
            self.markov_head.markov_w2 = qwen3.linear(r, v)
        if cfg["enable_confidence_head"]:
            self.confidence_head = nn.Module()
            self.confidence_head.proj = nn.Linear(d + (r if cfg.get("confidence_head_with_markov") else 0), 1)
        init_weights(self, cfg.get("initializer_range", 0.02), target)

    def backbone(self, feats, anchors, anchor_tokens):
        """anchors, anchor_tokens (B, K) -> final-normed h (B, K, bs, d) and base logits U (B, K, bs, V) fp32."""
        cfg = self.cfg
        bs, hd, n_h, n_kv = cfg["block_size"], cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        theta = qwen3.rope_theta(cfg)
        b, s, _ = feats.shape
        k_blocks, dev = anchors.shape[1], feats.device
        hctx = self.hidden_norm(self.fc(feats))
        ids = torch.full((b, k_blocks, bs), cfg["mask_token_id"], dtype=torch.long, device=dev)
        ids[..., 0] = anchor_tokens
        x = self.embed_tokens(ids).reshape(b, k_blocks * bs, -1)
        cos_b, sin_b = rope_at((anchors[..., None] + torch.arange(bs, device=dev)).reshape(b, -1), hd, theta)
        cos_c, sin_c = rope_at(torch.arange(s, device=dev)[None], hd, theta)
        allowed_ctx = torch.arange(s, device=dev) < anchors.repeat_interleave(bs, 1)[..., None]
        blk = torch.arange(k_blocks, device=dev).repeat_interleave(bs)
        allowed_blk = (blk[:, None] == blk[None, :]).expand(b, -1, -1)
        allowed = torch.cat([allowed_ctx, allowed_blk], -1)
        for layer in self.layers:
            a = layer.self_attn
            xn = layer.input_layernorm(x)
            q = rope(a.q_norm(heads(a.q_proj(xn), n_h)), cos_b, sin_b)
            kb = rope(a.k_norm(heads(a.k_proj(xn), n_kv)), cos_b, sin_b)
            # context K/V straight from H_ctx: no input_layernorm on the injected features
            kc = rope(a.k_norm(heads(a.k_proj(hctx), n_kv)), cos_c, sin_c)
            vb, vc = heads(a.v_proj(xn), n_kv), heads(a.v_proj(hctx), n_kv)
            x = x + a.o_proj(masked_attention(q, torch.cat([kc, kb], 1), torch.cat([vc, vb], 1), allowed))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        h = self.norm(x)
        u = self.lm_head(h).float()
        return h.view(b, k_blocks, bs, -1), u.view(b, k_blocks, bs, -1)

    def markov(self, h, u, prev):
        """U + W2 W1[prev] and the confidence logit proj([h ; W1[prev]]) + b; any leading shape."""
        e, logits, conf = None, u, None
        if self.cfg["markov_rank"] > 0:
            e = self.markov_head.markov_w1(prev)
            logits = u + self.markov_head.markov_w2(e).float()
        if self.cfg["enable_confidence_head"]:
            inp = torch.cat([h, e.to(h.dtype)], -1) if self.cfg.get("confidence_head_with_markov") else h
            conf = self.confidence_head.proj(inp)[..., 0].float()
        return logits, conf

    def forward(self, tokens, feats, anchors):
        """Markov teacher forcing: slot k's prev is tokens[a + k] (the anchor for k = 0); positions past
        the sequence are clamped (their labels must be masked by the caller)."""
        idx = (anchors[..., None] + torch.arange(self.cfg["block_size"], device=anchors.device)).clamp(
            max=tokens.shape[1] - 1)
        prev = tokens.gather(1, idx.flatten(1)).view_as(idx)
        h, u = self.backbone(feats, anchors, prev[..., 0])
        return self.markov(h, u, prev)


# ---------------------------------------------------------------- EAGLE-3

class Eagle3Layer(qwen3.Layer):
    """A Qwen3 decoder layer whose q/k/v read [input_layernorm(embed) ; hidden_norm(h)] (2d wide)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        d, hd = cfg["hidden_size"], cfg["head_dim"]
        a = self.self_attn
        a.q_proj = qwen3.linear(2 * d, cfg["num_attention_heads"] * hd)
        a.k_proj = qwen3.linear(2 * d, cfg["num_key_value_heads"] * hd)
        a.v_proj = qwen3.linear(2 * d, cfg["num_key_value_heads"] * hd)
        self.hidden_norm = qwen3.RMSNorm(d, cfg["rms_norm_eps"])


class Eagle3(nn.Module):
    """Qwen3Eagle3Model. ttt_forward(tokens, feats) -> [steps x logits (B, S - 2, V)]: step j of root i
    takes token x_{i+1+j} at RoPE position i + j and predicts x_{i+2+j}; step 0 uses fc(feats[i])."""

    def __init__(self, cfg, target=None):
        super().__init__()
        assert cfg["num_hidden_layers"] == 1, "DeepSpec's EAGLE-3 (and the engine) has one layer"
        self.cfg = dict(cfg)
        d, v, m = cfg["hidden_size"], cfg["vocab_size"], len(cfg["target_layer_ids"])
        self.embed_tokens = nn.Embedding(v, d)
        self.lm_head = qwen3.linear(d, v)
        self.fc = qwen3.linear(m * d, d)
        self.layers = nn.ModuleList([Eagle3Layer(cfg)])
        self.norm = qwen3.RMSNorm(d, cfg["rms_norm_eps"])
        init_weights(self, cfg.get("initializer_range", 0.02), target)

    def qkv(self, tokens, h, pos):
        cfg, layer = self.cfg, self.layers[0]
        a = layer.self_attn
        x = torch.cat([layer.input_layernorm(self.embed_tokens(tokens)), layer.hidden_norm(h)], -1)
        cos, sin = rope_at(pos, cfg["head_dim"], qwen3.rope_theta(cfg))
        q = rope(a.q_norm(heads(a.q_proj(x), cfg["num_attention_heads"])), cos[None], sin[None])
        k = rope(a.k_norm(heads(a.k_proj(x), cfg["num_key_value_heads"])), cos[None], sin[None])
        return q, k, heads(a.v_proj(x), cfg["num_key_value_heads"])

    def layer_out(self, h, att):
        layer = self.layers[0]
        x = h + layer.self_attn.o_proj(att)
        return x + layer.mlp(layer.post_attention_layernorm(x))

    def ttt_forward(self, tokens, feats, steps=None):
        steps = steps or self.cfg["ttt_length"]
        b, s = tokens.shape
        n, dev = s - 2, tokens.device
        roots = torch.arange(n, device=dev)
        causal = roots[None, :] <= roots[:, None]
        eye = torch.eye(n, dtype=torch.bool, device=dev)
        h = self.fc(feats[:, :n]).float()          # the residual stream stays fp32 under autocast
        keys, vals, outs = [], [], []
        for j in range(steps):
            q, k, v = self.qkv(tokens[:, (roots + 1 + j).clamp(max=s - 1)], h, roots + j)
            keys.append(k)
            vals.append(v)
            # step-0 keys of roots <= i (causal), then steps 1..j of root i's own chain
            allowed = torch.cat([causal] + [eye] * j, 1).unsqueeze(0)
            h = self.layer_out(h, masked_attention(q, torch.cat(keys, 1), torch.cat(vals, 1), allowed))
            outs.append(self.lm_head(self.norm(h)).float())
        return outs


# ---------------------------------------------------------------- losses

def block_targets(tokens, loss_mask, anchors, anchor_ok, bs):
    """Labels tokens[a + k + 1] (B, K, bs), the target positions a + k (for p_t) and the valid slots: the
    label inside the sequence and a response token (loss_mask), contiguous from slot 0, of an anchor in use."""
    s = tokens.shape[1]
    lab = anchors[..., None] + 1 + torch.arange(bs, device=anchors.device)
    lab_c = lab.clamp(max=s - 1)
    labels = tokens.gather(1, lab_c.flatten(1)).view_as(lab)
    ok = (lab < s) & loss_mask.gather(1, lab_c.flatten(1)).view_as(lab) & anchor_ok[..., None]
    return labels, lab_c - 1, ok.long().cumprod(-1).bool()


def ttt_targets(outs, p_target, loss_mask):
    """Per TTT step j the rows that have a label (roots i < S - 2 - j): (logits, the target's distribution
    at position i + 1 + j, valid = anchor x_{i+1} and label x_{i+2+j} both response tokens)."""
    n = p_target.shape[1] - 2
    terms = []
    for j, lg in enumerate(outs):
        nv = n - j
        valid = loss_mask[:, 1:1 + nv] & loss_mask[:, 2 + j:2 + j + nv]
        terms.append((lg[:, :nv], p_target[:, 1 + j:1 + j + nv], valid))
    return [list(t) for t in zip(*terms)]


def slot_weights(n, gamma=LOSS_DECAY_GAMMA, device=None):
    return torch.exp(-torch.arange(n, dtype=torch.float32, device=device) / gamma)


def dspark_losses(logits, conf, labels, p_target, valid, gamma=LOSS_DECAY_GAMMA):
    """DeepSpec's loss.py terms over blocks: logits (..., bs, V) fp32 (Markov-corrected, teacher-forced),
    conf (..., bs) or None, labels (..., bs), p_target (..., bs, V) the target's distribution at a + k,
    valid (..., bs) bool. Each is a w-weighted mean over valid slots, w_k = exp(-k / gamma):
      ce  cross-entropy to the label; l1  sum_v |p_d - p_t| (= 2 TV);
      bce BCE-with-logits of conf against c* = 1 - TV = 1 - l1 / 2 (clamped, no gradient)."""
    w = slot_weights(logits.shape[-2], gamma, logits.device) * valid.float()
    den = w.sum().clamp_min(1e-12)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none").view_as(w)
    out = {"ce": (ce * w).sum() / den}
    if p_target is not None:
        l1 = (torch.softmax(logits, -1) - p_target).abs().sum(-1)
        out["l1"] = (l1 * w).sum() / den
        if conf is not None:
            target_c = (1.0 - 0.5 * l1).clamp(0.0, 1.0).detach()
            bce = F.binary_cross_entropy_with_logits(conf, target_c, reduction="none")
            out["bce"] = (bce * w).sum() / den
    return out


def eagle3_loss(step_logits, step_targets, step_valid, decay=0.8):
    """Soft cross-entropy of each TTT step against the target's distribution, the mean over valid roots,
    weighted decay^j and normalised by the weights' sum: step_logits/step_targets [steps x (B, n, V)],
    step_valid [steps x (B, n)] bool. Returns (loss, [per-step CE])."""
    total, wsum, per_step = 0.0, 0.0, []
    for j, (lg, pt, ok) in enumerate(zip(step_logits, step_targets, step_valid)):
        ce = -(pt * torch.log_softmax(lg, -1)).sum(-1)
        okf = ok.float()
        ce_j = (ce * okf).sum() / okf.sum().clamp_min(1.0)
        per_step.append(ce_j)
        total = total + decay ** j * ce_j
        wsum += decay ** j
    return total / wsum, per_step


def combine(losses, alphas):
    return sum(alphas[k] * losses[k] for k in alphas if alphas[k] and k in losses)


# ---------------------------------------------------------------- folders

FROZEN = ("embed_tokens.weight", "lm_head.weight")


def save_drafter(model, folder, dtype="BF16", frozen_copies=True):
    """config.json (keys sorted, as the fixtures) and model.safetensors in dtype ("BF16" or "F32").
    frozen_copies: DeepSpec's checkpoints carry copies of the target's embedding and LM head; the engine
    reads the target's own, so the demo drafters leave them out (2 V d of the file: 8 MB of bf16 at V 8192,
    d 256, against the 32 MB all committed weights share)."""
    os.makedirs(folder, exist_ok=True)
    cfg = dict(model.cfg)
    cfg["dtype"] = {"BF16": "bfloat16", "F32": "float32"}[dtype]
    if "torch_dtype" in cfg:
        cfg["torch_dtype"] = cfg["dtype"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    state = {k: v for k, v in model.state_dict().items() if frozen_copies or k not in FROZEN}
    write_safetensors(os.path.join(folder, "model.safetensors"), state, dtype)


def load_drafter(folder, device="cpu", target=None):
    """A DSpark/DFlash or EAGLE-3 folder as an fp32 module (by config.json's architectures). A folder
    saved without the frozen copies takes them from `target` (a qwen3.Qwen3)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    cls = {"Qwen3DSparkModel": DSpark, "Qwen3Eagle3Model": Eagle3}[cfg["architectures"][0]]
    model = cls(cfg)
    weights = {k: v.float() for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
    if any(k not in weights for k in FROZEN):
        if target is None:
            raise ValueError(f"{folder}: no embed_tokens/lm_head copies; pass the target")
        t = target.state_dict()
        weights["embed_tokens.weight"] = t["model.embed_tokens.weight"].float()
        weights["lm_head.weight"] = t.get("lm_head.weight", t["model.embed_tokens.weight"]).float()
    model.load_state_dict(weights, strict=True)
    return model.to(device)
