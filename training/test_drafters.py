"""test_drafters.py: training/drafters.py against the fixture references (tests/make_dspark_fixtures.py's
drafter_backbone + markov_step + block_losses, tests/make_eagle3_fixtures.py's ttt_forward, chain and
losses) on the committed tests/fixtures/tiny-{dspark,dflash,eagle3} with the tiny-qwen3-4l target; save and
reload; the loss terms against hand computations.

Run: /usr/bin/python3 training/test_drafters.py     (torch only; a few seconds on a CPU)
"""
import json
import math
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import torch  # noqa: E402

import drafters  # noqa: E402
import make_dspark_fixtures as mdf  # noqa: E402
import make_eagle3_fixtures as me3  # noqa: E402
import qwen3  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TOL = 1e-4  # of max|reference|: fp32, different summation orders


def fixture(name):
    folder = os.path.join(FIXTURES, name)
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    return folder, cfg, read_safetensors(os.path.join(folder, "model.safetensors"))


def reference_json(name, file):
    with open(os.path.join(FIXTURES, name, file)) as f:
        return json.load(f)


def rel(got, want):
    want = torch.as_tensor(want, dtype=torch.float32)
    return (got - want).abs().max().item() / want.abs().max().item()


class Fixtures:
    @classmethod
    def setUpClass(cls):
        cls.target = qwen3.load_hf(os.path.join(FIXTURES, "tiny-qwen3-4l")).eval()
        cls.tcfg = cls.target.cfg

    def feats(self, tokens, layer_ids):
        with torch.no_grad():
            logits, hidden = self.target(tokens, hidden_layers=tuple(layer_ids))
        return logits, torch.cat(hidden, -1)

    def random_batch(self, seed, b=2, s=40):
        return torch.randint(4, self.tcfg["vocab_size"], (b, s), generator=torch.Generator().manual_seed(seed))


