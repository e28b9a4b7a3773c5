#!/bin/sh
# Bad command lines and bad input files: each case must exit non-zero (2 for
# usage errors, 1 for bad input files), print exactly one stderr line starting
# with "gemmakd: error: ", and leave no output (nor a *.tmp-* file) behind.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_errors.sh
. "$(dirname "$0")/lib/common.sh"
TINY=configs/models/tiny.json
W="$T/work" # everything the commands may write lives here
mkdir "$W"

# Runs gemmakd with the given arguments; sets $rc, stderr in $T/err, stdout in $T/out.
run_gk() {
    gk "$@"
    rc=$?
}

# Checks the last run: exit status, one "gemmakd: error: " line mentioning
# $needle (when not empty), $created absent (when not empty), no *.tmp-* left.
# Prints nothing; sets $why to the first problem (empty when all is well).
check_error() {
    want=$1 created=$2 needle=$3
    why=
    msg=$(head -n 1 "$T/err")
    nl=$(wc -l <"$T/err" | tr -d ' ')
    nr=$(awk 'END { print NR }' "$T/err")
    if [ "$rc" -eq 0 ]; then
        why="exit status 0, expected $want"
    elif [ "$rc" -ne "$want" ]; then
        why="exit status $rc, expected $want (stderr: $msg)"
    elif [ "$nl" -ne 1 ] || [ "$nr" -ne 1 ]; then
        why="stderr has $nr lines, expected exactly one: $(tr '\n' '|' <"$T/err" | cut -c 1-300)"
    else
        case "$msg" in
        "gemmakd: error: "*) ;;
        *) why="stderr does not start with 'gemmakd: error: ': $msg" ;;
        esac
    fi
    if [ -z "$why" ] && [ -n "$needle" ]; then
        case "$msg" in
        *"$needle"*) ;;
        *) why="message does not mention '$needle': $msg" ;;
        esac
    fi
    if [ -z "$why" ] && [ -n "$created" ] && { [ -e "$created" ] || [ -L "$created" ]; }; then
        why="$created was created"
    fi
    if [ -z "$why" ]; then
        left=$(find "$W" -name '*.tmp-*' | head -n 1)
        [ -z "$left" ] || why="temporary file left behind: $left"
    fi
}

# expect_error NAME STATUS CREATED NEEDLE ARGS...
expect_error() {
    name=$1
    shift
    want=$1 created=$2 needle=$3
    shift 3
    run_gk "$@"
    check_error "$want" "$created" "$needle"
    if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why"; fi
    find "$W" -name '*.tmp-*' -exec rm -rf {} + 2>/dev/null
}

# ---------------------------------------------------------------- fixtures

MODEL="$W/model" # a valid tiny model
if ! "$G" init --config "$TINY" --out "$MODEL" --seed 3 >/dev/null 2>"$T/err" || [ ! -f "$MODEL/model.safetensors" ]; then
    echo "FAIL cli_errors/setup: could not make a model with init: $(head -n 1 "$T/err")"
    exit 1
fi

printf '{\n  "model_type": "gemma2",\n  "hidden_size": 64,\n}\n' >"$W/invalid.json"
sed 's/"num_key_value_heads": *[0-9]*/"num_key_value_heads": 3/' "$TINY" >"$W/heads.json"
grep -q '"num_key_value_heads": 3' "$W/heads.json" || fail setup "could not edit num_key_value_heads in $TINY"

mkdir "$W/no-weights"
cp "$MODEL/config.json" "$W/no-weights/"
mkdir "$W/truncated"
cp "$MODEL/config.json" "$W/truncated/"
size=$(wc -c <"$MODEL/model.safetensors")
head -c $((size / 2)) "$MODEL/model.safetensors" >"$W/truncated/model.safetensors"
mkdir "$W/truncated-header"
cp "$MODEL/config.json" "$W/truncated-header/"
head -c 40 "$MODEL/model.safetensors" >"$W/truncated-header/model.safetensors"
mkdir "$W/bad-config"
cp "$MODEL/model.safetensors" "$W/bad-config/"
cp "$W/invalid.json" "$W/bad-config/config.json"
printf '2, 651, -10\n' >"$W/negative-ids.txt"
# 100000 heads of 100000 dimensions: num_attention_heads x head_dim overflowed an int in info.
sed -e 's/"num_attention_heads": *[0-9]*/"num_attention_heads": 100000/' -e 's/"head_dim": *[0-9]*/"head_dim": 100000/' \
    -e 's/"num_key_value_heads": *[0-9]*/"num_key_value_heads": 1/' "$TINY" >"$W/huge-heads.json"
