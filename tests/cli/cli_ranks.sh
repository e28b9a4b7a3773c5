#!/bin/sh
# Data-parallel training under mpirun (OpenMPI, ranks on this machine with
# --oversubscribe): 2 and 3 ranks end where one process ends (within 1e-6
# relative per tensor after 20 steps: the ranks' gradients are summed in
# another order than one process accumulates its micro-batches); ZeRO-1 ends
# bit for bit where the unsharded update ends, in fp32 and bf16; distillation likewise (an in-process
# teacher, a top-k cache: 1e-6; on-policy, each rank sampling its rows: 2e-6); a run killed on 2 ranks resumes
# on 1 and on 3; SIGKILL of one rank ends the job at once naming the rank, and
# --resume continues it to the uninterrupted run's bytes; a rank that cannot
# read its input stops every rank with its message.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_ranks.sh
. "$(dirname "$0")/lib/common.sh"
DIFF=tests/cli/lib/tensor_diff.py
CASES="ranks_2_equal_1 ranks_3_equal_1 distill_in_process_2_equal_1 distill_cache_3_equal_1
on_policy_3_equal_1 cursor_as_one_process zero1_equals_unsharded zero1_equals_unsharded_bf16 elastic_2_to_1 elastic_2_to_3 kill_one_rank failing_rank
batch_not_divisible"
if ! command -v mpirun >/dev/null; then
    for c in $CASES; do echo "SKIP $SUITE/$c: mpirun is not installed (apt-get install openmpi-bin)"; done
    exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_WAIT_POLICY=passive # ranks share the cores: spinning threads would starve each other
# The sanitizer build under mpirun: OpenMPI's components leave allocations behind that LeakSanitizer
# cannot even name (they are unloaded by then), so leaks are checked by the one-process tests only.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# mp N ARGS...: gemmakd on N ranks (stderr in $T/err); at most 120 s.
mp() {
    n=$1
    shift
    timeout 120 mpirun -np "$n" "$G" "$@" >/dev/null 2>"$T/err"
}
# train N RUN ARGS...: a training run on N ranks (1: without mpirun) in $T/runs/RUN.
train() {
    n=$1 run=$2
    shift 2
    if [ "$n" -eq 1 ]; then
        "$G" train --config "$T/run.yaml" "run_dir=$T/runs/$run" "$@" >/dev/null 2>"$T/err"
    else
        mp "$n" train --config "$T/run.yaml" "run_dir=$T/runs/$run" "$@"
    fi
}
# within RUN_A RUN_B [BOUND]: empty when step 20's weights and EMA, and the average of steps 15 and 20,
# agree within BOUND (default 1e-6) relative per tensor, else what differs.
within() {
    bound=${3:-1e-6}
    for f in step-000020/model.safetensors step-000020/ema/model.safetensors average-last-2/model.safetensors; do
        d=$(python3 "$DIFF" "$T/runs/$1/$f" "$T/runs/$2/$f") || {
            echo "$f: $d"
            return
        }
        python3 -c "import sys; sys.exit(float('${d% *}') > $bound)" || echo "$f: per-tensor relative difference ${d}"
    done
}
# same RUN_A RUN_B: empty when step 20's weights, optimizer state and EMA are byte for byte the same.
same() {
    for f in model.safetensors optimizer.safetensors ema/model.safetensors; do
        cmp -s "$T/runs/$1/step-000020/$f" "$T/runs/$2/step-000020/$f" || echo "step-000020/$f differs"
    done
}
check() { # check CASE WHAT: passes when WHAT is empty
    if [ -z "$2" ]; then pass "$1"; else fail "$1" "$2"; fi
}

mkdir -p "$T/runs"
tiny_run_config "$T/run.yaml"
cat >>"$T/run.yaml" <<EOF
batch: {size: 6, micro: 1}
train: {steps: 20}
optim: {lr: 3.0e-3}
schedule: {warmup: 2}
eval: {every: 5, tokens: 512}
checkpoint: {every: 5, keep: 4}
log: {every: 1}
ema: {decay: 0.9}
average: {last_k: 2}
EOF
if ! train 1 one; then
    fail setup "one process: $(tail -n 1 "$T/err")"
    exit 1
