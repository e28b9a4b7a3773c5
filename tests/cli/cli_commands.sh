#!/bin/sh
# Commands that succeed: parameter counts of the published Gemma 2 configs,
# deterministic init, bf16 and sharded checkpoints, and score's input forms.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_commands.sh
. "$(dirname "$0")/lib/common.sh"
TINY=configs/models/tiny.json

last_error() { head -n 1 "$T/err"; }

# ---------------------------------------------------------------- info

# Non-embedding parameters from the Gemma 2 paper, Table 2.
for case in "2b 2024517888 2,024,517,888" "9b 8324201984 8,324,201,984" "27b 26047480320 26,047,480,320"; do
    # shellcheck disable=SC2086 # split into size, plain and grouped on purpose
    set -- $case
    size=$1 plain=$2 grouped=$3
    name="info_json_params_$size"
    gk info --config "configs/models/gemma2-$size.json" --json
    st=$?
    if [ $st -ne 0 ]; then
        fail "$name" "exit status $st: $(last_error)"
    else
        got=$(sed -n 's/.*"params_non_embedding": *\([0-9][0-9]*\).*/\1/p' "$T/out")
        if [ "$got" = "$plain" ]; then pass "$name"; else fail "$name" "params_non_embedding '$got', expected $plain"; fi
    fi
    name="info_text_params_$size"
    gk info --config "configs/models/gemma2-$size.json"
    st=$?
    if [ $st -ne 0 ]; then
        fail "$name" "exit status $st: $(last_error)"
    elif grep -q "non-embedding.* $grouped\$" "$T/out"; then
        pass "$name"
    else
        fail "$name" "no 'non-embedding ... $grouped' line in: $(tr '\n' '|' <"$T/out" | cut -c 1-400)"
    fi
done

# ---------------------------------------------------------------- init

# make_model NAME ARGS...: init into $T/NAME; prints a FAIL line and returns 1 on failure.
make_model() {
    dir="$T/$1"
    shift
    if ! gk init --config "$TINY" --out "$dir" "$@"; then
        fail "${case_name:-init}" "init $* failed: $(last_error)"
        return 1
    fi
}

case_name=init_same_seed_same_bytes
if make_model seed7a --seed 7 && make_model seed7b --seed 7; then
    if cmp -s "$T/seed7a/model.safetensors" "$T/seed7b/model.safetensors" &&
        cmp -s "$T/seed7a/config.json" "$T/seed7b/config.json"; then
        pass $case_name
    else
        fail $case_name "two runs with --seed 7 differ"
    fi
fi

case_name=init_other_seed_other_bytes
if [ -f "$T/seed7a/model.safetensors" ] && make_model seed8 --seed 8; then
    if cmp -s "$T/seed7a/model.safetensors" "$T/seed8/model.safetensors"; then
        fail $case_name "--seed 7 and --seed 8 give the same weights"
    else
        pass $case_name
    fi
fi

case_name=init_bfloat16_half_size
if [ -f "$T/seed7a/model.safetensors" ] && make_model bf16 --seed 7 --dtype bfloat16; then
    f32=$(wc -c <"$T/seed7a/model.safetensors")
    bf16=$(wc -c <"$T/bf16/model.safetensors")
    # The weights take half the bytes; the JSON header adds a little to both.
    if [ $((100 * bf16)) -ge $((48 * f32)) ] && [ $((100 * bf16)) -le $((52 * f32)) ]; then
        pass $case_name
    else
        fail $case_name "bfloat16 file has $bf16 bytes, float32 $f32 (expected about half)"
    fi
fi

case_name=init_sharded
if make_model sharded --seed 7 --max-shard-size 1MB; then
    why=
    shards=$(cd "$T/sharded" && ls model-*.safetensors 2>/dev/null)
    n=$(echo "$shards" | grep -c .)
    if [ ! -f "$T/sharded/model.safetensors.index.json" ]; then
        why="no model.safetensors.index.json"
    elif [ -e "$T/sharded/model.safetensors" ]; then
        why="model.safetensors written next to the shards"
    elif [ "$n" -lt 2 ]; then
        why="$n shard files: $(echo "$shards" | tr '\n' ' ')"
    else
        i=0
        for s in $shards; do
            i=$((i + 1))
            want=$(printf 'model-%05d-of-%05d.safetensors' "$i" "$n")
            [ "$s" = "$want" ] || why="shard $i is named $s, expected $want"
        done
        # Every shard is referenced by the index and every referenced file exists.
        listed=$(grep -o 'model-[0-9]*-of-[0-9]*\.safetensors' "$T/sharded/model.safetensors.index.json" | sort -u)
        [ -n "$why" ] || [ "$listed" = "$shards" ] || why="index lists [$(echo "$listed" | tr '\n' ' ')], directory has [$(echo "$shards" | tr '\n' ' ')]"
    fi
    if [ -z "$why" ]; then pass $case_name; else fail $case_name "$why"; fi
fi

# ---------------------------------------------------------------- score

IDS=2,651,10,4000,7,8191,0,1,2,300,301,302,5,5,5,17
score_to() { # score_to OUT MODEL ARGS...
    out=$1 model=$2
    shift 2
    gk score --model "$model" --out "$out" --logprobs "$@"
}

case_name=score_sharded_matches_single_file
if [ -f "$T/seed7a/model.safetensors" ] && [ -f "$T/sharded/model.safetensors.index.json" ]; then
    if ! score_to "$T/single.st" "$T/seed7a" --tokens $IDS; then
        fail $case_name "score on the single-file model: $(last_error)"
    elif ! score_to "$T/sharded.st" "$T/sharded" --tokens $IDS; then
        fail $case_name "score on the sharded model: $(last_error)"
    elif cmp -s "$T/single.st" "$T/sharded.st"; then
        pass $case_name
    else
        fail $case_name "outputs differ"
    fi
else
    fail $case_name "models from init are missing"
fi

case_name=score_tokens_file_matches_tokens
if [ -f "$T/single.st" ]; then
    echo "[$(echo $IDS | sed 's/,/, /g')]" >"$T/ids.json"
    echo $IDS | tr ',' '\n' >"$T/ids.txt"
    if ! score_to "$T/from-json.st" "$T/seed7a" --tokens-file "$T/ids.json"; then
        fail $case_name "--tokens-file with a JSON array: $(last_error)"
    elif ! score_to "$T/from-lines.st" "$T/seed7a" --tokens-file "$T/ids.txt"; then
        fail $case_name "--tokens-file with one id per line: $(last_error)"
    elif ! cmp -s "$T/single.st" "$T/from-json.st"; then
        fail $case_name "JSON array file gives other bytes than --tokens"
    elif ! cmp -s "$T/single.st" "$T/from-lines.st"; then
        fail $case_name "one-id-per-line file gives other bytes than --tokens"
    else
        pass $case_name
    fi
else
    fail $case_name "no reference output from score"
fi

# ---------------------------------------------------------------- help

case_name=help_score
gk help score
st=$?
if [ $st -ne 0 ]; then
    fail $case_name "exit status $st: $(last_error)"
elif grep -q -- '--sliding-window' "$T/out"; then
    pass $case_name
else
    fail $case_name "help score does not list --sliding-window"
fi

exit $failed
