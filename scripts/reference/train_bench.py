#!/usr/bin/env python3
"""PyTorch float32 eager training step of the same Gemma 2 model gemmakd
benchmarks, for `make bench`'s ratio.

transformers' Gemma2ForCausalLM (eager attention: the backend that applies
the attention soft-cap), float32, mean cross-entropy over the batch's next
tokens, backward, clip_grad_norm_(1.0) and torch.optim.AdamW (betas 0.9/0.95,
weight decay 0.1) — the same work as `gemmakd bench --optimizer adamw`.
Prints one JSON line with tokens/s.
    python3 scripts/reference/train_bench.py --config configs/models/bench-d256.json --batch 8 --seq-len 256 --threads 2
"""
import argparse
import json
import time

import torch
from transformers import Gemma2Config, Gemma2ForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        fields = {k: v for k, v in json.load(f).items() if k not in ("architectures", "model_type", "torch_dtype")}
    cfg = Gemma2Config(**fields, attn_implementation="eager")
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(cfg).float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    tokens = torch.randint(0, cfg.vocab_size, (args.batch, args.seq_len + 1))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=tokens[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    print(json.dumps({"framework": f"torch {torch.__version__} eager float32", "config": args.config,
                      "batch": args.batch, "seq_len": args.seq_len, "threads": args.threads, "step_s": seconds,
                      "tokens_per_s": args.batch * args.seq_len / seconds}))


if __name__ == "__main__":
    main()
