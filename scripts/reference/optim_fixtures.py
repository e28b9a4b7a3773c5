#!/usr/bin/env python3
"""Reference fixtures for gemmakd's optimizers, from torch.optim.AdamW and
torch.nn.utils.clip_grad_norm_.

Parameters named and shaped as a tiny Gemma 2 (the names gemmakd's layout
uses) get 5 steps of random gradients: clipped to a global norm of 1.0, then
AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only, none on
norms and the embedding, lr 1e-2). Writes tests/fixtures/optim/adamw.safetensors:
  init.<name>, grad<k>.<name> (before clipping), after<k>.<name>, and
  norm<k> (float64 global norm before clipping), k = 0..4.
    python3 scripts/reference/optim_fixtures.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma2Config, Gemma2ForCausalLM

STEPS, LR, CLIP = 5, 1e-2, 1.0


def main():
    cfg = Gemma2Config(hidden_size=8, intermediate_size=12, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=4, vocab_size=16, query_pre_attn_scalar=4, sliding_window=3)
    names_shapes = [(n, p.shape) for n, p in Gemma2ForCausalLM(cfg).named_parameters()]
    g = torch.Generator().manual_seed(7)
    params = {n: torch.nn.Parameter(torch.randn(s, generator=g)) for n, s in names_shapes}
    decay = [p for n, p in params.items() if p.ndim == 2 and "embed_tokens" not in n]
    no_decay = [p for n, p in params.items() if not (p.ndim == 2 and "embed_tokens" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    out = {f"init.{n}": p.detach().clone() for n, p in params.items()}
    for k in range(STEPS):
        for n, p in params.items():
            p.grad = torch.randn(p.shape, generator=g) * (3.0 if k % 2 == 0 else 0.01)  # some steps clip, some not
            out[f"grad{k}.{n}"] = p.grad.clone()
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP, foreach=False)
        out[f"norm{k}"] = torch.tensor([float(norm)], dtype=torch.float64)
        opt.step()
        for n, p in params.items():
            out[f"after{k}.{n}"] = p.detach().clone()
    os.makedirs("tests/fixtures/optim", exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, "tests/fixtures/optim/adamw.safetensors")
    print("wrote tests/fixtures/optim/adamw.safetensors")


if __name__ == "__main__":
    main()
