#!/usr/bin/env python3
"""train_target.py: trains the demo Qwen3 target (issue 10) from pretokenize.py's
DATA/{domain}.{train,heldout}.u16 and saves it as an HF folder (bf16).

Batches: --batch windows of --seq-len + 1 ids (inputs and next-token labels),
each from a domain drawn uniformly (so domains weigh the same whatever their
sizes), at a uniform start in that domain's concatenated training ids (windows
cross document boundaries; <|endoftext|> separates them). AdamW (betas 0.9/0.95,
weight decay on matrices only), linear warmup then cosine down to --min-lr of the
peak, gradient norm clipped. The schedule's progress is max(step / --steps,
elapsed / --minutes), so it completes whichever limit stops the run; a run is
reproducible (seeded init and windows) when --steps stops it well before
--minutes. bf16 autocast on CUDA, fp32 on the CPU.

Afterwards the mean cross-entropy per domain over consecutive full windows
(stride --seq-len, each token predicted once) of the held-out split and, for
comparison, of the training split, at most --eval-windows each, goes with wall
time, device, parameter count and tokens seen to --report.

Usage: python3 training/train_target.py --data DIR --out DIR/target [--minutes 20]
"""
import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen3  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder of DOMAIN.{train,heldout}.u16")
    ap.add_argument("--out", required=True, help="HF folder to write")
    ap.add_argument("--report", help="default DATA/train_report.json")
    ap.add_argument("--tokenizer", help="a tokenizer.json to copy into --out")
    ap.add_argument("--domains", default="python,c,prose")
    m = ap.add_argument_group("model")
    m.add_argument("--vocab", type=int, default=8192)
    m.add_argument("--hidden", type=int, default=256)
    m.add_argument("--layers", type=int, default=6)
    m.add_argument("--heads", type=int, default=4)
    m.add_argument("--head-dim", type=int, default=64)
    m.add_argument("--kv-heads", type=int, default=2)
    m.add_argument("--intermediate", type=int, default=768)
    m.add_argument("--untied", action="store_true", help="a separate lm_head (default: tied to the embedding)")
    m.add_argument("--rope-theta", type=float, default=10000.0)
    m.add_argument("--max-position", type=int, default=2048)
    m.add_argument("--rms-eps", type=float, default=1e-6)
    m.add_argument("--init-std", type=float, default=0.02)
    t = ap.add_argument_group("training")
    t.add_argument("--seq-len", type=int, default=512)
    t.add_argument("--batch", type=int, default=64, help="windows per step")
    t.add_argument("--steps", type=int, default=5000, help="5000 x 64 x 512: 164 M tokens, ~24 per parameter")
    t.add_argument("--minutes", type=float, default=20.0, help="wall-time limit of the training loop")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--min-lr", type=float, default=0.1, help="final learning rate, a fraction of --lr")
    t.add_argument("--warmup", type=float, default=0.02, help="fraction of the run")
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=int, default=100)
    t.add_argument("--eval-windows", type=int, default=1024, help="most windows per domain and split evaluated")
    t.add_argument("--eval-batch", type=int, default=32)
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    t.add_argument("--compile", action="store_true", help="torch.compile the training forward (CUDA only)")
    return ap.parse_args(argv)


def load_ids(path):
    """A .u16 file as an int64 tensor (torch 1.13 has no uint16: read as int16, mask)."""
    assert sys.byteorder == "little"
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    if not raw:
        return torch.zeros(0, dtype=torch.int64)
    return torch.frombuffer(raw, dtype=torch.int16).long() & 0xFFFF


def lr_at(progress, a):
    """progress in [0, 1] of the run -> learning rate: linear warmup, cosine from --lr to --min-lr * --lr."""
    if progress < a.warmup:
        return a.lr * progress / a.warmup
    x = (progress - a.warmup) / max(1e-9, 1.0 - a.warmup)
    return a.lr * (a.min_lr + (1.0 - a.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, x))))


def fit(a, model, opt, params, step_loss, unit, units_per_step):
    """The training loop of both trainers (this one and train_drafter.py): until --steps or --minutes, the
    learning rate from lr_at at the run's progress (the larger of steps and wall time), step_loss() ->
    (loss, {term: value}), opt.step() after clipping the gradients of params to --clip, a log entry every
    --log-every steps.
    Returns (log, steps taken, wall seconds)."""
    params = list(params)
    budget_s = a.minutes * 60.0
    log, step, t0 = [], 0, time.time()
    t_log, step_log = t0, 0
    loss, terms, lr = None, {}, 0.0
    model.train()
    while step < a.steps and time.time() - t0 < budget_s:
        lr = lr_at(min(1.0, max((step + 1) / a.steps, (time.time() - t0) / budget_s)), a)
        for group in opt.param_groups:
            group["lr"] = lr
        loss, terms = step_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        step += 1
        if step % a.log_every == 0 or step == 1 or step == a.steps:
            now, value = time.time(), loss.item()  # .item() waits for the device: the rate is honest
            rate = (step - step_log) * units_per_step / max(1e-9, now - t_log)
            log.append({"step": step, "loss": value, **terms, "lr": lr, f"{unit}_per_s": rate,
                        "elapsed_s": now - t0})
            print(f"step {step:6d}  loss {value:.4f}  " + "".join(f"{k} {v:.4f}  " for k, v in terms.items())
                  + f"lr {lr:.2e}  {rate:,.1f} {unit}/s  ({now - t0:.0f} s)", flush=True)
            t_log, step_log = now, step
    wall = time.time() - t0
    if step and log[-1]["step"] != step:
        log.append({"step": step, "loss": loss.item(), **terms, "lr": lr, "elapsed_s": wall})
    return log, step, wall


