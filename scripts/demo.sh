#!/bin/sh
# make demo: the largest end-to-end job gemmakd runs today. Initialises a tiny
# Gemma 2 model, checks it loads back, scores a packed two-document sequence
# (loss and throughput) with the full and a narrowed sliding window, and times
# a training step. Outputs go to runs/demo/.
set -e
cd "$(dirname "$0")/.."
G=./gemmakd
out=runs/demo
rm -rf "$out"
mkdir -p "$out"

echo "== model: configs/models/tiny.json"
$G info --config configs/models/tiny.json --seq-len 512 --batch 4
echo
echo "== init"
$G init --config configs/models/tiny.json --seed 1 --out "$out/model"
echo
# A deterministic 1024-token sequence made of two documents (ids 3..8191).
awk 'BEGIN { x = 12345; for (i = 0; i < 1024; i++) { x = (x * 1103515245 + 12345) % 2147483648;
     printf "%s%d", (i ? "," : ""), (i == 0 || i == 600) ? 2 : 3 + x % 8189 } print "" }' > "$out/tokens.txt"
echo "== score (two packed documents: 0..599 and 600..1023)"
$G score --model "$out/model" --tokens-file "$out/tokens.txt" --doc-starts 0,600 --logprobs --out "$out/scores.safetensors"
echo "== score with the sliding window narrowed from 64 to 16 (inference-time override)"
$G score --model "$out/model" --tokens-file "$out/tokens.txt" --doc-starts 0,600 --sliding-window 16 --out "$out/scores-w16.safetensors"
echo
echo "== training step (forward + backward), tiny model"
$G bench --config configs/models/tiny.json --batch 4 --seq-len 512 --steps 3
echo
echo "demo outputs in $out/"
