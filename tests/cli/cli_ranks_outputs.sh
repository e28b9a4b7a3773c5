#!/bin/sh
# teacher-logits and generate --prompts under mpirun write exactly what one
# process writes: every cache segment (HDF5) and answer file byte for byte,
# with 1, 2 and 3 ranks, across --part, and when a stopped run is resumed with
# another number of ranks. A rank that fails stops every rank with its message;
# a command that does not split is refused under mpirun.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_ranks_outputs.sh
. "$(dirname "$0")/lib/common.sh"
TOK=tests/fixtures/tokenizer/spm_bpe.model

CASES="teacher_logits_two_runs_same_bytes teacher_logits_topk_ranks teacher_logits_sample_ranks
teacher_logits_parts_ranks teacher_logits_resume_ranks teacher_logits_one_summary generate_sampled_ranks
generate_greedy_ranks generate_resume_ranks generate_one_summary only_rank_0_writes rank_failure_teacher_logits
rank_failure_generate refused_eval refused_generate_tokens"
if ! command -v mpirun >/dev/null 2>&1; then
    for c in $CASES; do echo "SKIP $SUITE/$c: mpirun is not installed (OpenMPI's mpirun runs the ranks)"; done
    exit 0
fi
export OMP_NUM_THREADS=1
# The sanitizer build under mpirun: OpenMPI's components leave allocations behind that LeakSanitizer
# cannot even name (they are unloaded by then), so leaks are checked by the one-process tests only.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

# ranks N ARGS...: gemmakd ARGS under mpirun with N ranks (N = 1: no mpirun), stdout/stderr to $T/out, $T/err.
ranks() {
    n=$1
    shift
    if [ "$n" = 1 ]; then
        "$G" "$@" >"$T/out" 2>"$T/err"
    else
        timeout 300 mpirun -np "$n" --oversubscribe --bind-to none "$G" "$@" >"$T/out" 2>"$T/err"
    fi
}
last_error() { grep 'error' "$T/err" | head -n 2 | tr '\n' '|'; }

# same_dirs A B: the same file names (temporaries included), each file the same bytes; else says what differs.
same_dirs() {
    la=$(ls -A "$1" | tr '\n' ' ') lb=$(ls -A "$2" | tr '\n' ' ')
    if [ "$la" != "$lb" ]; then
        echo "files [$la] vs [$lb]"
        return 1
    fi
    for f in $la; do
        if ! cmp -s "$1/$f" "$2/$f"; then
            echo "$f differs: $(cmp "$1/$f" "$2/$f" 2>&1 | head -n 1)"
            return 1
        fi
    done
}

mkdir -p "$T/data"
if ! gk init --config configs/models/tiny.json --out "$T/model" --seed 3; then
    fail setup "init: $(last_error)"
    exit 1
fi
cp "$TOK" "$T/model/tokenizer.model"
head -c 20000 tests/fixtures/tokenizer/mixed.txt >"$T/text.txt"
if ! gk tokenize --tokenizer "$TOK" --input "$T/text.txt" --out "$T/data" --doc-separator '\n\n' --val-fraction 0.3; then
    fail setup "tokenize: $(last_error)"
    exit 1
fi

# ---------------------------------------------------------------- teacher-logits

# Segments of 7 windows in batches of 3: the last batch of a segment is short, and with 3 ranks one
# rank has no batch of some segments. Two shards (train and val) in one cache.
# cache N METHOD DIR ARGS...: a cache of DIR with N ranks.
cache() {
    n=$1 method=$2 dir=$3
    shift 3
    ranks "$n" teacher-logits --teacher "$T/model" --data "$T/data/train-*.h5,$T/data/val-*.h5" --seq-len 32 \
        --method "$method" --k 6 --temperature 0.8 --seed 9 --segment-windows 7 --batch 3 --threads 1 --out "$dir" "$@"
}

name=teacher_logits_two_runs_same_bytes # HDF5 with object times off: nothing of the run in the bytes
if ! cache 1 topk "$T/topk.1"; then
    fail $name "1 process: $(last_error)"
elif ! grep -o '[0-9]* windows, [0-9]* tokens' "$T/out" >"$T/topk.1.counts"; then
    fail $name "1 process: no 'windows, tokens' in its summary: $(tr '\n' '|' <"$T/out")"
elif ! cache 1 topk "$T/topk.1b"; then
    fail $name "1 process, again: $(last_error)"
elif why=$(same_dirs "$T/topk.1" "$T/topk.1b"); then
    pass $name
else
    fail $name "$why"
fi

# match_ranks NAME BASE MAKE ARGS...: MAKE N BASE.N ARGS... writes on 2 and on 3 ranks what it wrote
# on one process in BASE.1 (made first when missing), byte for byte.
match_ranks() {
    name=$1 base=$2 make=$3
    shift 3
    if [ ! -d "$base.1" ] && ! $make 1 "$base.1" "$@"; then
        fail $name "1 process: $(last_error)"
        return
    fi
    for n in 2 3; do
        if ! $make $n "$base.$n" "$@"; then
            fail $name "$n ranks: $(last_error)"
            return
        elif ! why=$(same_dirs "$base.1" "$base.$n"); then
            fail $name "$n ranks against 1 process: $why"
            return
        fi
    done
    pass $name
}

