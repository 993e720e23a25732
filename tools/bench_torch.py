#!/usr/bin/python3
"""The nabla-bench workloads (issue 5) in PyTorch, for `nabla-bench --vs-torch`.

Same shapes, synthetic data (fixed seed), a training step = forward + backward + Adam step
(lr 1e-3, betas 0.9/0.999, eps 1e-8), softmax cross-entropy (mean over the batch):

  W1       MLP 3072 -> [100,100,100,100] -> 10, ReLU, + 0.5*reg*sum(W^2) over the Linear weights; batch 200
  W2       W1 with BatchNorm1d after each hidden affine, then ReLU, then Dropout(p=0.5) (keep 0.5)
  W3-b50   conv 32 filters 7x7 pad 3 (bias), ReLU, 2x2 max pool, Linear 8192->100, ReLU, Linear 100->10;
  W3-b128    batch 50 and 128
  W4       ResNet as nabla's nb_resnet: conv3x3 16 (bias) + BN + ReLU, 3 stages x 2 basic blocks
           (16/32/64, stride 2 at the first block of stages 2 and 3, 1x1 conv + BN projection shortcut),
           global average pool, Linear 64->10; batch 64
  W5       a chain of 1000 elementwise ops (add, mul, relu in turn) on 8-element float32 tensors that
           require grad, then sum and backward (no optimizer)
  W7       nabla's nb_gpt: GPT-2's architecture with 4 layers, width 256, 4 heads, context 128, vocabulary
           256 (token and position embeddings, pre-norm blocks of causal self-attention and a GELU MLP,
           final LayerNorm, output tied to the token embedding), batch 8 x 128 random bytes, AdamW
           (lr 1e-3, weight decay 1e-2, betas 0.9/0.999, eps 1e-8), mean cross-entropy over the positions
  W6       (only when asked for by name) nabla-train's default recipe: ThreeLayerConvNet (32 filters
           5x5 pad 2, 2x2 max pool, hidden 100, Kaiming init) on Fashion-MNIST from
           /usr/share/datasets/fashion-mnist (pixels in [0,1], the first 55000 training images; the
           last 5000 are the validation split), Adam lr 1e-3 times 0.9 after each epoch, shuffled
           batches of 64, 3 epochs, validation accuracy after each epoch, then the test accuracy.
           Reports "wall_s" (the whole run, data loading included) and "test_accuracy".

Prints one JSON object on stdout: {"torch_version", "threads", "blis_arch_type", "workloads": {name:
{"median_ms", "times_ms": [...], "batch"}}}. Exit status 3 when PyTorch is not installed, 2 for bad usage.
Threads: torch.set_num_threads(N); set OMP_NUM_THREADS and BLIS_NUM_THREADS in the environment too
(nabla-bench does), since the BLAS inside Debian's PyTorch reads only those.
Kernels: the BLIS inside Debian's PyTorch picks its sub-configuration from the CPU unless
BLIS_ARCH_TYPE (a BLIS arch_t number) says which; nabla-bench sets it to the one nabla's BLIS runs, so
both use the same kernels. "blis_arch_type" reports the value this script saw (null: unset).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

NAMES = ["W1", "W2", "W3-b50", "W3-b128", "W4", "W5", "W7"]
ON_REQUEST = ["W6"]   # not in the default selection
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
SEED = 42
W1_REG = 1e-2
W5_OPS = 1000
W5_SIZE = 8


def parse_args():
    p = argparse.ArgumentParser(description="nabla-bench's workloads in PyTorch")
    p.add_argument("--only", default=",".join(NAMES),
                   help="comma-separated workloads (W3 = W3-b50 and W3-b128)")
    p.add_argument("--reps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--agree", metavar="DIR", default=None,
                   help="W7's agreement check instead of timings: 20 AdamW steps from the GPT weights and the batch "
                        "nabla-bench wrote to DIR (init.st, batch.st); prints {\"losses\": [...]}")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: $OMP_NUM_THREADS, else 1)")
    a = p.parse_args()
    sel = []
    for tok in a.only.split(","):
        hits = [n for n in NAMES + ON_REQUEST if n.lower() == tok.lower() or n.lower().startswith(tok.lower() + "-")]
        if not hits:
            p.error("unknown workload %r (expected one of %s, or W3)" % (tok, ", ".join(NAMES)))
        sel += [h for h in hits if h not in sel]
    if a.reps < 1 or a.warmup < 0:
        p.error("--reps must be >= 1 and --warmup >= 0")
    if a.threads is None:
        try:
            a.threads = max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
        except ValueError:
            a.threads = 1
    a.selected = sel
    return a


def main():
    args = parse_args()
    # the BLAS inside PyTorch reads these when it starts, so set them before the import
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("BLIS_NUM_THREADS", str(args.threads))
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError as e:
        print("bench_torch.py: PyTorch is not installed (%s); on Debian: apt-get install python3-torch" % e,
              file=sys.stderr)
        return 3
    torch.set_num_threads(args.threads)

    class ThreeLayerConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, 7, padding=3)
            self.fc2 = nn.Linear(32 * 16 * 16, 100)
            self.fc3 = nn.Linear(100, 10)

        def forward(self, x):
            h = F.max_pool2d(F.relu(self.conv1(x)), 2)
            return self.fc3(F.relu(self.fc2(h.flatten(1))))

    class Residual(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = None
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0), nn.BatchNorm2d(cout))

        def forward(self, x):
            h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))

    class ResNet(nn.Module):
        def __init__(self, widths=(16, 32, 64), blocks=2, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1)
            self.bn1 = nn.BatchNorm2d(widths[0])
            layers, cin = [], widths[0]
            for s, w in enumerate(widths):
                for b in range(blocks):
                    layers.append(Residual(cin, w, 2 if s > 0 and b == 0 else 1))
                    cin = w
            self.stages = nn.Sequential(*layers)
            self.fc = nn.Linear(cin, classes)
            for m in self.modules():   # Kaiming (He) for every conv and linear weight, as nb_resnet
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            h = self.stages(F.relu(self.bn1(self.conv1(x))))
            return self.fc(h.mean(dim=(2, 3)))

    def mlp(norm):
        layers, d = [], 3072
        for h in (100, 100, 100, 100):
            layers.append(nn.Linear(d, h))
            if norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if norm:
                layers.append(nn.Dropout(p=0.5))   # PyTorch's p is the drop probability: keep 0.5
            d = h
        layers.append(nn.Linear(d, 10))
        net = nn.Sequential(*layers)
        for m in net.modules():   # cs231n / nb_fc_defaults: N(0, 1e-2^2) weights, zero biases
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 1e-2)
                nn.init.zeros_(m.bias)
        return net

    def classifier_step_fn(net, batch, x_shape, reg):
        g = torch.Generator().manual_seed(SEED)
        x = torch.randn((batch,) + x_shape, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        weights = [m.weight for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        net.train()

        def step():
            opt.zero_grad(set_to_none=False)
            loss = F.cross_entropy(net(x), y)
            if reg > 0:
                loss = loss + 0.5 * reg * sum((w * w).sum() for w in weights)
            loss.backward()
            opt.step()
        return step

    def chain_step_fn():
        g = torch.Generator().manual_seed(SEED)
        x = (torch.rand(W5_SIZE, generator=g) + 0.5).requires_grad_()
        w = (torch.rand(W5_SIZE, generator=g) * 0.1 + 0.95).requires_grad_()

        def step():
            x.grad = None
            w.grad = None
            h = x
            for i in range(W5_OPS):
                k = i % 3
                h = h + w if k == 0 else h * w if k == 1 else torch.relu(h)
            h.sum().backward()
        return step

    def gpt_step_fn():
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_gpt import GPT
        net = GPT()
        g = torch.Generator().manual_seed(SEED)
        x = torch.randint(0, 256, (8, 128), generator=g)
        y = torch.randint(0, 256, (8, 128), generator=g)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)

        def step():
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1)).backward()
            opt.step()
        return step

    def read_idx(path):
        import gzip
        import numpy as np
        with gzip.open(path, "rb") as f:
            data = f.read()
        ndim = data[3]
        dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

    def time_to_accuracy():
        t0 = time.perf_counter()
        torch.manual_seed(1)

        def load(kind):
            x = read_idx("%s/%s-images-idx3-ubyte.gz" % (FASHION_DIR, kind))
            y = read_idx("%s/%s-labels-idx1-ubyte.gz" % (FASHION_DIR, kind))
            return torch.tensor(x, dtype=torch.float32).div_(255).unsqueeze(1), torch.tensor(y, dtype=torch.int64)
        xtr, ytr = load("train")
        xte, yte = load("t10k")
        xval, yval = xtr[55000:], ytr[55000:]
        xtr, ytr = xtr[:55000], ytr[:55000]

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
                self.fc2 = nn.Linear(32 * 14 * 14, 100)
                self.fc3 = nn.Linear(100, 10)
                for m in self.modules():
                    if isinstance(m, (nn.Conv2d, nn.Linear)):
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                        nn.init.zeros_(m.bias)

            def forward(self, x):
                h = F.max_pool2d(F.relu(self.conv1(x)), 2)
                return self.fc3(F.relu(self.fc2(h.flatten(1))))
        net = Net()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def accuracy(x, y):
            net.eval()
            with torch.no_grad():
                right = sum((net(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item() for i in range(0, len(x), 500))
            net.train()
            return right / len(x)
        for epoch in range(3):
            for idx in torch.randperm(len(xtr)).split(64):
                opt.zero_grad()
                F.cross_entropy(net(xtr[idx]), ytr[idx]).backward()
                opt.step()
            accuracy(xval, yval)
            for group in opt.param_groups:
                group["lr"] *= 0.9
        acc = accuracy(xte, yte)
        return {"wall_s": time.perf_counter() - t0, "test_accuracy": acc}

    def make(name):
        torch.manual_seed(SEED)
        if name in ("W1", "W2"):
            return 200, classifier_step_fn(mlp(name == "W2"), 200, (3072,), W1_REG)
        if name.startswith("W3"):
            b = int(name.split("-b")[1])
            return b, classifier_step_fn(ThreeLayerConvNet(), b, (3, 32, 32), 0.0)
        if name == "W4":
            return 64, classifier_step_fn(ResNet(), 64, (3, 32, 32), 0.0)
        if name == "W7":
            return 8, gpt_step_fn()
        return 0, chain_step_fn()

    if args.agree:
        import importlib.util
        import numpy as np
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        from torch_gpt import GPT, load_nabla_weights
        spec = importlib.util.spec_from_file_location("nabla_torch", os.path.join(here, "nabla-torch.py"))
        nt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(nt)
        net = GPT()
        load_nabla_weights(net, nt.read_safetensors(os.path.join(args.agree, "init.st"))[0])
        batch = nt.read_safetensors(os.path.join(args.agree, "batch.st"))[0]
        x, y = torch.from_numpy(batch["x"].astype(np.int64)), torch.from_numpy(batch["y"].astype(np.int64))
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        json.dump({"losses": losses}, sys.stdout)
        sys.stdout.write("\n")
        return 0

    out = {"torch_version": torch.__version__, "threads": torch.get_num_threads(),
           "blis_arch_type": os.environ.get("BLIS_ARCH_TYPE"), "workloads": {}}
    for name in args.selected:
        if name == "W6":
            out["workloads"][name] = time_to_accuracy()
            continue
        batch, step = make(name)
        for _ in range(args.warmup):
            step()
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
        out["workloads"][name] = {"batch": batch, "median_ms": statistics.median(times), "times_ms": times}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
