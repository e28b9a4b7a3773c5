#!/bin/sh
# The resolved run config that train saves (run_dir/config.yaml), read by another YAML
# reader: PyYAML loads it with a loader that refuses repeated keys, and finds every key
# once, in its section, with its type, holding the value of the run config train was
# given and of its command-line overrides, the default elsewhere (tests/cli/resolved_config.py).
# Two runs: a minimal run config (defaults), and one that sets every key, in block and flow
# style, with a run_dir that needs quoting. Needs a python with PyYAML ($GEMMAKD_TEST_PYTHON,
# set by make test); without one the cases are skipped.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_run_config.sh
. "$(dirname "$0")/lib/common.sh"
need_module yaml resolved_config_minimal resolved_config_every_key

# check NAME GIVEN.yaml RUN_DIR [OVERRIDES...]: train with GIVEN.yaml and the overrides, then
# compare RUN_DIR/config.yaml with them.
check() {
    name=$1 given=$2 run_dir=$3
    shift 3
    if ! "$G" train --config "$given" "$@" >/dev/null 2>"$T/err"; then
        fail "$name" "train: $(tail -n 1 "$T/err")"
    elif "$PY" tests/cli/resolved_config.py "$given" "$run_dir/config.yaml" "$@" >"$T/out" 2>&1; then
        pass "$name"
    else
        fail "$name" "$(tail -n 3 "$T/out" | tr '\n' ' ')"
    fi
}

i=0
while [ $i -lt 60 ]; do
    echo "In the beginning God created the heaven and the earth, $i."
    echo
    i=$((i + 1))
done >"$T/text.txt"
if ! "$G" tokenize --tokenizer tests/fixtures/tokenizer/spm_bpe.model --input "$T/text.txt" --out "$T/data" \
    --doc-separator '\n\n' --val-fraction 0.2 >/dev/null 2>"$T/err"; then
    for c in resolved_config_minimal resolved_config_every_key; do fail "$c" "tokenize: $(tail -n 1 "$T/err")"; done
    exit 1
fi

printf 'run_dir: %s\nmodel: {config: configs/models/tiny.json}\ndata: {train: "%s", seq_len: 16}\ntrain: {steps: 1}\n' \
    "$T/minimal" "$T/data/train-*.h5" >"$T/minimal.yaml"
check resolved_config_minimal "$T/minimal.yaml" "$T/minimal"

# Every key (model.from and teacher.cache exclude model.config and teacher.model, and stay
# empty); the run_dir holds a quote, a colon, a hash, a tab and a non-ASCII letter. Half of
# each step's rows are the teacher's continuations of prompts (kd.on_policy, kd.seq_kd).
printf '{"text": "In the beginning"}\n{"prompt": "God created"}\n' >"$T/prompts.jsonl"
cat >"$T/every.yaml" <<EOF
# every key
run_dir: "$T/every: \"key\" #1\t\u00fc"
seed: 7
threads: 1
model:
  config: configs/models/tiny.json
  init_seed: 11
  device: cpu
  precision: fp32
data: {train: ["$T/data/train-*.h5", "$T/data/train-00000.h5"], val: "$T/data/val-*.h5", seq_len: 16}
batch: {size: 4, micro: 2}
train: {steps: 2, head_chunk: 64, max_bad_steps: 3}
optim: {name: adamw, lr: 2e-3, betas: [0.8, 0.9], eps: 1.0e-7, weight_decay: 0.05, grad_clip: 0.5}
schedule:
  name: wsd
  warmup: 1
  min_lr_ratio: 0.25
  decay_fraction: 0.3
teacher: {model: "$T/minimal/step-000001", device: cpu, precision: fp32}
kd:
  {loss: jsd, sparse: topk_renorm, alpha: 0.5, temperature: 2, beta: 0.3, t2_scale: yes, seq_kd: yes,
   on_policy: {fraction: 0.5, prompts: "$T/prompts.jsonl", tokenizer: tests/fixtures/tokenizer/spm_bpe.model,
               max_new_tokens: 4, temperature: 0.7, top_p: 0.9}}
eval: {every: 2, tokens: 64}
checkpoint: {every: 1, keep: 2}
log: {every: 2}
ema: {decay: 0.5}
average: {last_k: 2}
parallel: {zero: 0}
EOF
check resolved_config_every_key "$T/every.yaml" "$(printf '%s/every: "key" #1\tü' "$T")" optim.lr=0.004 kd.alpha=0.25 \
    "data.val=[$T/data/val-00000.h5]"

exit $failed