grep -q '"head_dim": 100000' "$W/huge-heads.json" || fail setup "could not edit head_dim in $TINY"

OUT="$W/scores.safetensors" # what every failing score run must not create

# ---------------------------------------------------------------- commands and flags

expect_error unknown_command 2 "" "frobnicate" frobnicate --out "$W/x"
expect_error help_unknown_command 2 "" "frobnicate" help frobnicate
expect_error unknown_flag_suggestion 2 "$W/new1" "did you mean --config" init --confg "$TINY" --out "$W/new1"
expect_error flag_without_value 2 "" "--out" init --config "$TINY" --out
expect_error init_without_config 2 "$W/new2" "--config" init --out "$W/new2"
expect_error init_bad_dtype 2 "$W/new3" "float16" init --config "$TINY" --out "$W/new3" --dtype float16
expect_error init_bad_shard_size 2 "$W/new4" "--max-shard-size" init --config "$TINY" --out "$W/new4" --max-shard-size 5XB
expect_error info_bad_seq_len 2 "" "--seq-len" info --config "$TINY" --seq-len abc
expect_error info_zero_seq_len 2 "" "--seq-len" info --config "$TINY" --seq-len 0
expect_error info_without_config 2 "" "--config" info --json
# More tokens per micro-batch than an int indexes: the plan overflowed (batch * seq_len as int).
expect_error info_batch_times_seq_len 2 "" "--batch x --seq-len" info --config "$TINY" --batch 1048576 --seq-len 16777216
expect_error info_huge_heads 1 "" "num_attention_heads x head_dim" info --config "$W/huge-heads.json"

# ---------------------------------------------------------------- init: bad config files

expect_error init_missing_config_file 1 "$W/new5" "nope.json" init --config "$W/nope.json" --out "$W/new5"
expect_error init_invalid_json 1 "$W/new6" "invalid.json:4:1" init --config "$W/invalid.json" --out "$W/new6"
expect_error init_heads_not_divisible 1 "$W/new7" "num_key_value_heads" init --config "$W/heads.json" --out "$W/new7"
expect_error init_missing_parent_dir 1 "$W/no/such/dir" "" init --config "$TINY" --out "$W/no/such/dir"

