#!/usr/bin/env python3
"""make_fixtures.py: HF transformers reference dumps for tests/test_reference.cpp.

Builds tiny random Qwen3 and Llama models from configs (no network, no
download), in fp32, saves each as an HF checkpoint folder (config.json +
model.safetensors) and writes reference.json beside it: HF's eager fp32
logits for a fixed token sequence, the raw outputs of every decoder layer
(forward hooks; HF's hidden_states[L] is normed, so hooks, not
hidden_states, give the last layer), and 200 greedy tokens from a short
prompt (model.generate, EOS suppressed by min_new_tokens).

    tiny-qwen3/       Qwen3, untied LM head, fp32 weights, random norm weights
    tiny-llama/       Llama, tied embeddings, Llama 3 rope scaling that moves
                      frequencies in all three bands at head_dim 16
    tiny-qwen3-bf16/  the same Qwen3 stored in bf16; its references come from
                      the bf16 weights upcast to fp32 and run in fp32 (the
                      rotary inv_freq stays fp32, as any loader computes it)

Runs on the CPU (deterministic, no TF32), a few seconds. Usage:
    python3 tests/make_fixtures.py [--out tests/fixtures]
reference.json (version 1):
    {"version": 1, "model": name, "dtype": "float32"|"bfloat16",
     "torch": ver, "transformers": ver,
     "tokens": [T], "logits": [[V] x T], "hidden_layers": [0, 1],
     "hidden": {"0": [[d] x T], "1": ...},
     "greedy_prompt": [P], "greedy": [200], "eos_suppressed": id}
Floats are written with 9 significant digits (exact for fp32).
"""
import argparse
import copy
import inspect
import json
import math
import os

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

VERSION = 1
SEED = 1234
N_TOKENS = 24
N_PROMPT = 8
N_GREEDY = 200
BOS, EOS, PAD = 1, 2, 0

COMMON = dict(
    vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
    max_position_embeddings=512, initializer_range=0.2, hidden_act="silu",
    bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, attention_bias=False,
)
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}


def make_config(cls, rope_theta, rope_scaling, **kw):
    """transformers 5 takes rope_parameters (theta inside), 4.x rope_theta + rope_scaling."""
    params = inspect.signature(cls.__init__).parameters
    if "rope_parameters" in params:
        rope = {"rope_type": "default", "rope_theta": rope_theta}
        if rope_scaling:
            rope = dict(rope_scaling, rope_theta=rope_theta)
        cfg = cls(rope_parameters=rope, **kw)
    else:
        cfg = cls(rope_theta=rope_theta, rope_scaling=rope_scaling, **kw)
    cfg._attn_implementation = "eager"
    return cfg


def build(cls, cfg):
    torch.manual_seed(SEED)
    model = cls(cfg).float().eval()
    # HF initialises RMSNorm weights to 1; perturb them so that applying (and
    # loading) each norm weight is tested, q_norm/k_norm included.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    return model


def r9(x):
    """fp32 values as JSON numbers with 9 significant digits (round-trips fp32)."""
    if isinstance(x, list):
        return [r9(v) for v in x]
    return float("%.9g" % x)


def check_llama3_bands(model, cfg_scaling, theta, head_dim):
    """The scaling must move frequencies in every band at this size, or the fixture tests nothing."""
    inv = model.model.rotary_emb.inv_freq.double()
    base = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    old = cfg_scaling["original_max_position_embeddings"]
    lo_wl = old / cfg_scaling["low_freq_factor"]
    hi_wl = old / cfg_scaling["high_freq_factor"]
    bands = []
    for i, f in enumerate(base.tolist()):
        wl = 2 * math.pi / f
        band = "high (kept)" if wl < hi_wl else ("low (/factor)" if wl > lo_wl else "medium (smoothed)")
        bands.append(band)
        print(f"  inv_freq[{i}] wavelen {wl:10.2f}  {band:18s} base {f:.6e}  HF {inv[i].item():.6e}")
    assert {b.split()[0] for b in bands} == {"high", "medium", "low"}, "llama3 scaling does not cover all bands"
    assert not torch.allclose(inv, base), "llama3 scaling left inv_freq unchanged"


