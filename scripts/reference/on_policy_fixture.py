#!/usr/bin/env python3
"""Reference for one on-policy distillation step of gemmakd (tests/test_train_step.c).

The student and teacher of tests/fixtures/sgd_step (tiny Gemma 2 models saved by
transformers) are reused. The student continues three prompts greedily
(model.generate(do_sample=False), stopping at <eos> id 1 or after 8 new tokens):
these are the "student-sampled" sequences, which gemmakd, sampling greedily with
kd.on_policy.temperature 0, must produce too. The loss is the mean over every
generated token of a divergence between the teacher's and the student's
next-token distributions at the position before it (prompt positions are not
trained); autograd gives its gradient for the student's weights:
  jsd: JSD_beta(p_T, p_S) = beta KL(p_T || M) + (1 - beta) KL(p_S || M), M = beta p_T + (1 - beta) p_S, beta 0.3
  rkl: KL(p_S || p_T)
Writes tests/fixtures/on_policy/sequences.safetensors:
  prompt<i> [P] int32, generated<i> [G] int32 (i = 0, 1, 2),
  grad_jsd.<name>, grad_rkl.<name>: the gradients.
Needs torch and transformers; CI does not run it.
    python3 scripts/reference/on_policy_fixture.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma2ForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
OUT = os.path.join(ROOT, "on_policy")
PROMPTS = [[2, 5, 17, 9], [2, 33], [2, 8, 8, 21, 30, 4]]
MAX_NEW = 8
BETA = 0.3


def load(name):
    model = Gemma2ForCausalLM.from_pretrained(os.path.join(ROOT, "sgd_step", name), attn_implementation="eager")
    return model.float().eval()


def continuation(model, prompt):
    """Greedy ids after the prompt; checks that no step is a near tie (which float rounding could flip)."""
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=1, pad_token_id=0,
                             output_scores=True, return_dict_in_generate=True)
    for scores in out.scores:
        top = scores[0].topk(2).values
        assert top[0] - top[1] > 1e-3, f"near tie in the greedy choice after {prompt}: {top.tolist()}"
    return out.sequences[0, len(prompt):].tolist()


def divergence(kind, student_logits, teacher_logits):
    lps, lpt = torch.log_softmax(student_logits, -1), torch.log_softmax(teacher_logits, -1)
    if kind == "rkl":
        return (lps.exp() * (lps - lpt)).sum(-1)
    lm = torch.logsumexp(torch.stack([lpt + torch.log(torch.tensor(BETA)), lps + torch.log(torch.tensor(1 - BETA))]), 0)
    return BETA * (lpt.exp() * (lpt - lm)).sum(-1) + (1 - BETA) * (lps.exp() * (lps - lm)).sum(-1)


def gradients(kind, student, teacher, rows):
    student.zero_grad()
    total, count = 0, 0
    for prompt, generated in rows:
        ids = torch.tensor([prompt + generated])
        logits = student(input_ids=ids).logits[0]
        with torch.no_grad():
            teacher_logits = teacher(input_ids=ids).logits[0]
        trained = slice(len(prompt) - 1, len(prompt) + len(generated) - 1)  # positions whose next token was sampled
        total = total + divergence(kind, logits[trained], teacher_logits[trained]).sum()
        count += len(generated)
    (total / count).backward()
    return {n: p.grad.detach().clone() for n, p in student.named_parameters()}


def main():
    student, teacher = load("model"), load("teacher")
    rows = [(p, continuation(student, p)) for p in PROMPTS]
    out = {}
    for i, (prompt, generated) in enumerate(rows):
        out[f"prompt{i}"] = torch.tensor(prompt, dtype=torch.int32)
        out[f"generated{i}"] = torch.tensor(generated, dtype=torch.int32)
    for kind in ("jsd", "rkl"):
        for name, grad in gradients(kind, student, teacher, rows).items():
            out[f"grad_{kind}.{name}"] = grad
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "sequences.safetensors"))
    print("wrote", OUT, [len(g) for _, g in rows], "new tokens")


if __name__ == "__main__":
    main()
