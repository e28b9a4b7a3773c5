#!/usr/bin/env python3
"""Markdown tables from `gemmakd eval` results (standard-library Python).

    python3 scripts/eval_table.py NAME=result.json [NAME=result.json ...]

One row per result: validation loss, perplexity and bits per byte; teacher KL
and top-1 agreement when measured; multiple-choice accuracy per task file (its name
without .jsonl).
"""
import json
import sys


def cell(x, fmt="{:.4f}"):
    return "—" if x is None else fmt.format(x)


def main():
    rows = []
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        with open(path, encoding="utf-8") as f:
            rows.append((name, json.load(f)))
    tasks = []
    for _, r in rows:
        for t in r.get("tasks", []):
            if t["file"] not in tasks:
                tasks.append(t["file"])
    head = ["model", "window", "loss", "perplexity", "bits/byte", "KL(teacher‖model)", "top-1 agreement"]
    head += [f"{t.rsplit('/', 1)[-1].removesuffix('.jsonl')} acc / acc_norm" for t in tasks]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, r in rows:
        d, t = r.get("data", {}), r.get("teacher", {})
        cells = [name, str(d.get("sliding_window", "—")), cell(d.get("loss")), cell(d.get("perplexity"), "{:.2f}"),
                 cell(d.get("bits_per_byte")), cell(t.get("kl")), cell(t.get("top1_agreement"), "{:.3f}")]
        by_file = {x["file"]: x for x in r.get("tasks", [])}
        for f in tasks:
            x = by_file.get(f)
            cells.append("—" if x is None else f"{x['acc']:.3f} / {x['acc_norm']:.3f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
