"""test_qwen3.py: training/qwen3.py against tests/make_dspark_fixtures.py's
target_forward (itself validated against HF eager) on tests/fixtures/tiny-qwen3-4l,
HF-folder save/load round trips, and broken variants that must fail the comparison.

Run: /usr/bin/python3 training/test_qwen3.py     (torch only; a few seconds on a CPU)
"""
import copy
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import torch  # noqa: E402

import make_dspark_fixtures as ref  # noqa: E402
import qwen3  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "tiny-qwen3-4l")
TOL = 1e-4  # fp32, different summation orders (batched matmuls vs einsum)


def random_ids(seed, t, vocab):
    return torch.randint(vocab, (1, t), generator=torch.Generator().manual_seed(seed))


def compare(model, W, cfg, ids):
    """Largest |ours - reference| over the logits and every decoder layer's output."""
    with torch.no_grad():
        logits, hidden = model(ids, hidden_layers=tuple(range(cfg["num_hidden_layers"])))
        want_logits, want_hidden, _ = ref.target_forward(W, cfg, ids)
    diffs = [(logits - want_logits).abs().max()] + [(a - b).abs().max() for a, b in zip(hidden, want_hidden)]
    return max(diffs).item()


def bf16_rounded(model):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.bfloat16().float())
    return m


def tiny_tied_model(seed):
    torch.manual_seed(seed)
    return qwen3.Qwen3(qwen3.make_config(vocab=96, hidden=32, layers=2, heads=4, head_dim=8, kv_heads=2,
                                         intermediate=48, tied=True, theta=10000.0, init_std=0.2)).eval()


