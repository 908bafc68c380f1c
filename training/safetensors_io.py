"""safetensors_io.py: safetensors files read and written by hand (no safetensors package).

Layout: u64 little-endian header length, a JSON header {"__metadata__": {"format":
"pt"}, name: {"dtype", "shape", "data_offsets"}} with names sorted and padded with
spaces to a multiple of 8 bytes, then each tensor's little-endian data in header
order. Only F32 and BF16, the dtypes our models are stored in.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16}


def read_safetensors(path):
    """{name: CPU tensor} in the stored dtype (F32 -> float32, BF16 -> bfloat16)."""
    assert sys.byteorder == "little"
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] in DTYPES, f"{name}: {meta['dtype']}"
        b, e = meta["data_offsets"]
        raw = bytearray(data[8 + n + b:8 + n + e])
        out[name] = torch.frombuffer(raw, dtype=DTYPES[meta["dtype"]]).reshape(meta["shape"]).clone()
    return out


def write_safetensors(path, tensors, dtype="F32"):
    """Every tensor converted to dtype ("F32" or "BF16", round to nearest even)."""
    assert sys.byteorder == "little"
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(DTYPES[dtype]).cpu().contiguous()
        blob = (t.view(torch.int16) if dtype == "BF16" else t).numpy().tobytes()  # numpy has no bfloat16
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)
