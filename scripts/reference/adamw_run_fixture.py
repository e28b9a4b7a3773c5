#!/usr/bin/env python3
"""Reference for ten steps of `gemmakd train` with AdamW: the same run in
PyTorch, transformers' Gemma2ForCausalLM (eager) trained by torch.optim.AdamW.

The run (tests/test_adamw_run.c trains it with gemmakd):
  data      one shard of 4 windows of T = 16 (+1) tokens, documents packed
            across window edges; batch.size 4 = 2 x batch.micro 2, so each
            step's batch is every window once (in the loader's shuffled order,
            which changes neither the loss nor the gradient: both are sums);
  loss      per step, the mean over the step's trained targets of
            -log p(token t+1 | its document up to t), summed over both
            micro-batches before dividing (target t is trained unless token
            t+1 starts a document; attention and positions restart at document
            starts, a window starting mid-document starts it at position 0);
  clipping  by the global norm of all gradients (clip_grad_norm_; the steps
            include norms above and below optim.grad_clip);
  AdamW     torch.optim.AdamW(foreach=False): decoupled weight decay on the
            projection matrices only (none on norms and the tied embedding),
            bias correction, eps added to sqrt(v_hat);
  lr        LambdaLR: warmup (s + 1) / warmup for s < warmup, then cosine from
            lr to lr * min_lr_ratio over the remaining steps, p = (s - warmup)
            / (steps - warmup - 1), reaching the minimum at the last step
            (train/schedule.h).
Writes tests/fixtures/adamw_run/:
  model/             config.json + model.safetensors: the initial weights
  run.yaml           the run config's settings (run_dir, model.from and data.train come from the test)
  run.safetensors    tokens [4T+1] int32, doc_starts [D] int64; per step (float64 [10]):
                     loss, lr, grad_norm (before clipping); final.<name>: the weights after step 10
    python3 scripts/reference/adamw_run_fixture.py
"""
import math
import os

import torch
from safetensors.torch import save_file

from sgd_step_fixture import make_model, packed_logits, per_target_loss

OUT = "tests/fixtures/adamw_run"
T, WINDOWS, STEPS = 16, 4, 10
# Trained targets per window 16, 15, 13, 10: no pairing into two micro-batches has equal
# counts, so averaging per micro-batch instead of over the step would show.
DOC_STARTS = [0, 22, 36, 40, 47, 50, 52, 55, 58, 61, 63]
SETTINGS = {"seed": 3, "batch.size": 4, "batch.micro": 2, "train.steps": STEPS, "optim.name": "adamw",
            "optim.lr": 0.01, "optim.betas": (0.9, 0.95), "optim.eps": 1e-6, "optim.weight_decay": 0.1,
            "optim.grad_clip": 1.1, "schedule.name": "cosine", "schedule.warmup": 3, "schedule.min_lr_ratio": 0.1}


def lr_factor(step):
    """gemmakd's schedule (train/schedule.c's definition, from train/schedule.h) over lr."""
    warmup, ratio = SETTINGS["schedule.warmup"], SETTINGS["schedule.min_lr_ratio"]
    if step < warmup:
        return (step + 1) / warmup
    span = STEPS - warmup
    p = min(1.0, (step - warmup) / (span - 1)) if span > 1 else 1.0
    return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * p))


def windows(tokens):
    """(tokens [T+1], doc starts within the window with 0 first) of each window."""
    out = []
    for w in range(WINDOWS):
        s = w * T
        starts = [0] + [d - s for d in DOC_STARTS if s < d <= s + T]
        out.append((tokens[s:s + T + 1], starts))
    assert [T - len([d for d in w[1] if d > 0]) for w in out] == [16, 15, 13, 10], "trained targets per window"
    return out


def step_loss(model, batch):
    """Sum of CE over every trained target of the step, and how many there are."""
    total, count = 0.0, 0
    for tokens, starts in batch:
        targets = tokens[1:]
        trained = torch.tensor([(t + 1) not in starts for t in range(T)])
        total = total + (per_target_loss("ce", packed_logits(model, tokens, starts), None, targets) * trained).sum()
        count += int(trained.sum())
    return total, count


