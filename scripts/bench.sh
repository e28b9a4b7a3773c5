#!/bin/sh
# make bench: the speed measurements the README reports, on this machine.
#  1. forward+backward step of the d=512, 8-layer model at seq_len 512 against
#     OpenBLAS sgemm on the same matrix shapes (2 threads and 1);
#  2. a whole training step (AdamW) of the d=256, 4-layer, 8k-vocabulary model at
#     seq_len 256 beside transformers' Gemma2ForCausalLM (PyTorch eager float32)
#     on the same model, batch and threads, when torch and transformers are installed;
#  3. tokenizer throughput beside the tokenizers / sentencepiece libraries when installed.
# Run it on an otherwise idle machine: it measures wall time.
set -e
cd "$(dirname "$0")/.."
G=./gemmakd
threads=$(nproc)

echo "== 1. model step against sgemm"
$G bench --config configs/models/bench-d512.json --batch 2 --seq-len 512 --steps 5
$G bench --config configs/models/bench-d512.json --batch 2 --seq-len 512 --steps 5 --threads 1

echo
echo "== 2. training step (AdamW) against PyTorch, $threads threads"
ours=$($G bench --config configs/models/bench-d256.json --batch 8 --seq-len 256 --steps 5 --optimizer adamw --json)
echo "gemmakd: $ours"
if python3 -c "import torch, transformers" 2>/dev/null; then
    theirs=$(python3 scripts/reference/train_bench.py --config configs/models/bench-d256.json --batch 8 --seq-len 256 \
        --threads "$threads" --steps 5 2>/dev/null | tail -1)
    echo "pytorch: $theirs"
    python3 - "$ours" "$theirs" <<'EOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"ratio: gemmakd {a['tokens_per_s']:.0f} / PyTorch {b['tokens_per_s']:.0f} tokens/s = {a['tokens_per_s'] / b['tokens_per_s']:.2f}x")
EOF
else
    echo "(torch and transformers not installed: no PyTorch comparison; pip install torch transformers)"
fi

echo
echo "== 3. tokenizer encode throughput (MB/s)"
text=tests/fixtures/tokenizer/mixed.txt
gemma=../shared/data/tokenizers/gemma3/tokenizer.json
for tok in "$gemma" tests/fixtures/tokenizer/spm_bpe.model; do
    [ -f "$tok" ] || continue
    for t in 1 "$threads"; do
        printf '%s, %s thread(s): ' "$tok" "$t"
        $G encode --tokenizer "$tok" --text-file "$text" --bench 10 --threads "$t"
    done
    if python3 -c "import tokenizers, sentencepiece" 2>/dev/null; then
        python3 scripts/reference/tokenizer_bench.py --tokenizer "$tok" --text "$text"
    fi
done

echo
echo "== 4. generation with the KV cache (demo-student shape, random weights): batch 1 and 16"
tmp=$(mktemp -d)
$G init --config configs/models/demo-student.json --seed 1 --out "$tmp/model" >/dev/null
for i in $(seq 1 32); do echo "{\"prompt\": \"Question $i: what is the meaning of verse $i?\"}"; done > "$tmp/prompts.jsonl"
for b in 1 16; do
    printf 'batch %s: ' "$b"
    $G generate --model "$tmp/model" --tokenizer tests/fixtures/tokenizer/spm_bpe.model --prompts "$tmp/prompts.jsonl" \
        --out "$tmp/out-$b.jsonl" --max-new-tokens 64 --no-stop --greedy --batch "$b" 2>&1 | tail -1 | sed 's/.*; //'
done
rm -rf "$tmp"
