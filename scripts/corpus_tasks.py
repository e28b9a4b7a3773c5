#!/usr/bin/env python3
"""Multiple-choice tasks from the held-out part of the project corpus (val.jsonl
of scripts/corpus_documents.py; train.jsonl is never read):

  definitions.jsonl         given the head of a dictionary entry ("Turbidity, n."), pick its definition
                            among four (three from other entries of the same part of speech); 300 questions
  verse-endings.jsonl       given a KJV chapter's title, the previous verse and the first three quarters of
                            a verse's words, pick the rest of the verse among four (three verse endings from
                            other chapters); up to 500 questions
  definition-endings.jsonl  given a dictionary head and the first three quarters of its definition's words,
                            pick the rest among four (endings of other definitions of the same part of
                            speech); up to 500 questions

In the two ending tasks the distractors have 0.8 - 1.25 times the true ending's characters, and how many
are shorter than it is drawn uniformly, so that length gives nothing away (see ending_questions).

    python3 scripts/corpus_tasks.py data/corpus/val.jsonl OUT_DIR [--min-items N]

writes the three files into OUT_DIR (each through a temporary name, definition-endings.jsonl last) and
one line per file; it writes nothing and exits with status 1 when a task has fewer than N questions
(default 200). Records are {"context", "choices", "label"} (gemmakd eval --tasks); every choice starts
with a space. Each task has its own seed, so the files are the same on every run and machine; the
definitions task is the one the README's earlier tables were measured on, byte for byte. Only
standard-library Python.
"""
import argparse
import json
import os
import random
import re
import sys

HEAD = re.compile(r"^([A-Z][A-Za-z'-]+), ((?:[a-z]+\. ?)+)")
MIN_ITEMS = 200
LENGTH_RATIO = (0.8, 1.25)  # a distractor ending has this many times the true ending's characters


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


def definitions(path, limit=300):
    rng = random.Random(20261123)
    items = list(entries(path))
    by_pos = {}
    for head, pos, definition in items:
        by_pos.setdefault(pos, []).append(definition)
    out = []
    for head, pos, definition in items:
        others = [d for d in by_pos[pos] if d != definition]
        if len(others) < 3:
            continue
        choices = rng.sample(others, 3) + [definition]
        rng.shuffle(choices)
        out.append({"context": head, "choices": [" " + c for c in choices], "label": choices.index(definition)})
        if len(out) == limit:
            break
    return out


def chapters(path):
    """The KJV chapters of path: (title, [(verse number, text)]), as corpus_documents.py writes them."""
    for line in open(path, encoding="utf-8"):
        doc = json.loads(line)
        if doc.get("source") != "kjv":
            continue
        title, *lines = doc["text"].split("\n")
        verses = []
        for v in lines:
            number, _, text = v.partition(" ")
            if number.isdigit() and text.strip():
                verses.append((number, text.strip()))
        if verses:
            yield title, verses


def cut(text):
    """(the first three quarters of text's words, the rest); at least one word each side."""
    words = text.split(" ")
    k = (3 * len(words) + 2) // 4
    return " ".join(words[:k]), " ".join(words[k:])


def ending_questions(questions, rng, limit):
    """questions: [(group, kind, context, ending)]. Each becomes a record whose three distractors are
    distinct endings of other groups of the same kind with 0.8 - 1.25 times the true ending's characters.
    How many of them are shorter than the true ending is drawn uniformly from 0 - 3, so that its rank by
    length says nothing (drawn from one band around it, the true ending would mostly be neither the
    shortest nor the longest choice); a question without three shorter and three longer candidates is
    left out."""
    out = []
    for group, kind, context, ending in questions:
        n = len(ending)
        pool = list(dict.fromkeys(e for g, k, _, e in questions if g != group and k == kind and e != ending))
        shorter = [e for e in pool if LENGTH_RATIO[0] * n <= len(e) < n]
        longer = [e for e in pool if n < len(e) <= LENGTH_RATIO[1] * n]
        if len(shorter) < 3 or len(longer) < 3:
            continue
        below = rng.randrange(4)
        choices = rng.sample(shorter, below) + rng.sample(longer, 3 - below) + [ending]
        rng.shuffle(choices)
        out.append({"context": context, "choices": [" " + c for c in choices], "label": choices.index(ending)})
        if len(out) == limit:
            break
    return out


def verse_endings(path, limit=500):
    """Verses of at least 8 words; the context is in the corpus's layout (title, "N text" lines)."""
    questions = []
    for c, (title, verses) in enumerate(chapters(path)):
        for k, (number, text) in enumerate(verses):
            if len(text.split(" ")) < 8:
                continue
            start, ending = cut(text)
            before = "".join(f"{n} {t}\n" for n, t in verses[max(0, k - 1):k])
            questions.append((c, None, f"{title}\n{before}{number} {start}", ending))
    return ending_questions(questions, random.Random(20261207), limit)


def definition_endings(path, limit=500):
    """The definitions task's entries with at least 4 words; distractors of the same part of speech."""
    questions = []
    for i, (head, pos, definition) in enumerate(entries(path)):
        if len(definition.split(" ")) >= 4:
            start, ending = cut(definition)
            questions.append((i, pos, f"{head} {start}", ending))
    return ending_questions(questions, random.Random(20261208), limit)


TASKS = (("definitions", definitions), ("verse-endings", verse_endings), ("definition-endings", definition_endings))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("val", help="the corpus's val.jsonl")
    ap.add_argument("out_dir")
    ap.add_argument("--min-items", type=int, default=MIN_ITEMS, help="fail when a task has fewer questions")
    a = ap.parse_args()
    built = [(name, build(a.val)) for name, build in TASKS]
    short = [f"{name} has {len(records)}" for name, records in built if len(records) < a.min_items]
    if short:
        sys.exit(f"corpus_tasks.py: {a.val} is too small: {', '.join(short)} questions (--min-items {a.min_items})")
    os.makedirs(a.out_dir, exist_ok=True)
    for name, records in built:
        path = os.path.join(a.out_dir, name + ".jsonl")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        os.replace(path + ".tmp", path)
        print(f"{path}: {len(records)} questions")


if __name__ == "__main__":
    main()