# cache_in N DIR METHOD: cache N METHOD DIR.
cache_in() { cache "$1" "$3" "$2"; }
for method in topk sample; do
    match_ranks teacher_logits_${method}_ranks "$T/$method" cache_in "$method"
done

name=teacher_logits_one_summary # the summary once (rank 0's), its counts the whole job's
cache 3 topk "$T/topk.summary"
if [ "$(grep -c '^teacher-logits:' "$T/out")" != 1 ]; then
    fail $name "expected one summary line on stdout, got: $(tr '\n' '|' <"$T/out")"
elif [ "$(grep -o '[0-9]* windows, [0-9]* tokens' "$T/out")" != "$(cat "$T/topk.1.counts")" ]; then
    fail $name "its counts differ from one process's ($(cat "$T/topk.1.counts")): $(tr '\n' '|' <"$T/out")"
else
    pass $name
fi

name=teacher_logits_parts_ranks # two parts of 2 ranks each into one directory
if ! cache 2 sample "$T/sample.parts" --part 0/2 || ! cache 2 sample "$T/sample.parts" --part 1/2; then
    fail $name "$(last_error)"
elif why=$(same_dirs "$T/sample.1" "$T/sample.parts"); then
    pass $name
else
    fail $name "$why"
fi

name=teacher_logits_resume_ranks # killed after 2 segments with 2 ranks, finished with 3
GEMMAKD_TEST_KILL_AFTER_SEGMENTS=2 cache 2 sample "$T/sample.resumed"
st=$?
written=$(ls "$T/sample.resumed" 2>/dev/null | grep -c '\.h5$')
if [ $st = 0 ] || [ "$written" != 2 ]; then
    fail $name "the killed run: exit status $st, $written segment(s) written (expected non-zero and 2)"
elif ! cache 3 sample "$T/sample.resumed"; then
    fail $name "the resumed run: $(last_error)"
elif ! grep -q "2 already present" "$T/out"; then
    fail $name "the resumed run did not skip the 2 finished segments: $(tr '\n' '|' <"$T/out")"
elif why=$(same_dirs "$T/sample.1" "$T/sample.resumed"); then
    pass $name
else
    fail $name "$why"
fi

# ---------------------------------------------------------------- generate --prompts

# 23 records, every fifth with two user turns (answered in round 2); batches of 2.
i=1
while [ $i -le 23 ]; do
    if [ $((i % 5)) = 0 ]; then
        echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello number $i\"}, {\"role\": \"assistant\", \"content\": \"old\"}, {\"role\": \"user\", \"content\": \"And then $i?\"}]}"
    else
        echo "{\"prompt\": \"Tell me about thing number $i, please.\"}"
    fi
    i=$((i + 1))
done >"$T/prompts.jsonl"

# answers N OUT SAMPLING...: generate --prompts with N ranks.
answers() {
    n=$1 out=$2
    shift 2
    ranks "$n" generate --model "$T/model" --prompts "$T/prompts.jsonl" --out "$out" --max-new-tokens 10 --seed 4 \
        --batch 2 --threads 1 "$@"
}

# answers_in N DIR ARGS...: answers N DIR/answers.jsonl ARGS...
answers_in() {
    n=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    answers "$n" "$dir/answers.jsonl" "$@"
}
match_ranks generate_sampled_ranks "$T/sampled" answers_in --temperature 0.9 --top-p 0.9
match_ranks generate_greedy_ranks "$T/greedy" answers_in --greedy

name=generate_one_summary
mkdir -p "$T/summary"
answers 3 "$T/summary/answers.jsonl" --greedy
if [ "$(grep -c '^generate: answered 23 record' "$T/err")" = 1 ] && [ ! -s "$T/out" ]; then
    pass $name
else
    fail $name "expected one 'generate: answered 23 record(s)' line: $(tr '\n' '|' <"$T/err" | cut -c 1-300)"
fi

# Stopped by a file-size limit (as a full disk) with 2 ranks, its OUT.tmp then finished with 3.
name=generate_resume_ranks
mkdir -p "$T/resumed"
# The limit is the ranks' (mpirun itself does not start under one); only rank 0 writes.
timeout 300 mpirun -np 2 --oversubscribe --bind-to none sh -c 'ulimit -f 4; trap "" XFSZ; exec "$@"' sh \
    "$G" generate --model "$T/model" --prompts "$T/prompts.jsonl" --out "$T/resumed/answers.jsonl" --max-new-tokens 10 \
    --seed 4 --batch 2 --threads 1 --temperature 0.9 --top-p 0.9 >"$T/out" 2>"$T/err"
st=$?
kept=0
[ -f "$T/resumed/answers.jsonl.tmp" ] && kept=$(($(wc -l <"$T/resumed/answers.jsonl.tmp") - 1)) # less its settings line
if [ $st = 0 ] || [ "$kept" -lt 1 ]; then
    fail $name "the stopped run: exit status $st, $kept record(s) in OUT.tmp (expected non-zero and some)"
