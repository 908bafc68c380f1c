"""test_train_drafter.py: generate.py and train_drafter.py end to end on the CPU: a tiny target trained by
train_target.py on synthetic cyclic documents, on-policy data from it, then ~20 steps of every drafter kind;
the loss falls, the report holds per-domain acceptance, and the saved folder reloads (drafters.load_drafter,
or qwen3.load_hf for draft-model) with the bf16-rounded trained model's outputs.

Run: /usr/bin/python3 training/test_train_drafter.py     (torch only; under a minute)
"""
import argparse
import contextlib
import copy
import json
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import drafters  # noqa: E402
import generate  # noqa: E402
import pretokenize  # noqa: E402
import qwen3  # noqa: E402
import train_drafter  # noqa: E402
import train_target  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

DOMAINS = ("python", "c", "prose")
VOCAB, P, R, BS = 64, 8, 24, 4
TARGET = ["--vocab", str(VOCAB), "--hidden", "32", "--layers", "4", "--heads", "2", "--head-dim", "16",
          "--kv-heads", "1", "--intermediate", "64", "--seq-len", "32", "--batch", "16", "--steps", "40",
          "--lr", "1e-2", "--log-every", "40", "--eval-windows", "2", "--device", "cpu"]
DRAFT = ["--target-layers", "0,1,2", "--block-size", str(BS), "--ttt", str(BS), "--markov-rank", "8",
         "--steps", "20", "--batch", "8", "--anchors", "8", "--lr", "1e-2", "--log-every", "1", "--device", "cpu"]


def synthetic(folder):
    """Per domain a random cycle of ids 3..63 (period 5, 7 or 11), cut into documents of 12..40 tokens
    separated by <|endoftext|> (0)."""
    g = torch.Generator().manual_seed(0)
    cycles = {}
    for d, period in zip(DOMAINS, (5, 7, 11)):
        cycle = cycles[d] = torch.randperm(VOCAB - 3, generator=g)[:period].add(3).tolist()
        for s, n_docs in (("train", 60), ("heldout", 10)):
            ids, pos = [], 0
            for _ in range(n_docs):
                n = int(torch.randint(12, 41, (1,), generator=g))
                ids += [cycle[(pos + i) % period] for i in range(n)] + [0]
                pos += n
            pretokenize.write_u16(os.path.join(folder, f"{d}.{s}.u16"), ids)
    return cycles


