#!/bin/sh
# A full disk: every writer checks every write. Each command runs with a small
# file-size limit (ulimit -f, SIGXFSZ ignored, so writes past it fail with EFBIG
# as on a full disk) or with stdout on /dev/full (ENOSPC); it must exit 1 with
# one "gemmakd: error:" line naming the file, and leave neither its output
# under the final name nor a temporary behind.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_disk_full.sh
. "$(dirname "$0")/lib/common.sh"
TOK=tests/fixtures/tokenizer/spm_bpe.model

# limited BLOCKS ARGS...: gemmakd with files limited to BLOCKS blocks of the shell's ulimit unit
# (512 or 1024 bytes), SIGXFSZ ignored.
limited() {
    blocks=$1
    shift
    sh -c 'ulimit -f "$1"; trap "" XFSZ; shift; exec "$@"' sh "$blocks" "$G" "$@" >"$T/out" 2>"$T/err"
}

# full_disk STATUS NAME NEEDLE OUTPUT: the last run exited with STATUS 1, its stderr ends in its only
# error line, which names NEEDLE (progress lines may come before it); OUTPUT absent; no *.tmp* in $T/w.
full_disk() {
    st=$1 name=$2 needle=$3 output=$4
    lines=$(grep -c '^gemmakd: error: ' "$T/err")
    left=$(find "$T/w" -name '*.tmp*' | head -n 1)
    if [ "$st" -ne 1 ]; then
        fail "$name" "exit status $st, expected 1: $(tr '\n' '|' <"$T/err" | cut -c 1-300)"
    elif [ "$lines" -ne 1 ] || ! tail -n 1 "$T/err" | grep -q "^gemmakd: error: .*$needle"; then
        fail "$name" "expected one 'gemmakd: error:' line naming '$needle', got: $(tr '\n' '|' <"$T/err" | cut -c 1-300)"
    elif [ -n "$output" ] && [ -e "$output" ]; then
        fail "$name" "$output was published"
    elif [ -n "$left" ]; then
        fail "$name" "temporary left behind: $left"
    else
        pass "$name"
    fi
}

mkdir -p "$T/w" "$T/data"
if ! gk init --config configs/models/tiny.json --out "$T/model" --seed 2; then
    fail setup "init: $(tail -n 1 "$T/err")"
    exit 1
fi
cp "$TOK" "$T/model/tokenizer.model"
head -c 60000 tests/fixtures/tokenizer/mixed.txt >"$T/text.txt"
if ! gk tokenize --tokenizer "$TOK" --input "$T/text.txt" --out "$T/data" --doc-separator '\n\n'; then
    fail setup "tokenize: $(tail -n 1 "$T/err")"
    exit 1
fi

# ---------------------------------------------------------------- generate --prompts

i=1
while [ $i -le 40 ]; do
    echo "{\"prompt\": \"Tell me about thing number $i, please.\"}"
    i=$((i + 1))
done >"$T/prompts.jsonl"
ANS="$T/w/answers.jsonl"
limited 8 generate --model "$T/model" --prompts "$T/prompts.jsonl" --out "$ANS" \
    --max-new-tokens 24 --greedy --no-stop
st=$?
rm -f "$ANS.tmp" # kept on purpose (a rerun continues from it); not a temporary of a published file
full_disk $st generate_prompts_full_disk "$ANS.tmp: .*File too large" "$ANS"

# ---------------------------------------------------------------- tokenize (HDF5 shards)

limited 8 tokenize --tokenizer "$TOK" --input "$T/text.txt" --out "$T/w/shards" --doc-separator '\n\n'
full_disk $? tokenize_full_disk "$T/w/shards/train-00000.h5.*File too large" "$T/w/shards/train-00000.h5"

# ---------------------------------------------------------------- teacher-logits (HDF5 cache segments)

limited 8 teacher-logits --teacher "$T/model" --data "$T/data/train-*.h5" --seq-len 32 --method topk --k 4 \
    --out "$T/w/cache"
full_disk $? teacher_logits_full_disk "/w/cache/.*File too large" ""
if ls "$T/w/cache" 2>/dev/null | grep -q '\.h5$'; then fail teacher_logits_no_segment "a segment was published"; fi

# ---------------------------------------------------------------- init and score (safetensors)

limited 8 init --config configs/models/tiny.json --out "$T/w/m2" --seed 2
full_disk $? init_full_disk "model.safetensors: write failed: File too large" "$T/w/m2"
limited 8 score --model "$T/model" --tokens 2,5,9,11,13,17,19,23 --out "$T/w/s.safetensors"
full_disk $? score_full_disk "s.safetensors: write failed: File too large" "$T/w/s.safetensors"

# ---------------------------------------------------------------- train (checkpoints, metrics)

cat >"$T/run.yaml" <<EOF
run_dir: $T/w/run
seed: 5
model: {config: configs/models/tiny.json}
data: {train: "$T/data/train-*.h5", seq_len: 32}
batch: {size: 2}
train: {steps: 2}
checkpoint: {every: 2}
log: {every: 1}
EOF
limited 400 train --config "$T/run.yaml"
full_disk $? train_full_disk "step-000002.tmp-[0-9]*/.*File too large" "$T/w/run/step-000002"

# ---------------------------------------------------------------- stdout on a full device

if [ -w /dev/full ]; then
    "$G" generate --model "$T/model" --tokens 2,5,9 --max-new-tokens 4 --greedy >/dev/full 2>"$T/err"
    full_disk $? generate_tokens_stdout_full "stdout: .*No space left" ""
    "$G" eval --model "$T/model" --data "$T/data/train-*.h5" --seq-len 32 --tokens 64 >/dev/full 2>"$T/err"
    full_disk $? eval_stdout_full "stdout: .*No space left" ""
    "$G" info --config configs/models/tiny.json >/dev/full 2>"$T/err"
    full_disk $? info_stdout_full "stdout: .*No space left" ""
else
    echo "SKIP cli_disk_full/stdout_full: /dev/full is not writable here"
fi

exit $failed
