#!/bin/sh
# tools/nabla-torch.py against PyTorch: a net nabla-train trained and saved (--save-model) is converted
# to a state_dict, loaded strictly into the same net written in PyTorch, and evaluated on the
# Fashion-MNIST test set: the accuracy must equal nabla-train --eval's, to the digit. The state_dict
# converted back must give nabla the same tensors. Skipped (77) without python3-torch or the data.
train=$1 script=$2
python=/usr/bin/python3
fail() { echo "FAIL: $1"; exit 1; }
$python -c "import torch, numpy" 2>/dev/null || { echo "skipped: python3-torch is not installed"; exit 77; }
dir=/usr/share/datasets/fashion-mnist
[ -e "$dir/t10k-images-idx3-ubyte.gz" ] || { echo "skipped: Fashion-MNIST is not installed"; exit 77; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT

out=$("$train" --model mlp --hidden 32 --norm batch --overfit 500 --epochs 2 --save-model "$tmp/m.st" 2>&1) || fail "$out"
nabla_acc=$("$train" --model mlp --hidden 32 --norm batch --eval "$tmp/m.st" --quiet 2>&1 | sed -n 's/^test accuracy: //p')
[ -n "$nabla_acc" ] || fail "nabla-train --eval gave no accuracy"
$python "$script" to-torch "$tmp/m.st" "$tmp/m.pt" || fail "to-torch"
torch_acc=$($python - "$tmp/m.pt" "$dir" <<'PY'
import collections, gzip, sys
import numpy as np, torch
state = torch.load(sys.argv[1])
net = torch.nn.Sequential(collections.OrderedDict([
    ("fc1", torch.nn.Linear(784, 32)), ("bn1", torch.nn.BatchNorm1d(32)), ("relu1", torch.nn.ReLU()),
    ("fc2", torch.nn.Linear(32, 10))]))
net.load_state_dict(state, strict=True)
net.eval()
def idx(name):
    with gzip.open(f"{sys.argv[2]}/{name}.gz") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw[4 + 4 * dims:], dtype=np.uint8).reshape(shape)
x = torch.from_numpy(idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
y = torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
with torch.no_grad():
    print(f"{(net(x).argmax(1) == y).double().mean().item():.4f}")
PY
) || fail "PyTorch evaluation"
echo "test accuracy: nabla $nabla_acc, PyTorch $torch_acc"
[ "$nabla_acc" = "$torch_acc" ] || fail "the accuracies differ"

$python "$script" from-torch "$tmp/m.pt" "$tmp/back.st" || fail "from-torch"
back_acc=$("$train" --model mlp --hidden 32 --norm batch --eval "$tmp/back.st" --quiet 2>&1 | sed -n 's/^test accuracy: //p')
[ "$back_acc" = "$nabla_acc" ] || fail "the round trip changed the accuracy: $back_acc"
$python - "$script" "$tmp/m.st" "$tmp/back.st" <<'PY' || fail "the round trip changed the tensors"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("nabla_torch", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
a, _ = m.read_safetensors(sys.argv[2]); b, _ = m.read_safetensors(sys.argv[3])
assert a.keys() == b.keys(), (a.keys(), b.keys())
assert all((a[k] == b[k]).all() and a[k].shape == b[k].shape for k in a)
print(f"round trip: {len(a)} tensors identical")
PY
echo "ok"