class DSparkForward(Fixtures, unittest.TestCase):
    def check_fixture(self, name):
        folder, cfg, P = fixture(name)
        model = drafters.load_drafter(folder).eval()
        ref = reference_json(name, "dspark_reference.json")
        tokens = torch.tensor([ref["tokens"]])
        _, feats = self.feats(tokens, cfg["target_layer_ids"])
        anchors = torch.tensor([[e["anchor_pos"] for e in ref["anchors"]]])   # all blocks in one call
        with torch.no_grad():
            logits, conf = model(tokens, feats, anchors)
            h, u = model.backbone(feats, anchors, tokens[:, anchors[0]])
        errs = {"forced_logits": max(rel(logits[0, i], e["forced_logits"]) for i, e in enumerate(ref["anchors"])),
                "base_logits": max(rel(u[0, i], e["base_logits"]) for i, e in enumerate(ref["anchors"]))}
        if cfg["enable_confidence_head"]:
            errs["forced_conf"] = max(rel(conf[0, i], e["forced_conf_logits"]) for i, e in enumerate(ref["anchors"]))
        else:
            self.assertIsNone(conf)
        # and the reference's batched path on random sequences, different anchors per row
        seqs = self.random_batch(1)
        _, feats = self.feats(seqs, cfg["target_layer_ids"])
        g = torch.Generator().manual_seed(2)
        anchors = torch.stack([torch.randperm(36, generator=g)[:5].sort().values for _ in range(2)])
        with torch.no_grad():
            logits, conf = model(seqs, feats, anchors)
            idx = anchors[..., None] + torch.arange(cfg["block_size"])
            rows = torch.arange(2)[:, None, None]
            wh, wu = mdf.drafter_backbone(P, cfg, feats, anchors, seqs[rows[..., 0], anchors])
            want_logits, want_conf = mdf.markov_step(P, cfg, wh, wu, seqs[rows, idx])
        errs["batch_logits"] = rel(logits, want_logits)
        if conf is not None:
            errs["batch_conf"] = rel(conf, want_conf)
        print(f"\n  {name}: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()) + " (of max|ref|)")
        for k, v in errs.items():
            self.assertLess(v, TOL, k)
        return model, seqs, feats, anchors

    def test_dspark(self):
        self.check_fixture("tiny-dspark")

    def test_dflash(self):
        self.check_fixture("tiny-dflash")

    @unittest.skipUnless(drafters.USE_SDPA, "torch without scaled_dot_product_attention")
    def test_sdpa_matches_explicit_mask(self):
        model, seqs, feats, anchors = self.check_fixture("tiny-dspark")
        with torch.no_grad():
            a = model(seqs, feats, anchors)
            drafters.USE_SDPA = False
            try:
                b = model(seqs, feats, anchors)
            finally:
                drafters.USE_SDPA = True
        self.assertLess(rel(a[0], b[0]), TOL)
        self.assertLess(rel(a[1], b[1]), TOL)

    def test_sdpa_call_with_documented_semantics(self):
        """The SDPA branches (drafters.masked_attention, qwen3's cached and causal attention) through a stand-in
        written from torch 2's documented semantics (boolean mask: True takes part), so their argument shapes
        and mask sense are checked on torch 1.13 too."""
        def standin(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
            t, s = q.shape[-2], k.shape[-2]
            bias = torch.zeros(t, s)
            if is_causal:
                bias = bias.masked_fill(~torch.ones(t, s, dtype=torch.bool).tril(), float("-inf"))
            if attn_mask is not None:
                bias = bias.masked_fill(~attn_mask, float("-inf"))
            return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) + bias, -1) @ v

        folder, cfg, _ = fixture("tiny-dspark")
        model = drafters.load_drafter(folder).eval()
        seqs = self.random_batch(9)
        _, feats = self.feats(seqs, cfg["target_layer_ids"])
        anchors = torch.tensor([[3, 9, 30], [0, 17, 18]])
        e3 = drafters.load_drafter(os.path.join(FIXTURES, "tiny-eagle3")).eval()

        def run():
            cache = self.target.new_cache(40)
            with torch.no_grad():
                return (model(seqs, feats, anchors)[0], e3.ttt_forward(seqs, feats)[-1],
                        torch.cat([self.target(seqs[:, a:b], cache=cache)[0] for a, b in ((0, 30), (30, 31), (31, 40))],
                                  1),
                        self.target(seqs)[0])
        want = run()
        saved = (getattr(torch.nn.functional, "scaled_dot_product_attention", None), drafters.USE_SDPA, qwen3.USE_SDPA)
        torch.nn.functional.scaled_dot_product_attention = standin
        drafters.USE_SDPA = qwen3.USE_SDPA = True
        try:
            got = run()
        finally:
            if saved[0] is None:
                del torch.nn.functional.scaled_dot_product_attention
            else:
                torch.nn.functional.scaled_dot_product_attention = saved[0]
            drafters.USE_SDPA, qwen3.USE_SDPA = saved[1:]
        for name, g, w in zip(("dspark", "eagle3 ttt", "qwen3 cached", "qwen3 causal"), got, want):
            self.assertLess(rel(g, w), TOL, name)

    def test_losses_as_block_losses(self):
        """The training path (drafters' forward, block_targets, dspark_losses) against the fixture trainer's."""
        for name in ("tiny-dspark", "tiny-dflash"):
            folder, cfg, P = fixture(name)
            model = drafters.load_drafter(folder).eval()
            seqs = self.random_batch(3, b=3, s=30)
            logits_t, feats = self.feats(seqs, cfg["target_layer_ids"])
            pt = torch.softmax(logits_t, -1)
            g = torch.Generator().manual_seed(4)  # 6 distinct anchors per row, every label inside the 30
            anchors = torch.stack([torch.randperm(30 - cfg["block_size"], generator=g)[:6].sort().values
                                   for _ in range(3)])
            with torch.no_grad():
                want = mdf.block_losses(P, cfg, seqs, feats, pt, anchors)
                logits, conf = model(seqs, feats, anchors)
                labels, pos, valid = drafters.block_targets(seqs, torch.ones_like(seqs, dtype=torch.bool), anchors,
                                                            torch.ones_like(anchors, dtype=torch.bool),
                                                            cfg["block_size"])
                got = drafters.dspark_losses(logits, conf, labels, pt[torch.arange(3)[:, None, None], pos], valid)
            self.assertTrue(valid.all())
            for k in ("ce", "l1", "bce"):
                if k in want:
                    self.assertAlmostEqual(got[k].item(), want[k].item(), delta=1e-5 * abs(want[k].item()), msg=k)


