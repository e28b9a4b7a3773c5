#!/bin/sh
# The model handle's backends from the command line: --device/--precision on
# every command that runs a model and model.*/teacher.* keys in run configs;
# a bf16 run, a bf16 teacher for an fp32 student, bf16 teacher logits, eval,
# score and generate, each against fp32 where the numbers can be compared;
# bf16 on a CPU without a bf16 kernel (oneDNN limited to AVX2) warns and still
# computes the same products; bad choices are one-line errors.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_backends.sh
. "$(dirname "$0")/lib/common.sh"
TOK=tests/fixtures/tokenizer/spm_bpe.model

last_error() { tail -n 1 "$T/err"; }

# |a - b| <= tol * |b| for two decimal numbers.
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && d <= t * m) }'; }

# one_error NAME STATUS NEEDLE: the last run failed with STATUS and one error line mentioning NEEDLE.
one_error() {
    st=$1
    shift
    name=$1 want=$2 needle=$3
    lines=$(awk 'END { print NR }' "$T/err")
    if [ "$st" -ne "$want" ]; then
        fail "$name" "exit status $st, expected $want: $(last_error)"
    elif [ "$lines" -ne 1 ] || ! grep -q "^gemmakd: error: .*$needle" "$T/err"; then
        fail "$name" "expected one 'gemmakd: error:' line mentioning '$needle', got: $(tr '\n' '|' <"$T/err")"
    else
        pass "$name"
    fi
}

# ---------------------------------------------------------------- bad choices

gk score --model none --tokens 2,3 --out "$T/x.st" --precision fp16
one_error $? unknown_precision 2 "precision 'fp16' is not one of fp32|bf16"
gk bench --config configs/models/tiny.json --device tpu
one_error $? unknown_device 2 "device 'tpu' is not one of cpu|cuda"
gk generate --model none --tokens 2 --device cuda --precision fp32
one_error $? cuda_needs_bf16 2 "cuda device runs bf16 only"
if ! "$G" bench --help | grep -q "make GPU=1"; then
    fail cuda_flag_documented "bench --help does not say how to get --device cuda"
else
    pass cuda_flag_documented
fi

# ---------------------------------------------------------------- data, a teacher, a student

mkdir -p "$T/data"
head -c 60000 tests/fixtures/tokenizer/mixed.txt >"$T/text.txt"
if ! gk tokenize --tokenizer "$TOK" --input "$T/text.txt" --out "$T/data" --doc-separator '\n\n' --val-fraction 0.2; then
    fail setup "tokenize: $(last_error)"
    exit 1
fi
cat >"$T/run.yaml" <<EOF
run_dir: $T/runs/unset
seed: 5
model: {config: configs/models/tiny.json}
data: {train: "$T/data/train-*.h5", val: "$T/data/val-*.h5", seq_len: 64}
batch: {size: 4}
train: {steps: 4}
optim: {lr: 1.0e-2}
schedule: {warmup: 1}
checkpoint: {every: 4}
EOF
train() { # train NAME OVERRIDES...
    name=$1
    shift
    gk train --config "$T/run.yaml" "run_dir=$T/runs/$name" "$@"
}

if train teacher; then pass train_fp32; else fail train_fp32 "$(last_error)"; fi
if train student_bf16 model.precision=bf16 "teacher.model=$T/runs/teacher/latest" &&
    grep -q "^student: cpu bf16" "$T/err" && grep -q "^teacher: cpu bf16" "$T/err"; then
    pass train_bf16_student_bf16_teacher
else
    fail train_bf16_student_bf16_teacher "$(tr '\n' '|' <"$T/err" | cut -c 1-400)"
fi
if train student_mixed "teacher.model=$T/runs/teacher/latest" teacher.precision=bf16 &&
    grep -q "^student: cpu fp32" "$T/err" && grep -q "^teacher: cpu bf16" "$T/err"; then
    pass train_fp32_student_bf16_teacher
else
    fail train_fp32_student_bf16_teacher "$(tr '\n' '|' <"$T/err" | cut -c 1-400)"
fi
if grep -q '^  precision: "bf16"' "$T/runs/student_bf16/config.yaml"; then
    pass resolved_config_names_precision
else
    fail resolved_config_names_precision "config.yaml lacks the bf16 precision"
fi
train bad model.precision=fp8
one_error $? run_config_bad_precision 2 "model.precision"

# ---------------------------------------------------------------- eval, teacher logits

M="$T/runs/teacher/latest"
eval_loss() { # eval_loss PRECISION: the shards' mean loss
    "$G" eval --model "$M" --data "$T/data/val-*.h5" --seq-len 64 --precision "$1" 2>"$T/err" |
        sed -n 's/.*"loss": \([-0-9.e]*\).*/\1/p'
}
a=$(eval_loss fp32)
b=$(eval_loss bf16)
if close "$b" "$a" 0.02; then pass eval_bf16_near_fp32; else fail eval_bf16_near_fp32 "loss bf16 '$b', fp32 '$a'"; fi

if gk teacher-logits --teacher "$M" --data "$T/data/train-*.h5" --seq-len 64 --method topk --k 8 --out "$T/cache" \
    --precision bf16 && grep -q "^teacher: cpu bf16" "$T/err"; then
    pass teacher_logits_bf16
else
    fail teacher_logits_bf16 "$(tr '\n' '|' <"$T/err" | cut -c 1-300)"
fi
rm -rf "$T/cache2"
cp -r "$T/cache" "$T/cache2" 2>/dev/null
gk teacher-logits --teacher "$M" --data "$T/data/train-*.h5" --seq-len 64 --method topk --k 8 --out "$T/cache2" \
    --precision fp32
st=$?
if [ $st -ne 0 ] && grep -q "teacher_precision" "$T/err"; then
    pass teacher_logits_refuses_mixing_precisions
else
    fail teacher_logits_refuses_mixing_precisions "status $st: $(last_error)"
fi

# ---------------------------------------------------------------- score, generate, no bf16 kernel

IDS=2,263,283,7923,15,16,17,18,19,20,21,22,263,283,7923,15
score_lp() { # score_lp ENV=VALUE PRECISION: mean log-prob of the ids
    env "$1" "$G" score --model "$M" --tokens "$IDS" --out "$T/s.st" --logprobs --precision "$2" 2>"$T/err" |
        sed -n 's/.*mean log-prob \([-0-9.]*\) .*/\1/p'
}
a=$(score_lp GEMMAKD_UNUSED=1 fp32)
b=$(score_lp GEMMAKD_UNUSED=1 bf16)
if close "$b" "$a" 0.02; then pass score_bf16_near_fp32; else fail score_bf16_near_fp32 "bf16 '$b', fp32 '$a'"; fi
c=$(score_lp DNNL_MAX_CPU_ISA=AVX2 bf16)
if ! grep -q "warning: .*no bf16 matrix kernel" "$T/err"; then
    # A CPU without bf16 kernels takes no warning when the flag cannot lower the ISA (it has none to lower).
    fail no_bf16_kernel_warns "no warning with DNNL_MAX_CPU_ISA=AVX2: $(tr '\n' '|' <"$T/err")"
elif close "$c" "$b" 1e-4; then
    pass no_bf16_kernel_warns_same_products
else
    fail no_bf16_kernel_warns_same_products "widened bf16 '$c', bf16 kernel '$b'"
fi
if gk generate --model "$M" --tokens 2,263,283 --max-new-tokens 8 --greedy --no-stop --precision bf16 &&
    grep -q '^\[[0-9]' "$T/out"; then
    pass generate_bf16
else
    fail generate_bf16 "$(last_error)"
fi

exit $failed
