#!/usr/bin/env python3
"""generate.py: on-policy drafter data (DeepSpec regenerates responses with the target itself).

Prompts are --prompt-len tokens from inside one document (no <|endoftext|> in
the window) of pretokenize.py's DATA/{domain}.{split}.u16: documents with at
least that many tokens, in a seeded random order; the first pass takes each
document's first tokens, later passes (when --per-domain exceeds the documents)
a seeded random window of each. The target answers each with --response-len
tokens, sampled as the digest's Qwen3 settings (temperature 0.7, then top-k 20,
then top-p 0.8), batched with qwen3.py's KV cache; a row stops at EOS (kept,
the last response token) and is padded after it.

Writes, in --out:
  generated.pt            torch.save of {"tokens": int16 (n, P + R), the uint16 ids' bits (torch 1.13 has
                          no uint16: read with load_generated), "loss_mask": bool (n, P + R), the response
                          tokens, "domain": int64 (n), index into meta's domains, "heldout": bool (n),
                          "meta": a JSON string}; only tensors and strings, so torch.load(weights_only=True)
                          reads it on torch 1.13 and 2.x
  capture_prompts.jsonl   {"prompt_ids": [...], "domain": d} per line for `specplan capture`: --heldout
                          prompts per domain from the HELD-OUT split; their responses are in generated.pt too
                          (heldout True), greedy by default (--heldout-temperature 0), so that a greedy
                          teacher-forced acceptance over them is exactly greedy speculative decoding's

Usage: python3 training/generate.py --target DIR/target --data DIR --out DIR/gen [--per-domain 6800]
"""
import argparse
import contextlib
import json
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen3  # noqa: E402
from train_target import load_ids  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True, help="HF folder of the target")
    ap.add_argument("--data", required=True, help="folder of DOMAIN.{train,heldout}.u16")
    ap.add_argument("--out", required=True)
    ap.add_argument("--domains", default="python,c,prose")
    ap.add_argument("--per-domain", type=int, default=6800, help="training prompts per domain (~20k in all)")
    ap.add_argument("--heldout", type=int, default=64, help="held-out prompts per domain (capture + evaluation)")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--response-len", type=int, default=192)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--top-p", type=float, default=0.8)
    ap.add_argument("--heldout-temperature", type=float, default=0.0, help="0: greedy")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap.parse_args(argv)


def documents(ids, min_len):
    """(start, length) of every document (ids between <|endoftext|> separators) of at least min_len tokens."""
    out, start = [], 0
    for e in torch.nonzero(ids == 0).flatten().tolist() + [len(ids)]:
        if e - start >= min_len:
            out.append((start, e - start))
        start = e + 1
    return out


def select_prompts(ids, n, p_len, g):
    """n windows of p_len ids, each inside one document: documents in a seeded order; pass 0 takes their
    first p_len ids, later passes a uniform window of each."""
    docs = documents(ids, p_len)
    assert docs, f"no document has {p_len} tokens"
    order = torch.randperm(len(docs), generator=g).tolist()
    rows = []
    for i in range(n):
        start, length = docs[order[i % len(docs)]]
        if i >= len(docs):
            start += int(torch.randint(length - p_len + 1, (1,), generator=g))
        rows.append(ids[start:start + p_len])
    return torch.stack(rows) if rows else torch.zeros(0, p_len, dtype=torch.long)


def sample_next(logits, temperature, top_k, top_p, gen):
    """logits (B, V) fp32 -> (B,) ids: argmax at temperature 0, else HF's order: temperature, top-k, then
    top-p (keep the most probable tokens while the mass before them is < top_p; at least one)."""
    if temperature <= 0:
        return logits.argmax(-1)
    vals, idx = (logits / temperature).topk(min(top_k, logits.shape[-1]) if top_k > 0 else logits.shape[-1], -1)
    probs = torch.softmax(vals, -1)
    before = probs.cumsum(-1) - probs
    probs = probs.masked_fill(before >= top_p, 0.0)
    choice = torch.multinomial(probs, 1, generator=gen)
    return idx.gather(-1, choice)[:, 0]