def optimizer(model):
    """AdamW with weight decay on the projection matrices only."""
    named = list(model.named_parameters())  # the tied lm_head is embed_tokens, listed once
    decay = [p for n, p in named if p.ndim == 2 and "embed_tokens" not in n]
    rest = [p for n, p in named if not (p.ndim == 2 and "embed_tokens" not in n)]
    assert len(decay) == 7 * model.config.num_hidden_layers, "expected q, k, v, o, gate, up, down per layer"
    return torch.optim.AdamW([{"params": decay, "weight_decay": SETTINGS["optim.weight_decay"]},
                              {"params": rest, "weight_decay": 0.0}], lr=SETTINGS["optim.lr"],
                             betas=SETTINGS["optim.betas"], eps=SETTINGS["optim.eps"], foreach=False)


def train(model, batch):
    opt = optimizer(model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    params = [p for _, p in model.named_parameters()]
    clip = SETTINGS["optim.grad_clip"]
    losses, lrs, norms = [], [], []
    for _ in range(STEPS):
        opt.zero_grad()
        total, count = step_loss(model, batch)
        loss = total / count
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip, foreach=False))
        # clip_grad_norm_ scales when norm + 1e-6 > clip, gemmakd when norm > clip: keep clear of the gap.
        assert abs(norm - clip) > 1e-3 * clip, f"norm {norm} too close to the clip {clip}"
        losses.append(float(loss.detach()))
        lrs.append(opt.param_groups[0]["lr"])
        norms.append(norm)
        opt.step()
        sched.step()
    assert min(norms) < clip < max(norms), f"norms {norms}: some steps must clip and some not"
    return losses, lrs, norms


def write_yaml(path):
    with open(path, "w") as f:
        f.write("# settings of the run scripts/reference/adamw_run_fixture.py trains in PyTorch\n")
        f.write(f"seed: {SETTINGS['seed']}\ndata: {{seq_len: {T}}}\n")
        f.write(f"batch: {{size: {SETTINGS['batch.size']}, micro: {SETTINGS['batch.micro']}}}\n")
        f.write(f"train: {{steps: {STEPS}}}\n")
        b1, b2 = SETTINGS["optim.betas"]
        f.write(f"optim: {{name: adamw, lr: {SETTINGS['optim.lr']!r}, betas: [{b1!r}, {b2!r}], "
                f"eps: {SETTINGS['optim.eps']:.1e}, weight_decay: {SETTINGS['optim.weight_decay']!r}, "
                f"grad_clip: {SETTINGS['optim.grad_clip']!r}}}\n")
        f.write(f"schedule: {{name: cosine, warmup: {SETTINGS['schedule.warmup']}, "
                f"min_lr_ratio: {SETTINGS['schedule.min_lr_ratio']!r}}}\n")
        f.write(f"checkpoint: {{every: {STEPS}}}\n")


def main():
    model = make_model(seed=6)
    g = torch.Generator().manual_seed(8)
    tokens = torch.randint(3, 40, (WINDOWS * T + 1,), generator=g)  # no pad (0) among inputs
    for s in DOC_STARTS:
        tokens[s] = 2  # documents start with <bos>
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(os.path.join(OUT, "model"), safe_serialization=True)
    os.remove(os.path.join(OUT, "model", "generation_config.json"))  # gemmakd reads config.json and the weights
    losses, lrs, norms = train(model, windows(tokens))
    out = {"tokens": tokens.to(torch.int32), "doc_starts": torch.tensor(DOC_STARTS, dtype=torch.int64),
           "loss": torch.tensor(losses, dtype=torch.float64), "lr": torch.tensor(lrs, dtype=torch.float64),
           "grad_norm": torch.tensor(norms, dtype=torch.float64)}
    for name, p in model.named_parameters():
        out["final." + name] = p.detach().clone()
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "run.safetensors"))
    write_yaml(os.path.join(OUT, "run.yaml"))
    print(f"wrote {OUT}: losses {[round(x, 4) for x in losses]}, grad norms {[round(x, 3) for x in norms]}")


if __name__ == "__main__":
    main()
