#!/usr/bin/env python3
"""The ablation sweep's statistics and plan (scripts/sweep_report.py, scripts/sweep_plan.py)
against numbers worked out by hand: the 95% interval of a paired difference uses Student's t
(t_0.975 = 12.706 for 1 degree of freedom, 4.303 for 2, 2.228 for 10), means and standard
deviations over seeds, config merging and cells.

    python3 tests/py/test_sweep_report.py
"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import sweep_plan  # noqa: E402
import sweep_report  # noqa: E402

results = []


def case(name):
    def run(fn):
        try:
            fn()
            results.append(f"PASS test_sweep_report/{name}")
        except AssertionError as e:
            results.append(f"FAIL test_sweep_report/{name}: {e}")
        return fn
    return run


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(b))


def row(cell, seed, loss, acc, variant="final"):
    return {"cell": cell, "seed": seed, "variant": variant, "run_dir": f"r/{cell}{seed}", "train_s": 1.0,
            "machine": "m", "commit": "c",
            "eval": {"data": {"loss": loss}, "tasks": [{"file": "x/verses.jsonl", "acc": acc}]}}


@case("t_quantiles")
def _():
    for df, t in ((1, 12.706), (2, 4.303), (10, 2.228), (30, 2.042)):
        assert sweep_report.t975(df) == t, f"df {df}: {sweep_report.t975(df)}"


@case("paired_interval_by_hand")
def _():
    # distill - scratch per seed: 4.0-5.0, 4.5-6.5, 3.0-6.0 = -1, -2, -3: mean -2, sd 1,
    # half-width 4.303 / sqrt(3) = 2.48434
    rows = [row("scratch", 1, 5.0, 0.25), row("scratch", 2, 6.5, 0.30), row("scratch", 3, 6.0, 0.35),
            row("distill", 1, 4.0, 0.30), row("distill", 2, 4.5, 0.30), row("distill", 3, 3.0, 0.40)]
    cfg = {"axes": {"arm": {"scratch": {}, "distill": {}}}, "compare": [["arm", "distill", "scratch"]]}
    lines = sweep_report.paired_table(cfg, sweep_report.grouped(rows), ["val loss", "verses acc"])
    body = [l for l in lines if l.startswith("| distill")]
    assert len(body) == 1, lines
    h = 4.303 / math.sqrt(3)
    want = f"{-2.0:+.4f} [{-2.0 - h:+.4f}, {-2.0 + h:+.4f}]"
    assert want in body[0], f"{body[0]} lacks {want}"
    # accuracy differences 0.05, 0.0, 0.05: mean 1/30, sd 0.028868
    m, sd = 1 / 30, math.sqrt(((0.05 - 1 / 30) ** 2 * 2 + (1 / 30) ** 2) / 2)
    h = 4.303 * sd / math.sqrt(3)
    want = f"{m:+.4f} [{m - h:+.4f}, {m + h:+.4f}]"
    assert want in body[0], f"{body[0]} lacks {want}"


@case("mean_and_std_over_seeds")
def _():
    rows = [row("a", 1, 2.0, 0.5), row("a", 2, 4.0, 0.5)]
    lines = sweep_report.results_table(sweep_report.grouped(rows), ["val loss"])
    # mean 3, sample standard deviation sqrt(2)
    assert f"3.0000 ± {math.sqrt(2):.4f}" in lines[2], lines[2]


@case("merge_and_cells")
def _():
    merged = sweep_plan.merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"c": 3}, "d": [2], "e": None})
    assert merged == {"a": {"b": 1, "c": 3}, "d": [2]}, merged
    cfg = {"axes": {"size": {"s": {"model": {"set": {"hidden_size": 8}}}, "l": {}},
                    "arm": {"x": {"kd": {"alpha": 1}}, "y": {}}}}
    cells = sweep_plan.cells(cfg)
    assert [c for c, _, _ in cells] == ["s-x", "s-y", "l-x", "l-y"], cells
    assert cells[0][2] == {"model": {"set": {"hidden_size": 8}}, "kd": {"alpha": 1}}, cells[0]
    assert sweep_plan.substitute({"p": "{a}/x", "q": ["{b}"]}, {"a": "{b}!", "b": "B"}) == {"p": "B!/x", "q": ["B"]}


@case("same_run_same_hash")
def _():
    a = sweep_plan.run_hash("{}", {"seed": 1, "run_dir": "x", "kd": {"alpha": 1}})
    b = sweep_plan.run_hash("{}", {"kd": {"alpha": 1}, "seed": 1, "run_dir": "y"})
    c = sweep_plan.run_hash("{}", {"kd": {"alpha": 1}, "seed": 2})
    assert a == b and a != c, (a, b, c)


for r in results:
    print(r)
sys.exit(1 if any(r.startswith("FAIL") for r in results) else 0)