fi

for n in 2 3; do
    if train "$n" "ranks$n"; then
        check "ranks_${n}_equal_1" "$(within one "ranks$n")"
    else
        fail "ranks_${n}_equal_1" "$(grep -m1 error "$T/err")"
    fi
done

# Distillation: each rank runs the in-process teacher (step 10 of the run above) on its rows, or
# reads its rows of a top-k cache of that teacher.
teacher="$T/runs/one/step-000010"
for how in in_process cache; do
    if [ $how = in_process ]; then
        ranks=2
        set -- "teacher.model=$teacher"
    else
        ranks=3
        set -- "teacher.cache=$T/cache"
        "$G" teacher-logits --teacher "$teacher" --data "$T/data/train-*.h5" --seq-len 32 --method topk --k 8 \
            --out "$T/cache" >/dev/null 2>"$T/err" || echo "teacher-logits: $(tail -n 1 "$T/err")" >&2
    fi
    name=distill_${how}_${ranks}_equal_1
    if ! train 1 "distill_$how.1" "$@"; then
        fail $name "one process: $(tail -n 1 "$T/err")"
    elif ! train $ranks "distill_$how.$ranks" "$@"; then
        fail $name "$(grep -m1 error "$T/err")"
    else
        check $name "$(within "distill_$how.1" "distill_$how.$ranks")"
    fi
done

# On-policy distillation (half of each step's 6 rows sampled by the student): on 3 ranks rank 0
# trains data rows only, rank 1 one of each, rank 2 sampled rows only; each samples its own.
i=0
while [ $i -lt 12 ]; do
    echo "{\"text\": \"And the word of verse $i was\"}"
    i=$((i + 1))
done >"$T/prompts.jsonl"
set -- "teacher.model=$teacher" kd.loss=jsd kd.on_policy.fraction=0.5 "kd.on_policy.prompts=[$T/prompts.jsonl]" \
    kd.on_policy.tokenizer=tests/fixtures/tokenizer/spm_bpe.model kd.on_policy.max_new_tokens=8
if ! train 1 on_policy.1 "$@"; then
    fail on_policy_3_equal_1 "one process: $(tail -n 1 "$T/err")"
elif ! train 3 on_policy.3 "$@"; then
    fail on_policy_3_equal_1 "$(grep -m1 error "$T/err")"
elif ! grep -q '"sampled_rows": 3, "sampled_tokens": [1-9]' "$T/runs/on_policy.3/metrics.jsonl"; then
    fail on_policy_3_equal_1 "no step logged 3 sampled rows: $(head -n 1 "$T/runs/on_policy.3/metrics.jsonl")"
else
    # 2e-6: on-policy JSD runs drift apart faster; one process with micro-batches of 2 instead of 1
    # differs from itself by 1.2e-6 after 20 such steps.
    check on_policy_3_equal_1 "$(within on_policy.1 on_policy.3 2e-6)"
fi

# The loader's cursor in a checkpoint is one process's whatever the ranks do with their rows: here
# 12 rows a step, 8 of them sampled, micro-batches of 4 in one process and of 3 on each of 2 ranks
# (rank 0 reads its 4 data rows in 2 micro-batches where one process reads them in 1).
set -- "teacher.model=$teacher" kd.on_policy.fraction=0.67 "kd.on_policy.prompts=[$T/prompts.jsonl]" \
    kd.on_policy.tokenizer=tests/fixtures/tokenizer/spm_bpe.model kd.on_policy.max_new_tokens=8 batch.size=12 \
    batch.micro=4 train.steps=5
cursor() { grep -o '"loader": {[^}]*}' "$T/runs/$1/step-000005/trainer_state.json"; }
if ! train 1 cursor.1 "$@" || ! train 2 cursor.2 "$@"; then
    fail cursor_as_one_process "$(grep -m1 error "$T/err")"
