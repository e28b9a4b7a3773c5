"""The tables and plots of an ablation sweep (scripts/sweep.py) from its results rows."""
import json
import math
import os
import statistics

# t_{0.975} for 1..30 degrees of freedom: the 95% interval of a mean of n paired differences.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def write_atomic(path, text):
    """text into path through a temporary name: a failed or killed write leaves the old file or none."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def t975(df):
    return T975[df - 1] if df <= len(T975) else 1.96


def train_seconds(run_dir):
    """The training time a run logged (its last metrics line's elapsed), or None."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    elapsed = None
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        elapsed = r.get("elapsed", elapsed)
    return elapsed


def metrics(result):
    """{metric: value} of one gemmakd eval JSON."""
    out = {}
    data = result.get("data") or {}
    for key, name in (("loss", "val loss"), ("perplexity", "perplexity"), ("bits_per_byte", "bits/byte")):
        if key in data:
            out[name] = data[key]
    teacher = result.get("teacher") or {}
    if "kl" in teacher:
        out["KL(teacher‖model)"] = teacher["kl"]
    if "top1_agreement" in teacher:
        out["top-1 agreement"] = teacher["top1_agreement"]
    for task in result.get("tasks") or []:
        name = os.path.splitext(os.path.basename(task["file"]))[0]
        out[f"{name} acc"] = task["acc"]
        if "acc_norm" in task:  # length-normalised: nearer the truth when choices differ in length
            out[f"{name} acc_norm"] = task["acc_norm"]
    return out


def mean_std(values):
    m = statistics.fmean(values)
    return m, statistics.stdev(values) if len(values) > 1 else None


def fmt(value, digits=4):
    return "" if value is None else f"{value:.{digits}f}"


def grouped(rows):
    """{(cell, variant): {seed: {metric: value}}} in the order rows come."""
    out = {}
    for r in rows:
        out.setdefault((r["cell"], r["variant"]), {})[r["seed"]] = metrics(r["eval"])
    return out


def results_table(groups, names):
    lines = ["| cell | evaluation | seeds | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for (cell, variant), by_seed in groups.items():
        cols = []
        for name in names:
            vals = [m[name] for m in by_seed.values() if name in m]
            if not vals:
                cols.append("")
                continue
            m, s = mean_std(vals)
            cols.append(fmt(m) + (f" ± {fmt(s)}" if s is not None else ""))
        lines.append(f"| {cell} | {variant} | {len(by_seed)} | " + " | ".join(cols) + " |")
    return lines


def paired_table(cfg, groups, names):
    """a - b for each compare [axis, a, b], paired by seed and by the cells' other axis values."""
    lines = []
    cells = {}
    for (cell, variant) in groups:
        cells.setdefault(cell, set()).add(variant)
    axes = list(cfg["axes"])
    for axis, a, b in cfg.get("compare") or []:
        i = axes.index(axis)
        for cell in cells:
            parts = cell.split("-")
            if len(parts) != len(axes) or parts[i] != a:
                continue
            other = "-".join(parts[:i] + [b] + parts[i + 1:])
            for variant in sorted(cells[cell] & cells.get(other, set())):
                x, y = groups[(cell, variant)], groups[(other, variant)]
                seeds = [s for s in x if s in y]
                cols = []
                for name in names:
                    d = [x[s][name] - y[s][name] for s in seeds if name in x[s] and name in y[s]]
                    if not d:
                        cols.append("")
                    elif len(d) == 1:
                        cols.append(f"{d[0]:+.4f}")
                    else:
                        m, s = mean_std(d)
                        h = t975(len(d) - 1) * s / math.sqrt(len(d))
                        cols.append(f"{m:+.4f} [{m - h:+.4f}, {m + h:+.4f}]")
                lines.append(f"| {cell} − {other} | {variant} | {len(seeds)} | " + " | ".join(cols) + " |")
    if not lines:
        return []
    return ["| difference | evaluation | seeds | " + " | ".join(f"Δ {n}" for n in names) + " |",
            "|---|---|---|" + "---|" * len(names)] + lines


def write(results, cfg, rows, sizes):
    groups = grouped(rows)
    names = []
    for by_seed in groups.values():
        for m in by_seed.values():
            names += [n for n in m if n not in names]
    claim = cfg.get("claim") or {}
    machines = sorted({r["machine"] for r in rows})
    commits = sorted({r["commit"] for r in rows})
    train_s = sum(s for _, s in {(r["run_dir"], r["train_s"]) for r in rows if r.get("train_s")})
    out = [f"# {cfg['name']} (profile {cfg['profile']})", ""]
    if claim:
        out += [f"Claim ({claim.get('source', '')}): {claim.get('text', '')}", ""]
    out += ["| cell | non-embedding parameters | parameters |", "|---|---|---|"]
    out += [f"| {c} | {s.get('params_non_embedding', 0):,} | {s.get('params_total', 0):,} |" for c, s in sizes.items()]
    out += ["", "Mean ± standard deviation over seeds:", ""] + results_table(groups, names)
    paired = paired_table(cfg, groups, [n for n in names if n != "perplexity"])  # exp(loss): no more to say
    if paired:
        out += ["", "Paired differences (same seed): mean and 95% interval over seeds (t distribution):", ""] + paired
    out += ["", f"Runs: {len({r['run_dir'] for r in rows})}, training {train_s / 60:.1f} min in all; "
            f"machine: {'; '.join(machines)}; commit {', '.join(commits)}."]
    for note in cfg.get("notes") or []:
        out += ["", note]
    write_atomic(os.path.join(results, "table.md"), "\n".join(out) + "\n")
    plots(results, rows, groups)


def save(fig, path):
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def plots(results, rows, groups):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("sweep: matplotlib is not installed: no plots", flush=True)
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cell in dict.fromkeys(r["cell"] for r in rows):
        curves = {}
        for run_dir in {r["run_dir"] for r in rows if r["cell"] == cell and r["variant"] == "final"}:
            path = os.path.join(run_dir, "metrics.jsonl")
            for line in open(path, encoding="utf-8") if os.path.exists(path) else []:
                m = json.loads(line)
                if "val_loss" in m:
                    curves.setdefault(m["step"], []).append(m["val_loss"])
        if curves:
            steps = sorted(curves)
            ax.plot(steps, [statistics.fmean(curves[s]) for s in steps], marker=".", label=cell)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, os.path.join(results, "curves.png"))
    plt.close(fig)
    keys = [k for k in groups if any("val loss" in m for m in groups[k].values())]
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(keys) + 2), 4.5))
    means, errs = [], []
    for k in keys:
        vals = [m["val loss"] for m in groups[k].values() if "val loss" in m]
        m, s = mean_std(vals)
        means.append(m)
        errs.append(s or 0)
    ax.bar(range(len(keys)), means, yerr=errs, capsize=3)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([c if v == "final" else f"{c}\n{v}" for c, v in keys], rotation=30, ha="right", fontsize=8)
    lo = min(means) - 2 * max(errs + [0.01]) if means else 0
    ax.set_ylim(bottom=max(0, lo))
    ax.set_ylabel("validation loss (mean ± std over seeds)")
    fig.tight_layout()
    save(fig, os.path.join(results, "bars.png"))
    plt.close(fig)
