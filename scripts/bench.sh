#!/bin/sh
# make bench: the speed measurements the README reports, on this machine, in one run.
#  1. the machine and the kernels each backend's matrix products run on;
#  2. training steps (AdamW) of the d=256, 4-layer, 8k-vocabulary model at batch 8 x 256:
#     cross-entropy, and distillation from an in-process teacher 4x its size
#     (configs/models/bench-teacher-d512.json), gemmakd fp32 and bf16 beside
#     transformers' Gemma2ForCausalLM in PyTorch fp32 eager and under bf16
#     autocast, same model, batch and threads;
#  3. the same two steps at Gemma's vocabulary of 262,144 (configs/models/*-v262k.json, 2-layer
#     student at batch 2 x 256): where the output head is the step;
#  4. the d=512, 8-layer model at seq_len 512 against its own matrix products (2 threads and 1);
#  5. tokenizer throughput beside the tokenizers / sentencepiece libraries when installed;
#  6. generation with the KV cache at batch 1 and 16;
#  7. generation's prompt processing: 512-token prompts on the d=256 model, fed
#     one position per step (the path before prefill) and prefilled.
# PyTorch: $GEMMAKD_TORCH_PYTHON when set; else a virtual environment with the
# current torch and transformers from PyPI (made once in ~/.cache/gemmakd/torch-venv);
# else a python3 that already imports both (Debian's torch, say). The run names which.
# Run it on an otherwise idle machine: it measures wall time.
set -e
cd "$(dirname "$0")/.."
G=./gemmakd
threads=$(nproc)
STUDENT=configs/models/bench-d256.json
TEACHER=configs/models/bench-teacher-d512.json

torch_python() {
    if [ -n "$GEMMAKD_TORCH_PYTHON" ]; then echo "$GEMMAKD_TORCH_PYTHON"; return; fi
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/gemmakd/torch-venv"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, transformers" 2>/dev/null; then
        echo "installing torch and transformers from PyPI into $venv (once)" >&2
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q torch transformers >&2 || rm -rf "$venv"
    fi
    if [ -x "$venv/bin/python" ]; then echo "$venv/bin/python"; return; fi
    if python3 -c "import torch, transformers" 2>/dev/null; then echo python3; fi
}

echo "== 1. machine and kernels"
grep -m1 "model name" /proc/cpuinfo | sed 's/.*: /cpu           /'
echo "threads       $threads"
for p in fp32 bf16; do
    $G bench --config "$STUDENT" --batch 1 --seq-len 16 --steps 1 --precision $p | grep kernels
done

# versus_pytorch STUDENT TEACHER BATCH SEQ_LEN GEMMAKD_STEPS TORCH_STEPS: the cross-entropy and the
# distillation step, gemmakd fp32 and bf16 beside PyTorch fp32 and bf16 autocast, as a table.
versus_pytorch() {
    results=$(mktemp)
    for task in xent distill; do
        teacher=
        [ $task = distill ] && teacher="--teacher-config $2"
        for p in fp32 bf16; do
            # shellcheck disable=SC2086 # $teacher is two words or none
            echo "$task gemmakd-$p $($G bench --config "$1" $teacher --batch "$3" --seq-len "$4" --steps "$5" \
                --optimizer adamw --precision $p --json)" >>"$results"
        done
        if [ -n "$PY" ]; then
            for mode in fp32 bf16; do
                flag=
                [ $mode = bf16 ] && flag=--bf16
                # shellcheck disable=SC2086
                echo "$task torch-$mode $("$PY" scripts/reference/train_bench.py --config "$1" $teacher --batch "$3" \
                    --seq-len "$4" --threads "$threads" --steps "$6" $flag 2>/dev/null | tail -1)" >>"$results"
            done
        fi
    done
    [ -n "$PY" ] || echo "(no PyTorch could be installed or found: gemmakd's numbers only)"
    python3 scripts/bench_table.py "$results"
    rm -f "$results"
}

