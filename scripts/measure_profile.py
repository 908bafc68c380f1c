#!/usr/bin/env python3
"""measure_profile.py: measure a cost profile (draft, verify, prefill) on a GPU
and write it as specplan JSON Lines, for `specplan traces import`.

The forward is a PyTorch bf16 stand-in for a Qwen3 decoder with random
weights (timing does not depend on weight values): per layer RMSNorm, fused
QKV projection, per-head q/k RMSNorm, RoPE, GQA attention over a KV cache
(causal within the new tokens), output projection, SwiGLU MLP; a final norm
and the LM head. Each shape is captured in a CUDA graph and replayed, so the
figures are kernel time, not Python overhead. It stands in until engine/
records profiles with its own kernels.

Phases, as the simulator's measured cost model reads them (cost.h):
  verify   R sequences x q new tokens each at context c: B = R*q, logits for every token
  draft    a DSpark-style drafter: DRAFT_LAYERS target-size layers over R*GAMMA block
           tokens at context c, the LM head over them, then GAMMA sequential Markov
           steps ([R, 256] x [256, V] + argmax): B = R*GAMMA
  prefill  one sequence, a chunk of B tokens after c cached ones, logits for the last token

Run on the GPU machine (scripts/gpu-profile does, with the import):
  python3 scripts/measure_profile.py --out profile.jsonl
"""
import argparse
import json
import datetime
import math
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

# Qwen3-8B (Qwen/Qwen3-8B config.json)
SHAPE = dict(name="qwen3-8b", n_layers=36, hidden=4096, n_heads=32, n_kv_heads=8, head_dim=128,
             ffn=12288, vocab=151936, bytes_per_weight=2.0, bytes_per_kv=2.0)
GAMMA = 7           # DSpark block size of the bundled trace
DRAFT_LAYERS = 5    # DSpark drafters for Qwen3 use 5 layers (dspark.md 1.1)
MARKOV_RANK = 256
REPS = 30           # timed replays per shape


def count_params(s):
    d, q, kv = s["hidden"], s["n_heads"] * s["head_dim"], s["n_kv_heads"] * s["head_dim"]
    attn = d * q + 2 * d * kv + q * d + 2 * s["head_dim"]
    layer = attn + 3 * d * s["ffn"] + 2 * d
    return 2 * s["vocab"] * d + s["n_layers"] * layer + d  # untied embeddings, as Qwen3-8B


class Stack:
    """Random bf16 weights of n_layers Qwen3 layers plus the LM head."""

    def __init__(self, s, n_layers, dev):
        d, H, KVH, D = s["hidden"], s["n_heads"], s["n_kv_heads"], s["head_dim"]
        g = lambda *shape: (torch.randn(*shape, device=dev, dtype=torch.bfloat16) * 0.02)
        self.s, self.n = s, n_layers
        self.wqkv = [g((H + 2 * KVH) * D, d) for _ in range(n_layers)]
        self.wo = [g(d, H * D) for _ in range(n_layers)]
        self.wgu = [g(2 * s["ffn"], d) for _ in range(n_layers)]
        self.wd = [g(d, s["ffn"]) for _ in range(n_layers)]
        self.norm = torch.ones(d, device=dev, dtype=torch.bfloat16)
        self.qk_norm = torch.ones(D, device=dev, dtype=torch.bfloat16)
        self.lm_head = g(s["vocab"], d)


def rms(x, w):
    return F.rms_norm(x, (x.shape[-1],), w, 1e-6)


def rope(x, pos, D):
    # x [R, heads, q, D]; pos [q] absolute positions
    half = D // 2
    inv = 1.0 / (1e6 ** (torch.arange(half, device=x.device, dtype=torch.float32) / half))
    ang = pos[:, None].float() * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def layers_forward(st, x, kcache, vcache, c, q, causal):
    """x [R, q, d]; caches [n][R, KVH, c+q, D] with the first c positions filled.
    causal: the new tokens see each other causally (verify, prefill); DSpark's
    draft block attends bidirectionally within the block (dspark.md 1.1)."""
    s = st.s
    R, H, KVH, D = x.shape[0], s["n_heads"], s["n_kv_heads"], s["head_dim"]
    pos = torch.arange(c, c + q, device=x.device)
    mask = None
    if q > 1 and causal:
        # causal within the new tokens, full over the cached prefix; the bias
        # object (not a boolean mask) keeps SDPA on its fused kernels
        mask = causal_lower_right(q, c + q)
    for i in range(st.n):
        h = rms(x, st.norm)
        qkv = h @ st.wqkv[i].T
        qh = qkv[..., : H * D].view(R, q, H, D).transpose(1, 2)
        kh = qkv[..., H * D:(H + KVH) * D].view(R, q, KVH, D).transpose(1, 2)
        vh = qkv[..., (H + KVH) * D:].view(R, q, KVH, D).transpose(1, 2)
        qh = rope(rms(qh, st.qk_norm), pos, D)
        kh = rope(rms(kh, st.qk_norm), pos, D)
        kcache[i][:, :, c:c + q] = kh
        vcache[i][:, :, c:c + q] = vh
        a = F.scaled_dot_product_attention(qh, kcache[i], vcache[i], attn_mask=mask, enable_gqa=True)
        x = x + a.transpose(1, 2).reshape(R, q, H * D) @ st.wo[i].T
        h = rms(x, st.norm)
        gu = h @ st.wgu[i].T
        gate, up = gu.chunk(2, dim=-1)
        x = x + (F.silu(gate) * up) @ st.wd[i].T
    return x


