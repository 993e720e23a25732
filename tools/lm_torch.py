#!/usr/bin/python3
"""nabla-lm's default recipe in PyTorch, to compare validation losses: the same corpus (a file, or a
folder's regular files in name order without links and *.dat indexes, as bytes; the last 10% validate),
the same GPT (tools/torch_gpt.py), AdamW (lr 2e-3, betas 0.9/0.95, weight decay 0.1), a linear warm-up of
50 steps then a cosine down to 1e-4, gradient clipping at 1, batches of 16 random windows of 64 + 1 bytes,
1000 steps, and the validation loss on 20 batches of random windows. The windows come from NumPy's
generator (nabla's generator is its own), so the runs see different but equally random batches.
    tools/lm_torch.py [--text PATH] [--steps N] [--seed N] [--threads N]
Prints lines like nabla-lm's and ends with "val loss: X nats (Y bits per character)".
Kernels: Debian's PyTorch takes its matrix products from the system BLIS, which reads its thread count
from BLIS_NUM_THREADS (set here from --threads unless set) and picks its kernels from the CPU unless
BLIS_ARCH_TYPE says which: give it nabla's choice (nabla-lm prints it; skx is BLIS_ARCH_TYPE=0) so that
the times compare engines, not BLIS's detection.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT  # noqa: E402


def corpus(path):
    if not os.path.isdir(path):
        return open(path, "rb").read()
    names = sorted(n for n in os.listdir(path) if not n.startswith(".") and not n.endswith(".dat"))
    parts = [open(os.path.join(path, n), "rb").read() for n in names
             if os.path.isfile(os.path.join(path, n)) and not os.path.islink(os.path.join(path, n))]
    return b"".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default="/usr/share/games/fortunes")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    os.environ.setdefault("BLIS_NUM_THREADS", str(a.threads))   # read when BLIS starts: at the first product
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    data = np.frombuffer(corpus(a.text), dtype=np.uint8).astype(np.int64)
    n_train = len(data) - int(len(data) * 0.1)
    train, val = torch.from_numpy(data[:n_train]), torch.from_numpy(data[n_train:])
    B, T, warmup, lr, lr_min = 16, 64, 50, 2e-3, 1e-4
    rng = np.random.default_rng(a.seed)

    def batch(split):
        starts = rng.integers(0, len(split) - T, size=B)
        idx = torch.from_numpy(starts)[:, None] + torch.arange(T + 1)
        w = split[idx]
        return w[:, :-1], w[:, 1:]

    net = GPT(V=256, T=T, L=4, NH=4, C=128)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    print("model: gpt, %d parameters" % sum(q.numel() for q in net.parameters()))
    t0 = time.perf_counter()
    for step in range(a.steps):
        rate = lr * (step + 1) / warmup if step < warmup else \
            lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (a.steps - warmup)))
        for group in opt.param_groups:
            group["lr"] = rate
        x, y = batch(train)
        loss = F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if (step + 1) % 200 == 0:
            print("step %5d/%d  loss %.4f  lr %.2e" % (step + 1, a.steps, loss.item(), rate), flush=True)
    print("trained %d steps in %.1f s" % (a.steps, time.perf_counter() - t0))
    with torch.no_grad():
        v = sum(F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1)).item() for x, y in (batch(val) for _ in range(20))) / 20
    print("val loss: %.4f nats (%.3f bits per character)" % (v, v / math.log(2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