echo
echo "== 2. training steps against PyTorch, $threads threads, batch 8 x 256"
PY=$(torch_python)
versus_pytorch "$STUDENT" "$TEACHER" 8 256 10 8

echo
echo "== 3. Gemma's vocabulary (262,144): the 2-layer d=256 model, batch 2 x 256, teacher d=512, 4 layers"
versus_pytorch configs/models/bench-d256-v262k.json configs/models/bench-teacher-d512-v262k.json 2 256 3 3

echo
echo "== 4. the d=512, 8-layer model against its own matrix products"
for p in fp32 bf16; do
    $G bench --config configs/models/bench-d512.json --batch 2 --seq-len 512 --steps 5 --precision $p
    $G bench --config configs/models/bench-d512.json --batch 2 --seq-len 512 --steps 5 --precision $p --threads 1
done

echo
echo "== 5. tokenizer encode throughput (MB/s)"
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
echo "== 6. generation with the KV cache (demo-student shape, random weights): batch 1 and 16"
tmp=$(mktemp -d)
$G init --config configs/models/demo-student.json --seed 1 --out "$tmp/model" >/dev/null
for i in $(seq 1 32); do echo "{\"prompt\": \"Question $i: what is the meaning of verse $i?\"}"; done > "$tmp/prompts.jsonl"
for p in fp32 bf16; do
    for b in 1 16; do
        printf '%s, batch %s: ' "$p" "$b"
        $G generate --model "$tmp/model" --tokenizer tests/fixtures/tokenizer/spm_bpe.model --prompts "$tmp/prompts.jsonl" \
            --out "$tmp/out-$p-$b.jsonl" --max-new-tokens 64 --no-stop --greedy --batch "$b" --precision $p 2>&1 |
            tail -1 | sed 's/.*; //'
    done
done
rm -rf "$tmp"

echo
echo "== 7. prompt processing: 512-token prompts, batch 1, one position per step and prefilled"
for p in fp32 bf16; do
    $G bench --config "$STUDENT" --prompt-len 512 --steps 3 --precision $p | grep -v '^machine'
done

echo
echo "== 8. data parallelism: training steps of $STUDENT at batch 8 x 256, 1 rank x $threads threads vs $threads ranks x 1 thread"
if command -v mpirun >/dev/null; then
    tmp=$(mktemp -d)
    $G tokenize --tokenizer tests/fixtures/tokenizer/spm_bpe.model --input tests/fixtures/tokenizer/mixed.txt \
        --out "$tmp/data" --doc-separator '\n\n' >/dev/null 2>&1
    cat >"$tmp/run.yaml" <<YAML
run_dir: $tmp/run
model: {config: $STUDENT}
data: {train: "$tmp/data/train-*.h5", seq_len: 256}
batch: {size: 8}
train: {steps: 8}
log: {every: 1}
YAML
    # mean tokens/s of steps 3..8 (the first ones warm up), and the startup line that gives the bytes per step
    rate() { python3 -c "import json,sys; r=[json.loads(l)['tokens_per_s'] for l in open(sys.argv[1]) if '\"loss\"' in l][2:]; print('%.0f tokens/s' % (sum(r)/len(r)))" "$1"; }
    for p in fp32 bf16; do
        $G train --config "$tmp/run.yaml" model.precision=$p threads=$threads --overwrite 2>/dev/null
        printf '%s, 1 rank x %s threads: %s\n' $p "$threads" "$(rate "$tmp/run/metrics.jsonl")"
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive mpirun -np "$threads" --oversubscribe \
            $G train --config "$tmp/run.yaml" model.precision=$p threads=1 --overwrite 2>"$tmp/err" >/dev/null
        printf '%s, %s ranks x 1 thread: %s; %s\n' $p "$threads" "$(rate "$tmp/run/metrics.jsonl")" \
            "$(grep -o 'exchanged per step.*' "$tmp/err")"
    done
    rm -rf "$tmp"
else
    echo "mpirun is not installed (apt-get install openmpi-bin): skipped"
fi
