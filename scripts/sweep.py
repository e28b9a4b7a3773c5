#!/usr/bin/env python3
"""Runs an ablation sweep (configs/ablations/NAME.yaml, format in scripts/sweep_plan.py)
and writes what it found to results/NAME/:

  results.jsonl   one line per cell, seed and evaluation: the eval JSON, the arm's parameter
                  counts, the run and model configs, the commit, the machine and the wall time
  table.md        mean +- std over seeds per cell and evaluation; paired differences with a 95%
                  interval across seeds; the arms' sizes
  curves.png, bars.png   validation loss per arm over training; the table as bars (matplotlib)

    python3 scripts/sweep.py configs/ablations/NAME.yaml [--profile smoke|cpu|gpu] [--only CELL]
        [--results DIR] [--runs DIR] [--gemmakd PATH] [--check]

Resumable: a run continues from its checkpoint (train --resume), an evaluation whose output
exists is not redone, and finished cells cost a check each. --check loads the config and
prints the plan (cells, sizes, commands) without running anything; --train-only trains every
cell and evaluates none (nor prepares what only evaluations need: steps with `for: evals`). Needs PyYAML (Debian
python3-yaml); the plots need matplotlib (skipped with a note without it).
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_plan  # noqa: E402
import sweep_report  # noqa: E402


def log(msg):
    print(f"sweep: {msg}", file=sys.stderr, flush=True)


class Sweep:
    def __init__(self, args):
        self.args = args
        self.cfg = sweep_plan.load(args.config, args.profile)
        self.name = self.cfg["name"]
        self.results = args.results or os.path.join("results", self.name)
        self.runs = args.runs
        self.vars = {"results": self.results, "runs": self.runs, "gemmakd": args.gemmakd, "python": sys.executable}
        self.vars.update({k: str(v) for k, v in (self.cfg.get("vars") or {}).items()})

    # ------------------------------------------------------------ running gemmakd

    def gemmakd(self, argv, quiet=True):
        cmd = [self.args.gemmakd] + [str(a) for a in argv]
        if self.args.check:
            print("  " + " ".join(cmd))
            return ""
        start = time.time()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {tail}")
        if not quiet:
            log(f"{cmd[1]} took {time.time() - start:.1f} s")
        return proc.stdout

    def write_yaml(self, path, value):
        sweep_report.write_atomic(path, sweep_plan.yaml.safe_dump(value, sort_keys=True))

    # ------------------------------------------------------------ prepare

    def prepare(self):
        for name, step in (self.cfg.get("prepare") or {}).items():
            if self.args.train_only and step.get("for") == "evals":
                continue
            step = sweep_plan.substitute({k: v for k, v in step.items() if k != "for"}, self.vars)
            # Named by content: the same step in another ablation (or profile) is the same output.
            key = hashlib.sha256(json.dumps(step, sort_keys=True).encode()).hexdigest()[:16]
            out = os.path.join(self.runs, f"{name}-{key}")
            if "train" in step:
                run = dict(step["train"], run_dir=out)
                path = out + ".yaml"
                if not self.args.check:
                    self.write_yaml(path, run)
                log(f"prepare {name}: train {out}")
                self.gemmakd(["train", "--config", path, "--resume"])
                self.vars[f"prepare.{name}"] = os.path.join(out, "latest")
            elif "teacher_logits" in step:
                flags = []
                for k, v in step["teacher_logits"].items():
                    flags += [f"--{k.replace('_', '-')}", v]
                log(f"prepare {name}: teacher-logits {out}")
                self.gemmakd(["teacher-logits", "--out", out] + flags)
                self.vars[f"prepare.{name}"] = out
            elif "command" in step:
                creates = step["creates"]
                if not os.path.exists(creates):
                    log(f"prepare {name}: {' '.join(step['command'])}")
                    if not self.args.check:
                        subprocess.run([str(a) for a in step["command"]], check=True)
                self.vars[f"prepare.{name}"] = creates
            else:
                raise ValueError(f"prepare {name}: expected train, teacher_logits or command")

    # ------------------------------------------------------------ cells

    def model_json(self, model):
        """The text of a cell's config.json: the base file with model.set applied."""
        with open(model["config"], encoding="utf-8") as f:
            base = json.load(f)
        base.update(model.get("set") or {})
        return json.dumps(base, indent=1, sort_keys=True) + "\n"

    def params(self, text):
        """Parameter counts of a model config's text (gemmakd info; run even by --check)."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(text)
        try:
            proc = subprocess.run([self.args.gemmakd, "info", "--config", f.name, "--json"], capture_output=True,
                                  text=True)
        finally:
            os.unlink(f.name)
        if proc.returncode != 0:
            raise RuntimeError(f"gemmakd info: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
        info = json.loads(proc.stdout)
        return {k: info[k] for k in ("params_total", "params_embedding", "params_non_embedding")}

    def plan(self):
        """[(cell, axes, seed, model text, run config, run_dir)] with variables substituted."""
        cfg = sweep_plan.substitute({k: v for k, v in self.cfg.items() if k != "prepare"}, self.vars)
        out = []
        for cell, axes, over in sweep_plan.cells(cfg):
            for seed in cfg["seeds"]:
                model, run = sweep_plan.resolve(cfg, over, seed)
                text = self.model_json(model)
                run_dir = os.path.join(self.runs, sweep_plan.run_hash(text, run))
                out.append((cell, axes, seed, text, run, run_dir))
        self.resolved = cfg
        return out

    def train(self, cell, seed, text, run, run_dir):
        model_path = run_dir + ".model.json"
        run = dict(run, run_dir=run_dir)
        run["model"] = dict(run.get("model") or {}, config=model_path)
        run["model"].pop("from", None)
        if not self.args.check:
            sweep_report.write_atomic(model_path, text)
            self.write_yaml(run_dir + ".yaml", run)
        log(f"{cell} seed {seed}: train {run_dir}")
        self.gemmakd(["train", "--config", run_dir + ".yaml", "--resume"])
        return run

    # ------------------------------------------------------------ evaluations

    def eval_flags(self, run):
        ev = self.resolved.get("evals") or {}
        flags = ["--data", ev["data"], "--seq-len", ev.get("seq_len", run["data"]["seq_len"])]
        if ev.get("tokens"):
            flags += ["--tokens", ev["tokens"]]
        if ev.get("tasks"):
            flags += ["--tasks", ",".join(ev["tasks"]), "--tokenizer", ev["tokenizer"]]
        elif ev.get("tokenizer"):
            flags += ["--tokenizer", ev["tokenizer"]]
        if ev.get("teacher"):
            flags += ["--teacher", ev["teacher"]]
        return flags

    def evaluate(self, model_dir, out, extra, run):
        """gemmakd eval of model_dir into out (kept: a rerun reads it); returns (eval JSON, seconds)."""
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                return json.load(f), None
        start = time.time()
        if not self.args.check:
            os.makedirs(os.path.dirname(out), exist_ok=True)
        self.gemmakd(["eval", "--model", model_dir, "--out", out] + self.eval_flags(run) + extra)
        if self.args.check:
            return {}, 0.0
        with open(out, encoding="utf-8") as f:
            return json.load(f), time.time() - start

    def variants(self, run_dir, model_text):
        """The evaluations of one run: (variant, model dir, extra flags)."""
        ev = self.resolved.get("evals") or {}
        latest = os.path.join(run_dir, "latest")
        out = [("final", latest, [])]
        window = json.loads(model_text).get("sliding_window")
        for w in ev.get("windows") or []:
            size = int(window * Fraction(w)) if isinstance(w, str) else int(w)  # "1/2": of the trained window
            out.append((f"window-{size}", latest, ["--sliding-window", size]))
        for a in ev.get("averages") or []:
            if a == "ema":
                out.append(("ema", os.path.join(latest, "ema"), []))
            elif a == "last-k":
                k = self.resolved["base"].get("average", {}).get("last_k")
                out.append((f"last-{k}", os.path.join(run_dir, f"average-last-{k}"), []))
        return out

    def slerp_pairs(self, done):
        """SLERP (t = 0.5) of two seeds' final weights, per cell: one more evaluation per pair."""
        if "slerp" not in ((self.resolved.get("evals") or {}).get("averages") or []):
            return []
        rows, by_cell = [], {}
        for r in done:
            by_cell.setdefault(r["cell"], []).append(r)
        for cell, runs in by_cell.items():
            finals = sorted({(r["seed"], r["run_dir"]) for r in runs})
            for (s1, d1), (s2, d2) in zip(finals[0::2], finals[1::2]):
                out = f"{d1}.slerp-{os.path.basename(d2)}"
                if not os.path.exists(os.path.join(out, "config.json")):
                    self.gemmakd(["average", "--method", "slerp", "--t", "0.5", "--out", out,
                                  os.path.join(d1, "latest"), os.path.join(d2, "latest")])
                result, secs = self.evaluate(out, out + ".eval.json", [], runs[0]["run_config"])
                base = next(r for r in runs if r["seed"] == s1)
                rows.append(dict(base, seed=f"{s1}+{s2}", variant="slerp", eval=result, eval_s=secs, run_dir=out))
        return rows

    # ------------------------------------------------------------ the sweep

    def machine(self):
        model = platform.processor() or "unknown CPU"
        try:
            for line in open("/proc/cpuinfo", encoding="utf-8"):
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"{model}, {os.cpu_count()} cores"

    def commit(self):
        try:
            head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                   text=True).stdout.strip()
            return head + ("-dirty" if dirty else "") if head else "unknown"
        except OSError:
            return "unknown"

    def run(self):
        self.prepare()
        plan = self.plan()
        only = self.args.only
        if only and only not in {c for c, *_ in plan}:
            raise ValueError(f"--only {only}: no such cell (cells: {', '.join(sorted({c for c, *_ in plan}))})")
        sizes, rows = {}, []
        for cell, _, _, text, _, _ in plan:  # every arm's size, checked before anything trains
            sizes.setdefault(cell, self.params(text))
        self.check_matched(sizes)
        machine, commit = self.machine(), self.commit()
        for cell, axes, seed, text, run, run_dir in plan:
            selected = not only or cell == only
            finished = os.path.exists(os.path.join(run_dir, "latest", "config.json"))
            if not selected and not finished:
                continue
            run_cfg = self.train(cell, seed, text, run, run_dir) if selected else dict(run, run_dir=run_dir)
            if self.args.train_only:
                continue
            wall = sweep_report.train_seconds(run_dir)
            for variant, model_dir, extra in self.variants(run_dir, text):
                out = os.path.join(run_dir, "evals", f"{variant}.json")
                if not selected and not os.path.exists(out):
                    continue
                result, secs = self.evaluate(model_dir, out, extra, run_cfg)
                rows.append({"ablation": self.name, "profile": self.cfg["profile"], "cell": cell, "axes": axes,
                             "seed": seed, "variant": variant, "eval": result, "params": sizes[cell],
                             "run_config": run_cfg, "model_config": json.loads(text), "run_dir": run_dir,
                             "commit": commit, "machine": machine, "train_s": wall, "eval_s": secs})
        if not self.args.check:
            rows += self.slerp_pairs([r for r in rows if r["variant"] == "final"])
        if self.args.check or self.args.train_only:
            for cell, size in sizes.items():
                print(f"{cell}: {size}")
            return
        sweep_report.write_atomic(os.path.join(self.results, "results.jsonl"),
                                  "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        sweep_report.write(self.results, self.resolved, rows, sizes)
        log(f"{len(rows)} evaluations in {self.results}/")

    def check_matched(self, sizes):
        if "match" not in self.cfg or not sizes:
            return
        axis, tol = self.cfg["match"]
        for cell, size in sizes.items():
            log(f"{cell}: {size.get('params_non_embedding', 0):,} non-embedding parameters "
                f"({size.get('params_total', 0):,} in all)")
        groups = {}
        for cell, axes, *_ in sweep_plan.cells(self.resolved):
            if cell in sizes:
                rest = tuple(v for a, v in axes.items() if a != axis)
                groups.setdefault(rest, []).append(sizes[cell].get("params_non_embedding", 0))
        for rest, counts in groups.items():
            lo, hi = min(counts), max(counts)
            if lo <= 0 or (hi - lo) / lo > tol:
                raise ValueError(f"the values of '{axis}' are not matched within {tol:.0%} of non-embedding "
                                 f"parameters: {counts}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--profile", default="cpu", choices=sweep_plan.PROFILES)
    p.add_argument("--only", help="run only this cell (every seed); the results still list every finished cell")
    p.add_argument("--results", help="output dir (default results/NAME)")
    p.add_argument("--runs", default=os.path.join("runs", "ablations"), help="where runs live (default runs/ablations)")
    p.add_argument("--gemmakd", default="./gemmakd")
    p.add_argument("--check", action="store_true", help="print the plan; run nothing")
    p.add_argument("--train-only", action="store_true",
                   help="train every cell, evaluate nothing (nor prepare what only evaluations need)")
    args = p.parse_args()
    try:
        Sweep(args).run()
    except (ValueError, RuntimeError, OSError, sweep_plan.yaml.YAMLError) as e:
        what = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else str(e)
        where = "" if what.startswith(args.config) else f"{args.config}: "
        print(f"sweep: error: {where}{what}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
