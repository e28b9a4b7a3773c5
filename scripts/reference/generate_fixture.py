#!/usr/bin/env python3
"""Greedy generation fixture from transformers (tests/test_generate.c).

A small random Gemma2ForCausalLM (eager attention, float32, a sliding window
of 8 shorter than the generated length, soft-capping on, random norm weights) is saved with
save_pretrained, and model.generate(do_sample=False) continues three prompts
by 40 tokens each. Needs torch and transformers; CI does not run it.

    python3 scripts/reference/generate_fixture.py
"""
import json
import os

import torch
from transformers import Gemma2Config, Gemma2ForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "generate")


def main():
    torch.manual_seed(20261123)
    cfg = Gemma2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
                       sliding_window=8, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                       max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=10000.0, initializer_range=0.05,
                       hidden_activation="gelu_pytorch_tanh", attn_implementation="eager",
                       pad_token_id=0, eos_token_id=1, bos_token_id=2)
    model = Gemma2ForCausalLM(cfg).eval()
    with torch.no_grad():  # random norm scales: varied continuations whose top two logits are >= 0.003 apart
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0, 0.5)
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(OUT, safe_serialization=True)
    os.remove(os.path.join(OUT, "generation_config.json"))  # not read by gemmakd
    prompts = [[2, 17, 300, 45], [2, 99], [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]]
    cases = []
    for p in prompts:
        ids = torch.tensor([p])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=40, do_sample=False, eos_token_id=None, pad_token_id=0,
                                 min_new_tokens=40)
        cases.append({"prompt": p, "generated": out[0, len(p):].tolist()})
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"source": "transformers Gemma2ForCausalLM.generate(do_sample=False), eager, float32",
                   "cases": cases}, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