def bf16_rounded(model):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.bfloat16().float())
    return m.eval()


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory()
        t = cls.tmp.name
        cls.cycles = synthetic(t)
        t0 = time.time()
        train_target.train(TARGET + ["--data", t, "--out", os.path.join(t, "target"), "--report", t + "/tr.json"])
        cls.gen_args = ["--target", os.path.join(t, "target"), "--data", t, "--per-domain", "24", "--heldout", "3",
                        "--prompt-len", str(P), "--response-len", str(R), "--batch", "16", "--device", "cpu"]
        generate.main(cls.gen_args + ["--out", os.path.join(t, "gen")])
        cls.data = generate.load_generated(os.path.join(t, "gen", "generated.pt"))
        print(f"\n  target + generation: {time.time() - t0:.1f} s")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_generated_data(self):
        d, t = self.data, self.tmp.name
        n = 3 * (24 + 3)
        self.assertEqual(tuple(d["tokens"].shape), (n, P + R))
        self.assertEqual(d["heldout"].sum().item(), 9)
        self.assertEqual(torch.bincount(d["domain"]).tolist(), [27, 27, 27])
        self.assertFalse(d["loss_mask"][:, :P].any())
        self.assertTrue(d["loss_mask"][:, P].all())
        self.assertTrue((d["tokens"][:, :P] != 0).all())           # no document boundary inside a prompt
        self.assertEqual(d["meta"]["domains"], list(DOMAINS))
        with open(os.path.join(t, "gen", "capture_prompts.jsonl")) as f:
            lines = [json.loads(x) for x in f]
        self.assertEqual([x["domain"] for x in lines], [x for x in DOMAINS for _ in range(3)])
        held = d["tokens"][d["heldout"]]
        self.assertEqual([x["prompt_ids"] for x in lines], held[:, :P].tolist())
        for x in lines:  # a window of that domain's held-out ids
            ids = train_target.load_ids(os.path.join(t, f"{x['domain']}.heldout.u16")).tolist()
            self.assertTrue(any(ids[i:i + P] == x["prompt_ids"] for i in range(len(ids) - P + 1)))
        # the target learned the cycles: its sampled responses mostly follow them (the drafters can learn)
        hits = total = 0
        for row, m, di in zip(d["tokens"].tolist(), d["loss_mask"].tolist(), d["domain"].tolist()):
            c = self.cycles[DOMAINS[di]]
            nxt = {x: c[(i + 1) % len(c)] for i, x in enumerate(c)}
            for i in range(P - 1, P + R - 1):
                if m[i + 1]:
                    hits += nxt.get(row[i]) == row[i + 1]
                    total += 1
        print(f"\n  {n} sequences, {total} response tokens, {hits / total:.2f} of them the cycle's next id")
        self.assertGreater(hits / total, 0.6)
        self.assertEqual(d["meta"]["heldout_temperature"], 0.0)
        generate.main(self.gen_args + ["--out", os.path.join(t, "gen2")])  # deterministic for a seed
        again = generate.load_generated(os.path.join(t, "gen2", "generated.pt"))
        self.assertTrue(torch.equal(again["tokens"], d["tokens"]))

    def check_kind(self, kind):
        t = self.tmp.name
        out = os.path.join(t, kind)
        t0 = time.time()
        model, report = train_drafter.train(DRAFT + ["--kind", kind, "--target", os.path.join(t, "target"),
                                                     "--data", os.path.join(t, "gen"), "--out", out])
        secs = time.time() - t0
        losses = [e["loss"] for e in report["log"]]
        first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
        acc = report["acceptance"]
        print(f"\n  {kind}: {secs:.1f} s, loss {first:.3f} -> {last:.3f}, held-out tau "
              + ", ".join(f"{d} {v['tau']:.2f}" for d, v in acc.items()))
        self.assertLess(secs, 60)
        self.assertEqual(report["steps"], 20)
        self.assertLess(last, 0.8 * first)
        self.assertEqual(sorted(acc), sorted(list(DOMAINS) + ["all"]))
        for v in acc.values():
            self.assertEqual(len(v["conditional"]), BS)
            self.assertTrue(1.0 <= v["tau"] <= BS + 1)
            self.assertGreater(v["blocks"], 0)
        self.assertEqual(acc["all"]["blocks"], sum(acc[d]["blocks"] for d in DOMAINS))
        with open(out + "_report.json") as f:
            self.assertEqual(json.load(f)["kind"], kind)
        stored = read_safetensors(os.path.join(out, "model.safetensors"))
        self.assertTrue(all(v.dtype == torch.bfloat16 for v in stored.values()))
        seqs = self.data["tokens"][:3]
        target = qwen3.load_hf(os.path.join(t, "target")).eval()
        exact = bf16_rounded(model)
        with torch.no_grad():
            if kind == "draft-model":
                got, want = qwen3.load_hf(out).eval()(seqs)[0], exact(seqs)[0]
            else:
                stored_names = set(stored)
                self.assertFalse(stored_names & set(drafters.FROZEN), "the frozen copies are left out by default")
                loaded = drafters.load_drafter(out, target=target).eval()
                ids = loaded.cfg["target_layer_ids"]
                _, feats = train_drafter.target_pass(target, seqs, ids, contextlib.nullcontext)
                if kind == "eagle3":
                    got, want = loaded.ttt_forward(seqs, feats)[-1], exact.ttt_forward(seqs, feats)[-1]
                else:
                    anchors = torch.tensor([[P, P + 5], [P + 1, P + 9], [P + 2, P + 3]])
                    got, want = loaded(seqs, feats, anchors)[0], exact(seqs, feats, anchors)[0]
                # the frozen parts are the target's, untouched by training
                self.assertTrue(torch.equal(loaded.embed_tokens.weight, target.model.embed_tokens.weight))
                self.assertTrue(torch.equal(loaded.lm_head.weight, target.model.embed_tokens.weight))  # tied target
        self.assertLess((got - want).abs().max().item(), 1e-6)
        return report

    def test_dspark(self):
        r = self.check_kind("dspark")
        self.assertEqual(r["config"]["markov_rank"], 8)
        self.assertTrue({"ce", "l1", "bce"} <= set(r["log"][0]))
        self.assertEqual(len(r["acceptance"]["all"]["mean_conf"]), BS)

    def test_dflash(self):
        r = self.check_kind("dflash")
        self.assertEqual((r["config"]["markov_rank"], r["config"]["enable_confidence_head"]), (0, False))
        self.assertEqual(set(r["log"][0]) & {"l1", "bce"}, set())

    def test_eagle3(self):
        r = self.check_kind("eagle3")
        self.assertEqual((r["config"]["ttt_length"], r["config"]["architectures"]), (BS, ["Qwen3Eagle3Model"]))

    def test_draft_model(self):
        r = self.check_kind("draft-model")
        self.assertEqual((r["config"]["hidden_size"], r["config"]["num_key_value_heads"]), (128, 1))
        self.assertIs(r["config"]["tie_word_embeddings"], True)


