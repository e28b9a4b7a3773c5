#!/bin/sh
# encode / decode on the command line: ids match the fixture's reference ids
# (from the sentencepiece library), round trips, and bad input is one error line.
. "$(dirname "$0")/lib/common.sh"
TOK=tests/fixtures/tokenizer/spm_bpe.model

# Reference ids from the sentencepiece library, as recorded in
# tests/fixtures/tokenizer/spm_cases.json by scripts/reference/tokenizer_fixtures.py.
got=$("$G" encode --tokenizer "$TOK" --text "Hello this is a test")
want='[7462, 7923, 466, 323, 264, 1536]'
if [ "$got" = "$want" ]; then pass ids_match_sentencepiece; else fail ids_match_sentencepiece "got $got, want $want"; fi

text='Verse 3:16, "quoted" — ünïcödé and	tabs  spaces
new line <start_of_turn>user'
printf '%s' "$text" > "$T/in.txt"
ids=$("$G" encode --tokenizer "$TOK" --text-file "$T/in.txt") || fail round_trip "encode failed"
back=$("$G" decode --tokenizer "$TOK" --ids "$ids")
if [ "$back" = "$text" ]; then pass round_trip; else fail round_trip "decoded to: $back"; fi

bos=$("$G" encode --tokenizer "$TOK" --text "x" --add-bos)
case "$bos" in "[2,"*|"[2, "*) pass add_bos ;; *) fail add_bos "got $bos" ;; esac

expect_error() { # name status command...
    name=$1 want=$2
    shift 2
    "$@" > "$T/out" 2> "$T/err"
    rc=$?
    lines=$(wc -l < "$T/err")
    if [ "$rc" -ne "$want" ]; then fail "$name" "exit $rc, expected $want"
    elif [ "$lines" -ne 1 ] || ! grep -q '^gemmakd: error: ' "$T/err"; then fail "$name" "stderr: $(cat "$T/err")"
    else pass "$name"; fi
}
printf 'not a tokenizer' > "$T/bad.model"
expect_error missing_tokenizer 1 "$G" encode --tokenizer "$T/none.json" --text x
expect_error garbage_tokenizer 1 "$G" encode --tokenizer "$T/bad.model" --text x
expect_error no_text 2 "$G" encode --tokenizer "$TOK"
expect_error both_texts 2 "$G" encode --tokenizer "$TOK" --text x --text-file "$T/in.txt"
expect_error id_outside_vocab 1 "$G" decode --tokenizer "$TOK" --ids 99999999
expect_error bad_ids 2 "$G" decode --tokenizer "$TOK" --ids 1,x,3
exit $failed