def dump(model, name, dtype, out_dir):
    cfg = model.config
    g = torch.Generator().manual_seed(SEED + 1)
    tokens = torch.randint(3, cfg.vocab_size, (1, N_TOKENS), generator=g)
    prompt = torch.randint(3, cfg.vocab_size, (1, N_PROMPT), generator=g)

    # raw decoder-layer outputs through hooks
    captured = {}
    hooks = []
    for l, layer in enumerate(model.model.layers):
        def hook(mod, inp, out, l=l):
            captured[l] = (out[0] if isinstance(out, tuple) else out).detach()
        hooks.append(layer.register_forward_hook(hook))
    with torch.no_grad():
        res = model(input_ids=tokens, output_hidden_states=True, use_cache=False)
    for h in hooks:
        h.remove()
    n_layers = cfg.num_hidden_layers
    for l in range(n_layers - 1):  # the hooks agree with hidden_states[l+1] below the last layer
        assert torch.equal(captured[l], res.hidden_states[l + 1]), f"hook and hidden_states[{l + 1}] differ"
    logits = res.logits[0].float()

    with torch.no_grad():
        gen = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=N_GREEDY, min_new_tokens=N_GREEDY, eos_token_id=EOS,
                             pad_token_id=PAD)
    greedy = gen[0, N_PROMPT:].tolist()
    assert len(greedy) == N_GREEDY and EOS not in greedy

    # cross-check: one teacher-forced forward over prompt + greedy picks the same tokens (EOS masked)
    with torch.no_grad():
        full = model(input_ids=gen[:, :-1], use_cache=False).logits[0, N_PROMPT - 1:].float()
    full[:, EOS] = -math.inf
    agree = (full.argmax(-1) == gen[0, N_PROMPT:]).sum().item()
    top2 = full.topk(2, -1).values
    min_gap = (top2[:, 0] - top2[:, 1]).min().item()
    print(f"{name}: logits std {logits.std().item():.3f}, greedy agrees with a teacher-forced pass at "
          f"{agree}/{N_GREEDY} steps, smallest top-2 gap {min_gap:.2e}, distinct greedy tokens {len(set(greedy))}")

    ref = {
        "version": VERSION, "model": name, "dtype": dtype,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "tokens": tokens[0].tolist(),
        "logits": r9(logits.tolist()),
        "hidden_layers": list(range(n_layers)),
        "hidden": {str(l): r9(captured[l][0].float().tolist()) for l in range(n_layers)},
        "greedy_prompt": prompt[0].tolist(),
        "greedy": greedy,
        "eos_suppressed": EOS,
    }
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")


def add_legacy_rope_keys(folder, rope_theta, rope_scaling):
    """Hub checkpoints (Qwen3-8B, Llama-3.1-8B) carry rope_theta and rope_scaling at the top
    of config.json; transformers 5 writes rope_parameters instead. Keep both, so the C++
    loader sees the format of the real checkpoints it will load."""
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg.setdefault("rope_theta", rope_theta)
    if cfg.get("rope_scaling") is None:
        cfg["rope_scaling"] = dict(rope_scaling) if rope_scaling else None
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def save(model, name, dtype, out, rope_theta, rope_scaling):
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    add_legacy_rope_keys(folder, rope_theta, rope_scaling)
    for extra in ("generation_config.json",):  # not needed by the C++ side
        p = os.path.join(folder, extra)
        if os.path.exists(p):
            os.remove(p)
    return folder


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)  # one reduction order
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")

    # Qwen3: untied head, QK-norm, no rope scaling
    qcfg = make_config(Qwen3Config, 1e6, None, tie_word_embeddings=False, **COMMON)
    qwen = build(Qwen3ForCausalLM, qcfg)
    folder = save(qwen, "tiny-qwen3", "float32", args.out, 1e6, None)
    dump(qwen, "tiny-qwen3", "float32", folder)

    # the same weights stored in bf16; references from the bf16 values upcast to
    # fp32. Only the parameters are rounded: model.to(bfloat16) would round the
    # rotary inv_freq buffer too, which no loader of the checkpoint does.
    qwen16 = copy.deepcopy(qwen).to(torch.bfloat16)
    folder = save(qwen16, "tiny-qwen3-bf16", "bfloat16", args.out, 1e6, None)
    qwen_rounded = copy.deepcopy(qwen)
    with torch.no_grad():
        for p in qwen_rounded.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    assert qwen_rounded.model.rotary_emb.inv_freq.dtype == torch.float32
    dump(qwen_rounded, "tiny-qwen3-bf16", "bfloat16", folder)

    # Llama: tied embeddings, Llama 3 rope scaling
    lcfg = make_config(LlamaConfig, 500000.0, LLAMA3_SCALING, tie_word_embeddings=True,
                       mlp_bias=False, **COMMON)
    llama = build(LlamaForCausalLM, lcfg)
    print("tiny-llama rope bands (wavelen thresholds: high < 16 < medium < 64 < low):")
    check_llama3_bands(llama, LLAMA3_SCALING, 500000.0, 16)
    assert llama.lm_head.weight.data_ptr() == llama.model.embed_tokens.weight.data_ptr(), "embeddings not tied"
    folder = save(llama, "tiny-llama", "float32", args.out, 500000.0, LLAMA3_SCALING)
    dump(llama, "tiny-llama", "float32", folder)

    for name in ("tiny-qwen3", "tiny-qwen3-bf16", "tiny-llama"):
        folder = os.path.join(args.out, name)
        print(name + ": " + ", ".join(f"{f} {os.path.getsize(os.path.join(folder, f))} B"
                                      for f in sorted(os.listdir(folder))))


if __name__ == "__main__":
    main()
