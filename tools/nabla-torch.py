#!/usr/bin/env python3
"""Converts a nabla model file (nb_module_save, nabla-train --save-model: safetensors by dotted name)
to a PyTorch state_dict (torch.save) and back.

    nabla-torch.py to-torch   model.safetensors model.pt
    nabla-torch.py from-torch model.pt model.safetensors

The names stay the same, so the PyTorch model must name its modules as nabla does (an nn.Sequential
of an OrderedDict: fc1, bn1, relu1, ..., or "0", "1", ... for nb_module_sequential). What changes:
  - Linear weights: nabla stores [in, out] (x @ W, cs231n), PyTorch [out, in]: every 2-D "*.weight"
    is transposed. Conv2d weights [F, C, kh, kw] are the same in both.
  - BatchNorm: PyTorch has a num_batches_tracked buffer, which nabla does not keep: added (0) on the
    way to PyTorch, dropped on the way back. Running stats keep their values; the two differ only in
    how they update them (README: "Weights in and out").
Needs python3-torch (and python3-numpy). Writes atomically (a temporary file, then a rename).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def read_safetensors(path):
    """{name: numpy array}, metadata"""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        sys.exit(f"{path}: not a safetensors file ({len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        sys.exit(f"{path}: the header length {n} runs past the end of the file ({len(blob)} bytes)")
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, e in header.items():
        if e["dtype"] not in DTYPES:
            sys.exit(f"{path}: tensor '{name}' has dtype {e['dtype']} (expected F32, F64 or I64)")
        begin, end = e["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    return tensors, meta


def write_atomically(path, write):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_safetensors(path, tensors, meta):
    header, offset, chunks = {}, 0, []
    if meta:
        header["__metadata__"] = meta
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)

    def write(f):
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)

    write_atomically(path, write)


def is_linear_weight(name, a):
    return name.endswith(".weight") and a.ndim == 2


def to_torch(src, dst):
    tensors, meta = read_safetensors(src)
    state = {}
    for name, a in tensors.items():
        state[name] = torch.from_numpy(a.T.copy() if is_linear_weight(name, a) else a)
        if name.endswith(".running_var"):
            state[name[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    write_atomically(dst, lambda f: torch.save(state, f))
    print(f"{dst}: {len(state)} tensors (from {src}, {meta.get('kind', 'a module')})")


def from_torch(src, dst):
    state = torch.load(src, map_location="cpu")
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    tensors = {}
    for name, t in state.items():
        if name.endswith(".num_batches_tracked"):
            continue
        a = t.detach().cpu().numpy()
        if a.dtype not in NAMES:
            sys.exit(f"{src}: tensor '{name}' has dtype {a.dtype} (nabla reads float32, float64 and int64)")
        tensors[name] = a.T.copy() if is_linear_weight(name, a) else a
    write_safetensors(dst, tensors, {"format": "nabla-module-1", "kind": "Sequential"})
    print(f"{dst}: {len(tensors)} tensors (from {src})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("direction", choices=["to-torch", "from-torch"])
    p.add_argument("source")
    p.add_argument("destination")
    a = p.parse_args()
    (to_torch if a.direction == "to-torch" else from_torch)(a.source, a.destination)


if __name__ == "__main__":
    main()
