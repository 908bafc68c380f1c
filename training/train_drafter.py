#!/usr/bin/env python3
"""train_drafter.py: trains a drafter for the demo target (issue 10) on generate.py's on-policy data and
saves a folder the engine loads: --kind dspark | dflash | eagle3 (drafters.py, DeepSpec's layout) or
draft-model (a small Qwen3 from scratch, qwen3.save_hf).

Per step: --batch training sequences (seeded draw); the frozen target runs on them (no_grad) for its raw
layer outputs at --target-layers (the drafter's features) and its logits (the L1/TTT targets).
  dspark   --anchors random anchors per sequence among positions p with loss_mask[p] and [p + 1] (the
           anchor and its first label are response tokens), all blocks of a sequence in one attention
           call; Markov teacher forcing; 0.1 CE + 0.9 L1 + 1.0 BCE(conf, 1 - TV), slot weights exp(-k/4)
  dflash   the same blocks, markov_rank 0, no confidence head, CE only
  eagle3   test-time training over every root, --ttt steps, soft CE to the target weighted 0.8^j
  draft-model  CE on the response tokens
AdamW (lr 6e-4, weight decay 0), warmup 4 % then cosine to 0, gradient norm clipped at 1; fp32 weights
with bf16 autocast on CUDA. The schedule's progress is max(step / --steps, elapsed / --minutes).

Evaluation, on the held-out sequences of the data (greedy responses by default): greedy conditional
acceptance per slot and tau per domain, teacher-forced as make_dspark_fixtures.acceptance: at every anchor
whose whole block lies in the response, slot k matches when the draft's argmax equals the target's argmax
at a + k (with greedy data the teacher-forced prefix is the greedy path, so this is greedy speculative
decoding's acceptance); conditional = P(slot k matches | slots < k did), tau = 1 + E[accepted prefix].

Usage: python3 training/train_drafter.py --kind dspark --target DIR/target --data DIR/gen --out DIR/dspark
"""
import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drafters  # noqa: E402
import generate  # noqa: E402
import qwen3  # noqa: E402
from train_target import fit  # noqa: E402  (the training loop: warmup, then cosine to --min-lr)

KINDS = ("dspark", "dflash", "eagle3", "draft-model")
DEFAULT_LAYERS = {"dspark": 2, "dflash": 2, "eagle3": 1, "draft-model": 2}
DRAFT_MODEL = dict(hidden=128, heads=2, head_dim=64, kv_heads=1, intermediate=384)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--target", required=True, help="HF folder of the target")
    ap.add_argument("--data", required=True, help="generate.py's --out folder (or its generated.pt)")
    ap.add_argument("--out", required=True, help="drafter folder to write")
    ap.add_argument("--report", help="default OUT_report.json")
    m = ap.add_argument_group("model")
    m.add_argument("--layers", type=int, help="draft layers (default dspark/dflash 2, eagle3 1, draft-model 2)")
    m.add_argument("--target-layers", default="1,3,4", help="target layers read (the final one is forbidden)")
    m.add_argument("--block-size", type=int, default=7, help="DSpark/DFlash block; slots evaluated for all kinds")
    m.add_argument("--markov-rank", type=int, default=64)
    m.add_argument("--mask-token", type=int, default=2, help="<|mask|> of training/tokenizer.py")
    m.add_argument("--ttt", type=int, default=7, help="EAGLE-3 TTT length")
    m.add_argument("--step-loss-decay", type=float, default=0.8)
    t = ap.add_argument_group("training")
    t.add_argument("--steps", type=int, default=6000)
    t.add_argument("--minutes", type=float, default=8.0, help="wall-time limit of the training loop")
    t.add_argument("--batch", type=int, default=32, help="sequences per step")
    t.add_argument("--anchors", type=int, default=32, help="blocks per sequence (dspark, dflash)")
    t.add_argument("--lr", type=float, default=6e-4)
    t.add_argument("--warmup", type=float, default=0.04)
    t.add_argument("--min-lr", type=float, default=0.0, help="final learning rate, a fraction of --lr (DeepSpec: 0)")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=int, default=100)
    t.add_argument("--eval-batch", type=int, default=8, help="held-out sequences per evaluation forward")
    t.add_argument("--dtype", default="BF16", choices=("BF16", "F32"), help="of the saved weights")
    t.add_argument("--frozen-copies", action="store_true",
                   help="save the target's embedding and LM head in the drafter too, as DeepSpec does "
                        "(the engine reads the target's; without them the file is 2 V d smaller)")
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap.parse_args(argv)


