#!/usr/bin/env python3
"""Loss curves of one or more gemmakd runs, from their metrics.jsonl, to a PNG.

    python3 scripts/plot_metrics.py runs/a runs/b --out curves.png [--x tokens|step] [--smooth 20]

Training loss (a mean over --smooth logged points centred on each, thin) and
validation loss (markers) of each run, against tokens seen or steps. Needs
matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_run(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    train, val = [], []
    tokens_at = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                m = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: {e}")
            if "loss" in m and "skipped" not in m:
                train.append((m["step"], m["tokens"], m["loss"]))
                tokens_at[m["step"]] = m["tokens"]
            if "val_loss" in m:
                val.append((m["step"], m["val_loss"]))
    val = [(s, tokens_at.get(s, 0), v) for s, v in val]
    return train, val


def centred_mean(values, window):
    """Mean over a window centred on each point (no lag; narrower at the ends)."""
    half = window // 2
    out = []
    for i in range(len(values)):
        part = values[max(0, i - half):i + half + 1]
        out.append(sum(part) / len(part))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories (each with metrics.jsonl)")
    ap.add_argument("--out", required=True, help="PNG file to write")
    ap.add_argument("--x", choices=["tokens", "step"], default="tokens")
    ap.add_argument("--smooth", type=int, default=10, help="mean over this many logged points, centred")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    col = 1 if args.x == "tokens" else 0
    for k, run in enumerate(args.runs):
        train, val = read_run(run)
        color = f"C{k}"
        name = os.path.basename(os.path.normpath(run))
        if train:
            ax.plot([t[col] for t in train], centred_mean([t[2] for t in train], args.smooth), color=color,
                    alpha=0.5, lw=1, label=f"{name} train")
        if val:
            ax.plot([v[col] for v in val], [v[2] for v in val], color=color, marker="o", lw=2, label=f"{name} val")
    ax.set_xlabel("tokens" if args.x == "tokens" else "step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = args.out + ".tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