def timed(fn, reps=REPS):
    """Captures fn in a CUDA graph; returns per-replay times in microseconds."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    for _ in range(3):
        graph.replay()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1000.0)
    del graph
    return times


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, math.ceil(p * len(xs)) - 1))
    return xs[k]


def measure(phase, st, R, q, c, dev, markov=None):
    s = st.s
    KVH, D, d = s["n_kv_heads"], s["head_dim"], s["hidden"]
    kc = [torch.zeros(R, KVH, c + q, D, device=dev, dtype=torch.bfloat16) for _ in range(st.n)]
    vc = [torch.zeros(R, KVH, c + q, D, device=dev, dtype=torch.bfloat16) for _ in range(st.n)]
    x0 = torch.randn(R, q, d, device=dev, dtype=torch.bfloat16)

    def fn():
        x = layers_forward(st, x0, kc, vc, c, q, causal=phase != "draft")
        if phase == "prefill":
            x = x[:, -1:]
        logits = rms(x, st.norm) @ st.lm_head.T
        if phase == "draft":  # GAMMA dependent Markov-head steps on top of the block's logits
            w1, w2 = markov
            prev = logits[:, 0].argmax(-1)
            for k in range(q):
                step = logits[:, k] + w1[prev] @ w2
                prev = step.argmax(-1)
        return logits

    t = timed(fn)
    del kc, vc
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="a few shapes only, to check the script")
    args = ap.parse_args()
    dev = "cuda"
    torch.manual_seed(0)
    gpu = torch.cuda.get_device_name(0)
    s = SHAPE
    target = Stack(s, s["n_layers"], dev)
    draft = Stack(s, DRAFT_LAYERS, dev)
    draft.lm_head = target.lm_head  # DSpark shares the target's LM head
    markov = (torch.randn(s["vocab"], MARKOV_RANK, device=dev, dtype=torch.bfloat16) * 0.02,
              torch.randn(MARKOV_RANK, s["vocab"], device=dev, dtype=torch.bfloat16) * 0.02)

    rs = [1, 4, 16, 64, 128, 256] if not args.quick else [1, 16]
    qs = [1, 2, 4, 8] if not args.quick else [1, 8]
    cs = [512, 2048] if not args.quick else [512]
    max_kv_tokens = 131072  # R x c bound: 19 GB of KV for the 36-layer target
    cells = []
    for c in cs:
        for R in rs:
            if R * c > max_kv_tokens:
                continue
            for q in qs:
                cells.append(("verify", target, R, q, c))
            cells.append(("draft", draft, R, GAMMA, c))
    for c in ([0, 2048] if not args.quick else [0]):
        for B in ([256, 512, 1024, 2048] if not args.quick else [512]):
            cells.append(("prefill", target, 1, B, c))

    shape = dict(s)
    shape["n_params"] = count_params(s)
    model = {k: shape[k] for k in ["name", "n_params", "n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim",
                                   "ffn", "vocab", "bytes_per_weight", "bytes_per_kv"]}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [{"type": "specplan-traces", "version": 1},
             {"type": "run", "id": 1, "producer": "importer", "target": model, "drafter_kind": "dspark",
              "drafter_name": f"random-weight stand-in, {DRAFT_LAYERS} layers + Markov head r{MARKOV_RANK}",
              "gpu": gpu, "temperature": 0.0, "gamma": GAMMA, "created_at": now, "git_rev": "",
              "notes": f"scripts/measure_profile.py: PyTorch {torch.__version__} bf16 stand-in forward, "
                       f"random weights, CUDA graphs, {REPS} replays per cell; latency = graph replay time",
              "complete": True}]
    for i, (phase, st, R, q, c) in enumerate(cells, 1):
        t = measure(phase, st, R, q, c, dev, markov if phase == "draft" else None)
        p10, p50, p90 = percentile(t, 0.1), statistics.median(t), percentile(t, 0.9)
        B = R * q
        print(f"{phase:8s} R {R:4d} B {B:5d} ctx {c:5d}: p50 {p50:9.1f} us  (p10 {p10:.1f}, p90 {p90:.1f})",
              flush=True)
        lines.append({"type": "profile", "id": i, "run": 1, "gpu": gpu, "model": model, "phase": phase,
                      "n_seqs": R, "n_tokens": B, "context": c, "latency_us_p50": p50, "latency_us_p10": p10,
                      "latency_us_p90": p90, "n_samples": len(t)})
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        for l in lines:
            f.write(json.dumps(l, separators=(",", ":")) + "\n")
    print(f"wrote {len(lines) - 2} cells to {args.out}")


if __name__ == "__main__":
    main()
