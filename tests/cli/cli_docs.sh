#!/bin/sh
# What the README says about files gemmakd writes, checked against files it writes.
# Run from the repository root: GEMMAKD=build/gemmakd sh tests/cli/cli_docs.sh
. "$(dirname "$0")/lib/common.sh"

# The checkpoint manifest holds each file's size and a 64-bit checksum (common/checksum.h:
# not a cryptographic hash); the README said "a manifest of sha256 sums".
name=checkpoint_manifest_as_documented
i=0
while [ $i -lt 60 ]; do
    echo "In the beginning God created the heaven and the earth, $i."
    i=$((i + 1))
done >"$T/text.txt"
printf 'run_dir: %s\nmodel: {config: configs/models/tiny.json}\ndata: {train: %s, seq_len: 16}\ntrain: {steps: 1}\n' \
    "$T/run" "$T/shards/doc-00000.h5" >"$T/run.yaml"
if ! "$G" tokenize --tokenizer tests/fixtures/tokenizer/spm_bpe.model --input "$T/text.txt" --out "$T/shards" \
    --name doc >/dev/null 2>"$T/err" || ! "$G" train --config "$T/run.yaml" >/dev/null 2>"$T/err"; then
    fail $name "tokenize or train: $(tail -n 1 "$T/err")"
else
    manifest="$T/run/step-000001/manifest.json"
    sums=$(grep -o '"checksum": "[0-9a-f]*"' "$manifest" | sed 's/.*: "\(.*\)"/\1/')
    bullet=$(sed -n '/^- \*\*Checkpoints\*\*/,/^- \*\*/p' README.md)
    why=
    [ -n "$sums" ] || why="no checksums in $manifest"
    for s in $sums; do
        [ ${#s} -eq 16 ] || why="checksum '$s' in $manifest is not 16 hex digits (64 bits)"
    done
    case "$bullet" in
    *sha256*) why="the README's Checkpoints paragraph says sha256: $(echo "$bullet" | tr '\n' ' ' | cut -c 1-300)" ;;
    *"64-bit checksum"*) ;;
    *) why="the README's Checkpoints paragraph does not name the manifest's 64-bit checksums" ;;
    esac
    if [ -z "$why" ]; then pass $name; else fail $name "$why"; fi
fi

exit $failed
