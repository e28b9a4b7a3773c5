#!/bin/sh
# Fault injection on a tiny training run (12 steps, a checkpoint every 2, an
# EMA, evaluations): trials of one to three faults drawn at random -- SIGKILL
# after a step, SIGKILL while a checkpoint is written, SIGKILL at a random
# moment, a corrupted checkpoint file (a flipped byte, a truncation or a deleted
# file) -- each followed by train --resume, then one more --resume to the end.
# Every trial must end with the uninterrupted run's weights, optimizer state and
# EMA byte for byte, the same logged losses, and no temporaries left. Then:
# every checkpoint corrupted (--resume refuses and changes nothing) and a second
# train on a run_dir in use (refused by its lock).
# FAULTS_SEED=S repeats a sequence of draws (each failure prints its seed);
# FAULTS_TRIALS=N sets the number of trials (default 30; 6 for the sanitizer build).
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_faults.sh
. "$(dirname "$0")/lib/common.sh"
SEED=${FAULTS_SEED:-$(date +%s)}
case "$G" in *build-san*) TRIALS=${FAULTS_TRIALS:-6} ;; *) TRIALS=${FAULTS_TRIALS:-30} ;; esac

# A failure names the seed that repeats its draws.
fail() {
    echo "FAIL cli_faults/$1: $2 (FAULTS_SEED=$SEED)"
    failed=1
}

# draw LO HI: a number in [LO, HI] in $N, from a linear congruential sequence seeded by $SEED.
R=$SEED
draw() {
    R=$(((R * 1103515245 + 12345) % 2147483648))
    N=$(($1 + (R / 65536) % ($2 - $1 + 1)))
}

# train ENV=VALUE RUN ARGS...: gemmakd train on $T/runs/RUN with one more environment
# variable (stderr in $T/err); returns its status.
train() {
    envset=$1 run=$2
    shift 2
    env "$envset" "$G" train --config "$T/run.yaml" "run_dir=$T/runs/$run" "$@" >/dev/null 2>"$T/err"
}
NOENV=GEMMAKD_UNUSED=1

# A run's metrics.jsonl without the timings (which differ between runs).
losses() { sed 's/, "tokens_per_s".*//' "$T/runs/$1/metrics.jsonl"; }

# same_as_straight RUN: empty when RUN ended as the uninterrupted run did, else what differs.
same_as_straight() {
    for f in model.safetensors optimizer.safetensors ema/model.safetensors; do
        if ! cmp -s "$T/runs/straight/step-000012/$f" "$T/runs/$1/step-000012/$f"; then
            echo "step-000012/$f differs"
            return
        fi
    done
    if [ "$(losses "$1")" != "$(losses straight)" ]; then
        echo "logged losses differ"
    elif [ -n "$(find "$T/runs/$1" -name '*.tmp-*' | head -n 1)" ]; then
        echo "temporaries left: $(find "$T/runs/$1" -name '*.tmp-*' | head -n 3 | tr '\n' ' ')"
    fi
}

# corrupt FILE: flips one byte (at a drawn offset), truncates it, or deletes it.
corrupt() {
    size=$(wc -c <"$1")
    draw 0 2
    if [ "$N" -eq 0 ] && [ "$size" -gt 0 ]; then
        draw 0 $((size - 1))
        at=$N
        byte=$(od -An -tu1 -j "$at" -N1 "$1" | tr -d ' ')
        # shellcheck disable=SC2059 # the format is the octal escape of the flipped byte
        printf "\\$(printf %o $((byte ^ 64)))" | dd of="$1" bs=1 seek="$at" conv=notrunc 2>/dev/null
        what="flipped byte $at of"
    elif [ "$N" -eq 1 ]; then
        draw 0 $((size > 0 ? size - 1 : 0))
        head -c "$N" "$1" >"$T/cut" && mv "$T/cut" "$1"
        what="truncated to $N bytes"
    else
        rm -f "$1"
        what="deleted"
    fi
}

# kill_at_random RUN: a resume killed with SIGKILL after a drawn delay (0 to 0.4 s).
kill_at_random() {
    "$G" train --config "$T/run.yaml" "run_dir=$T/runs/$1" --resume >/dev/null 2>"$T/err" &
    pid=$!
    draw 0 400
    sleep "$(printf '0.%03d' "$N")"
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null # without the shell's "Killed"
}

# ---------------------------------------------------------------- setup: data and the uninterrupted run

mkdir -p "$T/runs"
tiny_run_config "$T/run.yaml"
cat >>"$T/run.yaml" <<EOF
batch: {size: 4, micro: 2}
train: {steps: 12}
optim: {lr: 1.0e-2}
schedule: {warmup: 2}
eval: {every: 4, tokens: 256}
checkpoint: {every: 2, keep: 3}
log: {every: 1}
ema: {decay: 0.9}
EOF
if ! train $NOENV straight; then
    fail setup "the uninterrupted run: $(tail -n 1 "$T/err")"
    exit 1
