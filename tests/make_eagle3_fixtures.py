#!/usr/bin/env python3
"""make_eagle3_fixtures.py: reference dumps for the C++ EAGLE-3 drafter (engine/drafter_eagle3.cpp).

Our own plain-PyTorch EAGLE-3 in DeepSpec's Qwen3Eagle3Model layout (digest
/work/shared/reference/dspark.md §1.4, §5), for the target
tests/fixtures/tiny-qwen3-4l that make_dspark_fixtures.py writes (its pieces
are imported from there). Writes tests/fixtures/tiny-eagle3/: config.json,
model.safetensors (DeepSpec names, no prefix) and eagle3_reference.json.

The model: one Qwen3 decoder layer whose attention input is 2d wide,
  x = [input_layernorm(embed(token)) ; hidden_norm(h)],  residual = h,
  q, k, v = proj(x) (q_norm / k_norm, RoPE), o_proj back to d, then the MLP;
  logits = lm_head(norm(out)), out the layer's output before `norm`.
Pairing: the target features f_i = [h_l1; h_l2; h_l3](i) go with token i + 1
at RoPE position i, through fc: the step-0 entry of position i is
(x_{i+1}, fc f_i) and its output predicts x_{i+2}. Drafting from an anchor
x_a: the step-0 entry of position a - 1 (token x_a) gives draft 1; each
later draft j + 1 feeds (draft j, the previous step's output) at position
a - 1 + j, attending to the step-0 entries of positions 0..a-1 and to the
chain's own earlier steps (causal). Only step-0 entries stay in the cache.

Training (test-time training, TTT): every position i roots a chain; chain
step j (1..ttt-1) at position i + j takes the ground-truth token x_{i+1+j}
and the output of step j - 1, and attends to step-0 keys 0..i and to steps
1..j of its own chain. Loss: soft cross-entropy against the target's
distribution at position i + 1 + j, weighted step_loss_decay^j.

eagle3_reference.json (version 1, floats with 9 significant digits): as
dspark_reference.json without base logits or confidences:
    {"version", "torch", "drafter": "tiny-eagle3", "target": "tiny-qwen3-4l",
     "block_size": ttt_length, "target_layer_ids", "tokens": [24],
     "target_layer_hidden": {"0": [[d] x 24], ...},
     "anchors": [{"anchor_pos", "anchor", "forced": tokens[a+1 .. a+3],
                  "forced_logits": [[V] x 4], "greedy_block": [4], "greedy_margin",
                  "sampled": {"temperature", "seed", "request", "block": [4], "margin", "u_is_one"}}]}

Run (about 2 minutes on one CPU core; after make_dspark_fixtures.py):
    /usr/bin/python3 tests/make_eagle3_fixtures.py
Deterministic as make_dspark_fixtures.py is (seeds, one thread).
"""
import copy
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_dspark_fixtures as mdf  # noqa: E402
from make_dspark_fixtures import (FIXTURES, apply_rope, attend, layer_params, load_config, mlp,  # noqa: E402
                                  read_safetensors, r9, rms_norm, rope_cos_sin, rope_theta, split_heads,
                                  target_forward, target_features, top2_gap, write_json)

TTT = mdf.BLOCK                 # drafts per call, as the DSpark fixtures
TARGET_LAYER_IDS = mdf.TARGET_LAYER_IDS
STEP_LOSS_DECAY = 0.8
TRAIN_STEPS, BATCH_SEQS = 600, 8
LR, WARMUP_FRAC = 1e-2, 0.04


def eagle3_config(target_cfg):
    cfg = copy.deepcopy(target_cfg)
    cfg.update({
        "architectures": ["Qwen3Eagle3Model"],
        "num_hidden_layers": 1,
        "draft_num_hidden_layers": 1,
        "num_target_layers": target_cfg["num_hidden_layers"],
        "target_layer_ids": list(TARGET_LAYER_IDS),
        "ttt_length": TTT,
        "step_loss_decay": STEP_LOSS_DECAY,
        "tie_word_embeddings": False,
        "layer_types": ["full_attention"],
    })
    return cfg


