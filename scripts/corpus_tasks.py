#!/usr/bin/env python3
"""A multiple-choice task from the held-out dictionary entries of the project
corpus: given the head of an entry ("Turbidity, n."), pick its definition
among four (three taken from other entries of the same part of speech).

    python3 scripts/corpus_tasks.py data/corpus/val.jsonl > definitions.jsonl

Records are {"context", "choices", "label"} (gemmakd eval --tasks). Seeded and
deterministic; only standard-library Python.
"""
import json
import random
import re
import sys

HEAD = re.compile(r"^([A-Z][A-Za-z'-]+), ((?:[a-z]+\. ?)+)")


def entries(path):
    for line in open(path, encoding="utf-8"):
        text = json.loads(line)["text"]
        m = HEAD.match(text)
        if not m:
            continue
        rest = text[m.end():]
        rest = re.sub(r"^\s*\[[^\]]*\]\s*", "", rest)  # the etymology
        rest = re.sub(r"^\s*\([^)]*\)\s*", "", rest)  # a field label such as (Bot.)
        definition = re.split(r"(?<=[.;])\s", rest.strip(), maxsplit=1)[0].strip().rstrip(";")
        if 12 <= len(definition) <= 90 and "--" not in definition:
            yield m.group(0).strip(), m.group(2).strip(), definition


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "data/corpus/val.jsonl"
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    rng = random.Random(20261123)
    items = list(entries(path))
    by_pos = {}
    for head, pos, definition in items:
        by_pos.setdefault(pos, []).append(definition)
    out = 0
    for head, pos, definition in items:
        others = [d for d in by_pos[pos] if d != definition]
        if len(others) < 3:
            continue
        choices = rng.sample(others, 3) + [definition]
        rng.shuffle(choices)
        record = {"context": head, "choices": [" " + c for c in choices], "label": choices.index(definition)}
        print(json.dumps(record, ensure_ascii=False))
        out += 1
        if out == limit:
            break


if __name__ == "__main__":
    main()
