#!/bin/sh
# The ablation sweep (scripts/sweep.py) on its smoke profile: every ablation of
# configs/ablations/ runs from real training and evaluation into a scratch dir, and
# every table cell is filled; a rerun trains nothing and writes the same results;
# --only runs one cell; runs shared between ablations are trained once; bad configs
# end in one error line (unmatched arms before anything trains). Under the sanitizer build only ablations a and e run (the
# others repeat what they exercise). Needs a python with PyYAML ($GEMMAKD_TEST_PYTHON, set by make
# test); without one the cases are skipped.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_sweep.sh
. "$(dirname "$0")/lib/common.sh"
need_module yaml every_ablation_fills_its_table rerun_trains_nothing only_one_cell runs_shared_between_ablations bad_configs_refused

# sweep CONFIG NAME [FLAG]: the smoke profile into $T/results/NAME, runs in $T/runs
sweep() { "$PY" scripts/sweep.py "$1" --profile smoke --gemmakd "$G" --runs "$T/runs" --results "$T/results/$2" \
    ${3:+"$3"} >"$T/out" 2>"$T/err"; }

# ---------------------------------------------------------------- every ablation

name=every_ablation_fills_its_table
why=""
ablations=configs/ablations/[a-z]_*.yaml
case "$G" in *build-san*) ablations="configs/ablations/a_distill_vs_scratch.yaml configs/ablations/e_sliding_window.yaml" ;; esac
for f in $ablations; do
    n=$(basename "$f" .yaml)
    if ! sweep "$f" "$n"; then
        why="$why $n: $(tail -n 1 "$T/err");"
        continue
    fi
    # results.jsonl: one line per cell, seed and evaluation; table.md: no empty cell in any row
    problems=$("$PY" - "$f" "$T/results/$n" <<'EOF'
import json, sys
sys.path.insert(0, "scripts")
import sweep_plan
cfg = sweep_plan.load(sys.argv[1], "smoke")
rows = [json.loads(l) for l in open(sys.argv[2] + "/results.jsonl")]
cells = [c for c, _, _ in sweep_plan.cells(cfg)]
ev = cfg.get("evals") or {}
variants = 1 + len(ev.get("windows") or []) + len([a for a in ev.get("averages") or [] if a != "slerp"])
want = len(cells) * len(cfg["seeds"]) * variants + (len(cells) * (len(cfg["seeds"]) // 2)
                                                    if "slerp" in (ev.get("averages") or []) else 0)
out = []
if len(rows) != want:
    out.append(f"{len(rows)} results, expected {want}")
for r in rows:
    if not r["eval"].get("data", {}).get("loss") or not r["eval"].get("tasks"):
        out.append(f"{r['cell']} {r['variant']}: no loss or tasks in its evaluation")
for line in open(sys.argv[2] + "/table.md"):
    cols = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
    if cols and "" in cols:
        out.append("an empty table cell: " + line.strip())
print("; ".join(out))
EOF
)
    [ -n "$problems" ] && why="$why $n: $problems;"
done
if [ -z "$why" ]; then pass $name; else fail $name "$why"; fi

# ---------------------------------------------------------------- rerun

name=rerun_trains_nothing
a=configs/ablations/a_distill_vs_scratch.yaml
cp "$T/results/a_distill_vs_scratch/results.jsonl" "$T/first.jsonl"
find "$T/runs" -name 'step-*' -type d | sort >"$T/steps-before"
if ! sweep "$a" a_distill_vs_scratch; then
    fail $name "$(tail -n 1 "$T/err")"
else
    find "$T/runs" -name 'step-*' -type d | sort >"$T/steps-after"
    # the same evaluations (their wall times aside)
    strip() { "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); r.pop("eval_s"); print(json.dumps(r, sort_keys=True))' "$1"; }
    if ! cmp -s "$T/steps-before" "$T/steps-after"; then
        fail $name "a rerun wrote new checkpoints"
    elif [ "$(strip "$T/first.jsonl")" != "$(strip "$T/results/a_distill_vs_scratch/results.jsonl")" ]; then
        fail $name "a rerun changed the results"
    else
        pass $name
    fi
fi

# ---------------------------------------------------------------- --only

name=only_one_cell
if ! sweep "$a" only --only=scratch; then
    fail $name "$(tail -n 1 "$T/err")"
elif [ "$(grep -c '"cell": "scratch"' "$T/results/only/results.jsonl")" -ne 3 ]; then
    fail $name "$(grep -c '"cell": "scratch"' "$T/results/only/results.jsonl") scratch results, expected 3"
else
    pass $name # (the distilled cells, already finished, are listed too)
fi

# ---------------------------------------------------------------- shared runs

name=runs_shared_between_ablations
# e and f evaluate a's distilled students: their run dirs are a's, not new ones
e=$("$PY" -c 'import json,sys; print(" ".join(sorted({json.loads(l)["run_dir"] for l in open(sys.argv[1])})))' \
    "$T/results/e_sliding_window/results.jsonl")
missing=""
for d in $e; do grep -q "\"run_dir\": \"$d\"" "$T/results/a_distill_vs_scratch/results.jsonl" || missing="$missing $d"; done
if [ -n "$e" ] && [ -z "$missing" ]; then pass $name; else fail $name "e's runs not among a's:$missing"; fi

# ---------------------------------------------------------------- bad configs

name=bad_configs_refused
why=""
cp configs/ablations/common.yaml "$T/common.yaml"
printf 'include: common.yaml\nname: x\nseeds: [1]\naxes: {arm: {one: {}}}\nbogus: 1\n' >"$T/bad.yaml"
printf 'include: common.yaml\nname: x\nseeds: [1]\naxes: {arm: {one-two: {}}}\n' >"$T/dash.yaml"
printf 'include: common.yaml\nname: x\nseeds: [1]\naxes: {arm: {one: {}}}\nprofiles: {laptop: {}}\n' >"$T/profile.yaml"
printf 'include: common.yaml\nname: x\nseeds: [1]\nmatch: [w, 0.02]\naxes: {w: {a: {}, b: {model: {set: {intermediate_size: 512}}}}}\n' \
    >"$T/unmatched.yaml"
for case in "$T/bad.yaml:unknown keys ['bogus']" "$T/dash.yaml:value 'one-two' must be" \
    "$T/unmatched.yaml:are not matched within 2%" \
    "$T/profile.yaml:unknown profile 'laptop'" "$T/none.yaml:No such file"; do
    f=${case%%:*} needle=${case#*:}
    if sweep "$f" bad; then
        why="$why $f accepted;"
    elif [ "$(grep -c "^sweep: error: " "$T/err")" -ne 1 ] || ! tail -n 1 "$T/err" | grep -q "^sweep: error: " ||
        ! tail -n 1 "$T/err" | grep -qF "$needle"; then # progress lines may come before the one error line
        why="$why $f: $(tr '\n' '|' <"$T/err");"
    fi
done
# the unmatched arms stopped the sweep before anything trained
[ -d "$T/runs" ] && [ -n "$(find "$T/runs" -newer "$T/unmatched.yaml" -name '*.model.json')" ] &&
    why="$why the unmatched sweep trained;"
if [ -z "$why" ]; then pass $name; else fail $name "$why"; fi

exit $failed