def init_eagle3(cfg, W_target, seed):
    g = torch.Generator().manual_seed(seed)
    d, f, hd = cfg["hidden_size"], cfg["intermediate_size"], cfg["head_dim"]
    qd, kd = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    m = len(cfg["target_layer_ids"])

    def mat(*shape):
        return torch.randn(*shape, generator=g) * mdf.DRAFT_INIT_STD

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=g)

    p = "layers.0."
    return {
        "embed_tokens.weight": W_target["model.embed_tokens.weight"].clone(),
        "lm_head.weight": W_target["lm_head.weight"].clone(),
        "fc.weight": mat(d, m * d),
        "norm.weight": norm(d),
        p + "hidden_norm.weight": norm(d),
        p + "input_layernorm.weight": norm(d),
        p + "self_attn.q_proj.weight": mat(qd, 2 * d),
        p + "self_attn.k_proj.weight": mat(kd, 2 * d),
        p + "self_attn.v_proj.weight": mat(kd, 2 * d),
        p + "self_attn.o_proj.weight": mat(d, qd),
        p + "self_attn.q_norm.weight": norm(hd),
        p + "self_attn.k_norm.weight": norm(hd),
        p + "post_attention_layernorm.weight": norm(d),
        p + "mlp.gate_proj.weight": mat(f, d),
        p + "mlp.up_proj.weight": mat(f, d),
        p + "mlp.down_proj.weight": mat(d, f),
    }


