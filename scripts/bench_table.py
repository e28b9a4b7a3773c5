#!/usr/bin/env python3
"""make bench's table of training steps: gemmakd fp32 / bf16 beside PyTorch fp32 /
bf16 autocast, from the lines "TASK WHO JSON" that scripts/bench.sh collects
(TASK: xent or distill; WHO: gemmakd-fp32, gemmakd-bf16, torch-fp32, torch-bf16)."""
import json
import sys

WHO = ("gemmakd-fp32", "gemmakd-bf16", "torch-fp32", "torch-bf16")
TASKS = (("xent", "cross-entropy"), ("distill", "distillation, in-process teacher"))


def load(path):
    runs = {}
    for line in open(path):
        task, who, text = line.split(" ", 2)
        if text.strip():
            runs[(task, who)] = json.loads(text)
    return runs


def main():
    runs = load(sys.argv[1])
    torch = next((r["framework"].split(" ")[1] for (_, w), r in runs.items() if w.startswith("torch")), None)
    if torch:
        print(f"PyTorch: torch {torch}")
    fmt = lambda v: f"{v:.0f} tok/s" if v else "-"
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    print("| step | gemmakd fp32 | gemmakd bf16 | PyTorch fp32 | PyTorch bf16 autocast | fp32 ratio | bf16 ratio "
          "| bf16 vs PyTorch fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    for task, name in TASKS:
        tps = [runs[(task, w)]["tokens_per_s"] if (task, w) in runs else None for w in WHO]
        print(f"| {name} | " + " | ".join(fmt(v) for v in tps) +
              f" | {ratio(tps[0], tps[2])} | {ratio(tps[1], tps[3])} | {ratio(tps[1], tps[2])} |")
    print()
    print("| step | run | step time | head | head / its products | product rate used | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for task, name in TASKS:
        for who in WHO:
            r = runs.get((task, who))
            if not r:
                continue
            rss = r.get("peak_bytes", r.get("peak_rss_bytes"))
            if who.startswith("gemmakd"):
                head = f"{r['head_s']:.3f} s"
                own = f"{r['head_s'] / r['head_products_s']:.2f}x ({r['head_products_s']:.3f} s)"
                used = f"{100 * r['fraction_of_products']:.0f}% of {r['products_gflops']:.0f} GFLOP/s"
            else:
                head = own = used = "-"
            print(f"| {name} | {who} | {r['step_s']:.3f} s | {head} | {own} | {used} | {rss / 2**30:.2f} GiB |")
    for task, _ in TASKS:
        r = runs.get((task, "gemmakd-bf16"))
        if r:
            print(f"{task}, gemmakd bf16 kernels: {r['kernels']} on {r['machine']}")


if __name__ == "__main__":
    main()
