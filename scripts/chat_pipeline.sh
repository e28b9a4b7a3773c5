#!/bin/sh
# The teacher-answers pipeline of `make demo` (Gemma 2's post-training recipe in
# miniature): chat prompts from the corpus, the teacher's answers (gemmakd
# generate), chat shards with the loss on the model turns (gemmakd tokenize),
# the student fine-tuned on them (SFT), distilled on the teacher's
# distributions over them, and distilled on-policy (half the rows its own
# sampled answers); then, on held-out prompts, how much more the student
# agrees with the teacher than before. Needs the demo runs
# (runs/demo-teacher, runs/demo-distill); reruns skip what exists.
set -e
cd "$(dirname "$0")/.."
G=./gemmakd
T=data/corpus/tokenizer.model
D=runs/demo-chat
python=${PYTHON:-python3}
mkdir -p $D
[ -f $D/prompts-train.jsonl ] || $python scripts/chat_pipeline.py prompts data/corpus/train.jsonl 400 $D/prompts-train.jsonl
[ -f $D/prompts-heldout.jsonl ] || $python scripts/chat_pipeline.py prompts data/corpus/val.jsonl 60 $D/prompts-heldout.jsonl
answer() { # model, prompts, out, sampling...
    m=$1 p=$2 o=$3
    shift 3
    $G generate --model "$m" --tokenizer $T --prompts "$p" --out "$o" --max-new-tokens 48 --batch 16 "$@"
}
echo "-- the teacher answers 400 prompts (temperature 0.8, top-p 0.95)"
answer runs/demo-teacher/latest $D/prompts-train.jsonl $D/answers-train.jsonl --temperature 0.8 --top-p 0.95 --seed 1
[ -f $D/shards/train-00000.h5 ] || $G tokenize --tokenizer $T --input $D/answers-train.jsonl --out $D/shards
$G train --config configs/runs/demo-chat-sft.yaml --resume
$G train --config configs/runs/demo-chat-distill.yaml --resume
$G train --config configs/runs/demo-chat-onpolicy.yaml --resume
echo "-- held-out prompts: greedy answers of the teacher and of the student before and after"
answer runs/demo-teacher/latest $D/prompts-heldout.jsonl $D/heldout-teacher.jsonl --greedy
[ -f $D/heldout-shards/heldout-00000.h5 ] ||
    $G tokenize --tokenizer $T --input $D/heldout-teacher.jsonl --out $D/heldout-shards --name heldout
rows=""
for s in before:runs/demo-distill/latest sft:runs/demo-chat-sft/latest distill:runs/demo-chat-distill/latest \
    onpolicy:runs/demo-chat-onpolicy/latest; do
    name=${s%%:*} model=${s#*:}
    answer "$model" $D/prompts-heldout.jsonl $D/heldout-$name.jsonl --greedy
    $python scripts/chat_pipeline.py pairs $D/heldout-$name.jsonl $D/pairs-$name.jsonl
    $G eval --model runs/demo-teacher/latest --tokenizer $T --loglikelihood $D/pairs-$name.jsonl --out $D/teacher-on-$name.json
    $G eval --model "$model" --tokenizer $T --data "$D/heldout-shards/heldout-*.h5" --seq-len 256 \
        --teacher runs/demo-teacher/latest --out $D/$name-on-teacher.json
    # KL(teacher || student) on the student's own greedy answers (model turns only)
    [ -f $D/own-$name/own-00000.h5 ] || $G tokenize --tokenizer $T --input $D/heldout-$name.jsonl --out $D/own-$name --name own
    $G eval --model "$model" --tokenizer $T --data "$D/own-$name/own-*.h5" --seq-len 256 \
        --teacher runs/demo-teacher/latest --out $D/$name-on-own.json
    rows="$rows $name=$D/teacher-on-$name.json:$D/$name-on-teacher.json:$D/$name-on-own.json:$D/heldout-$name.jsonl"
done
# shellcheck disable=SC2086
$python scripts/chat_pipeline.py table $rows
$python scripts/chat_pipeline.py sampling-share runs/demo-chat-onpolicy/metrics.jsonl