class Pieces(unittest.TestCase):
    def test_sample_next(self):
        gen = torch.Generator().manual_seed(0)
        # probabilities at T = 1: 0.5, 0.25, 0.15, 0.1 -> top-p 0.8 keeps 3 (mass before the 4th is 0.9);
        # top-k 2 keeps 2; greedy the first
        logits = torch.log(torch.tensor([[0.1, 0.5, 0.15, 0.25]])).expand(4000, -1)
        seen = lambda **kw: set(generate.sample_next(logits, gen=gen, **kw).tolist())  # noqa: E731
        self.assertEqual(seen(temperature=1.0, top_k=0, top_p=0.8), {1, 3, 2})
        self.assertEqual(seen(temperature=1.0, top_k=2, top_p=1.0), {1, 3})
        self.assertEqual(seen(temperature=1.0, top_k=0, top_p=0.5), {1})
        self.assertEqual(seen(temperature=0.0, top_k=0, top_p=1.0), {1})
        draws = generate.sample_next(logits, 1.0, 0, 1.0, gen)
        freq = torch.bincount(draws, minlength=4).float() / len(draws)
        self.assertLess((freq - torch.tensor([0.1, 0.5, 0.15, 0.25])).abs().max().item(), 0.03)

    def test_stop_at_eos(self):
        class Fake:  # EOS with probability ~0.2 a step, else tokens 3..9
            def new_cache(self, n):
                return [{"len": 0}]

            def __call__(self, ids, cache=None):
                logits = torch.full((ids.shape[0], ids.shape[1], 10), -1e9)
                logits[..., 3:] = 0.0
                logits[..., 0] = 0.56
                return logits, []

        prompts = torch.full((64, 3), 5)
        tok, mask = generate.generate(Fake(), prompts, 12, 1.0, 0, 1.0, 0, 1, torch.Generator().manual_seed(0), 16,
                                      "cpu", contextlib.nullcontext)
        stopped = 0
        for row, m in zip(tok.tolist(), mask.tolist()):
            resp, rm = row[3:], m[3:]
            n = resp.index(0) + 1 if 0 in resp else 12
            stopped += 0 in resp
            self.assertEqual(rm, [True] * n + [False] * (12 - n))      # EOS included, pad after
            self.assertEqual(resp[n:], [1] * (12 - n))
            self.assertNotIn(1, resp[:n])
        self.assertTrue(16 < stopped < 64)

    def test_select_prompts(self):
        ids = torch.tensor([5, 6, 7, 0, 9, 9, 9, 9, 9, 0, 4, 4, 4, 4])
        self.assertEqual(generate.documents(ids, 4), [(4, 5), (10, 4)])
        rows = generate.select_prompts(ids, 6, 4, torch.Generator().manual_seed(0))
        self.assertEqual(sorted(map(tuple, rows[:2].tolist())), [(4, 4, 4, 4), (9, 9, 9, 9)])  # first pass: starts
        self.assertTrue(all(0 not in r for r in rows.tolist()))

    def test_eval_on_fixtures(self):
        """On the fixtures' greedy sequence (8 prompt + 16 greedy target tokens): the target side of the evaluation
        is the greedy continuation, the draft side the argmax of the fixtures' teacher-forced logits, and each
        block's teacher-forced accepted prefix is the one its greedy draft (own tokens as prev) gets."""
        fixtures = os.path.join(os.path.dirname(HERE), "tests", "fixtures")
        target = qwen3.load_hf(os.path.join(fixtures, "tiny-qwen3-4l")).eval()
        for name, kind in (("tiny-dspark", "dspark"), ("tiny-dflash", "dflash"), ("tiny-eagle3", "eagle3")):
            with open(os.path.join(fixtures, name, "eagle3_reference.json" if kind == "eagle3"
                                   else "dspark_reference.json")) as f:
                ref = json.load(f)
            model = drafters.load_drafter(os.path.join(fixtures, name)).eval()
            tokens = torch.tensor([ref["tokens"]])
            mask = (torch.arange(24) >= 8)[None]
            a = argparse.Namespace(kind=kind, ttt=4, block_size=4, eval_batch=1, device="cpu")
            draft, want, ok, _ = train_drafter.slot_predictions(a, model, target, tokens, mask, 4,
                                                                contextlib.nullcontext)
            self.assertEqual(ok.sum().item(), 12)                      # anchors 8..19
            for i, p in enumerate(range(8, 20)):
                self.assertEqual(want[0, i].tolist(), ref["tokens"][p + 1:p + 5])
            for e in ref["anchors"]:
                i, truth = e["anchor_pos"] - 8, ref["tokens"][e["anchor_pos"] + 1:e["anchor_pos"] + 5]
                self.assertEqual(draft[0, i].tolist(), torch.tensor(e["forced_logits"]).argmax(-1).tolist(), name)
                lead = lambda xs: next((k for k, m in enumerate(xs) if not m), len(xs))  # noqa: E731
                self.assertEqual(lead((draft[0, i] == want[0, i]).tolist()),
                                 lead([x == y for x, y in zip(e["greedy_block"], truth)]), name)
            data = {"tokens": tokens, "loss_mask": mask, "domain": torch.tensor([0]), "meta": {"domains": ["x"]}}
            res = train_drafter.evaluate(a, model, target, data, torch.tensor([0]), contextlib.nullcontext)
            prefix = (draft[0] == want[0]).float().cumprod(-1)
            self.assertEqual(res["x"]["blocks"], 12)
            self.assertAlmostEqual(res["x"]["tau"], 1 + prefix.sum().item() / 12, places=6)
            cond = (prefix[:, 1].sum() / prefix[:, 0].sum()).item()
            self.assertAlmostEqual(res["x"]["conditional"][1], cond, places=6)

    def test_anchors(self):
        mask = torch.zeros(3, 12, dtype=torch.bool)
        mask[0, 4:12] = True
        mask[1, 4:7] = True      # 2 anchor positions (4, 5)
        anchors, ok = train_drafter.sample_anchors(torch.Generator().manual_seed(0), mask, 5)
        self.assertEqual(ok.sum(1).tolist(), [5, 2, 0])
        self.assertTrue(all(4 <= a <= 10 for a in anchors[0].tolist()))
        self.assertEqual(anchors[1][ok[1]].tolist(), [4, 5])
        self.assertEqual(anchors[0].tolist(), sorted(anchors[0].tolist()))
        anchors, ok = train_drafter.full_blocks(mask, 3)
        self.assertEqual(anchors[0][ok[0]].tolist(), [4, 5, 6, 7, 8])  # p .. p + 3 inside 4..11
        self.assertEqual(ok.sum(1).tolist(), [5, 0, 0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