elif ! answers 3 "$T/resumed/answers.jsonl" --temperature 0.9 --top-p 0.9; then
    fail $name "the resumed run: $(last_error)"
elif ! grep -q "($kept already answered" "$T/err"; then
    fail $name "the resumed run did not continue the $kept records: $(tr '\n' '|' <"$T/err" | cut -c 1-300)"
elif why=$(same_dirs "$T/sampled.1" "$T/resumed"); then
    pass $name
else
    fail $name "$why"
fi

# ---------------------------------------------------------------- only rank 0 writes

# Ranks 1 and 2 may not write a byte to any file (ulimit -f 0, so a write fails with EFBIG; MPI's shared
# memory falls back, saying so): the job still succeeds and writes the same files.
# quiet_ranks ARGS...: gemmakd ARGS with 3 ranks, the others than rank 0 limited so.
quiet_ranks() {
    timeout 300 mpirun -np 3 --oversubscribe --bind-to none \
        sh -c '[ "$OMPI_COMM_WORLD_RANK" = 0 ] || ulimit -f 0; trap "" XFSZ; exec "$@"' sh "$G" "$@" >"$T/out" 2>"$T/err"
}
name=only_rank_0_writes
mkdir -p "$T/quiet"
if ! quiet_ranks teacher-logits --teacher "$T/model" --data "$T/data/train-*.h5,$T/data/val-*.h5" --seq-len 32 \
    --method sample --k 6 --temperature 0.8 --seed 9 --segment-windows 7 --batch 3 --threads 1 --out "$T/quiet/cache"; then
    fail $name "teacher-logits: $(last_error)"
elif ! why=$(same_dirs "$T/sample.1" "$T/quiet/cache"); then
    fail $name "teacher-logits: $why"
elif ! quiet_ranks generate --model "$T/model" --prompts "$T/prompts.jsonl" --out "$T/quiet/answers.jsonl" \
    --max-new-tokens 10 --seed 4 --batch 2 --threads 1 --greedy; then
    fail $name "generate: $(last_error)"
elif ! cmp -s "$T/greedy.1/answers.jsonl" "$T/quiet/answers.jsonl"; then
    fail $name "generate: the answers differ from one process's"
else
    pass $name
fi

# ---------------------------------------------------------------- a failing rank, a refused command

# rank_fails NAME NEEDLE GOOD_ARGS -- BAD_ARGS: rank 1 of 2 runs BAD_ARGS, rank 0 GOOD_ARGS: the job ends
# (within the timeout) with a non-zero status and rank 1's message naming NEEDLE.
rank_fails() {
    name=$1 needle=$2
    shift 2
    good="" bad=""
    for a in "$@"; do shift; [ "$a" = -- ] && break; good="$good '$a'"; done
    for a in "$@"; do bad="$bad '$a'"; done
    timeout 120 mpirun -np 2 --oversubscribe --bind-to none sh -c \
        "if [ \"\$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec '$G' $bad; else exec '$G' $good; fi" >"$T/out" 2>"$T/err"
    st=$?
    if [ $st = 0 ] || [ $st = 124 ]; then
        fail $name "exit status $st (124: a rank was left waiting)"
    elif ! grep -q "gemmakd: error (rank 1 of 2): .*$needle" "$T/err"; then
        fail $name "no error of rank 1 naming '$needle': $(tr '\n' '|' <"$T/err" | cut -c 1-400)"
    else
        pass $name
    fi
}

set -- teacher-logits --data "$T/data/train-*.h5" --seq-len 32 --method topk --k 4 --threads 1 --out "$T/failed"
rank_fails rank_failure_teacher_logits "$T/missing" "$@" --teacher "$T/model" -- "$@" --teacher "$T/missing"
set -- generate --model "$T/model" --max-new-tokens 4 --greedy --threads 1 --out "$T/failed.jsonl"
rank_fails rank_failure_generate "$T/missing.jsonl" "$@" --prompts "$T/prompts.jsonl" -- "$@" --prompts "$T/missing.jsonl"
if [ -e "$T/failed.jsonl" ]; then fail rank_failure_generate_no_output "$T/failed.jsonl was published"; fi

name=refused_eval
ranks 2 eval --model "$T/model" --data "$T/data/train-*.h5" --seq-len 32 --tokens 64
st=$?
if [ $st != 0 ] && grep -q "eval runs as one process" "$T/err"; then
    pass $name
else
    fail $name "exit status $st, expected non-zero and 'eval runs as one process': $(tr '\n' '|' <"$T/err" | cut -c 1-300)"
fi

name=refused_generate_tokens # one request: nothing to split
ranks 2 generate --model "$T/model" --tokens 2,5,9 --max-new-tokens 3 --greedy
st=$?
if [ $st != 0 ] && grep -q "generate --tokens runs as one process" "$T/err"; then
    pass $name
else
    fail $name "exit status $st, expected non-zero and 'generate --tokens runs as one process': $(tr '\n' '|' <"$T/err" | cut -c 1-300)"
fi

exit $failed
