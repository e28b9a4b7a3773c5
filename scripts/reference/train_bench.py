#!/usr/bin/env python3
"""PyTorch training step of the same Gemma 2 model gemmakd benchmarks, for
`make bench`'s ratios.

transformers' Gemma2ForCausalLM (eager attention: the backend that applies
the attention soft-cap) in float32 or under torch.autocast("cpu", bfloat16),
mean cross-entropy over the batch's next tokens (or, with --teacher-config,
forward KL(teacher || student) at temperature 1 against an in-process teacher
run under no_grad), backward, clip_grad_norm_(1.0) and torch.optim.AdamW (betas
0.9/0.95, weight decay 0.1): the same work as `gemmakd bench --optimizer adamw`.
Prints one JSON line with tokens/s and peak RSS.
    python3 scripts/reference/train_bench.py --config configs/models/bench-d256.json --batch 8 --seq-len 256 \\
        --threads 2 [--bf16] [--teacher-config configs/models/bench-teacher-d512.json]
"""
import argparse
import contextlib
import json
import resource
import time

import torch
import torch.nn.functional as F
from transformers import Gemma2Config, Gemma2ForCausalLM


def load_model(path, seed):
    with open(path) as f:
        fields = {k: v for k, v in json.load(f).items() if k not in ("architectures", "model_type", "torch_dtype")}
    cfg = Gemma2Config(**fields, attn_implementation="eager")
    torch.manual_seed(seed)
    return cfg, Gemma2ForCausalLM(cfg).float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--teacher-config")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, model = load_model(args.config, 0)
    model.train()
    teacher = load_model(args.teacher_config, 1)[1].eval() if args.teacher_config else None
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    tokens = torch.randint(0, cfg.vocab_size, (args.batch, args.seq_len + 1))
    inputs, targets = tokens[:, :-1], tokens[:, 1:].reshape(-1)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            logits = model(input_ids=inputs).logits.float().reshape(-1, cfg.vocab_size)
            if teacher is None:
                loss = F.cross_entropy(logits, targets)
            else:
                with torch.no_grad():
                    t = teacher(input_ids=inputs).logits.float().reshape(-1, cfg.vocab_size)
                loss = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(t, -1), log_target=True,
                                reduction="batchmean")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    mode = "bf16 autocast" if args.bf16 else "eager float32"
    print(json.dumps({"framework": f"torch {torch.__version__} {mode}", "config": args.config,
                      "teacher_config": args.teacher_config, "batch": args.batch, "seq_len": args.seq_len,
                      "threads": args.threads, "step_s": seconds, "tokens_per_s": args.batch * args.seq_len / seconds,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
