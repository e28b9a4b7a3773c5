#!/bin/sh
# make demo: the gemmakd pipeline on the project corpus, end to end.
#  1. the corpus from Debian packages: documents, an 8k BPE tokenizer, token shards;
#  2. a 2M-parameter student trained from scratch on the first shard (configs/runs/demo-scratch.yaml);
#  3. a teacher with 4x its non-embedding parameters           (configs/runs/demo-teacher.yaml);
#  4. the same student distilled from it in process            (configs/runs/demo-distill.yaml);
#  5. a teacher-logit cache of the students' shard (32 draws per position), and the student distilled from it
#                                                              (configs/runs/demo-distill-cache.yaml);
#  6. the validation losses side by side and their curves (runs/demo-curves.png);
#  7. a validation document scored with the trained student, with the configured
#     and a narrowed sliding window;
#  8. gemmakd eval of every model: loss, perplexity, bits per byte, narrowed windows,
#     teacher agreement, three multiple-choice tasks from held-out documents
#     (scripts/corpus_tasks.py), and an average of checkpoints;
#  9. the teacher-answers pipeline (scripts/chat_pipeline.sh): prompts, the teacher's
#     answers, SFT, distillation and on-policy distillation of the student on them,
#     agreement before and after;
#     then the training-step speed.
# The students see the same tokens in the same order (same seed). Every run
# resumes where it stopped, so a second `make demo` only redoes what is missing.
set -e
cd "$(dirname "$0")/.."
G=./gemmakd
./scripts/install-deps.sh demo
python=python3
$python -c "import matplotlib" 2>/dev/null || python=/usr/bin/python3

echo "== 1. corpus"
./scripts/prepare_corpus.sh

train() { # run config, title
    echo
    echo "== $2: $1"
    $G train --config "$1" --resume
}
echo
$G info --config configs/models/demo-student.json --seq-len 256 | sed -n '2,7p'
train configs/runs/demo-scratch.yaml "2. student from scratch"
train configs/runs/demo-teacher.yaml "3. teacher"
train configs/runs/demo-distill.yaml "4. student distilled in process"
echo
echo "== 5. teacher-logit cache (32 samples per position), then the student distilled from it"
$G teacher-logits --teacher runs/demo-teacher/latest --data data/corpus/train-00000.h5 --seq-len 256 \
    --method sample --k 32 --out runs/demo-teacher-sample32
du -sh runs/demo-teacher-sample32
train configs/runs/demo-distill-cache.yaml "5. student distilled from the cache"

echo
echo "== 6. validation loss (nats/token) on the same 65,536 validation tokens"
last_val() { grep val_loss "runs/$1/metrics.jsonl" | tail -1 | sed 's/.*"val_loss": \([0-9.]*\).*/\1/'; }
printf '  %-44s %s\n' "student, from scratch" "$(last_val demo-scratch)"
printf '  %-44s %s\n' "student, distilled in process" "$(last_val demo-distill)"
printf '  %-44s %s\n' "student, distilled from the 32-sample cache" "$(last_val demo-distill-cache)"
printf '  %-44s %s\n' "teacher (4x non-embedding parameters)" "$(last_val demo-teacher)"
if $python -c "import matplotlib" 2>/dev/null; then
    $python scripts/plot_metrics.py runs/demo-scratch runs/demo-distill runs/demo-distill-cache runs/demo-teacher \
        --out runs/demo-curves.png --title "demo: scratch vs distilled students, and the teacher"
else
    echo "(matplotlib not found: no plot; apt-get install python3-matplotlib)"
fi

echo
echo "== 7. score a validation document with the distilled student"
$python -c 'import json; print(json.loads(open("data/corpus/val.jsonl").readline())["text"])' > runs/demo-doc.txt
$G encode --tokenizer data/corpus/tokenizer.model --text-file runs/demo-doc.txt --add-bos > runs/demo-doc-ids.txt
$G score --model runs/demo-distill/latest --tokens-file runs/demo-doc-ids.txt --logprobs \
    --out runs/demo-doc-scores.safetensors
$G score --model runs/demo-distill/latest --tokens-file runs/demo-doc-ids.txt --sliding-window 32 \
    --out runs/demo-doc-scores-w32.safetensors
echo
echo "== 8. evaluation on the validation shard (first 65,536 tokens), a narrowed sliding window,"
echo "     agreement with the teacher, and three multiple-choice tasks from held-out documents"
$python scripts/corpus_tasks.py data/corpus/val.jsonl runs/demo-tasks
tasks=runs/demo-tasks/definitions.jsonl,runs/demo-tasks/verse-endings.jsonl,runs/demo-tasks/definition-endings.jsonl
ev() { # name, model dir, extra flags
    n=$1 m=$2
    shift 2
    $G eval --model "$m" --data "data/corpus/val-*.h5" --seq-len 256 --tokens 65536 \
        --tokenizer data/corpus/tokenizer.model --out "runs/demo-eval-$n.json" "$@"
}
ev scratch runs/demo-scratch/latest --teacher runs/demo-teacher/latest --tasks "$tasks"
ev distill runs/demo-distill/latest --teacher runs/demo-teacher/latest --tasks "$tasks"
ev distill-cache runs/demo-distill-cache/latest --teacher runs/demo-teacher/latest --tasks "$tasks"
ev teacher runs/demo-teacher/latest --tasks "$tasks"
ev distill-w64 runs/demo-distill/latest --sliding-window 64
ev distill-w32 runs/demo-distill/latest --sliding-window 32
# Checkpoint averaging: the last three checkpoints of the scratch run (steps 100, 200, 300).
rm -rf runs/demo-scratch-avg3
$G average --method last-k --k 3 --out runs/demo-scratch-avg3 runs/demo-scratch
ev scratch-avg3 runs/demo-scratch-avg3
$python scripts/eval_table.py "student, scratch=runs/demo-eval-scratch.json" \
    "student, distilled=runs/demo-eval-distill.json" "student, from cache=runs/demo-eval-distill-cache.json" \
    "teacher=runs/demo-eval-teacher.json" "distilled, window 64=runs/demo-eval-distill-w64.json" \
    "distilled, window 32=runs/demo-eval-distill-w32.json" "scratch, average of last 3=runs/demo-eval-scratch-avg3.json"

echo
echo "== 9. teacher answers: 400 corpus prompts answered by the teacher, the student fine-tuned (SFT)"
echo "     and distilled on them, and its agreement with the teacher on 60 held-out prompts"
PYTHON=$python ./scripts/chat_pipeline.sh

echo
$G bench --config configs/models/demo-student.json --batch 8 --seq-len 256 --steps 3 --optimizer adamw
echo
echo "demo outputs: data/corpus/, runs/demo-*/ (metrics.jsonl, checkpoints), runs/demo-curves.png"
