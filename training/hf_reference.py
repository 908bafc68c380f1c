#!/usr/bin/env python3
"""hf_reference.py: HF transformers' reference dump of a trained demo model,
for the engine's tests (the same reference.json as tests/make_fixtures.py
writes for the tiny random models: logits of a fixed token sequence, every
decoder layer's raw output, 200 greedy tokens with EOS suppressed), and a
check that our own PyTorch Qwen3 (training/qwen3.py, which trained it)
computes what HF computes on the same folder.

The folder is stored in bf16; like tiny-qwen3-bf16, its references come
from the bf16 weights upcast to fp32 and run in fp32 on the CPU.

Usage: python3 training/hf_reference.py --model models/demo-target --out tests/fixtures/demo-target
"""
import argparse
import os
import sys

import torch
from transformers import Qwen3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import make_fixtures  # noqa: E402
import qwen3  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(8)
    model = Qwen3ForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    # the demo tokenizer's ids: <|endoftext|> 0 ends documents, <|pad|> 1
    make_fixtures.EOS, make_fixtures.PAD = 0, 1
    # 8 positions of 8,192 logits: 1 MB of JSON rather than the tiny fixtures' 24 (3 MB); the
    # 200 greedy tokens check every later position
    make_fixtures.N_TOKENS = 8
    os.makedirs(a.out, exist_ok=True)
    make_fixtures.dump(model, os.path.basename(a.model.rstrip("/")), "bfloat16", a.out)

    ours = qwen3.load_hf(a.model).float().eval()
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(3, model.config.vocab_size, (2, 96), generator=g)
    with torch.no_grad():
        want = model(input_ids=ids, use_cache=False).logits.float()
        got = ours(ids)[0].float()
    rel = ((got - want).abs().max() / want.abs().max()).item()
    print(f"hf_reference: training/qwen3.py against transformers {rel:.2e} of max|logit|")
    if rel > 1e-4:
        sys.exit("hf_reference: our Qwen3 and HF's differ on the trained folder")


if __name__ == "__main__":
    main()
