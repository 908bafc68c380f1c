#!/usr/bin/env python3
"""pretokenize.py: the corpus's documents as token ids, for train_target.py.

Reads CORPUS/{domain}.{split}.jsonl (corpus.py), encodes each document's text
with a tokenizer.json (tokenizer.py's; the encoder adds no special tokens) and
appends <|endoftext|> (id 0) after each document. Writes:

  OUT/{domain}.{split}.u16   the ids as little-endian uint16, documents back to back
  OUT/tokens.json            per file: documents, tokens (EOS included), text bytes

Usage: python3 training/pretokenize.py --corpus DIR --tokenizer DIR/tokenizer.json --out DIR
"""
import argparse
import array
import json
import os
import sys

EOS = 0
SPLITS = ("train", "heldout")


def hf_encoder(path):
    """(encode: [text] -> [[id]], vocab size) through HF `tokenizers`, imported only here."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)
    assert tok.token_to_id("<|endoftext|>") == EOS, "training/tokenizer.py puts <|endoftext|> at id 0"
    assert tok.get_vocab_size() <= 1 << 16, "ids must fit uint16"
    return (lambda texts: [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]), tok.get_vocab_size()


def write_u16(path, ids):
    a = array.array("H", ids)  # OverflowError on an id outside 0..65535
    if sys.byteorder != "little":
        a.byteswap()
    with open(path, "wb") as f:
        a.tofile(f)


def read_u16(path):
    a = array.array("H")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def pretokenize(corpus, out, encode, domains, batch=256):
    """Writes OUT/{domain}.{split}.u16 for every domain and split; returns the per-file counts."""
    counts = {}
    for d in domains:
        for s in SPLITS:
            with open(os.path.join(corpus, f"{d}.{s}.jsonl")) as f:
                texts = [json.loads(line)["text"] for line in f]
            ids = array.array("H")
            for i in range(0, len(texts), batch):
                for doc in encode(texts[i:i + batch]):
                    ids.extend(doc)
                    ids.append(EOS)
            write_u16(os.path.join(out, f"{d}.{s}.u16"), ids)
            n_bytes = sum(len(t.encode()) for t in texts)
            counts[f"{d}.{s}"] = {"documents": len(texts), "tokens": len(ids), "text_bytes": n_bytes}
            print(f"pretokenize: {d:6s} {s:7s} {len(texts):6d} documents, {len(ids):9d} tokens, "
                  f"{n_bytes / max(1, len(ids)):.2f} bytes/token", flush=True)
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--domains", default="python,c,prose")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    encode, vocab = hf_encoder(a.tokenizer)
    counts = pretokenize(a.corpus, a.out, encode, a.domains.split(","))
    with open(os.path.join(a.out, "tokens.json"), "w") as f:
        json.dump({"version": 1, "tokenizer": os.path.abspath(a.tokenizer), "vocab_size": vocab, "eos_id": EOS,
                   "format": "uint16 little-endian", "files": counts}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