elif [ -z "$(cursor cursor.1)" ] || [ "$(cursor cursor.1)" != "$(cursor cursor.2)" ]; then
    fail cursor_as_one_process "one process: $(cursor cursor.1); 2 ranks: $(cursor cursor.2)"
else
    pass cursor_as_one_process
fi

if train 2 unsharded parallel.zero=0; then
    check zero1_equals_unsharded "$(same ranks2 unsharded)"
else
    fail zero1_equals_unsharded "$(grep -m1 error "$T/err")"
fi

# bf16 (bf16 gradients summed over ranks, the weights all-gathered in bf16): ZeRO-1 the same bytes too.
if train 2 bf16_zero1 model.precision=bf16 && train 2 bf16_unsharded model.precision=bf16 parallel.zero=0; then
    check zero1_equals_unsharded_bf16 "$(same bf16_zero1 bf16_unsharded)"
else
    fail zero1_equals_unsharded_bf16 "$(grep -m1 error "$T/err")"
fi

# Killed on 2 ranks after step 12 (checkpoint at 10), resumed on 1 and on 3.
GEMMAKD_TEST_KILL_AFTER_STEP=12 train 2 killed
for n in 1 3; do
    cp -r "$T/runs/killed" "$T/runs/elastic$n"
    if [ ! -d "$T/runs/killed/step-000010" ] || [ -d "$T/runs/killed/step-000015" ]; then
        fail "elastic_2_to_$n" "the killed run did not stop between its checkpoints 10 and 15"
    elif train "$n" "elastic$n" --resume; then
        check "elastic_2_to_$n" "$(within one "elastic$n")"
    else
        fail "elastic_2_to_$n" "$(grep -m1 error "$T/err")"
    fi
done

# SIGKILL of rank 1 alone after step 7: the job ends (not a hang) and says which rank.
start=$(date +%s)
GEMMAKD_TEST_KILL_RANK=1 GEMMAKD_TEST_KILL_AFTER_STEP=7 train 2 kill1
status=$? took=$(($(date +%s) - start))
if [ $status -eq 0 ] || [ $status -eq 124 ] || [ $took -gt 30 ]; then
    fail kill_one_rank "mpirun ended with status $status after $took s"
elif ! grep -q "rank 1" "$T/err"; then
    fail kill_one_rank "no message names rank 1: $(grep -v '^-*$' "$T/err" | head -n 2 | tr '\n' ' ')"
elif ! train 2 kill1 --resume; then
    fail kill_one_rank "--resume: $(grep -m1 error "$T/err")"
else
    check kill_one_rank "$(same ranks2 kill1)"
fi

# Rank 1 reads a truncated copy of the shard (MPMD: its own arguments): every rank stops with its message.
head -c 3000 "$(ls "$T"/data/train-*.h5 | head -n 1)" >"$T/truncated.h5"
start=$(date +%s)
timeout 60 mpirun -np 1 "$G" train --config "$T/run.yaml" "run_dir=$T/runs/bad" : \
    -np 1 "$G" train --config "$T/run.yaml" "run_dir=$T/runs/bad" "data.train=$T/truncated.h5" >/dev/null 2>"$T/err"
status=$? took=$(($(date +%s) - start))
if [ $status -eq 0 ] || [ $status -eq 124 ] || [ $took -gt 30 ]; then
    fail failing_rank "mpirun ended with status $status after $took s"
elif ! grep -q "error (rank 1 of 2): $T/truncated.h5" "$T/err"; then
    fail failing_rank "no message from rank 1 naming the file: $(grep -m1 error "$T/err")"
else
    pass failing_rank
fi

if mp 4 train --config "$T/run.yaml" "run_dir=$T/runs/four"; then
    fail batch_not_divisible "6 rows were split over 4 ranks"
elif ! grep -q "'batch.size' (6) must be a multiple of the 4 ranks" "$T/err"; then
    fail batch_not_divisible "$(grep -m1 error "$T/err")"
else
    pass batch_not_divisible
fi
exit $failed