fi

# ---------------------------------------------------------------- random trials

after_step=0 in_ckpt=0 at_time=0 corruptions=0 trial=1
while [ $trial -le "$TRIALS" ]; do
    run="trial$trial"
    draw 1 3
    faults=$N
    log=""
    while [ "$faults" -gt 0 ]; do
        faults=$((faults - 1))
        draw 0 4 # 0-2: a kill; 3-4: a corruption once there are checkpoints
        kind=$N
        if [ "$kind" -ge 3 ] && ! ls -d "$T/runs/$run"/step-* >/dev/null 2>&1; then draw 0 2 && kind=$N; fi
        case $kind in
        0)
            draw 1 11
            train "GEMMAKD_TEST_KILL_AFTER_STEP=$N" "$run" --resume
            st=$?
            [ $st -eq 137 ] && after_step=$((after_step + 1))
            log="$log kill-after-step-$N($st)"
            ;;
        1)
            draw 1 6
            train "GEMMAKD_TEST_KILL_IN_CHECKPOINT=$((2 * N))" "$run" --resume
            st=$?
            [ $st -eq 137 ] && in_ckpt=$((in_ckpt + 1))
            log="$log kill-in-checkpoint-$((2 * N))($st)"
            ;;
        2)
            kill_at_random "$run"
            st=$?
            [ $st -eq 137 ] && at_time=$((at_time + 1))
            log="$log kill-at-${N}ms($st)"
            ;;
        3 | 4)
            # shellcheck disable=SC2012 # checkpoint names have no odd characters
            set -- $(ls -d "$T/runs/$run"/step-*)
            draw 1 $(($# + 2)) # the newest (which the resume must skip) more often than the others
            [ "$N" -gt $# ] && N=$#
            eval "dir=\${$N}"
            set -- model.safetensors optimizer.safetensors trainer_state.json config.json manifest.json ema/model.safetensors
            draw 1 6
            eval "file=\${$N}"
            corrupt "$dir/$file"
            corruptions=$((corruptions + 1))
            log="$log $what-$(basename "$dir")/$file"
            ;;
        esac
    done
    train $NOENV "$run" --resume
    st=$?
    if [ $st -ne 0 ] && grep -q "no valid checkpoint" "$T/err"; then
        # every checkpoint left was corrupted: refused; starting over is the way out
        train $NOENV "$run" --overwrite
        st=$?
        log="$log refused-then-overwrite"
    fi
    why=$(same_as_straight "$run")
    if [ $st -ne 0 ]; then
        fail "trial_$trial" "faults:$log; the last resume exited $st: $(tail -n 1 "$T/err")"
    elif [ -n "$why" ]; then
        fail "trial_$trial" "faults:$log; $why"
    fi
    rm -rf "${T:?}/runs/$run"
    trial=$((trial + 1))
done
[ $failed -eq 0 ] && pass "random_faults: seed $SEED: $TRIALS trials, $((after_step + in_ckpt + at_time)) kills ($after_step after a step, $in_ckpt in a checkpoint, $at_time at a random moment), $corruptions corrupted checkpoint files; each resumed run ended byte-identical to the uninterrupted one"

# ---------------------------------------------------------------- every checkpoint corrupted

train GEMMAKD_TEST_KILL_AFTER_STEP=11 corrupt
for d in "$T/runs/corrupt"/step-*; do printf 'x' >>"$d/trainer_state.json"; done
before=$(cat "$T/runs/corrupt/metrics.jsonl" "$T/runs/corrupt"/step-*/trainer_state.json | cksum)
train $NOENV corrupt --resume
st=$?
after=$(cat "$T/runs/corrupt/metrics.jsonl" "$T/runs/corrupt"/step-*/trainer_state.json | cksum)
if [ $st -eq 1 ] && tail -n 1 "$T/err" | grep -q "^gemmakd: error: .*no valid checkpoint (3 skipped)" &&
    [ "$before" = "$after" ]; then
    pass every_checkpoint_corrupt_refused
else
    fail every_checkpoint_corrupt_refused "status $st, files changed: $([ "$before" = "$after" ] && echo no || echo yes): $(tail -n 1 "$T/err")"
fi

# ---------------------------------------------------------------- two processes on one run_dir

"$G" train --config "$T/run.yaml" "run_dir=$T/runs/busy" train.steps=1000000 >/dev/null 2>&1 &
pid=$!
i=0
while [ ! -e "$T/runs/busy/config.yaml" ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
train $NOENV busy --resume
st=$?
kill -9 "$pid" 2>/dev/null
{ wait "$pid"; } 2>/dev/null
if [ $st -eq 1 ] && grep -q "^gemmakd: error: .*run_dir in use by pid $pid" "$T/err"; then
    pass second_train_refused
else
    fail second_train_refused "status $st: $(tail -n 1 "$T/err")"
fi

exit $failed
