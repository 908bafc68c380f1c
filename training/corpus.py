#!/usr/bin/env python3
"""corpus.py: the training corpus, from what the machine it runs on holds.

Three domains that differ in predictability (issue 10):
  python  the Python sources of the interpreter's site-packages
  c       C, C++ and CUDA headers (/usr/include, /usr/local/include, CUDA's)
  prose   English documentation: Markdown, reST, plain-text docs and man
          pages (rendered to plain text by strip_roff, no groff needed)

Selection is deterministic for a given machine: candidate files are read in
sorted path order, exact duplicates dropped (by SHA-256), and documents taken
in order of their hash until the domain's byte budget is full; a document is
held out when its hash falls in the first `heldout` fraction of the hash
space, so the split does not depend on which other files exist. The output:

  OUT/manifest.json          per domain and split: path, sha256, bytes
  OUT/DOMAIN.train.jsonl     {"text": ...} per document
  OUT/DOMAIN.heldout.jsonl

Usage: python3 training/corpus.py --out DIR [--budget-mb 24] [--heldout 0.05]
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import site
import sys
import sysconfig

MIN_BYTES, MAX_BYTES = 256, 128 * 1024  # per document: skip stubs and generated giants
STOPWORDS = {"the", "and", "of", "to", "is", "a", "in", "that", "for", "it", "be", "this", "with", "as", "are"}


def site_dirs():
    dirs = set(site.getsitepackages() + [site.getusersitepackages(), sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"]])
    dirs |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return sorted(d for d in dirs if os.path.isdir(d))


def header_dirs():
    dirs = ["/usr/include", "/usr/local/include"]
    dirs += sorted(os.path.join("/usr/local", d, "include") for d in os.listdir("/usr/local")
                   if d.startswith("cuda") and os.path.isdir(os.path.join("/usr/local", d, "include")))
    return [d for d in dirs if os.path.isdir(d)]


def walk(roots, suffixes):
    """Every file under roots whose name ends with one of suffixes, sorted, symlinks not followed."""
    out = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in filenames:
                if f.endswith(suffixes):
                    p = os.path.join(dirpath, f)
                    if os.path.isfile(p) and not os.path.islink(p):
                        out.add(p)
    return sorted(out)


def read_text(path):
    """The file as UTF-8 text (gunzipped when .gz), or None when it is not text."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES * 8 + 1)
        if path.endswith(".gz"):
            raw = gzip.decompress(raw)
        if b"\0" in raw:
            return None
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return None


ROFF_ESCAPE = re.compile(r"\\f[BIRPC0-9]|\\f\(..|\\f\[[^\]]*\]|\\s[+-]?\d|\\\(..|\\\[[^\]]*\]|\\[&|^~%,/]|\\\*\(..|\\\*.")


def strip_roff(src):
    """Plain text of a man page: request lines dropped, except the words of
    headings and font macros; escapes removed."""
    out = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"")):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"^[.'](SH|SS|B|I|BI|BR|IB|IR|RB|RI|Nm|Nd|Sh|Ss)\s*(.*)$", line)
            if not m or not m.group(2):
                continue
            line = m.group(2).replace('"', "")
        line = ROFF_ESCAPE.sub("", line).replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ")
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def english(text):
    """Mostly ASCII, and common English function words make up >= 4 % of the words."""
    if not text or sum(c < "\x80" for c in text) < 0.97 * len(text):
        return False
    words = re.findall(r"[a-z]+", text.lower())
    return len(words) >= 40 and sum(w in STOPWORDS for w in words) >= 0.04 * len(words)


def boilerplate(path):
    """Package metadata and licence texts: English, but the same few documents
    in hundreds of near-copies, which would make the prose domain a licence domain."""
    name = os.path.basename(path).lower()
    return (".dist-info/" in path or ".egg-info/" in path or name.startswith(("license", "licence", "copying", "notice", "authors"))
            or name in ("copyright", "entry_points.txt", "top_level.txt", "requirements.txt"))


def candidates(domain):
    """(path, text) of every usable document of the domain, in sorted path order."""
    if domain == "python":
        for p in walk(site_dirs(), (".py",)):
            yield p, read_text(p)
    elif domain == "c":
        for p in walk(header_dirs(), (".h", ".hpp", ".hh", ".hxx", ".cuh", ".inl")):
            yield p, read_text(p)
    elif domain == "prose":
        # plain-text docs too (READMEs, changelogs, licences): the GPU machine's image held only 1,702
        # Markdown/reST/man candidates (3.5 MB of prose, 2026-12-07); english() keeps the English ones
        docs = walk(site_dirs() + ["/usr/share/doc"], (".md", ".rst", ".md.gz", ".rst.gz", ".txt", ".txt.gz"))
        mans = walk(["/usr/share/man"], tuple(f".{s}.gz" for s in "12345678") + tuple(f".{s}" for s in "12345678"))
        for p in docs:
            if boilerplate(p):
                continue
            t = read_text(p)
            yield p, t if english(t) else None
        for p in mans:
            if re.search(r"/man/[a-z][a-z](_[A-Z]+)?(\.[^/]*)?/", p):  # a translation
                continue
            t = read_text(p)
            t = strip_roff(t) if t else None
            yield p, t if english(t) else None
    else:
        raise ValueError(domain)


def select(domain, budget, heldout):
    seen, docs = set(), []
    for path, text in candidates(domain):
        if text is None or not MIN_BYTES <= len(text.encode()) <= MAX_BYTES:
            continue
        h = hashlib.sha256(text.encode()).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        docs.append((h, path, text))
    docs.sort()
    cut = int(heldout * 2**32)
    split = {"train": [], "heldout": []}
    used = {"train": 0, "heldout": 0}
    cap = {"train": budget, "heldout": max(1, int(budget * heldout / (1 - heldout)))}
    for h, path, text in docs:
        s = "heldout" if int(h[:8], 16) < cut else "train"
        n = len(text.encode())
        if used[s] + n > cap[s]:
            continue
        used[s] += n
        split[s].append((h, path, text))
    return split, len(docs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget-mb", type=float, default=24.0, help="training bytes per domain")
    ap.add_argument("--heldout", type=float, default=0.05, help="fraction of the hash space held out")
    ap.add_argument("--domains", default="python,c,prose")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    manifest = {"version": 1, "budget_bytes": int(a.budget_mb * 2**20), "heldout_fraction": a.heldout,
                "python": sys.version.split()[0], "domains": {}}
    for d in a.domains.split(","):
        split, n_docs = select(d, manifest["budget_bytes"], a.heldout)
        entry = {"candidates": n_docs}
        for s, docs in split.items():
            with open(os.path.join(a.out, f"{d}.{s}.jsonl"), "w") as f:
                for _, _, text in docs:
                    f.write(json.dumps({"text": text}) + "\n")
            entry[s] = [{"path": p, "sha256": h, "bytes": len(t.encode())} for h, p, t in docs]
            print(f"corpus: {d:6s} {s:7s} {len(docs):6d} documents, {sum(len(t.encode()) for _, _, t in docs) / 2**20:7.2f} MB"
                  f" (of {n_docs} candidates)")
        manifest["domains"][d] = entry
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    if any(not manifest["domains"][d]["heldout"] or not manifest["domains"][d]["train"] for d in manifest["domains"]):
        sys.exit("corpus: a domain has an empty split (too few documents on this machine)")


if __name__ == "__main__":
    main()