# init into an existing directory: rejected, and the directory is untouched.
before=$( (ls -lA "$MODEL" && cat "$MODEL"/*) | cksum)
run_gk init --config "$TINY" --out "$MODEL" --seed 4
check_error 1 "" "$MODEL"
after=$( (ls -lA "$MODEL" && cat "$MODEL"/*) | cksum)
[ -n "$why" ] || [ "$before" = "$after" ] || why="$MODEL was modified"
if [ -z "$why" ]; then pass init_existing_dir; else fail init_existing_dir "$why"; fi

# ---------------------------------------------------------------- score: flags

expect_error score_without_out 2 "" "--out" score --model "$MODEL" --tokens 2,651,10
expect_error score_tokens_and_tokens_file 2 "$OUT" "--tokens" \
    score --model "$MODEL" --tokens 2,651 --tokens-file "$W/negative-ids.txt" --out "$OUT"
expect_error score_no_tokens 2 "$OUT" "--tokens" score --model "$MODEL" --out "$OUT"
expect_error score_negative_token 2 "$OUT" "--tokens" score --model "$MODEL" --tokens 2,-651,10 --out "$OUT"
expect_error score_non_number_token 2 "$OUT" "--tokens" score --model "$MODEL" --tokens 2,six,10 --out "$OUT"
expect_error score_empty_tokens 2 "$OUT" "--tokens" score --model "$MODEL" --tokens "" --out "$OUT"
expect_error score_doc_starts_out_of_range 2 "$OUT" "--doc-starts" \
    score --model "$MODEL" --tokens 2,651,10 --doc-starts 0,3 --out "$OUT"
expect_error score_doc_starts_decreasing 2 "$OUT" "--doc-starts" \
    score --model "$MODEL" --tokens 2,651,10,11 --doc-starts 0,2,1 --out "$OUT"
expect_error score_sliding_window_zero 2 "$OUT" "--sliding-window" \
    score --model "$MODEL" --tokens 2,651,10 --sliding-window 0 --out "$OUT"
expect_error score_zero_threads 2 "$OUT" "--threads" score --model "$MODEL" --tokens 2,651,10 --threads 0 --out "$OUT"

# ---------------------------------------------------------------- score: bad inputs

expect_error score_token_outside_vocab 1 "$OUT" "8192" score --model "$MODEL" --tokens 2,8192,10 --out "$OUT"
expect_error score_missing_tokens_file 1 "$OUT" "no-such-ids.txt" \
    score --model "$MODEL" --tokens-file "$W/no-such-ids.txt" --out "$OUT"
expect_error score_tokens_file_negative_id 1 "$OUT" "negative-ids.txt" \
    score --model "$MODEL" --tokens-file "$W/negative-ids.txt" --out "$OUT"
expect_error score_missing_model_dir 1 "$OUT" "no-such-model" score --model "$W/no-such-model" --tokens 2,651 --out "$OUT"
expect_error score_no_weights 1 "$OUT" "model.safetensors" score --model "$W/no-weights" --tokens 2,651 --out "$OUT"
expect_error score_truncated_weights 1 "$OUT" "model.safetensors" \
    score --model "$W/truncated" --tokens 2,651 --out "$OUT"
expect_error score_truncated_header 1 "$OUT" "model.safetensors" \
    score --model "$W/truncated-header" --tokens 2,651 --out "$OUT"
expect_error score_invalid_config 1 "$OUT" "config.json:4:1" score --model "$W/bad-config" --tokens 2,651 --out "$OUT"
expect_error score_out_in_missing_dir 1 "$W/no-dir/scores.safetensors" "" \
    score --model "$MODEL" --tokens 2,651 --out "$W/no-dir/scores.safetensors"

# Named pipes where files are read: refused at once (score waited forever on a model.safetensors FIFO).
# run_fifo NAME NEEDLE ARGS...: with a time limit, so that a reader that blocks fails instead of hanging.
run_fifo() {
    name=$1 needle=$2
    shift 2
    timeout 30 "$G" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    check_error 1 "$OUT" "$needle"
    [ "$rc" -ne 124 ] || why="still blocked after 30 s"
    if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why"; fi
}
mkdir "$W/fifo-model"
cp "$MODEL/config.json" "$W/fifo-model/"
mkfifo "$W/fifo-model/model.safetensors" "$W/fifo-tokenizer.json" "$W/fifo-ids.txt"
run_fifo score_weights_fifo "model.safetensors: not a regular file" \
    score --model "$W/fifo-model" --tokens 2,651 --out "$OUT"
run_fifo score_tokens_file_fifo "fifo-ids.txt: not a regular file" \
    score --model "$MODEL" --tokens-file "$W/fifo-ids.txt" --out "$OUT"
run_fifo encode_tokenizer_fifo "fifo-tokenizer.json: not a regular file" \
    encode --tokenizer "$W/fifo-tokenizer.json" --text hi

# A failing score must leave an existing output file as it was.
echo "previous scores" >"$W/existing.safetensors"
run_gk score --model "$MODEL" --tokens 2,9000 --out "$W/existing.safetensors"
check_error 1 "" "9000"
[ -n "$why" ] || [ "$(cat "$W/existing.safetensors")" = "previous scores" ] || why="existing --out file was changed"
if [ -z "$why" ]; then pass score_failure_keeps_existing_out; else fail score_failure_keeps_existing_out "$why"; fi

# ---------------------------------------------------------------- seq_len beyond max_position_embeddings

# One rule for every command that takes a sequence length: more tokens per sequence than the
# model's max_position_embeddings is refused, naming both numbers (train, teacher-logits,
# score and eval --data accepted it; generate, chat and eval --tasks refused it).
SPM=tests/fixtures/tokenizer/spm_bpe.model
sed 's/"max_position_embeddings": *[0-9]*/"max_position_embeddings": 32/' "$TINY" >"$W/short.json"
SHORT="$W/short"
i=0
while [ $i -lt 40 ]; do
    echo "In the beginning God created the heaven and the earth. And the earth was without form, and void."
    i=$((i + 1))
done >"$W/text.txt"
if ! "$G" init --config "$W/short.json" --out "$SHORT" --seed 3 >/dev/null 2>"$T/err" ||
    ! "$G" tokenize --tokenizer "$SPM" --input "$W/text.txt" --out "$W/shards" --name pos >/dev/null 2>"$T/err"; then
    fail positions_setup "init or tokenize: $(head -n 1 "$T/err")"
else
    SHARD="$W/shards/pos-00000.h5"
    cp "$SPM" "$SHORT/tokenizer.model" # a teacher records the data's tokenizer
    expect_error positions_score 1 "$OUT" "40 tokens exceed the 32 positions" \
        score --model "$SHORT" --tokens "$(seq -s, 2 41)" --out "$OUT"
    expect_error positions_eval_data 1 "" "--seq-len: sequences of 40 tokens exceed the 32 positions" \
        eval --model "$SHORT" --data "$SHARD" --seq-len 40
    expect_error positions_eval_teacher 1 "" "sequences of 40 tokens exceed the 32 positions" \
        eval --model "$MODEL" --data "$SHARD" --seq-len 40 --teacher "$SHORT"
    expect_error positions_teacher_logits 1 "$W/cache" "--seq-len: sequences of 40 tokens exceed the 32 positions" \
        teacher-logits --teacher "$SHORT" --data "$SHARD" --seq-len 40 --method topk --k 4 --out "$W/cache"
    printf 'run_dir: %s\nmodel: {config: %s}\ndata: {train: %s, seq_len: 40}\ntrain: {steps: 1}\n' \
        "$W/run" "$W/short.json" "$SHARD" >"$W/run.yaml"
    expect_error positions_train 1 "$W/run" "data.seq_len: sequences of 40 tokens exceed the 32 positions" \
        train --config "$W/run.yaml"
    printf 'run_dir: %s\nmodel: {config: %s}\ndata: {train: %s, seq_len: 40}\ntrain: {steps: 1}\nteacher: {model: %s}\n' \
        "$W/run2" "$TINY" "$SHARD" "$SHORT" >"$W/run2.yaml"
    expect_error positions_train_teacher 1 "$W/run2" "sequences of 40 tokens exceed the 32 positions" \
        train --config "$W/run2.yaml"
    expect_error positions_generate 1 "" "exceed the model's 32 positions" \
        generate --model "$SHORT" --tokens "$(seq -s, 2 30)" --max-new-tokens 5
fi

# ---------------------------------------------------------------- nothing to train on

# Chat records without a model turn: a loss mask of zeros everywhere. Training on them ran
# at loss 0; evaluating them averaged over nothing.
i=0
while [ $i -lt 40 ]; do
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"In the beginning God created the heaven, $i.\"}]}"
    i=$((i + 1))
done >"$W/user-only.jsonl"
if ! "$G" tokenize --tokenizer "$SPM" --input "$W/user-only.jsonl" --out "$W/masked" --name masked >/dev/null 2>"$T/err"; then
    fail no_targets_setup "tokenize: $(head -n 1 "$T/err")"
else
    MASKED="$W/masked/masked-00000.h5"
    printf 'run_dir: %s\nmodel: {config: %s}\ndata: {train: %s, seq_len: 16}\ntrain: {steps: 2}\n' \
        "$W/masked-run" "$TINY" "$MASKED" >"$W/masked.yaml"
    expect_error train_no_trainable_targets 1 "$W/masked-run/step-000001" "$MASKED: no trainable targets" \
        train --config "$W/masked.yaml"
    expect_error eval_no_trainable_targets 1 "" "$MASKED: no trainable targets" \
        eval --model "$MODEL" --data "$MASKED" --seq-len 16
fi

# ---------------------------------------------------------------- one line, whatever ran before

# A bad JSONL record after a first batch of 512 good ones: tokenize had printed its progress line.
i=0
while [ $i -lt 600 ]; do
    echo "{\"text\": \"In the beginning God created the heaven and the earth, $i.\"}"
    i=$((i + 1))
done >"$W/late-bad.jsonl"
echo '{"text": 5}' >>"$W/late-bad.jsonl"
# A write that fails inside HDF5 (a file size limit here, a full disk alike): its sec2 message
# spanned three lines, and HDF5's exit handler then crashed on the file it could not close.
i=0
while [ $i -lt 4000 ]; do
    echo "In the beginning God created the heaven and the earth, $i."
    i=$((i + 1))
done >"$W/big.txt"
(
    ulimit -f 64 # blocks of 512 or 1024 bytes: the shard outgrows it
    trap '' XFSZ # a write past the limit fails with EFBIG instead of killing
    exec "$G" tokenize --tokenizer "$SPM" --input "$W/big.txt" --out "$W/fsize" --name big --doc-separator "
" >"$T/out" 2>"$T/err"
)
rc=$?
check_error 1 "$W/fsize/big-00000.h5" "File too large"
left=$(ls "$W/fsize" 2>/dev/null)
[ -n "$why" ] || [ -z "$left" ] || why="left behind in $W/fsize: $left"
if [ -z "$why" ]; then pass tokenize_write_fails_in_hdf5; else fail tokenize_write_fails_in_hdf5 "$why"; fi

expect_error tokenize_progress_then_bad_record 1 "$W/late/late-00000.h5" "late-bad.jsonl:601" \
    tokenize --tokenizer "$SPM" --input "$W/late-bad.jsonl" --out "$W/late" --name late

exit $failed