def generate(model, prompts, r_len, temperature, top_k, top_p, eos, pad, gen, batch, device, autocast):
    """prompts (n, P) -> tokens (n, P + R) and loss_mask (n, P + R) (True on response tokens up to and
    including EOS; pad after it)."""
    out_tok, out_mask = [], []
    for i in range(0, prompts.shape[0], batch):
        x = prompts[i:i + batch].to(device)
        b = x.shape[0]
        cache = model.new_cache(x.shape[1] + r_len)
        done = torch.zeros(b, dtype=torch.bool, device=device)
        toks, live = [], []
        with torch.no_grad(), autocast():
            logits = model(x, cache=cache)[0][:, -1]
            for t in range(r_len):
                nxt = sample_next(logits.float(), temperature, top_k, top_p, gen)
                live.append(~done)
                nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
                toks.append(nxt)
                done = done | (nxt == eos)
                if t + 1 == r_len or bool(done.all()):
                    break
                logits = model(nxt[:, None], cache=cache)[0][:, -1]
        resp = torch.full((b, r_len), pad, dtype=torch.long, device=device)
        mask = torch.zeros(b, r_len, dtype=torch.bool, device=device)
        resp[:, :len(toks)] = torch.stack(toks, 1)
        mask[:, :len(live)] = torch.stack(live, 1)
        out_tok.append(torch.cat([x, resp], 1).cpu())
        out_mask.append(torch.cat([torch.zeros_like(x, dtype=torch.bool), mask], 1).cpu())
    return torch.cat(out_tok), torch.cat(out_mask)


def load_generated(path):
    """generated.pt with tokens as int64 and meta as a dict."""
    d = dict(torch.load(path, map_location="cpu", weights_only=True))  # tensors and a string only
    d["tokens"] = d["tokens"].long() & 0xFFFF
    d["meta"] = json.loads(d["meta"])
    return d


def main(argv=None):
    a = parse_args(argv)
    cuda = a.device.startswith("cuda")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    model = qwen3.load_hf(a.target, a.device).eval()
    cfg = model.cfg
    eos = cfg["eos_token_id"]
    pad = eos if cfg.get("pad_token_id") is None else cfg["pad_token_id"]
    assert cfg["vocab_size"] <= 1 << 16
    assert a.prompt_len + a.response_len <= cfg["max_position_embeddings"]
    domains = a.domains.split(",")
    g = torch.Generator().manual_seed(a.seed)                       # prompt selection, on the CPU
    gen = torch.Generator(device=a.device).manual_seed(a.seed + 1)  # sampling, on the device
    os.makedirs(a.out, exist_ok=True)

    parts, capture, t0 = [], [], time.time()
    for split, n, temp in (("train", a.per_domain, a.temperature), ("heldout", a.heldout, a.heldout_temperature)):
        for di, d in enumerate(domains):
            if n == 0:
                continue
            prompts = select_prompts(load_ids(os.path.join(a.data, f"{d}.{split}.u16")), n, a.prompt_len, g)
            tok, mask = generate(model, prompts, a.response_len, temp, a.top_k, a.top_p, eos, pad, gen, a.batch,
                                 a.device, autocast)
            parts.append((tok, mask, torch.full((len(tok),), di), torch.full((len(tok),), split == "heldout")))
            if split == "heldout":
                capture += [{"prompt_ids": p.tolist(), "domain": d} for p in prompts]
            lens = mask.sum(1).float()
            print(f"generate: {d:6s} {split:7s} {len(tok):6d} sequences, mean response {lens.mean().item():.1f} "
                  f"tokens, {(lens < a.response_len).float().mean().item() * 100:.0f} % stopped at EOS "
                  f"({time.time() - t0:.0f} s)", flush=True)
    tokens, loss_mask, domain, heldout = (torch.cat(x) for x in zip(*parts))
    wall = time.time() - t0
    meta = {"version": 1, "target": os.path.abspath(a.target), "domains": domains, "prompt_len": a.prompt_len,
            "response_len": a.response_len, "temperature": a.temperature, "top_k": a.top_k, "top_p": a.top_p,
            "heldout_temperature": a.heldout_temperature, "eos_id": eos, "pad_id": pad, "seed": a.seed,
            "wall_s": wall, "response_tokens": int(loss_mask.sum()),
            "device": torch.cuda.get_device_name(a.device) if cuda else f"cpu ({platform.machine()})",
            "torch": torch.__version__}
    torch.save({"tokens": tokens.to(torch.int16), "loss_mask": loss_mask, "domain": domain, "heldout": heldout,
                "meta": json.dumps(meta)}, os.path.join(a.out, "generated.pt"))
    with open(os.path.join(a.out, "capture_prompts.jsonl"), "w") as f:
        for row in capture:
            f.write(json.dumps(row) + "\n")
    print(f"generate: {len(tokens)} sequences, {meta['response_tokens']} response tokens in {wall:.0f} s "
          f"({meta['response_tokens'] / max(wall, 1e-9):,.0f} tokens/s)", flush=True)
    return meta


if __name__ == "__main__":
    main()
