#!/usr/bin/env python3
"""A small multiple-choice task for the smoke profile of the ablation sweep (configs/ablations/
common.yaml): from a text file, a line of prose as the context and four candidate next lines,
the true one among three drawn from elsewhere. Tiny smoke models score at chance on it; it is
there so that the sweep's task columns are filled by real evaluations. The cpu profile uses the
corpus tasks (scripts/corpus_tasks.py). Seeded; standard library only.

    python3 scripts/smoke_tasks.py TEXT OUT.jsonl [N]
"""
import json
import os
import random
import sys


def main():
    text, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    with open(text, encoding="utf-8", errors="replace") as f:
        lines = [l.strip() for l in f]
    # consecutive lines of plain prose, 20 to 120 characters each
    prose = [i for i in range(len(lines) - 1)
             if all(20 <= len(l) <= 120 and l.isascii() and l.count(" ") >= 3 for l in lines[i:i + 2])]
    rng = random.Random(20261206)
    items = rng.sample(prose, min(n, len(prose)))
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        for i in items:
            wrong = rng.sample([lines[j + 1] for j in prose if lines[j + 1] != lines[i + 1]], 3)
            label = rng.randrange(4)
            choices = wrong[:label] + [lines[i + 1]] + wrong[label:]
            f.write(json.dumps({"context": lines[i] + "\n", "choices": choices, "label": label}) + "\n")
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
