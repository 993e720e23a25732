"""nabla's nb_gpt in PyTorch (GPT-2's architecture: token and position embeddings, pre-norm blocks of
causal self-attention and a tanh-GELU MLP, final LayerNorm, output tied to the token embedding; GPT-2's
initialisation as nb_gpt's), for tools/bench_torch.py's W7 and tools/lm_torch.py."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class GPT(nn.Module):
    def __init__(self, V=256, T=128, L=4, NH=4, C=256):
        super().__init__()
        self.NH, self.C = NH, C
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList()
        for _ in range(L):
            b = nn.Module()
            b.ln_1, b.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
            b.c_attn, b.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            b.c_fc, b.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
            self.blocks.append(b)
        self.ln_f = nn.LayerNorm(C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))
        for name, p in self.named_parameters():   # GPT-2's initialisation, as nb_gpt
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" not in name:
                std = 0.01 if name.startswith("wpe") else 0.02 / math.sqrt(2 * L) if "proj" in name else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        B, T = ids.shape
        x = self.wte(ids) + self.wpe.weight[:T]
        for b in self.blocks:
            q, k, v = b.c_attn(b.ln_1(x)).split(self.C, dim=2)
            q, k, v = [t.reshape(B, T, self.NH, self.C // self.NH).transpose(1, 2) for t in (q, k, v)]
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.C // self.NH))
            att = att.masked_fill(~self.mask[:T, :T], -1e30).softmax(-1)
            x = x + b.attn_proj((att @ v).transpose(1, 2).reshape(B, T, self.C))
            x = x + b.mlp_proj(F.gelu(b.c_fc(b.ln_2(x)), approximate="tanh"))
        return self.ln_f(x) @ self.wte.weight.t()



def load_nabla_weights(net, tensors):
    """Copies a nabla GPT's tensors (nb_module_save names: wte.weight, h.0.attn.c_attn.weight, ...;
    linear weights [in,out]) into GPT `net` (its own names; linear weights [out,in])."""
    renames = {"attn.c_attn": "c_attn", "attn.c_proj": "attn_proj", "mlp.c_fc": "c_fc", "mlp.c_proj": "mlp_proj"}
    params = dict(net.named_parameters())
    for name, value in tensors.items():
        target = name.replace("h.", "blocks.", 1) if name.startswith("h.") else name
        for old, new in renames.items():
            target = target.replace(old, new)
        t = torch.from_numpy(value)
        if target.endswith(".weight") and t.ndim == 2 and not target.startswith(("wte", "wpe")):
            t = t.t()
        with torch.no_grad():
            params.pop(target).copy_(t)
    if params:
        raise ValueError("no nabla tensor for %s" % ", ".join(sorted(params)))
