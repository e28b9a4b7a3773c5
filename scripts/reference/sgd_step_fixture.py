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
                              of the plain loss and of the loss with the mask;
                              grad_fkl.<name> / grad_jsd.<name>: the gradients of
                              distillation losses from the teacher below.
  teacher/                    a second, larger tiny Gemma 2 (the same vocabulary)
Distillation loss per trained target, with p = softmax(logits / tau):
  fkl: alpha tau^2 KL(p_T || p_S) + (1 - alpha) CE,  alpha 0.7, tau 2
  jsd: JSD_beta(p_T, p_S) = beta KL(p_T || M) + (1 - beta) KL(p_S || M),
       M = beta p_T + (1 - beta) p_S, beta 0.3, alpha 1, tau 1
    python3 scripts/reference/sgd_step_fixture.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma2Config, Gemma2ForCausalLM

OUT = "tests/fixtures/sgd_step"
T = 24
DOC_STARTS = [0, 9, 17]


def make_model(hidden=16, layers=2, seed=3):
    cfg = Gemma2Config(hidden_size=hidden, intermediate_size=24, num_hidden_layers=layers, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=4, query_pre_attn_scalar=4, sliding_window=4, vocab_size=40,
                       max_position_embeddings=64, attn_implementation="eager", pad_token_id=0, eos_token_id=1,
                       bos_token_id=2)
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(cfg).float()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g) if p.ndim == 1 else
                    torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
    return model


def packed_logits(model, tokens, doc_starts):
    """Logits [T, vocab] of a window of T + 1 tokens whose documents start at doc_starts (0 among them)."""
    T = len(tokens) - 1
    ids = tokens[:T].view(1, T)
    begin = torch.tensor([max(s for s in doc_starts if s <= t) for t in range(T)])
    pos = (torch.arange(T) - begin).view(1, T)
    i, j = torch.arange(T).view(T, 1), torch.arange(T).view(1, T)
    allowed = (j >= begin.view(T, 1)) & (j <= i)
    neg = torch.finfo(torch.float32).min
    masks = {"full_attention": torch.where(allowed, 0.0, neg)[None, None],
             "sliding_attention": torch.where(allowed & (i - j < model.config.sliding_window), 0.0, neg)[None, None]}
    return model(input_ids=ids, position_ids=pos, attention_mask=masks).logits[0]


def per_target_loss(kind, logits, teacher_logits, targets):
    """The loss at each position: CE, or a distillation loss (see the docstring)."""
    ce = -torch.log_softmax(logits, -1).gather(-1, targets.view(-1, 1)).view(-1)
    if kind == "ce":
        return ce
    if kind == "fkl":
        alpha, tau = 0.7, 2.0
        lps, lpt = torch.log_softmax(logits / tau, -1), torch.log_softmax(teacher_logits / tau, -1)
        kl = (lpt.exp() * (lpt - lps)).sum(-1)
        return alpha * tau * tau * kl + (1 - alpha) * ce
    beta = 0.3
    lps, lpt = torch.log_softmax(logits, -1), torch.log_softmax(teacher_logits, -1)
    lm = torch.logsumexp(torch.stack([lpt + torch.log(torch.tensor(beta)), lps + torch.log(torch.tensor(1 - beta))]), 0)
    return beta * (lpt.exp() * (lpt - lm)).sum(-1) + (1 - beta) * (lps.exp() * (lps - lm)).sum(-1)


def loss_and_grads(model, tokens, doc_starts, mask, kind="ce", teacher=None):
    model.zero_grad()
    logits = packed_logits(model, tokens, doc_starts)
    with torch.no_grad():
        teacher_logits = packed_logits(teacher, tokens, doc_starts) if teacher is not None else None
    targets = tokens[1:T + 1]
    trained = torch.tensor([(t + 1) not in doc_starts and mask[t + 1] == 1 for t in range(T)])
    loss = (per_target_loss(kind, logits, teacher_logits, targets) * trained).sum() / trained.sum()
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
    teacher = make_model(hidden=24, layers=3, seed=5)
    ones = torch.ones(T + 1, dtype=torch.uint8)
    for kind in ("fkl", "jsd"):
        for name, grad in loss_and_grads(model, tokens, DOC_STARTS, ones, kind, teacher).items():
            out[f"grad_{kind}." + name] = grad
    teacher.save_pretrained(os.path.join(OUT, "teacher"), safe_serialization=True)
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(os.path.join(OUT, "model"), safe_serialization=True)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "window.safetensors"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