def sample_batch(g, ids, offsets, lengths, batch, seq_len):
    """Inputs and labels (batch, seq_len) from ids (all domains' training ids concatenated, on the
    device); domain uniform, then start uniform over the domain's lengths[d] - seq_len windows."""
    d = torch.randint(len(lengths), (batch,), generator=g)
    r = torch.rand(batch, generator=g, dtype=torch.float64)  # fp64: starts up to ~1e8 stay exact
    start = offsets[d] + (r * (lengths[d] - seq_len).double()).long()
    w = ids[(start[:, None] + torch.arange(seq_len + 1)).to(ids.device)]
    return w[:, :-1], w[:, 1:]


def evaluate(model, ids, a, autocast):
    """Mean CE (nats/token) over consecutive full windows of ids, at most a.eval_windows; None if none fits."""
    n = min((len(ids) - 1) // a.seq_len, a.eval_windows)
    if n == 0:
        return {"loss": None, "tokens": 0}
    x = ids[:n * a.seq_len].view(n, a.seq_len)
    y = ids[1:n * a.seq_len + 1].view(n, a.seq_len)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, a.eval_batch):
            with autocast():
                logits = model(x[i:i + a.eval_batch].to(a.device))[0]
            total += F.cross_entropy(logits.flatten(0, 1), y[i:i + a.eval_batch].to(a.device).flatten(),
                                     reduction="sum").item()
    return {"loss": total / (n * a.seq_len), "tokens": n * a.seq_len}


def train(argv=None):
    """Returns (the trained fp32 model, the report); writes --out and --report."""
    a = parse_args(argv)
    cuda = a.device.startswith("cuda")
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed + 1)  # windows: on the CPU, independent of the device
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    domains = a.domains.split(",")

    data = {d: {s: load_ids(os.path.join(a.data, f"{d}.{s}.u16")) for s in ("train", "heldout")} for d in domains}
    for d in domains:
        assert len(data[d]["train"]) > a.seq_len, f"{d}: fewer training ids than one window"
        assert max(int(t.max()) for t in data[d].values() if len(t)) < a.vocab, f"{d}: an id >= --vocab"
    lengths = torch.tensor([len(data[d]["train"]) for d in domains])
    offsets = torch.cumsum(lengths, 0) - lengths
    train_ids = torch.cat([data[d]["train"] for d in domains]).to(a.device)

    cfg = qwen3.make_config(vocab=a.vocab, hidden=a.hidden, layers=a.layers, heads=a.heads, head_dim=a.head_dim,
                            kv_heads=a.kv_heads, intermediate=a.intermediate, tied=not a.untied, theta=a.rope_theta,
                            max_position=a.max_position, eps=a.rms_eps, init_std=a.init_std)
    model = qwen3.Qwen3(cfg).to(a.device)
    n_params = sum(p.numel() for p in model.parameters())
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": a.weight_decay},
                             {"params": vectors, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95))
    fwd = model
    if a.compile and cuda:
        fwd = torch.compile(model)
    elif a.compile:
        print("train_target: --compile ignored off CUDA", flush=True)
    device_name = torch.cuda.get_device_name(a.device) if cuda else f"cpu ({platform.machine()})"
    print(f"train_target: {n_params / 1e6:.2f} M parameters on {device_name}; training ids: "
          + ", ".join(f"{d} {int(n)}" for d, n in zip(domains, lengths)), flush=True)

    def step_loss():
        x, y = sample_batch(g, train_ids, offsets, lengths, a.batch, a.seq_len)
        with autocast():
            logits = fwd(x)[0]
        return F.cross_entropy(logits.flatten(0, 1), y.flatten()), {}

    log, step, wall = fit(a, model, opt, model.parameters(), step_loss, "tokens", a.batch * a.seq_len)

    model.eval()
    t_eval = time.time()
    losses = {s: {d: evaluate(model, data[d][s], a, autocast) for d in domains} for s in ("heldout", "train")}
    for d in domains:
        print(f"eval {d:6s}  heldout {losses['heldout'][d]['loss']}  train {losses['train'][d]['loss']}", flush=True)

    qwen3.save_hf(model, a.out, "BF16")
    if a.tokenizer:
        shutil.copy(a.tokenizer, os.path.join(a.out, "tokenizer.json"))
    report = {
        "version": 1, "device": device_name, "torch": torch.__version__, "parameters": n_params,
        "steps": step, "stopped_by": "steps" if step >= a.steps else "minutes", "wall_s": wall,
        "eval_s": time.time() - t_eval, "tokens_seen": step * a.batch * a.seq_len,
        "tokens_per_s": step * a.batch * a.seq_len / max(1e-9, wall),
        "heldout_loss": {d: v["loss"] for d, v in losses["heldout"].items()},
        "train_loss": {d: v["loss"] for d, v in losses["train"].items()},
        "eval_tokens": {s: {d: v["tokens"] for d, v in losses[s].items()} for s in losses},
        "data_tokens": {d: {s: len(data[d][s]) for s in data[d]} for d in domains},
        "log": log, "args": vars(a), "config": cfg,
    }
    with open(a.report or os.path.join(a.data, "train_report.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    return model, report


if __name__ == "__main__":
    train()