def build(a, target):
    tcfg, layers = target.cfg, a.layers or DEFAULT_LAYERS[a.kind]
    ids = [int(x) for x in a.target_layers.split(",")]
    if a.kind in ("dspark", "dflash"):
        dspark = a.kind == "dspark"
        cfg = drafters.dspark_config(tcfg, layers=layers, block_size=a.block_size, mask_token_id=a.mask_token,
                                     target_layer_ids=ids, markov_rank=a.markov_rank if dspark else 0,
                                     confidence=dspark, num_anchors=a.anchors)
        return drafters.DSpark(cfg, target)
    if a.kind == "eagle3":
        assert layers == 1, "EAGLE-3 has one layer (DeepSpec, engine)"
        return drafters.Eagle3(drafters.eagle3_config(tcfg, target_layer_ids=ids, ttt_length=a.ttt,
                                                      step_loss_decay=a.step_loss_decay), target)
    cfg = qwen3.make_config(vocab=tcfg["vocab_size"], layers=layers, tied=True, theta=qwen3.rope_theta(tcfg),
                            max_position=tcfg["max_position_embeddings"], eps=tcfg["rms_norm_eps"],
                            bos=tcfg.get("bos_token_id"), eos=tcfg.get("eos_token_id"), pad=tcfg.get("pad_token_id"),
                            **DRAFT_MODEL)
    return qwen3.Qwen3(cfg)


def sample_anchors(g, loss_mask, k):
    """k anchors per row, uniform without replacement among positions p with loss_mask[p] and [p + 1],
    sorted; (anchors, ok): rows with fewer such positions have ok False (anchor 0) in the rest."""
    valid = loss_mask[:, :-1] & loss_mask[:, 1:]
    k = min(k, valid.shape[1])
    score = torch.rand(valid.shape, generator=g).masked_fill(~valid, 2.0)
    val, idx = score.topk(k, -1, largest=False)
    anchors, order = idx.sort(-1)
    ok = val.gather(-1, order) < 2.0
    return anchors.masked_fill(~ok, 0), ok


def full_blocks(loss_mask, bs):
    """Every anchor whose anchor and bs labels are all response tokens, as (anchors, ok) (B, K max)."""
    b, s = loss_mask.shape
    full = loss_mask.unfold(1, bs + 1, 1).all(-1)                     # (B, S - bs): p .. p + bs
    key = (~full).long() * full.shape[1] + torch.arange(full.shape[1], device=full.device)
    k = max(1, int(full.sum(1).max()))
    anchors = key.sort(-1).values[:, :k] % full.shape[1]
    return anchors, full.gather(1, anchors)


def target_pass(target, tokens, layer_ids, autocast):
    with torch.no_grad(), autocast():
        logits, hidden = target(tokens, hidden_layers=tuple(layer_ids))
    return logits.float(), (torch.cat(hidden, -1).float() if hidden else None)