class Eagle3Forward(Fixtures, unittest.TestCase):
    def test_ttt_forward(self):
        folder, cfg, P = fixture("tiny-eagle3")
        model = drafters.load_drafter(folder).eval()
        ref = reference_json("tiny-eagle3", "eagle3_reference.json")
        tokens = torch.tensor([ref["tokens"]])
        _, feats = self.feats(tokens, cfg["target_layer_ids"])
        ttt = cfg["ttt_length"]
        with torch.no_grad():
            outs = model.ttt_forward(tokens, feats)
        errs = {"forced_logits (json)": max(rel(outs[j][0, e["anchor_pos"] - 1], e["forced_logits"][j])
                                            for e in ref["anchors"] for j in range(ttt))}
        errs["chain (live)"] = 0.0
        for e in ref["anchors"]:
            a = e["anchor_pos"]
            with torch.no_grad():
                tf = me3.chain(P, cfg, feats[:, :a], ref["tokens"], a, forced=ref["tokens"][a + 1:a + ttt])
            errs["chain (live)"] = max(errs["chain (live)"], max(rel(outs[j][0, a - 1], tf["logits"][j])
                                                                 for j in range(ttt)))
        seqs = self.random_batch(5)
        _, feats = self.feats(seqs, cfg["target_layer_ids"])
        with torch.no_grad():
            got, want = model.ttt_forward(seqs, feats), me3.ttt_forward(P, cfg, seqs, feats, ttt)
        # rows whose label falls past the sequence are garbage in both: compare the labelled ones
        errs["batch ttt_forward"] = max(rel(g[:, :38 - j], w[:, :38 - j]) for j, (g, w) in enumerate(zip(got, want)))
        print("\n  tiny-eagle3: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()) + " (of max|ref|)")
        for k, v in errs.items():
            self.assertLess(v, TOL, k)

    def test_loss_as_fixture_losses(self):
        folder, cfg, P = fixture("tiny-eagle3")
        model = drafters.load_drafter(folder).eval()
        seqs = self.random_batch(6, b=3, s=30)
        logits_t, feats = self.feats(seqs, cfg["target_layer_ids"])
        pt = torch.softmax(logits_t, -1)
        with torch.no_grad():
            want, _ = me3.losses(P, cfg, seqs, feats, pt)
            terms = drafters.ttt_targets(model.ttt_forward(seqs, feats), pt, torch.ones_like(seqs, dtype=torch.bool))
            got, _ = drafters.eagle3_loss(*terms, decay=cfg["step_loss_decay"])
        self.assertAlmostEqual(got.item(), want.item(), delta=1e-5 * want.item())


class SaveLoad(Fixtures, unittest.TestCase):
    def test_configs_as_fixtures(self):
        """The config builders give the fixtures' config.json exactly (their hyperparameters)."""
        common = dict(layers=2, block_size=mdf.BLOCK, mask_token_id=mdf.MASK_TOKEN,
                      target_layer_ids=mdf.TARGET_LAYER_IDS, num_anchors=64)
        built = {"tiny-dspark": drafters.dspark_config(self.tcfg, markov_rank=mdf.MARKOV_RANK, confidence=True,
                                                       **common),
                 "tiny-dflash": drafters.dspark_config(self.tcfg, markov_rank=0, confidence=False, **common),
                 "tiny-eagle3": drafters.eagle3_config(self.tcfg, target_layer_ids=mdf.TARGET_LAYER_IDS,
                                                       ttt_length=me3.TTT, step_loss_decay=0.8)}
        for name, cfg in built.items():
            _, want, W = fixture(name)
            self.assertEqual(cfg, want, name)
            model = (drafters.Eagle3 if name == "tiny-eagle3" else drafters.DSpark)(cfg, self.target)
            shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
            self.assertEqual(shapes, {k: tuple(v.shape) for k, v in W.items()}, name)
            # frozen copies of the target's embedding and head; everything else trained
            self.assertTrue(torch.equal(model.embed_tokens.weight, self.target.model.embed_tokens.weight))
            self.assertTrue(torch.equal(model.lm_head.weight, self.target.lm_head.weight))
            names = {n for n, p in model.named_parameters() if p.requires_grad}
            self.assertEqual(names, set(W) - set(drafters.FROZEN), name)

    def test_tied_target(self):
        torch.manual_seed(0)
        target = qwen3.Qwen3(qwen3.make_config(vocab=96, hidden=32, layers=4, heads=2, head_dim=16, kv_heads=1,
                                               intermediate=48))
        cfg = drafters.dspark_config(target.cfg, target_layer_ids=(0, 1, 2), block_size=4)
        model = drafters.DSpark(cfg, target)
        self.assertTrue(torch.equal(model.lm_head.weight, target.model.embed_tokens.weight))
        self.assertIs(cfg["tie_word_embeddings"], False)
        with self.assertRaises(AssertionError):  # the final layer's HF output is normed
            drafters.dspark_config(target.cfg, target_layer_ids=(1, 3))

    def test_roundtrip(self):
        for name in ("tiny-dspark", "tiny-dflash", "tiny-eagle3"):
            folder, want_cfg, _ = fixture(name)
            model = drafters.load_drafter(folder).eval()
            with tempfile.TemporaryDirectory() as tmp:
                drafters.save_drafter(model, os.path.join(tmp, "f32"), dtype="F32")
                drafters.save_drafter(model, os.path.join(tmp, "bf16"))
                for fn in ("config.json", "model.safetensors"):  # F32: byte for byte what the fixture maker wrote
                    with open(os.path.join(folder, fn), "rb") as a, open(os.path.join(tmp, "f32", fn), "rb") as b:
                        self.assertTrue(a.read() == b.read(), f"{name}/{fn}")
                with open(os.path.join(tmp, "bf16", "config.json")) as f:
                    cfg = json.load(f)
                stored = read_safetensors(os.path.join(tmp, "bf16", "model.safetensors"))
                loaded = drafters.load_drafter(os.path.join(tmp, "bf16")).eval()
            self.assertEqual(sorted(cfg), sorted(want_cfg))
            self.assertEqual(cfg["dtype"], "bfloat16")
            self.assertTrue(all(t.dtype == torch.bfloat16 for t in stored.values()))
            rounded = drafters.load_drafter(folder).eval()
            with torch.no_grad():
                for p in rounded.parameters():
                    p.copy_(p.bfloat16().float())
            seqs = self.random_batch(7)
            _, feats = self.feats(seqs, cfg["target_layer_ids"])
            with torch.no_grad():
                if name == "tiny-eagle3":
                    got, exact = loaded.ttt_forward(seqs, feats)[-1], rounded.ttt_forward(seqs, feats)[-1]
                else:
                    anchors = torch.tensor([[3, 11, 20], [5, 6, 30]])
                    got, exact = loaded(seqs, feats, anchors)[0], rounded(seqs, feats, anchors)[0]
            self.assertLess((got - exact).abs().max().item(), 1e-6, name)


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


class Losses(unittest.TestCase):
    def test_slot_weights(self):
        w = drafters.slot_weights(7).tolist()
        for k, (got, want) in enumerate(zip(w, [1, .78, .61, .47, .37, .29, .22])):  # the digest's rounded values
            self.assertAlmostEqual(got, math.exp(-k / 4), places=6)
            self.assertAlmostEqual(got, want, delta=0.005)

    def test_dspark_losses_by_hand(self):
        logits = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-0.5, 1.5, 0.0]]
        labels = [0, 2, 1]
        pt = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]
        conf = [1.2, -0.3, 0.4]
        for valid in ([True, True, True], [True, True, False]):
            got = drafters.dspark_losses(torch.tensor([[logits]]), torch.tensor([[conf]]), torch.tensor([[labels]]),
                                         torch.tensor([[pt]]), torch.tensor([[valid]]))
            num = {"ce": 0.0, "l1": 0.0, "bce": 0.0}
            den = 0.0
            for k in range(3):
                if not valid[k]:
                    continue
                w = math.exp(-k / 4)
                pd = softmax(logits[k])
                l1 = sum(abs(a - b) for a, b in zip(pd, pt[k]))
                c = 1 - 0.5 * l1
                sig = 1 / (1 + math.exp(-conf[k]))
                num["ce"] += w * -math.log(pd[labels[k]])
                num["l1"] += w * l1
                num["bce"] += w * -(c * math.log(sig) + (1 - c) * math.log(1 - sig))
                den += w
            for key in num:
                self.assertAlmostEqual(got[key].item(), num[key] / den, places=5, msg=f"{key} valid={valid}")
            want_total = 0.1 * num["ce"] / den + 0.9 * num["l1"] / den + 1.0 * num["bce"] / den
            self.assertAlmostEqual(drafters.combine(got, drafters.DSPARK_ALPHAS).item(), want_total, places=5)
            self.assertAlmostEqual(drafters.combine(got, drafters.DFLASH_ALPHAS).item(), num["ce"] / den, places=5)

    def test_bce_target_has_no_gradient(self):
        logits = torch.randn(1, 2, 3, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
        conf = torch.randn(1, 2, 3, generator=torch.Generator().manual_seed(1)).requires_grad_()  # d BCE / d c* = -conf
        pt = torch.softmax(torch.randn(1, 2, 3, 5), -1)
        out = drafters.dspark_losses(logits, conf, torch.zeros(1, 2, 3, dtype=torch.long), pt,
                                     torch.ones(1, 2, 3, dtype=torch.bool))
        g_logits, g_conf = torch.autograd.grad(out["bce"], [logits, conf], allow_unused=True)
        self.assertTrue(g_logits is None or g_logits.abs().max().item() == 0.0)
        self.assertGreater(g_conf.abs().max().item(), 0.0)

    def test_eagle3_step_decay_by_hand(self):
        steps = [[[1.0, 0.0, -1.0], [0.3, 0.3, 0.9]], [[0.0, 2.0, 0.0], [1.0, -1.0, 0.5]],
                 [[0.2, 0.1, 0.0], [0.0, 0.0, 3.0]]]
        pts = [[[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]], [[0.1, 0.8, 0.1], [0.6, 0.1, 0.3]],
               [[0.3, 0.3, 0.4], [0.0, 0.1, 0.9]]]
        valid = [[True, True], [True, False], [False, True]]
        got, per_step = drafters.eagle3_loss([torch.tensor([s]) for s in steps], [torch.tensor([p]) for p in pts],
                                             [torch.tensor([v]) for v in valid], decay=0.8)
        total, wsum = 0.0, 0.0
        for j in range(3):
            ces = [-sum(p * math.log(q) for p, q in zip(pts[j][i], softmax(steps[j][i])))
                   for i in range(2) if valid[j][i]]
            self.assertAlmostEqual(per_step[j].item(), sum(ces) / len(ces), places=5)
            total += 0.8 ** j * sum(ces) / len(ces)
            wsum += 0.8 ** j
        self.assertAlmostEqual(got.item(), total / wsum, places=5)

    def test_targets_masks(self):
        """block_targets: labels a + k + 1, valid contiguous from slot 0 and inside the response."""
        tokens = torch.arange(10)[None] + 100
        mask = torch.tensor([[False, False, True, True, True, False, True, True, True, True]])
        anchors = torch.tensor([[2, 3, 7, 0]])
        labels, pos, valid = drafters.block_targets(tokens, mask, anchors, torch.tensor([[True, True, True, False]]), 3)
        self.assertEqual(labels[0, 0].tolist(), [103, 104, 105])
        self.assertEqual(pos[0, 2].tolist(), [7, 8, 8])          # clamped past the end
        self.assertEqual(valid[0].tolist(), [[True, True, False], [True, False, False], [True, True, False],
                                             [False, False, False]])  # slot 2 of anchor 3 follows a gap
        p = torch.zeros(1, 6, 1)
        resp = torch.tensor([[False, True, True, True, True, False]])
        _, _, ok = drafters.ttt_targets([torch.zeros(1, 4, 1)] * 2, p, resp)
        self.assertEqual([v[0].tolist() for v in ok], [[True, True, True, False], [True, True, False]])


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main(verbosity=2)
