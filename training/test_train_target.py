"""test_train_target.py: train_target.py end to end on the CPU with a tiny model and
synthetic .u16 files, and pretokenize.py's output with a stand-in encoder (HF
`tokenizers` is not needed).

Run: /usr/bin/python3 training/test_train_target.py     (torch only; about 10 s)
"""
import argparse
import copy
import json
import math
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import pretokenize  # noqa: E402
import qwen3  # noqa: E402
import train_target  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

DOMAINS = ("python", "c", "prose")
VOCAB = 64
TINY = ["--vocab", str(VOCAB), "--hidden", "32", "--layers", "2", "--heads", "2", "--head-dim", "16",
        "--kv-heads", "1", "--intermediate", "64", "--seq-len", "32", "--batch", "8", "--steps", "20",
        "--lr", "1e-2", "--log-every", "5", "--eval-windows", "8", "--device", "cpu"]


def synthetic(folder):
    """Per domain a random cycle of ids 3..63 (period 5, 7 or 11) repeated: next-token structure a tiny
    model picks up in 20 steps. Held-out ids continue the same cycle."""
    g = torch.Generator().manual_seed(0)
    for d, period in zip(DOMAINS, (5, 7, 11)):
        cycle = torch.randint(3, VOCAB, (period,), generator=g).tolist()
        for s, n in (("train", 3000), ("heldout", 400)):
            pretokenize.write_u16(os.path.join(folder, f"{d}.{s}.u16"), (cycle * (n // period + 1))[:n])


def run(tmp, name, extra=()):
    out = os.path.join(tmp, name)
    return train_target.train(TINY + ["--data", tmp, "--out", out, "--report", out + ".json"] + list(extra))


class Train(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory()
        synthetic(cls.tmp.name)
        cls.model, cls.report = run(cls.tmp.name, "a")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_loss_decreases(self):
        log = self.report["log"]
        first, last = log[0]["loss"], log[-1]["loss"]
        print(f"\n  loss {first:.3f} -> {last:.3f} (ln V = {math.log(VOCAB):.3f}); held-out "
              + ", ".join(f"{d} {v:.3f}" for d, v in self.report["heldout_loss"].items()))
        self.assertEqual([e["step"] for e in log], [1, 5, 10, 15, 20])
        self.assertGreater(first, math.log(VOCAB) - 0.5)  # starts near uniform
        self.assertLess(last, first - 1.0)
        for d in DOMAINS:
            self.assertLess(self.report["heldout_loss"][d], math.log(VOCAB) - 1.0, d)

    def test_report(self):
        with open(os.path.join(self.tmp.name, "a.json")) as f:
            r = json.load(f)
        self.assertEqual((r["steps"], r["stopped_by"], r["tokens_seen"]), (20, "steps", 20 * 8 * 32))
        self.assertEqual(r["parameters"], sum(p.numel() for p in self.model.parameters()))
        self.assertTrue(r["device"].startswith("cpu"))
        self.assertEqual(sorted(r["heldout_loss"]), sorted(DOMAINS))
        self.assertEqual(r["eval_tokens"]["heldout"]["c"], 8 * 32)  # 12 full windows, capped at --eval-windows 8
        self.assertGreater(r["wall_s"], 0)

    def test_saved_folder_loads_back(self):
        folder = os.path.join(self.tmp.name, "a")
        stored = read_safetensors(os.path.join(folder, "model.safetensors"))
        self.assertNotIn("lm_head.weight", stored)  # tied by default
        self.assertTrue(all(t.dtype == torch.bfloat16 for t in stored.values()))
        loaded = qwen3.load_hf(folder).eval()
        rounded = copy.deepcopy(self.model)
        with torch.no_grad():
            for p in rounded.parameters():
                p.copy_(p.bfloat16().float())
        ids = torch.randint(VOCAB, (2, 32), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            got, want, exact = loaded(ids)[0], self.model(ids)[0], rounded(ids)[0]
        rel = (got - want).abs().max().item() / want.abs().max().item()
        print(f"\n  reloaded bf16 folder: vs bf16-rounded model {(got - exact).abs().max().item():.1e}, "
              f"vs in-memory fp32 {rel:.2e} of max|logit|")
        self.assertLess((got - exact).abs().max().item(), 1e-6)
        self.assertLess(rel, 2e-2)

    def test_deterministic(self):
        model, report = run(self.tmp.name, "b")
        self.assertEqual([e["loss"] for e in report["log"]], [e["loss"] for e in self.report["log"]])
        for k, v in model.state_dict().items():
            self.assertTrue(torch.equal(v, self.model.state_dict()[k]), k)


class Pieces(unittest.TestCase):
    def test_lr_schedule(self):
        a = argparse.Namespace(lr=1e-3, min_lr=0.1, warmup=0.02)
        lrs = [train_target.lr_at(p / 1000, a) for p in range(1001)]
        self.assertEqual(lrs[0], 0.0)
        self.assertAlmostEqual(lrs[10], 0.5e-3)
        self.assertAlmostEqual(max(lrs), 1e-3)
        self.assertAlmostEqual(lrs[20], 1e-3)
        self.assertAlmostEqual(lrs[-1], 1e-4)
        self.assertTrue(all(x >= y for x, y in zip(lrs[20:], lrs[21:])))

    def test_windows_stay_in_their_domain(self):
        lengths = torch.tensor([50, 300, 40])
        offsets = torch.cumsum(lengths, 0) - lengths
        ids = torch.arange(390)  # an id is its own position
        x, y = train_target.sample_batch(torch.Generator().manual_seed(0), ids, offsets, lengths, 3000, 39)
        self.assertEqual(x.shape, (3000, 39))
        self.assertTrue(torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y[:, 0], x[:, 0] + 1))
        domain = lambda pos: torch.bucketize(pos.contiguous(), offsets[1:], right=True)  # noqa: E731
        self.assertTrue(torch.equal(domain(x[:, 0]), domain(y[:, -1])))  # no window crosses domains
        counts = torch.bincount(domain(x[:, 0])).tolist()
        self.assertTrue(all(900 < c < 1100 for c in counts), counts)  # domains even, not by size
        starts = set(x[:, 0].tolist())
        self.assertEqual(starts & set(range(50)), set(range(11)))  # every window of 40 in 50 ids
        self.assertEqual(starts & set(range(350, 390)), {350})     # 40 ids: exactly one window

    def test_pretokenize_stand_in_encoder(self):
        with tempfile.TemporaryDirectory() as tmp:
            docs = {"python": ["def f():\n", "x = 1\n"], "c": ["int x;"], "prose": ["Héllo"]}
            for d, texts in docs.items():
                for s in pretokenize.SPLITS:
                    with open(os.path.join(tmp, f"{d}.{s}.jsonl"), "w") as f:
                        for t in texts:
                            f.write(json.dumps({"text": t}) + "\n")
            encode = lambda texts: [[b + 3 for b in t.encode()] for t in texts]  # noqa: E731  bytes past the specials
            counts = pretokenize.pretokenize(tmp, tmp, encode, list(docs), batch=1)
            got = pretokenize.read_u16(os.path.join(tmp, "python.heldout.u16")).tolist()
            self.assertEqual(got, [b + 3 for b in b"def f():\n"] + [0] + [b + 3 for b in b"x = 1\n"] + [0])
            self.assertEqual(counts["prose.train"], {"documents": 1, "tokens": 7, "text_bytes": 6})
            self.assertEqual(train_target.load_ids(os.path.join(tmp, "c.train.u16")).tolist(),
                             [b + 3 for b in b"int x;"] + [0])
            pretokenize.write_u16(os.path.join(tmp, "big.u16"), [65535, 40000, 0])  # above int16's range
            self.assertEqual(train_target.load_ids(os.path.join(tmp, "big.u16")).tolist(), [65535, 40000, 0])
            with self.assertRaises(OverflowError):
                pretokenize.write_u16(os.path.join(tmp, "bad.u16"), [65536])


if __name__ == "__main__":
    unittest.main(verbosity=2)
