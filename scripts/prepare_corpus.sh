#!/bin/sh
# Builds the project corpus in data/corpus/ from Debian packages only:
#   train.jsonl / val.jsonl   KJV chapters, GCIDE entries and fortunes (split by document)
#   tokenizer.model           an 8192-piece BPE tokenizer trained with spm_train, Gemma-like:
#                             byte fallback, split digits, no dummy prefix, pad 0 / eos 1 / bos 2 / unk 3,
#                             <start_of_turn> and <end_of_turn> as user-defined symbols
#   train-*.h5 / val-*.h5     token shards written by `gemmakd tokenize` (1.25M tokens each; the demo's
#                             students train on train-00000.h5, its teacher on all of them)
# Reruns skip the steps whose outputs exist; FORCE=1 rebuilds everything.
set -e
cd "$(dirname "$0")/.."
out=data/corpus
./scripts/install-deps.sh corpus
[ "${FORCE:-0}" = 1 ] && rm -rf "$out"
mkdir -p "$out"

if [ ! -f "$out/val.jsonl" ]; then
    echo "== documents"
    python3 scripts/corpus_documents.py "$out"
fi

if [ ! -f "$out/tokenizer.model" ]; then
    echo "== tokenizer (spm_train, about 30 s)"
    spm_train --input="$out/spm_input.txt" --model_prefix="$out/tokenizer.tmp" --vocab_size=8192 \
        --model_type=bpe --byte_fallback=true --split_digits=true --add_dummy_prefix=false \
        --remove_extra_whitespaces=false --normalization_rule_name=identity --allow_whitespace_only_pieces=true \
        --pad_id=0 --eos_id=1 --bos_id=2 --unk_id=3 --pad_piece='<pad>' --eos_piece='<eos>' --bos_piece='<bos>' \
        --unk_piece='<unk>' --user_defined_symbols='<start_of_turn>,<end_of_turn>' --character_coverage=0.9999 \
        --input_sentence_size=300000 --shuffle_input_sentence=true --seed_sentencepiece_size=1000000 \
        --max_sentence_length=16384 --num_threads="$(nproc)" > "$out/spm_train.log" 2>&1
    mv "$out/tokenizer.tmp.model" "$out/tokenizer.model"
    mv "$out/tokenizer.tmp.vocab" "$out/tokenizer.vocab"
fi

[ -x ./gemmakd ] || make -s gemmakd
for split in train val; do
    if ! ls "$out/$split"-*.h5 > /dev/null 2>&1; then
        echo "== tokenize $split"
        ./gemmakd tokenize --tokenizer "$out/tokenizer.model" --input "$out/$split.jsonl" --out "$out" --name "$split" \
            --shard-tokens 1250000
    fi
done
echo "corpus in $out/"
