#!/bin/sh
# The README's memory table: peak resident set of `gemmakd train` at Gemma's
# vocabulary (262,144) and seq_len 1024, batch 1, 3 AdamW steps: the student
# alone (cross-entropy), distilled from an in-process teacher, and from a
# top-32 cache. Student and teacher are configs/models/mem-*.json with random
# weights; the tokens are the demo corpus's (make demo, or scripts/prepare_corpus.sh):
# ids of a smaller tokenizer, but every step computes all 262,144 logits.
# Usage: scripts/memory.sh [fp32|bf16]
set -e
cd "$(dirname "$0")/.."
G=./gemmakd
precision=${1:-fp32}
[ -f data/corpus/val.jsonl ] || ./scripts/prepare_corpus.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -n 100 data/corpus/val.jsonl >"$tmp/text.jsonl" # about 40 windows of 1024 tokens
$G tokenize --tokenizer data/corpus/tokenizer.model --input "$tmp/text.jsonl" --out "$tmp" >/dev/null
shards="$tmp/train-00000.h5"
$G init --config configs/models/mem-teacher-v262k.json --seed 2 --out "$tmp/teacher" >/dev/null
cp data/corpus/tokenizer.model "$tmp/teacher/"
$G teacher-logits --teacher "$tmp/teacher" --data $shards --seq-len 1024 --method topk --k 32 --out "$tmp/cache" \
    --batch 4 --precision "$precision" >/dev/null

# peak RSS of one run: NAME EXTRA-YAML-LINES
run() {
    cat >"$tmp/$1.yaml" <<YAML
run_dir: $tmp/run-$1
model: {config: configs/models/mem-student-v262k.json, precision: $precision}
data: {train: $shards, seq_len: 1024}
batch: {size: 1, micro: 1}
train: {steps: 3}
checkpoint: {every: 1000, keep: 1}
$2
YAML
    rss=$(/usr/bin/time -f %M $G train --config "$tmp/$1.yaml" 2>&1 >/dev/null | tail -1)
    awk -v kb="$rss" -v name="$3" 'BEGIN { printf "| %s | %.2f GiB |\n", name, kb / 1048576 }'
}
echo "| run ($precision, $(nproc) threads) | peak RSS |"
echo "|---|---|"
run xent "" "student alone (cross-entropy)"
run teacher "teacher: {model: $tmp/teacher}" "distillation from an in-process teacher"
run cache "teacher: {cache: $tmp/cache}" "distillation from a top-32 cache"
