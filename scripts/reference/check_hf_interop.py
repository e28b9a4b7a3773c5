#!/usr/bin/env python3
"""Checks that model directories written by gemmakd load in transformers'
Gemma2ForCausalLM and give the logits gemmakd computes.

For float32 and bfloat16 storage, single-file and sharded (--max-shard-size): `gemmakd init`
writes a model, transformers loads it (eager attention, float32 compute), and
its logits on a packed two-document sequence are compared with
`gemmakd score` (relative max error). Needs torch and transformers (pip); run
from the repository root after `make`:
    python3 scripts/reference/check_hf_interop.py
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.numpy import load_file
from transformers import Gemma2ForCausalLM

GEMMAKD = os.environ.get("GEMMAKD", "./gemmakd")
CONFIG = "configs/models/tiny.json"
TOKENS = [2, 651, 10, 77, 5, 9, 1000, 4000, 3, 17, 2, 8000, 12, 13, 99, 100, 101, 7, 7, 7] * 4
DOC_STARTS = [0, 33]


def hf_logits(model_dir):
    model = Gemma2ForCausalLM.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32).eval()
    ids = torch.tensor([TOKENS])
    T = ids.shape[1]
    begin = torch.tensor([max(s for s in DOC_STARTS if s <= t) for t in range(T)])
    pos = (torch.arange(T) - begin).view(1, T)
    i, j = torch.arange(T).view(T, 1), torch.arange(T).view(1, T)
    allowed = (j >= begin.view(T, 1)) & (j <= i)
    window = model.config.sliding_window
    neg = torch.finfo(torch.float32).min
    masks = {"full_attention": torch.where(allowed, 0.0, neg)[None, None],
             "sliding_attention": torch.where(allowed & (i - j < window), 0.0, neg)[None, None]}
    with torch.no_grad():
        return model(input_ids=ids, position_ids=pos, attention_mask=masks).logits[0].numpy()


def main():
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for dtype, shard in [("float32", "5GB"), ("bfloat16", "5GB"), ("float32", "1MB"), ("bfloat16", "400KB")]:
            name = f"{dtype}-{shard}"
            out = os.path.join(tmp, name)
            subprocess.run([GEMMAKD, "init", "--config", CONFIG, "--seed", "5", "--dtype", dtype, "--max-shard-size",
                            shard, "--out", out], check=True)
            shards = sorted(f for f in os.listdir(out) if f.endswith(".safetensors"))
            scored = os.path.join(tmp, name + ".safetensors")
            subprocess.run([GEMMAKD, "score", "--model", out, "--tokens", ",".join(map(str, TOKENS)), "--doc-starts",
                            ",".join(map(str, DOC_STARTS)), "--out", scored], check=True)
            ours = load_file(scored)["logits"]
            theirs = hf_logits(out)
            rel = float(abs(ours - theirs).max() / abs(theirs).max())
            with open(os.path.join(out, "config.json")) as f:
                json.load(f)
            print(f"{name}: {len(shards)} weight file(s); transformers loads it; logits differ by {rel:.2e} (relative)")
            worst = max(worst, rel)
    print("OK" if worst <= 1e-5 else "MISMATCH")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
