#!/usr/bin/env python3
"""Encoding throughput of the reference libraries, to compare with `gemmakd encode --bench`.

The text (default tests/fixtures/tokenizer/mixed.txt) is read as bytes.decode("utf-8",
"replace") and split into documents at blank lines ("\\n\\n"), as `gemmakd encode --bench`
splits it. MB/s counts the UTF-8 bytes of the documents. For each thread count (RAYON_NUM_THREADS
is set before tokenizers is imported, so each runs in its own process):

  tokenizer.json (tokenizers):  single   one encode() of the whole text
                                loop     encode() of each document in turn
                                batch    encode_batch(documents)
  tokenizer.model (sentencepiece):  loop / batch (encode(list, num_threads=T))

Usage: python3 scripts/reference/tokenizer_bench.py [--tokenizer FILE] [--text FILE] [--rounds N]
The matching C numbers:
  ./gemmakd encode --tokenizer FILE --text-file TEXT --bench N --threads T                    (documents)
  ./gemmakd encode --tokenizer FILE --text-file TEXT --bench N --threads 1 --bench-separator ''  (single text)
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def worker(args):
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    with open(args.text, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    docs = text.split("\n\n")
    doc_mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    text_mb = len(text.encode("utf-8")) / 1e6
    results = []

    def timed(name, mb, fn):
        fn()  # warm up
        t0 = time.perf_counter()
        for _ in range(args.rounds):
            fn()
        s = time.perf_counter() - t0
        results.append((name, mb * args.rounds / s))

    if args.tokenizer.endswith(".json"):
        from tokenizers import Tokenizer  # after RAYON_NUM_THREADS is set
        tok = Tokenizer.from_file(args.tokenizer)
        timed("single", text_mb, lambda: tok.encode(text, add_special_tokens=False))
        timed("loop", doc_mb, lambda: [tok.encode(d, add_special_tokens=False) for d in docs])
        timed("batch", doc_mb, lambda: tok.encode_batch(docs, add_special_tokens=False))
    else:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
        timed("loop", doc_mb, lambda: [sp.encode(d) for d in docs])
        timed("batch", doc_mb, lambda: sp.encode(docs, num_threads=args.threads))
    for name, mbs in results:
        print("%s\t%d\t%.2f" % (name, args.threads, mbs))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokenizer", default=os.path.join(ROOT, "..", "shared", "data", "tokenizers", "gemma3", "tokenizer.json"))
    p.add_argument("--text", default=os.path.join(ROOT, "tests", "fixtures", "tokenizer", "mixed.txt"))
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="(internal) run one thread count")
    args = p.parse_args()
    if args.threads:
        return worker(args)
    print("tokenizer: %s\ntext: %s\n\nmode\tthreads\tMB/s" % (args.tokenizer, args.text))
    for threads in (1, 2):
        out = subprocess.run([sys.executable, __file__, "--tokenizer", args.tokenizer, "--text", args.text,
                              "--rounds", str(args.rounds), "--threads", str(threads)],
                             capture_output=True, text=True, check=True).stdout
        sys.stdout.write(out)


if __name__ == "__main__":
    main()
