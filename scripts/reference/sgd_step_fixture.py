#!/usr/bin/env python3
"""Reference for one training step of gemmakd: PyTorch autograd's gradient of
the trainer's loss on one window, for a tiny Gemma 2 saved by transformers.

The trainer's loss on a window of T+1 tokens is the mean, over trained
targets, of -log p(token t+1 | tokens of its document up to t): target t is
trained when token t+1 does not start a document and, in chat shards, when
its loss-mask bit is 1. Writes tests/fixtures/sgd_step/:
  model/                      config.json + model.safetensors (transformers)
  window.safetensors          tokens [T+1] int32, doc_starts [D] int64,
                              loss_mask [T+1] uint8 (all ones for the plain case),
                              and grad.<name> / grad_sft.<name>: the gradient
                              of the plain loss and of the loss with the mask.
    python3 scripts/reference/sgd_step_fixture.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma2Config, Gemma2ForCausalLM

OUT = "tests/fixtures/sgd_step"
T = 24
DOC_STARTS = [0, 9, 17]


def make_model():
    cfg = Gemma2Config(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=4, query_pre_attn_scalar=4, sliding_window=4, vocab_size=40,
                       max_position_embeddings=64, attn_implementation="eager", pad_token_id=0, eos_token_id=1,
                       bos_token_id=2)
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(cfg).float()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g) if p.ndim == 1 else
                    torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
    return model


def loss_and_grads(model, tokens, doc_starts, mask):
    model.zero_grad()
    ids = tokens[:T].view(1, T)
    begin = torch.tensor([max(s for s in doc_starts if s <= t) for t in range(T)])
    pos = (torch.arange(T) - begin).view(1, T)
    i, j = torch.arange(T).view(T, 1), torch.arange(T).view(1, T)
    allowed = (j >= begin.view(T, 1)) & (j <= i)
    neg = torch.finfo(torch.float32).min
    masks = {"full_attention": torch.where(allowed, 0.0, neg)[None, None],
             "sliding_attention": torch.where(allowed & (i - j < model.config.sliding_window), 0.0, neg)[None, None]}
    logits = model(input_ids=ids, position_ids=pos, attention_mask=masks).logits[0]
    targets = tokens[1:T + 1]
    trained = torch.tensor([(t + 1) not in doc_starts and mask[t + 1] == 1 for t in range(T)])
    nll = -torch.log_softmax(logits, -1).gather(-1, targets.view(T, 1)).view(T)
    loss = (nll * trained).sum() / trained.sum()
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def main():
    model = make_model()
    g = torch.Generator().manual_seed(4)
    tokens = torch.randint(3, 40, (T + 1,), generator=g)  # no pad (0) among inputs
    for s in DOC_STARTS:
        tokens[s] = 2  # documents start with <bos>
    mask = (torch.rand(T + 1, generator=g) < 0.6).to(torch.uint8)
    out = {"tokens": tokens.to(torch.int32), "doc_starts": torch.tensor(DOC_STARTS, dtype=torch.int64),
           "loss_mask": mask}
    for name, grad in loss_and_grads(model, tokens, DOC_STARTS, torch.ones(T + 1, dtype=torch.uint8)).items():
        out["grad." + name] = grad
    for name, grad in loss_and_grads(model, tokens, DOC_STARTS, mask).items():
        out["grad_sft." + name] = grad
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(os.path.join(OUT, "model"), safe_serialization=True)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "window.safetensors"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
