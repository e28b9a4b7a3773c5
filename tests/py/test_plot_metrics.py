#!/usr/bin/env python3
"""scripts/plot_metrics.py draws only comparable numbers on one axis: fed
synthetic metrics.jsonl files of a run from scratch (its `loss` is its
cross-entropy, about 4.7) and of a distillation run (`loss` and `kd` about 0.2,
`ce` about 4.6), the cross-entropy axis holds both runs' training and
validation cross-entropy (the distilled run's `ce`, never its `loss`), and the
KD term has its own axis with the distilled run's `kd` alone. Checked on the
series plan and on the figure main() draws (with matplotlib; skipped without).

    python3 tests/py/test_plot_metrics.py   (from the repository root; one PASS/FAIL/SKIP line per case)
"""
import contextlib
import importlib.util
import io
import json
import os
import sys

from cases import run_cases

PROGRAM = "test_plot_metrics"

# step, tokens, scratch loss, distilled ce, distilled kd (= its loss: alpha 1)
STEPS = [(1, 64, 4.71, 4.62, 0.21), (2, 128, 4.69, 4.60, 0.20), (3, 192, 4.66, 4.55, 0.19),
         (4, 256, 4.65, 4.52, 0.18)]
VAL = {2: (4.80, 4.75), 4: (4.70, 4.64)}  # step: (scratch, distilled) val_loss


def load_plot_metrics():
    spec = importlib.util.spec_from_file_location("plot_metrics", "scripts/plot_metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_runs(root):
    """runs scratch/ and distill/ with metrics.jsonl as train writes them (one skipped step each)."""
    dirs = {}
    for run in ("scratch", "distill"):
        lines = []
        for step, tokens, loss, ce, kd in STEPS:
            m = {"step": step, "loss": loss if run == "scratch" else kd, "lr": 1e-3, "grad_norm": 1.0, "tokens": tokens}
            if run == "distill":
                m.update(ce=ce, kd=kd, kl=kd)
            m.update(tokens_per_s=1000.0, elapsed=float(step))
            lines.append(m)
            if step in VAL:
                lines.append({"step": step, "val_loss": VAL[step][run == "distill"], "val_targets": 64})
        lines.insert(2, {"step": 9, "loss": -1, "lr": 1e-3, "grad_norm": -1, "tokens": 999, "ce": 99.0, "kd": 99.0,
                         "kl": 99.0, "tokens_per_s": 0.0, "elapsed": 9.0, "skipped": "non-finite loss or gradient"})
        dirs[run] = os.path.join(root, run)
        os.makedirs(dirs[run])
        with open(os.path.join(dirs[run], "metrics.jsonl"), "w") as f:
            f.writelines(json.dumps(m) + "\n" for m in lines)
    return dirs


def expected():
    """What must be drawn at --smooth 1: (axis, run, what, the words its label needs, y values)."""
    ce, kd = "cross-entropy", "KD"
    return [
        (ce, "scratch", "training cross-entropy (its loss)", ("train", "cross-entropy"), [s[2] for s in STEPS]),
        (ce, "scratch", "validation loss", ("validation", "cross-entropy"), [v[0] for v in VAL.values()]),
        (ce, "distill", "training cross-entropy (its ce)", ("train", "cross-entropy"), [s[3] for s in STEPS]),
        (ce, "distill", "validation loss", ("validation", "cross-entropy"), [v[1] for v in VAL.values()]),
        (kd, "distill", "KD term (its kd, also its loss)", ("train", "KD"), [s[4] for s in STEPS]),
    ]


def check_axes(got):
    """got: [(ylabel, [(label, ys)])]. Each expected series is drawn once, on its axis, with a
    label naming its run and what it is; nothing else is drawn. Series are told apart by their
    values, so a wrong one is named by what it is, whatever its label. Misplaced series are
    reported first, then labels, then what is missing."""
    want = expected()
    drawn = [0] * len(want)
    misplaced, mislabelled = [], []
    for ylabel, series in got:
        axis = [a for a in ("cross-entropy", "KD") if a in ylabel]
        assert len(axis) == 1, f"an axis labelled {ylabel!r} is neither the cross-entropy nor the KD term"
        for label, ys in series:
            ys = [round(float(y), 9) for y in ys]
            match = [i for i, w in enumerate(want) if w[4] == ys]
            if not match:
                misplaced.append(f"{label!r} ({ys}) on the axis {ylabel!r} is none of the series to draw")
                continue
            where, run, what, words, _ = want[match[0]]
            if where != axis[0]:
                misplaced.append(f"the {run} run's {what} is drawn on the axis {ylabel!r} (as {label!r})")
            else:
                drawn[match[0]] += 1
                if not (run in label and all(w in label for w in words)):
                    mislabelled.append(f"the {run} run's {what} is labelled {label!r} (the label must say {run}, "
                                       f"{' and '.join(words)})")
    missing = [f"the {w[1]} run's {w[2]} is not drawn once on the {w[0]} axis" for w, n in zip(want, drawn) if n != 1]
    problems = misplaced + mislabelled + missing
    assert not problems, "; ".join(problems)


def plan_puts_each_series_on_its_axis(work):
    pm = load_plot_metrics()
    runs = [(name, *pm.read_run(path)) for name, path in write_runs(work).items()]
    panels = pm.series_plan(runs, x="step", smooth=1)
    check_axes([(p["ylabel"], [(s["label"], s["y"]) for s in p["series"]]) for p in panels])
    assert [s["x"] for s in panels[1]["series"]] == [[1, 2, 3, 4]], "the KD term is not drawn against the steps"


def plan_without_distillation_has_no_kd_axis(work):
    pm = load_plot_metrics()
    path = write_runs(work)["scratch"]
    panels = pm.series_plan([("scratch", *pm.read_run(path))], smooth=1)
    assert [p["ylabel"] for p in panels] == [pm.CE_LABEL], f"axes {[p['ylabel'] for p in panels]}"


def figure_draws_the_plan(work):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dirs = write_runs(work)
    out = os.path.join(work, "curves.png")
    argv = sys.argv
    sys.argv = ["plot_metrics.py", dirs["scratch"], dirs["distill"], "--out", out, "--x", "step", "--smooth", "1"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "wrote ..."
            load_plot_metrics().main()
    finally:
        sys.argv = argv
    assert os.path.getsize(out) > 0, "no PNG written"
    fig = plt.figure(plt.get_fignums()[-1])
    check_axes([(ax.get_ylabel(), [(line.get_label(), list(line.get_ydata())) for line in ax.get_lines()])
                for ax in fig.axes if ax.get_lines()])
    plt.close("all")


def needs_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        return f"{sys.executable} cannot import matplotlib ({e})"
    return None


def main():
    run_cases(PROGRAM, [(plan_puts_each_series_on_its_axis, None), (plan_without_distillation_has_no_kd_axis, None),
                        (figure_draws_the_plan, needs_matplotlib())], "gk-plot-")


if __name__ == "__main__":
    main()
