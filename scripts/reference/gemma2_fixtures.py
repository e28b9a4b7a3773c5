#!/usr/bin/env python3
"""Reference fixtures for gemmakd's model tests, from Hugging Face transformers.

For each tiny random Gemma 2 config this writes tests/fixtures/gemma2/<name>/:
  config.json, model.safetensors   the model, saved by transformers (save_pretrained)
  expected.safetensors             tokens, doc_begin, targets [B, T] (int32),
                                   logits [B, T, V] (float32, eager attention),
                                   logits_window2: the same with sliding layers
                                   narrowed to 2 keys at inference (Table 10),
                                   loss [1] (float64) and grad.<param name> for
                                   every parameter of a mean cross-entropy loss.
Packed documents are given to transformers as position_ids that restart at each
document and explicit 4-D block masks for the full and sliding layers; the
script also checks that this equals running every document on its own.

Needs torch, transformers and safetensors (pip). CI never runs this; the
fixtures it writes are committed.
    python3 scripts/reference/gemma2_fixtures.py [--out tests/fixtures/gemma2]
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma2Config, Gemma2ForCausalLM

CASES = [
    # GQA ratio 2, window shorter than the sequence, one packed row.
    dict(name="gqa2_window", hidden_size=24, intermediate_size=40, num_hidden_layers=3, num_attention_heads=4,
         num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=10, sliding_window=5, vocab_size=103,
         attn_logit_softcapping=50.0, final_logit_softcapping=30.0, T=19, doc_starts=[[0], [0, 7]]),
    # Multi-head attention (ratio 1), odd sizes everywhere.
    dict(name="mha_odd", hidden_size=20, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
         num_key_value_heads=2, head_dim=6, query_pre_attn_scalar=13, sliding_window=7, vocab_size=97,
         attn_logit_softcapping=50.0, final_logit_softcapping=30.0, T=23, doc_starts=[[0], [0, 9, 15]]),
    # GQA ratio 4, tiny window, strong soft-capping, many short documents.
    dict(name="gqa4_packed", hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=8,
         num_key_value_heads=2, head_dim=4, query_pre_attn_scalar=4, sliding_window=3, vocab_size=64,
         attn_logit_softcapping=5.0, final_logit_softcapping=3.0, T=17, doc_starts=[[0, 5, 11], [0, 1, 2, 10]]),
]


def make_model(case, seed):
    cfg = Gemma2Config(
        hidden_size=case["hidden_size"], intermediate_size=case["intermediate_size"],
        num_hidden_layers=case["num_hidden_layers"], num_attention_heads=case["num_attention_heads"],
        num_key_value_heads=case["num_key_value_heads"], head_dim=case["head_dim"],
        query_pre_attn_scalar=case["query_pre_attn_scalar"], sliding_window=case["sliding_window"],
        vocab_size=case["vocab_size"], attn_logit_softcapping=case["attn_logit_softcapping"],
        final_logit_softcapping=case["final_logit_softcapping"], max_position_embeddings=256,
        rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh", attn_implementation="eager",
        pad_token_id=0, eos_token_id=1, bos_token_id=2)
    torch.manual_seed(seed)
    model = Gemma2ForCausalLM(cfg).float().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:  # norms: offsets from 1, made non-zero so (1 + w) matters
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
    return model


def doc_begin_of(starts, T):
    begin, out = 0, []
    for t in range(T):
        if t in starts:
            begin = t
        out.append(begin)
    return out


def block_masks(doc_begin, window):
    """Additive [B, 1, T, T] masks: key j is allowed for query i iff it is in i's
    document and j <= i; sliding layers also need i - j < window."""
    B, T = doc_begin.shape
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    neg = torch.finfo(torch.float32).min
    full, sliding = [], []
    for b in range(B):
        same_doc = j >= doc_begin[b].view(T, 1)
        allowed = same_doc & (j <= i)
        full.append(torch.where(allowed, 0.0, neg))
        sliding.append(torch.where(allowed & (i - j < window), 0.0, neg))
    return {"full_attention": torch.stack(full)[:, None], "sliding_attention": torch.stack(sliding)[:, None]}


def run_packed(model, tokens, doc_begin, window):
    T = tokens.shape[1]
    pos = torch.arange(T).view(1, T) - doc_begin
    return model(input_ids=tokens, position_ids=pos, attention_mask=block_masks(doc_begin, window)).logits


def run_per_document(model, tokens, starts_per_row):
    rows = []
    for b, starts in enumerate(starts_per_row):
        bounds = list(starts) + [tokens.shape[1]]
        pieces = [model(input_ids=tokens[b:b + 1, s:e]).logits for s, e in zip(bounds[:-1], bounds[1:])]
        rows.append(torch.cat(pieces, dim=1))
    return torch.cat(rows, dim=0)


def write_case(case, out_dir, seed):
    model = make_model(case, seed)
    B, T, V = len(case["doc_starts"]), case["T"], case["vocab_size"]
    gen = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[torch.rand((B, T), generator=gen) < 0.15] = -1  # no loss at these positions
    doc_begin = torch.tensor([doc_begin_of(s, T) for s in case["doc_starts"]])

    logits = run_packed(model, tokens, doc_begin, case["sliding_window"])
    with torch.no_grad():  # the inference-time window override (report Table 10)
        logits_window2 = run_packed(model, tokens, doc_begin, 2)
    with torch.no_grad():
        separate = run_per_document(model, tokens, case["doc_starts"])
    gap = (logits - separate).abs().max().item()
    assert gap < 1e-5, f"{case['name']}: packed and per-document logits differ by {gap}"

    valid = targets >= 0
    logp = torch.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    loss = (nll * valid).sum() / valid.sum()
    loss.backward()

    path = os.path.join(out_dir, case["name"])
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tensors = {
        "tokens": tokens.to(torch.int32), "doc_begin": doc_begin.to(torch.int32),
        "targets": targets.to(torch.int32), "logits": logits.detach().float().contiguous(),
        "logits_window2": logits_window2.float().contiguous(),
        "loss": loss.detach().double().reshape(1),
    }
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().float().contiguous()
    save_file(tensors, os.path.join(path, "expected.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(path, "case.json"), "w") as f:
        json.dump({k: v for k, v in case.items()}, f, indent=1)
    print(f"{case['name']}: loss {loss.item():.6f}, packed vs per-document {gap:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/gemma2")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for k, case in enumerate(CASES):
        write_case(case, args.out, seed=100 + k)


if __name__ == "__main__":
    main()
