#!/usr/bin/env python3
"""Loss curves of one or more gemmakd runs, from their metrics.jsonl, to a PNG.

    python3 scripts/plot_metrics.py runs/a runs/b --out curves.png [--x tokens|step] [--smooth 20]

Only comparable numbers share an axis:
  - cross-entropy (nats/token): each run's training cross-entropy (thin, a mean
    over --smooth logged points centred on each) and validation loss (markers).
    A run from scratch logs its cross-entropy as `loss`; a distillation run logs
    `ce` beside its objective, and that `ce` is what is drawn here;
  - KD term (nats/token), a second panel when some run distils: the `kd` each
    distillation run logs (the kd.loss divergence, times tau^2 with
    kd.t2_scale). A distillation run's `loss` (alpha * kd + (1 - alpha) * ce)
    is drawn on neither.
series_plan() says what goes where without drawing; main() draws it. Needs
matplotlib (Debian: python3-matplotlib) to draw.
"""
import argparse
import json
import os
import sys

CE_LABEL = "cross-entropy (nats/token)"
KD_LABEL = "KD term (nats/token)"


def read_run(run_dir):
    """The logged training steps (skipped ones left out) and evaluations of a run:
    ([{"step", "tokens", "loss", "ce", "kd"}], [{"step", "tokens", "val_loss"}]);
    ce and kd are None in a run without a teacher."""
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
                train.append({"step": m["step"], "tokens": m["tokens"], "loss": m["loss"], "ce": m.get("ce"),
                              "kd": m.get("kd")})
                tokens_at[m["step"]] = m["tokens"]
            if "val_loss" in m:
                val.append({"step": m["step"], "val_loss": m["val_loss"]})
    for v in val:
        v["tokens"] = tokens_at.get(v["step"], 0)
    return train, val


def centred_mean(values, window):
    """Mean over a window centred on each point (no lag; narrower at the ends)."""
    half = window // 2
    out = []
    for i in range(len(values)):
        part = values[max(0, i - half):i + half + 1]
        out.append(sum(part) / len(part))
    return out


def series_plan(runs, x="tokens", smooth=10):
    """What to draw: [{"ylabel", "series": [{"label", "x", "y", "kind": "train"|"val", "color"}]}],
    the cross-entropy panel first, then the KD panel when some run logged `kd`.
    runs: [(name, train, val)] as read_run gives them."""
    ce_panel = {"ylabel": CE_LABEL, "series": []}
    kd_panel = {"ylabel": KD_LABEL, "series": []}
    for k, (name, train, val) in enumerate(runs):
        color = f"C{k}"
        distilled = any(t["ce"] is not None for t in train)
        xs = [t[x] for t in train]
        if train:
            ce = [t["ce"] if distilled else t["loss"] for t in train]
            ce_panel["series"].append({"label": f"{name} train cross-entropy", "x": xs, "y": centred_mean(ce, smooth),
                                       "kind": "train", "color": color})
        if val:
            ce_panel["series"].append({"label": f"{name} validation cross-entropy", "x": [v[x] for v in val],
                                       "y": [v["val_loss"] for v in val], "kind": "val", "color": color})
        if distilled:
            kd_panel["series"].append({"label": f"{name} train KD term", "x": xs,
                                       "y": centred_mean([t["kd"] for t in train], smooth), "kind": "train",
                                       "color": color})
    return [ce_panel] + ([kd_panel] if kd_panel["series"] else [])


def draw(panels, xlabel, title, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 5), dpi=120, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for s in panel["series"]:
            style = {"alpha": 0.5, "lw": 1} if s["kind"] == "train" else {"marker": "o", "lw": 2}
            ax.plot(s["x"], s["y"], color=s["color"], label=s["label"], **style)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel["ylabel"])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, out)
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories (each with metrics.jsonl)")
    ap.add_argument("--out", required=True, help="PNG file to write")
    ap.add_argument("--x", choices=["tokens", "step"], default="tokens")
    ap.add_argument("--smooth", type=int, default=10, help="mean over this many logged points, centred")
    ap.add_argument("--title", default="")
    args = ap.parse_args(argv)
    runs = [(os.path.basename(os.path.normpath(r)), *read_run(r)) for r in args.runs]
    fig = draw(series_plan(runs, args.x, args.smooth), args.x, args.title, args.out)
    print(f"wrote {args.out}")
    return fig


if __name__ == "__main__":
    main()