def step_loss(a, model, target, tokens, mask, g, autocast):
    """(loss, {term: value}) of one batch."""
    if a.kind == "draft-model":
        with autocast():
            logits = model(tokens)[0]
        m = mask[:, 1:].float()
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                             reduction="none").view_as(m)
        loss = (ce * m).sum() / m.sum().clamp_min(1.0)
        return loss, {"ce": loss.item()}
    cfg = model.cfg
    t_logits, feats = target_pass(target, tokens, cfg["target_layer_ids"], autocast)
    if a.kind == "eagle3":
        with autocast():
            outs = model.ttt_forward(tokens, feats)
        loss, per_step = drafters.eagle3_loss(*drafters.ttt_targets(outs, torch.softmax(t_logits, -1), mask),
                                              decay=cfg["step_loss_decay"])
        return loss, {"ce": loss.item(), "ce_step0": per_step[0].item(), "ce_last": per_step[-1].item()}
    anchors, ok = (x.to(tokens.device) for x in sample_anchors(g, mask.cpu(), a.anchors))
    with autocast():
        logits, conf = model(tokens, feats, anchors)
    labels, pos, valid = drafters.block_targets(tokens, mask, anchors, ok, cfg["block_size"])
    dspark = a.kind == "dspark"
    pt = torch.softmax(t_logits[torch.arange(len(tokens), device=tokens.device)[:, None, None], pos], -1) \
        if dspark else None
    terms = drafters.dspark_losses(logits, conf, labels, pt, valid)
    loss = drafters.combine(terms, drafters.DSPARK_ALPHAS if dspark else drafters.DFLASH_ALPHAS)
    return loss, {k: v.item() for k, v in terms.items()}


def slot_predictions(a, model, target, tokens, mask, bs, autocast):
    """Greedy draft and target tokens at every full block: (draft (B, K, bs), target (B, K, bs), ok (B, K),
    extra) where slot k of anchor p is the prediction of token p + k + 1."""
    anchors, ok = full_blocks(mask, bs)
    idx = anchors[..., None] + torch.arange(bs, device=tokens.device)           # p + k: the predicting position
    rows = torch.arange(len(tokens), device=tokens.device)[:, None, None]
    layer_ids = model.cfg.get("target_layer_ids", [])
    t_logits, feats = target_pass(target, tokens, layer_ids, autocast)
    extra = {}
    with torch.no_grad(), autocast():
        if a.kind == "draft-model":
            draft = model(tokens)[0].argmax(-1)[rows, idx]
        elif a.kind == "eagle3":
            outs = model.ttt_forward(tokens, feats, bs)
            draft = torch.stack([o.argmax(-1) for o in outs], -1)[rows[..., 0], anchors - 1]  # root a - 1
        else:
            logits, conf = model(tokens, feats, anchors.masked_fill(~ok, 0))
            draft = logits.argmax(-1)
            if conf is not None:
                tv = 0.5 * (torch.softmax(logits.float(), -1) - torch.softmax(t_logits[rows, idx], -1)).abs().sum(-1)
                extra = {"conf": torch.sigmoid(conf.float()), "target_conf": 1.0 - tv}
    return draft, t_logits.argmax(-1)[rows, idx], ok, extra


def evaluate(a, model, target, data, rows, autocast):
    """Per domain (and "all"): conditional acceptance per slot, prefix acceptance, tau, blocks."""
    bs = a.ttt if a.kind == "eagle3" else a.block_size
    names = data["meta"]["domains"]
    acc = {d: {"prefix": torch.zeros(bs), "reached": torch.zeros(bs), "blocks": 0, "conf": torch.zeros(bs),
               "target_conf": torch.zeros(bs)} for d in names + ["all"]}
    model.eval()
    for i in range(0, len(rows), a.eval_batch):
        r = rows[i:i + a.eval_batch]
        tokens, mask = data["tokens"][r].to(a.device), data["loss_mask"][r].to(a.device)
        draft, want, ok, extra = slot_predictions(a, model, target, tokens, mask, bs, autocast)
        prefix = (draft == want).float().cumprod(-1)
        reached = torch.cat([torch.ones_like(prefix[..., :1]), prefix[..., :-1]], -1)
        for j, row in enumerate(r.tolist()):
            sel = ok[j]
            for d in (names[int(data["domain"][row])], "all"):
                acc[d]["prefix"] += prefix[j][sel].sum(0).cpu()
                acc[d]["reached"] += reached[j][sel].sum(0).cpu()
                acc[d]["blocks"] += int(sel.sum())
                for key in extra:
                    acc[d][key] += extra[key][j][sel].sum(0).float().cpu()
    model.train()
    out = {}
    for d, v in acc.items():
        n = max(1, v["blocks"])
        res = {"conditional": (v["prefix"] / v["reached"].clamp_min(1)).tolist(), "prefix": (v["prefix"] / n).tolist(),
               "tau": 1.0 + v["prefix"].sum().item() / n, "blocks": v["blocks"]}
        if a.kind == "dspark":
            res["mean_conf"] = (v["conf"] / n).tolist()                # sigmoid(conf), teacher-forced
            res["mean_target_conf"] = (v["target_conf"] / n).tolist()  # 1 - TV(p_d, p_t), its training target
        out[d] = res
    return out


