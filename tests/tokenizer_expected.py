#!/usr/bin/env python3
"""Writes the token ids that HF `tokenizers` gives for the tokenizer samples
(Qwen3's by default); tests/test_tokenizer.cpp checks tokenizer_encode
against them.

    python3 tests/tokenizer_expected.py --out tests/fixtures/qwen3/expected_ids.json

Runs from the repository root, offline. The Qwen3 tokenizer.json is read out
of tests/fixtures/qwen3/tokenizer.tar.xz; --tokenizer PATH takes a plain
tokenizer.json (or another .tar.xz holding one) instead:

    python3 tests/tokenizer_expected.py --tokenizer models/demo-target/tokenizer.json \\
        --out tests/fixtures/demo-target/expected_ids.json

Every text is encoded with add_special_tokens=False (no post-processor),
which is what tokenizer_encode does: the whole of
tests/fixtures/tokenizer_sample.txt, then each of its lines (split on "\\n"
only, so a line keeps a trailing "\\r"), then each line of
tests/fixtures/tokenizer_sample_nfd.txt (decomposed text: checks the NFC
normalizer), then 1,000 seeded random strings of pieces chosen to probe the
split regex (Unicode spaces such as U+180E, contractions next to marks,
digits of other scripts, added tokens cut short). The texts themselves go
into the output too, so the C++ test can tell a stale file from a tokenizer bug.
"""
import argparse
import hashlib
import json
import random
import sys
import tarfile

import tokenizers
from tokenizers import Tokenizer

TOKENIZER = "tests/fixtures/qwen3/tokenizer.tar.xz"
SAMPLE = "tests/fixtures/tokenizer_sample.txt"
SAMPLE_NFD = "tests/fixtures/tokenizer_sample_nfd.txt"

# Pieces for the random strings; the seed and the pool fix the strings, which
# are written out anyway.
PIECES = [
    " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\u0085", "\u180e", "\u200b", "\u2028",
    "'s", "'S", "'ll", "'LL", "'t", "'re", "'ve", "'m", "'d", "\u2019s", "'", "\u017f",
    "a", "Z", "hello", "World", "\u00e9", "e\u0301", "\u00df", "\u0130", "\u01c5", "\ufb01", "\u212a",
    "\u4f60\u597d", "\u4e16\u754c", "\u3053\u3093\u306b\u3061\u306f", "\u30ab\u30bf\u30ab\u30ca", "\uff76\uff80",
    "\uc548\ub155", "\u1100\u1161", "\u0645\u0631\u062d\u0628\u0627", "\u041f\u0440\u0438\u0432\u0435\u0442",
    "\u0451", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "0", "12345678", "3.14", "\u0661\u0662\u0663", "\u00b2", "\u00bd", "\u216b", "\u2460",
    "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1e9\U0001f1ea",
    "\u2764\ufe0f", "\u20e3",
    "!", "?!", "...", "->", "==", "{", "}", "(", ")", "#", "//", "\"", "<", ">", "|", "_", "-", "@", "$", "%", "\\",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|im_", "<tool_call>",
    "\u0301", "\u0323", "\u0302", "\u212b", "\u2126", "\ufeff", "\U0001f9d1", "\U00020000", "\ue000",
]


def random_texts(n=1000, seed=20240601):
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14))) for _ in range(n)]


def read_tokenizer_json(path):
    """The bytes of tokenizer.json: the file at `path`, or, for a .tar.xz,
    the member named tokenizer.json inside it."""
    if not path.endswith(".tar.xz"):
        with open(path, "rb") as f:
            return f.read()
    with tarfile.open(path, "r:xz") as tar:
        try:
            member = tar.extractfile("tokenizer.json")
        except KeyError:
            member = None
        if member is None:
            sys.exit("tokenizer_expected.py: %s holds no tokenizer.json file" % path)
        return member.read()


def read_text(path):
    # newline="" keeps "\r" as it is in the file.
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures/qwen3/expected_ids.json")
    ap.add_argument("--tokenizer", default=TOKENIZER,
                    help="the tokenizer.json to encode with, or a .tar.xz holding one (default %(default)s)")
    args = ap.parse_args()

    tok_json = read_tokenizer_json(args.tokenizer)
    tok = Tokenizer.from_str(tok_json.decode("utf-8"))
    text = read_text(SAMPLE)
    nfd = read_text(SAMPLE_NFD)

    def ids(s):
        return tok.encode(s, add_special_tokens=False).ids

    out = {
        "tokenizers_version": tokenizers.__version__,
        "python_version": sys.version.split()[0],
        "tokenizer_sha256": hashlib.sha256(tok_json).hexdigest(),  # of tokenizer.json, not of its archive
        "text": text,
        "text_ids": ids(text),
        "lines": [ids(line) for line in text.split("\n")],
        "nfd_text": nfd,
        "nfd_lines": [ids(line) for line in nfd.split("\n")],
    }
    out["random_texts"] = random_texts()
    out["random_ids"] = [ids(t) for t in out["random_texts"]]
    # The sample is already NFC, so HF's own decode must give it back.
    if tok.decode(out["text_ids"], skip_special_tokens=False) != text:
        sys.exit("tokenizer_expected.py: HF decode does not round-trip the sample")
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("%s: %d ids for the sample, %d lines, %d NFD lines, %d random strings, tokenizers %s"
          % (args.out, len(out["text_ids"]), len(out["lines"]), len(out["nfd_lines"]), len(out["random_texts"]),
             tokenizers.__version__))


if __name__ == "__main__":
    main()