def qkv(P, cfg, tokens, h, pos):
    """The layer's attention inputs for (token, h) pairs at RoPE positions `pos`: tokens (B, T), h (B, T, d)."""
    eps, n_h, n_kv = cfg["rms_norm_eps"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    p = layer_params(P, "layers.0.")
    x = torch.cat([rms_norm(P["embed_tokens.weight"][tokens], p["input_layernorm.weight"], eps),
                   rms_norm(h, p["hidden_norm.weight"], eps)], -1)
    cos, sin = rope_cos_sin(pos, cfg["head_dim"], rope_theta(cfg))
    q = apply_rope(rms_norm(split_heads(x, p["self_attn.q_proj.weight"], n_h), p["self_attn.q_norm.weight"], eps),
                   cos, sin)
    k = apply_rope(rms_norm(split_heads(x, p["self_attn.k_proj.weight"], n_kv), p["self_attn.k_norm.weight"], eps),
                   cos, sin)
    return q, k, split_heads(x, p["self_attn.v_proj.weight"], n_kv)


def layer_out(P, cfg, h, att):
    """The residual h plus attention, then the MLP: the layer's output (before `norm`)."""
    p = layer_params(P, "layers.0.")
    x = h + F.linear(att, p["self_attn.o_proj.weight"])
    return x + mlp(rms_norm(x, p["post_attention_layernorm.weight"], cfg["rms_norm_eps"]), p)


def logits_of(P, cfg, out):
    return F.linear(rms_norm(out, P["norm.weight"], cfg["rms_norm_eps"]), P["lm_head.weight"])


def ttt_forward(P, cfg, seqs, feats, steps):
    """All chains at once. seqs (B, S) tokens, feats (B, S, m d). Chain root i = 0..S-3;
    returns logits [steps x (B, S - 2, V)]: step j's logits of root i predict token i + 2 + j
    (rows whose label falls past the sequence are garbage and must be masked by the caller)."""
    b, s = seqs.shape
    n = s - 2                                         # roots whose step-0 label x_{i+2} exists
    roots = torch.arange(n)
    h = F.linear(feats[:, :n], P["fc.weight"])
    keys, vals, outs = [], [], []
    for j in range(steps):
        tok = seqs[:, (roots + 1 + j).clamp(max=s - 1)]
        q, k, v = qkv(P, cfg, tok, h, roots + j)
        keys.append(k)
        vals.append(v)
        # step-0 keys of positions <= root (causal), then steps 1..j of the same chain
        allowed = [roots[None, :] <= roots[:, None]] + [torch.eye(n, dtype=torch.bool)] * j
        att = attend(q, torch.cat(keys, 1), torch.cat(vals, 1), torch.cat(allowed, 1).unsqueeze(0))
        h = layer_out(P, cfg, h, att)
        outs.append(logits_of(P, cfg, h))
    return outs


def chain(P, cfg, feats, tokens, a, forced=None, temperature=0.0, seed=0, request=0):
    """Inference from the anchor tokens[a]: feats (1, a, m d) of positions 0..a-1. Teacher-forced
    when `forced` (TTT - 1 tokens) is given; else own draws (argmax, or Gumbel-max on RNG_DRAFT)."""
    v_size = cfg["vocab_size"]
    pos = torch.arange(a)
    nxt = torch.tensor([tokens[1:a + 1]])            # x_{i+1} for i = 0..a-1; x_a is the anchor
    h = F.linear(feats, P["fc.weight"])
    q, k, v = qkv(P, cfg, nxt, h, pos)
    out = layer_out(P, cfg, h, attend(q, k, v, (pos[None, :] <= pos[:, None]).unsqueeze(0)))
    h = out[:, -1:]
    keys, vals = [k], [v]
    row = mdf.rng_row(seed, mdf.RNG_DRAFT, request, a) if temperature > 0 else None
    drafted, logits, margin, ones = [], [], float("inf"), 0
    for j in range(TTT):
        if j > 0:
            prev = forced[j - 1] if forced is not None else drafted[-1]
            q, k, v = qkv(P, cfg, torch.tensor([[prev]]), h, torch.tensor([a - 1 + j]))
            keys.append(k)
            vals.append(v)
            att = attend(q, torch.cat(keys, 1), torch.cat(vals, 1), torch.ones(1, 1, a + j, dtype=torch.bool))
            h = layer_out(P, cfg, h, att)
        lg = logits_of(P, cfg, h)[0, 0]
        logits.append(lg)
        if temperature > 0:
            u = mdf.rng_uniforms(row, j * v_size, v_size)
            ones += int((u == 1.0).sum())
            score = lg / temperature - torch.log(-torch.log(u))
        else:
            score = lg
        drafted.append(int(score.argmax()))
        margin = min(margin, top2_gap(score))
    return {"tokens": drafted, "logits": torch.stack(logits), "margin": margin, "u_is_one": ones}


def losses(P, cfg, seqs, feats, p_target):
    outs = ttt_forward(P, cfg, seqs, feats, TTT)
    s = seqs.shape[1]
    total, wsum, acc = 0.0, 0.0, []
    for j, lg in enumerate(outs):
        n_valid = s - 2 - j                            # roots whose label i + 2 + j < S
        pt = p_target[:, 1 + j:1 + j + n_valid]        # the target's distribution of token i + 2 + j
        ce = -(pt * torch.log_softmax(lg[:, :n_valid], -1)).sum(-1).mean()
        total = total + STEP_LOSS_DECAY ** j * ce
        wsum += STEP_LOSS_DECAY ** j
        acc.append((lg[:, :n_valid].argmax(-1) == seqs[:, 2 + j:2 + j + n_valid]).float())
    return total / wsum, acc


def acceptance(P, cfg, data):
    """Greedy conditional acceptance over held-out chains rooted in the generated part."""
    seqs, feats, pt = data
    with torch.no_grad():
        _, acc = losses(P, cfg, seqs, feats, pt)
    lo = mdf.N_PROMPT - 1
    n = min(a.shape[1] for a in acc) - lo
    m = torch.stack([a[:, lo:lo + n] for a in acc], -1).reshape(-1, TTT)
    prefix = m.cumprod(-1)
    reached = torch.cat([torch.ones(prefix.shape[0], 1), prefix[:, :-1]], -1)
    return (prefix.sum(0) / reached.sum(0)).tolist(), 1.0 + prefix.sum(-1).mean().item()


def train(P, cfg, data, seed):
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
        loss, _ = losses(P, cfg, seqs[rows], feats[rows], pt[rows])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 200 == 0 or step == TRAIN_STEPS - 1:
            print(f"  tiny-eagle3 step {step:4d} loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
    for n in trainable:
        P[n] = P[n].detach()
    return time.time() - t0


def reference(P, cfg, W, tcfg, seq):
    _, hidden, _ = target_forward(W, tcfg, seq)
    feats = target_features(hidden, cfg["target_layer_ids"])
    tokens = seq[0].tolist()
    ref = {"version": 1, "torch": torch.__version__, "drafter": "tiny-eagle3", "target": "tiny-qwen3-4l",
           "block_size": TTT, "target_layer_ids": cfg["target_layer_ids"], "tokens": tokens,
           "target_layer_hidden": {str(l): r9(hidden[l][0]) for l in cfg["target_layer_ids"]}, "anchors": []}
    batched = ttt_forward(P, cfg, seq, feats, TTT)
    for a in mdf.FIXTURE_ANCHORS:
        forced = tokens[a + 1:a + TTT]
        tf = chain(P, cfg, feats[:, :a], tokens, a, forced=forced)
        gr = chain(P, cfg, feats[:, :a], tokens, a)
        sa = chain(P, cfg, feats[:, :a], tokens, a, temperature=mdf.SAMPLE_T, seed=mdf.SAMPLE_SEED,
                   request=mdf.SAMPLE_REQUEST)
        # the training path (all chains at once, masked) must agree with inference at root a - 1
        diff = max((batched[j][0, a - 1] - tf["logits"][j]).abs().max().item() for j in range(TTT))
        assert diff < 1e-4, f"TTT and inference paths differ by {diff}"
        ref["anchors"].append({
            "anchor_pos": a, "anchor": tokens[a], "forced": forced, "forced_logits": r9(tf["logits"]),
            "greedy_block": gr["tokens"], "greedy_margin": r9(gr["margin"]),
            "sampled": {"temperature": mdf.SAMPLE_T, "seed": mdf.SAMPLE_SEED, "request": mdf.SAMPLE_REQUEST,
                        "block": sa["tokens"], "margin": r9(sa["margin"]), "u_is_one": sa["u_is_one"]}})
        print(f"  anchor {a}: truth {tokens[a + 1:a + 1 + TTT]} greedy {gr['tokens']} (margin {gr['margin']:.2e}) "
              f"sampled {sa['tokens']} (margin {sa['margin']:.2e}); TTT path max|diff| {diff:.1e}")
    return ref


def main():
    t_start = time.time()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    tdir = os.path.join(FIXTURES, "tiny-qwen3-4l")
    tcfg = load_config(tdir)
    W = read_safetensors(os.path.join(tdir, "model.safetensors"))
    with torch.no_grad():
        train_seqs = mdf.make_sequences(W, tcfg, mdf.TRAIN_SEQS, seed=11)
        held_seqs = mdf.make_sequences(W, tcfg, mdf.HELDOUT_SEQS, seed=12)
        train_data = (train_seqs,) + mdf.target_data(W, tcfg, train_seqs)
        held = (held_seqs,) + mdf.target_data(W, tcfg, held_seqs)
        seq = mdf.fixture_sequence(W, tcfg, seed=13)
    cfg = eagle3_config(tcfg)
    P = init_eagle3(cfg, W, seed=23)
    before = acceptance(P, cfg, held)
    secs = train(P, cfg, train_data, seed=123)
    after = acceptance(P, cfg, held)
    folder = os.path.join(FIXTURES, "tiny-eagle3")
    mdf.save_model(folder, cfg, P)
    P = read_safetensors(os.path.join(folder, "model.safetensors"))
    with torch.no_grad():
        ref = reference(P, cfg, W, tcfg, seq)
    write_json(os.path.join(folder, "eagle3_reference.json"), ref, compact=True)
    fmt = lambda xs: " ".join(f"{x:.3f}" for x in xs)
    print(f"tiny-eagle3: trained {secs:.0f} s; held-out greedy conditional acceptance")
    print(f"    untrained {fmt(before[0])}  tau {before[1]:.3f}")
    print(f"    trained   {fmt(after[0])}  tau {after[1]:.3f}")
    for fn in sorted(os.listdir(folder)):
        print(f"  tiny-eagle3/{fn}: {os.path.getsize(os.path.join(folder, fn))} bytes")
    print(f"done in {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