class Forward(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cfg = ref.load_config(FIXTURE)
        cls.W = read_safetensors(os.path.join(FIXTURE, "model.safetensors"))
        cls.model = qwen3.load_hf(FIXTURE).eval()
        cls.ids = random_ids(1, 40, cls.cfg["vocab_size"])

    def test_single_sequence(self):
        d = compare(self.model, self.W, self.cfg, self.ids)
        print(f"\n  one sequence of 40: max|ours - target_forward| {d:.2e} (logits and 4 layer outputs)")
        self.assertLess(d, TOL)

    def test_batch_rows_as_alone(self):
        ids = torch.cat([self.ids, random_ids(2, 40, self.cfg["vocab_size"])])
        d = compare(self.model, self.W, self.cfg, ids)
        with torch.no_grad():
            batch, hb = self.model(ids, hidden_layers=(0, 2))
            alone = [self.model(ids[r:r + 1], hidden_layers=(0, 2)) for r in range(2)]
        rows = max(max((batch[r] - a[0][0]).abs().max().item(), (hb[0][r] - a[1][0][0]).abs().max().item(),
                       (hb[1][r] - a[1][1][0]).abs().max().item()) for r, a in enumerate(alone))
        print(f"\n  batch of 2: vs target_forward {d:.2e}, rows vs alone {rows:.2e}")
        self.assertLess(d, TOL)
        self.assertLess(rows, 1e-5)
        self.assertGreater((batch[0] - batch[1]).abs().max().item(), 1.0)  # the rows do differ

    def test_hf_eager_references(self):
        """Directly against HF's eager fp32 dumps (tests/make_fixtures.py), with its HF-written F32 and BF16 files."""
        for name in ("tiny-qwen3", "tiny-qwen3-bf16"):
            folder = os.path.join(ROOT, "tests", "fixtures", name)
            with open(os.path.join(folder, "reference.json")) as f:
                want = json.load(f)
            model = qwen3.load_hf(folder).eval()
            with torch.no_grad():
                logits, hidden = model(torch.tensor([want["tokens"]]), hidden_layers=tuple(want["hidden_layers"]))
            pairs = [(logits[0], want["logits"])] + [(h[0], want["hidden"][str(i)])
                                                      for h, i in zip(hidden, want["hidden_layers"])]
            rel = max((a - torch.tensor(b)).abs().max().item() / torch.tensor(b).abs().max().item() for a, b in pairs)
            print(f"\n  {name} vs HF eager: max|err| / max|ref| {rel:.1e}")
            self.assertLess(rel, 1e-4)

    def test_tied_embeddings(self):
        model = tiny_tied_model(3)
        self.assertNotIn("lm_head.weight", model.state_dict())
        W = dict(model.state_dict())
        W["lm_head.weight"] = W["model.embed_tokens.weight"]
        d = compare(model, W, model.cfg, random_ids(4, 24, 96))
        print(f"\n  tied, theta 1e4: max|ours - target_forward| {d:.2e}")
        self.assertLess(d, TOL)

    def test_kv_cache(self):
        """A prompt of 10 then 2-token and 1-token steps through the cache: the full forward's logits."""
        ids = torch.cat([self.ids, random_ids(2, 40, self.cfg["vocab_size"])])[:, :16]
        cache = self.model.new_cache(20)
        with torch.no_grad():
            full = self.model(ids)[0]
            parts = [self.model(ids[:, a:b], cache=cache)[0] for a, b in ((0, 10), (10, 12), (12, 13), (13, 16))]
        d = (torch.cat(parts, 1) - full).abs().max().item()
        print(f"\n  KV cache 10 + 2 + 1 + 3 tokens vs one forward: max|diff| {d:.1e}")
        self.assertLess(d, TOL)
        self.assertEqual([kv["len"] for kv in cache], [16] * 4)
        with self.assertRaises(AssertionError):
            with torch.no_grad():
                self.model(ids[:, :5], cache=cache)  # past max_len

    @unittest.skipUnless(qwen3.USE_SDPA, "torch without scaled_dot_product_attention")
    def test_sdpa_matches_explicit_mask(self):
        ids = torch.cat([self.ids, random_ids(2, 40, self.cfg["vocab_size"])])
        with torch.no_grad():
            a = self.model(ids)[0]
            qwen3.USE_SDPA = False
            try:
                b = self.model(ids)[0]
            finally:
                qwen3.USE_SDPA = True
        self.assertLess((a - b).abs().max().item(), TOL)

    def test_broken_variants_fail(self):
        """Each deliberate bug must push the difference far past TOL, else the comparison is blind to it."""
        orig_rope, orig_attn = qwen3.apply_rope, qwen3.causal_attention

        def attend(q, k, v, causal):  # k, v already one per query head
            t = q.shape[2]
            s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
            if causal:
                s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
            return torch.softmax(s, -1) @ v

        def attn_no_mask(q, k, v):
            rep = q.shape[1] // k.shape[1]
            return attend(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), causal=False)

        def attn_control(q, k, v):  # the right thing through the same helper: must pass
            rep = q.shape[1] // k.shape[1]
            return attend(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), causal=True)

        def attn_tiled_kv(q, k, v):  # query head h reads kv head h % Hkv instead of h // (H / Hkv)
            rep = q.shape[1] // k.shape[1]
            return attend(q, k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1), causal=True)

        no_qk_norm = copy.deepcopy(self.model)
        for layer in no_qk_norm.model.layers:
            layer.self_attn.q_norm = layer.self_attn.k_norm = torch.nn.Identity()
        variants = [("RoPE off", lambda: setattr(qwen3, "apply_rope", lambda x, c, s: x), self.model),
                    ("no causal mask", lambda: setattr(qwen3, "causal_attention", attn_no_mask), self.model),
                    ("GQA heads tiled", lambda: setattr(qwen3, "causal_attention", attn_tiled_kv), self.model),
                    ("QK-norm off", lambda: None, no_qk_norm)]
        qwen3.causal_attention = attn_control
        try:
            self.assertLess(compare(self.model, self.W, self.cfg, self.ids), TOL)
        finally:
            qwen3.causal_attention = orig_attn
        for name, patch, model in variants:
            patch()
            try:
                d = compare(model, self.W, self.cfg, self.ids)
            finally:
                qwen3.apply_rope, qwen3.causal_attention = orig_rope, orig_attn
            print(f"\n  broken variant {name:16s}: max|ours - target_forward| {d:.2e}")
            self.assertGreater(d, 100 * TOL, name)


