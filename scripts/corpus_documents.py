#!/usr/bin/env python3
"""Extracts the project corpus from three Debian packages as JSONL documents.

  King James Bible (bible-kjv)   one document per chapter: "Genesis 1" then one verse per line
  GCIDE dictionary (dict-gcide)  one document per entry, markup cleaned to plain text
  fortune files (fortunes)       one document per fortune

Each document goes to train.jsonl or val.jsonl ({"text", "source", "id"}); the
split is by document, from a hash of its id (about 2% validation), so it is the
same on every machine. Both files list their documents in an order shuffled by
a fixed seed, so any contiguous part of them (a token shard) mixes the sources. Also writes spm_input.txt (training text, one line per
line of the documents) for spm_train. Standard library only.
    python3 scripts/corpus_documents.py OUT_DIR
"""
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import unicodedata

VAL_PERCENT = 2
FORTUNE_DIR = "/usr/share/games/fortunes"
GCIDE_INDEX = "/usr/share/dictd/gcide.index"
GCIDE_DICT = "/usr/share/dictd/gcide.dict.dz"


def bible_chapters():
    """Chapters of `bible -l0 gen1-rev22`: a "Book N" line, then "  V text" verse lines."""
    text = subprocess.run(["bible", "-l0", "gen1-rev22"], check=True, capture_output=True, text=True).stdout
    title, verses = None, []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m and title:
            verses.append(f"{m.group(1)} {m.group(2).strip()}")
        elif not line.startswith(" "):
            if title and verses:
                yield title, title + "\n" + "\n".join(verses)
            title, verses = line.strip(), []
        elif verses:  # a verse continued on the next line
            verses[-1] += " " + line.strip()
    if title and verses:
        yield title, title + "\n" + "\n".join(verses)


# GCIDE writes accented letters as [mark letter] or [letter mark], e.g. ['e] = é, [u^] = ŭ.
GCIDE_MARKS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304", ",": "\u0327"}
GCIDE_LIGATURES = {"ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "root": "√", "deg": "°", "sec": "″", "min": "′",
                   "frac12": "½", "frac14": "¼", "frac34": "¾", "pound": "£", "cre": "˘", "eth": "ð", "thorn": "þ",
                   "=oo": "o͞o", "oo": "o͝o"}
# ... and [imac] = ī, [aum] = ä, [.a] = ȧ, [-e] = ē.
GCIDE_SUFFIX_MARKS = {"mac": "\u0304", "um": "\u0308", "uml": "\u0308", "acute": "\u0301", "grave": "\u0300"}
GCIDE_PREFIX_MARKS = {".": "\u0307", "-": "\u0304"}


def gcide_char(m):
    code = m.group(1)
    if code in GCIDE_LIGATURES:
        return GCIDE_LIGATURES[code]
    if len(code) == 2 and code[0] in GCIDE_MARKS and code[1].isalpha():
        return unicodedata.normalize("NFC", code[1] + GCIDE_MARKS[code[0]])
    if len(code) == 2 and code[1] == "^" and code[0].isalpha():  # breve
        return unicodedata.normalize("NFC", code[0] + "\u0306")
    if len(code) == 2 and code[0] in GCIDE_PREFIX_MARKS and code[1].isalpha():
        return unicodedata.normalize("NFC", code[1] + GCIDE_PREFIX_MARKS[code[0]])
    for suffix, mark in GCIDE_SUFFIX_MARKS.items():
        if len(code) == len(suffix) + 1 and code.endswith(suffix) and code[0].isalpha():
            return unicodedata.normalize("NFC", code[0] + mark)
    return m.group(0)


def clean_gcide(entry):
    entry = re.sub(r"\\([^\\\n]*)\\", "", entry)               # pronunciations \Ap"ple\
    entry = re.sub(r"\[([^\[\]\s]{1,6})\]", gcide_char, entry)  # accent codes
    entry = entry.replace("{", "").replace("}", "")            # cross-reference braces
    paragraphs = []
    for para in re.split(r"\n\s*\n", entry):
        lines = [l.strip() for l in para.splitlines()]
        lines = [l for l in lines if l and not re.fullmatch(r"\[[^\]]*\]", l)]  # [1913 Webster] and the like
        if lines:
            paragraphs.append(re.sub(r"\s+", " ", " ".join(lines)).replace(" ,", ","))
    return "\n".join(paragraphs)


def gcide_entries():
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def number(s):
        v = 0
        for c in s:
            v = v * 64 + alphabet.index(c)
        return v

    data = gzip.open(GCIDE_DICT).read()
    seen = set()
    with open(GCIDE_INDEX, encoding="utf-8") as f:
        for line in f:
            word, off, length = line.rstrip("\n").split("\t")
            span = (number(off), number(length))
            if word.startswith("00-database") or span in seen:
                continue  # one entry often has several headwords
            seen.add(span)
            text = clean_gcide(data[span[0]:span[0] + span[1]].decode("utf-8", errors="replace"))
            if text and "00-database" not in text and "Collaborative International Dictionary" not in text:
                yield f"{span[0]}", text


def fortunes():
    for name in sorted(os.listdir(FORTUNE_DIR)):
        path = os.path.join(FORTUNE_DIR, name)
        if "." in name or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            pieces = re.split(r"^%\s*$", f.read(), flags=re.M)
        for k, piece in enumerate(pieces):
            text = "\n".join(l.rstrip() for l in piece.strip("\n").splitlines()).strip("\n")
            if text.strip():
                yield f"{name}/{k}", text


def is_validation(doc_id):
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) % 100 < VAL_PERCENT


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    stats, records = {}, {"train": [], "val": []}
    for source, docs in (("kjv", bible_chapters()), ("gcide", gcide_entries()), ("fortunes", fortunes())):
        for doc_id, text in docs:
            full_id = f"{source}:{doc_id}"
            split = "val" if is_validation(full_id) else "train"
            records[split].append((source, full_id, text))
            key = (source, split)
            docs_n, bytes_n = stats.get(key, (0, 0))
            stats[key] = (docs_n + 1, bytes_n + len(text.encode("utf-8")))
    spm = open(os.path.join(out, "spm_input.txt.tmp"), "w", encoding="utf-8")
    for split, docs in records.items():
        random.Random(1234).shuffle(docs)  # every shard a mix of the three sources
        with open(os.path.join(out, f"{split}.jsonl.tmp"), "w", encoding="utf-8") as f:
            for source, full_id, text in docs:
                f.write(json.dumps({"text": text, "source": source, "id": full_id}, ensure_ascii=False) + "\n")
                if split == "train":
                    spm.write("\n".join(l for l in text.splitlines() if l.strip()) + "\n")
    spm.close()
    for name in ("train.jsonl", "val.jsonl", "spm_input.txt"):
        os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
    for (source, split), (n, b) in sorted(stats.items()):
        print(f"{source:9s} {split:5s} {n:7d} documents {b / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