def train(argv=None):
    """Returns (the trained fp32 model, the report); writes --out and --report."""
    a = parse_args(argv)
    cuda = a.device.startswith("cuda")
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed + 1)  # batches and anchors: on the CPU, independent of the device
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    path = os.path.join(a.data, "generated.pt") if os.path.isdir(a.data) else a.data
    data = generate.load_generated(path)
    train_rows = torch.nonzero(~data["heldout"]).flatten()
    held_rows = torch.nonzero(data["heldout"]).flatten()
    assert len(train_rows) > 0, "no training sequences"

    target = qwen3.load_hf(a.target, a.device).eval()
    for p in target.parameters():
        p.requires_grad_(False)
    model = build(a, target).to(a.device)
    params = drafters.trainable(model) if a.kind != "draft-model" else list(model.parameters())
    n_train, n_total = sum(p.numel() for p in params), sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)
    device_name = torch.cuda.get_device_name(a.device) if cuda else f"cpu ({platform.machine()})"
    print(f"train_drafter: {a.kind}, {n_train / 1e6:.2f} M trained parameters ({n_total / 1e6:.2f} M in all) on "
          f"{device_name}; {len(train_rows)} training, {len(held_rows)} held-out sequences", flush=True)

    def one_step():
        rows = train_rows[torch.randint(len(train_rows), (a.batch,), generator=g)]
        tokens, mask = data["tokens"][rows].to(a.device), data["loss_mask"][rows].to(a.device)
        return step_loss(a, model, target, tokens, mask, g, autocast)

    log, step, wall = fit(a, model, opt, params, one_step, "seqs", a.batch)

    t_eval = time.time()
    acceptance = evaluate(a, model, target, data, held_rows, autocast) if len(held_rows) else {}
    for d, v in acceptance.items():
        print(f"eval {d:6s} tau {v['tau']:.3f}  conditional " + " ".join(f"{x:.3f}" for x in v["conditional"])
              + f"  ({v['blocks']} blocks)", flush=True)

    if a.kind == "draft-model":
        qwen3.save_hf(model, a.out, a.dtype)
        tok = os.path.join(a.target, "tokenizer.json")
        if os.path.exists(tok):
            shutil.copy(tok, os.path.join(a.out, "tokenizer.json"))
    else:
        drafters.save_drafter(model, a.out, a.dtype, frozen_copies=a.frozen_copies)
    report = {
        "version": 1, "kind": a.kind, "device": device_name, "torch": torch.__version__,
        "trained_parameters": n_train, "parameters": n_total, "steps": step,
        "stopped_by": "steps" if step >= a.steps else "minutes", "wall_s": wall, "eval_s": time.time() - t_eval,
        "sequences_seen": step * a.batch, "acceptance": acceptance, "data": data["meta"], "log": log,
        "args": vars(a), "config": model.cfg,
    }
    with open(a.report or a.out.rstrip("/") + "_report.json", "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    return model, report


if __name__ == "__main__":
    train()
