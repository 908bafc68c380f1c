#!/usr/bin/env python3
"""tokenizer.py: a byte-level BPE tokenizer for the demo models, trained with
HF `tokenizers` on the corpus's training splits, in Qwen3's layout (NFC
normalizer, Qwen3's split regex then ByteLevel without its own regex,
ByteLevel decoder), which is the subset traces/tokenizer.cpp reads.

Special tokens, first in the vocabulary: <|endoftext|> (0, end of a
document, the models' EOS), <|pad|> (1) and <|mask|> (2, the DSpark/DFlash
drafters' MASK).

Usage: python3 training/tokenizer.py --corpus DIR --vocab 8192 --out DIR/tokenizer.json
"""
import argparse
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

QWEN3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|pad|>", "<|mask|>"]


def documents(corpus, domains):
    for d in domains:
        with open(os.path.join(corpus, f"{d}.train.jsonl")) as f:
            for line in f:
                yield json.loads(line)["text"]


def build(vocab):
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    return tok, trainer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--domains", default="python,c,prose")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tok, trainer = build(a.vocab)
    tok.train_from_iterator(documents(a.corpus, a.domains.split(",")), trainer)
    assert [tok.token_to_id(s) for s in SPECIAL] == [0, 1, 2], "special tokens must come first"
    tok.save(a.out)
    print(f"tokenizer: {tok.get_vocab_size()} tokens -> {a.out}")


if __name__ == "__main__":
    main()