class SaveLoad(unittest.TestCase):
    def check_roundtrip(self, model, ids, name):
        with tempfile.TemporaryDirectory() as tmp:
            qwen3.save_hf(model, tmp)
            loaded = qwen3.load_hf(tmp).eval()
            stored = read_safetensors(os.path.join(tmp, "model.safetensors"))
            with open(os.path.join(tmp, "config.json")) as f:
                cfg = json.load(f)
        self.assertEqual(sorted(stored), sorted(model.state_dict()))
        self.assertTrue(all(t.dtype == torch.bfloat16 for t in stored.values()))
        with torch.no_grad():
            got, want, exact = loaded(ids)[0], model(ids)[0], bf16_rounded(model)(ids)[0]
        rounded = (got - exact).abs().max().item()
        rel = (got - want).abs().max().item() / want.abs().max().item()
        print(f"\n  {name} bf16 round trip: vs bf16-rounded model {rounded:.1e}; vs fp32 model {rel:.2e} of max|logit|")
        self.assertLess(rounded, 1e-6)  # the same weights, the same ops
        self.assertLess(rel, 5e-2)      # bf16 weights (8 bits of mantissa) through 2 to 4 layers
        return cfg

    def test_fixture_roundtrip_and_config(self):
        model = qwen3.load_hf(FIXTURE).eval()
        cfg = self.check_roundtrip(model, random_ids(5, 32, 512), "tiny-qwen3-4l")
        with open(os.path.join(FIXTURE, "config.json")) as f:
            fixture = json.load(f)
        self.assertLessEqual(set(fixture) - {"transformers_version"}, set(cfg))
        for k in fixture:
            if k not in ("transformers_version", "dtype"):
                self.assertEqual(cfg[k], fixture[k], k)
        self.assertEqual((cfg["dtype"], cfg["torch_dtype"]), ("bfloat16", "bfloat16"))

    def test_tied_roundtrip(self):
        cfg = self.check_roundtrip(tiny_tied_model(6), random_ids(7, 24, 96), "tied")
        self.assertEqual(cfg["architectures"], ["Qwen3ForCausalLM"])
        self.assertEqual(cfg["model_type"], "qwen3")
        self.assertIs(cfg["tie_word_embeddings"], True)
        self.assertEqual(cfg["rope_theta"], 10000.0)
        self.assertEqual(cfg["rope_parameters"], {"rope_theta": 10000.0, "rope_type": "default"})
        self.assertEqual((cfg["head_dim"], cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"]), (8, 0, 0, 1))

    def test_bf16_file_as_hf_writes_it(self):
        """tiny-qwen3-bf16/model.safetensors was written by HF (safetensors); ours must be the same bytes."""
        folder = os.path.join(ROOT, "tests", "fixtures", "tiny-qwen3-bf16")
        with tempfile.TemporaryDirectory() as tmp:
            qwen3.save_hf(qwen3.load_hf(folder), tmp)
            with open(os.path.join(tmp, "model.safetensors"), "rb") as f:
                ours = f.read()
        with open(os.path.join(folder, "model.safetensors"), "rb") as f:
            self.assertTrue(f.read() == ours)

    def test_f32_roundtrip_exact(self):
        model = tiny_tied_model(8)
        with tempfile.TemporaryDirectory() as tmp:
            qwen3.save_hf(model, tmp, dtype="F32")
            loaded = qwen3.load_hf(tmp)
        for k, v in model.state_dict().items():
            self.assertTrue(torch.equal(v, loaded.state_dict()[k]), k)


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main(verbosity=2)
