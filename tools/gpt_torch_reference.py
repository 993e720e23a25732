#!/usr/bin/python3
"""The stored losses of tests/test_sequence.c's gpt_matches_pytorch: 20 AdamW steps of the same small GPT
(V 11, T 6, 2 layers, 2 heads, width 8, float64) in PyTorch, from the initial weights nabla wrote
(nb_module_save of nb_gpt with seed 5), on the same fixed batch.
    tools/gpt_torch_reference.py INIT.safetensors
"""
import os
import importlib.util, math, sys
import numpy as np, torch, torch.nn.functional as F
spec = importlib.util.spec_from_file_location("nt", os.path.join(os.path.dirname(os.path.abspath(__file__)), "nabla-torch.py")); nt = importlib.util.module_from_spec(spec); spec.loader.exec_module(nt)
w, _ = nt.read_safetensors(sys.argv[1])
P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in w.items()}
L, C, NH = 2, 8, 2
ids = torch.tensor([[1,5,2,9,0,3],[10,4,4,7,2,8],[6,6,1,0,3,5]])
tg = torch.tensor([[5,2,9,0,3,1],[4,4,7,2,8,10],[6,1,0,3,5,2]])
def ln(x, p): return F.layer_norm(x, (C,), P[p+".weight"], P[p+".bias"], 1e-5)
def lin(x, p): return x @ P[p+".weight"] + P[p+".bias"]
def fwd(ids):
    B, T = ids.shape
    x = P["wte.weight"][ids] + P["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        h = ln(x, f"h.{l}.ln_1")
        qkv = lin(h, f"h.{l}.attn.c_attn")
        q, k, v = [t.reshape(B, T, NH, C // NH).transpose(1, 2) for t in qkv.split(C, dim=2)]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // NH)
        att = att.masked_fill(~mask, -1e30).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + lin(y, f"h.{l}.attn.c_proj")
        h = F.gelu(lin(ln(x, f"h.{l}.ln_2"), f"h.{l}.mlp.c_fc"), approximate="tanh")
        x = x + lin(h, f"h.{l}.mlp.c_proj")
    x = ln(x, "ln_f")
    return x @ P["wte.weight"].T
opt = torch.optim.AdamW(list(P.values()), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
out = []
for step in range(20):
    opt.zero_grad()
    loss = F.cross_entropy(fwd(ids).reshape(-1, 11), tg.reshape(-1))
    loss.backward(); opt.step(); out.append(loss.item())
print(", ".join("%.17g" % v for v in out))
