#!/bin/sh
# make demo: the largest end-to-end job gemmakd runs today.
#  1. builds the project corpus from Debian packages (KJV, GCIDE, fortunes):
#     documents, an 8k BPE tokenizer, HDF5 token shards (scripts/prepare_corpus.sh);
#  2. trains a 2M-parameter Gemma 2 from scratch on it (configs/runs/demo-scratch.yaml),
#     evaluating on the validation shard as it goes, and plots the curves;
#  3. scores a validation document with the trained model, with the configured
#     and with a narrowed sliding window, and times a training step.
# Outputs: data/corpus/, runs/demo-scratch/ (checkpoints, metrics.jsonl, curves.png).
set -e
cd "$(dirname "$0")/.."
G=./gemmakd

./scripts/install-deps.sh demo
echo "== 1. corpus"
./scripts/prepare_corpus.sh

echo
echo "== 2. train from scratch: configs/runs/demo-scratch.yaml"
$G info --config configs/models/demo-student.json --seq-len 256 --batch 8 | sed -n '2,7p'
rm -rf runs/demo-scratch
$G train --config configs/runs/demo-scratch.yaml
python=python3
$python -c "import matplotlib" 2>/dev/null || python=/usr/bin/python3
if $python -c "import matplotlib" 2>/dev/null; then
    $python scripts/plot_metrics.py runs/demo-scratch --out runs/demo-scratch/curves.png --title "demo: from scratch"
else
    echo "(matplotlib not found: skipping the plot; apt-get install python3-matplotlib)"
fi
echo "validation loss (nats/token) during training:"
grep val_loss runs/demo-scratch/metrics.jsonl | sed 's/.*"step": \([0-9]*\), "val_loss": \([0-9.]*\).*/  step \1: \2/'

echo
echo "== 3. score a validation document with the trained model"
# The tokens of the first validation document (python3 from Debian is enough).
$python - <<'EOF' > runs/demo-scratch/doc.txt
import json
print(json.loads(open("data/corpus/val.jsonl").readline())["text"])
EOF
ids=$($G encode --tokenizer data/corpus/tokenizer.model --text-file runs/demo-scratch/doc.txt --add-bos | tr -d '[] ')
echo "$ids" > runs/demo-scratch/doc_ids.txt
$G score --model runs/demo-scratch/latest --tokens-file runs/demo-scratch/doc_ids.txt --logprobs \
    --out runs/demo-scratch/doc_scores.safetensors
$G score --model runs/demo-scratch/latest --tokens-file runs/demo-scratch/doc_ids.txt --sliding-window 32 \
    --out runs/demo-scratch/doc_scores_w32.safetensors

echo
echo "== training step speed (demo model)"
$G bench --config configs/models/demo-student.json --batch 8 --seq-len 256 --steps 3 --optimizer adamw
echo
echo "demo outputs: data/corpus/, runs/demo-scratch/ (metrics.jsonl, curves.png, checkpoints)"
