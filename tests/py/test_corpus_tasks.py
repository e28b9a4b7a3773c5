#!/usr/bin/env python3
"""scripts/corpus_tasks.py builds its multiple-choice tasks from val.jsonl alone,
correctly and reproducibly. The test writes a small synthetic corpus (KJV
chapters, dictionary entries and fortunes in val.jsonl; text found nowhere
else in train.jsonl beside it), runs the script twice and checks every record
against the synthetic source it knows: the labelled choice is the true answer
(context + choice rebuilds the source text, or the head's own definition), the
others are not and come from where they must (other chapters; the same part of
speech; 0.8 - 1.25 times the true ending's characters), choices are distinct,
labels are spread over the four positions, in the two ending tasks the true
ending is the shortest, second, third or longest choice about equally often
(so that length gives nothing away), the two runs are byte-identical,
the definitions task is byte-identical to what scripts/definition_task.py
wrote before it became corpus_tasks.py, no train.jsonl text appears, and a
corpus too small for --min-items fails and writes nothing.

    python3 tests/py/test_corpus_tasks.py   (from the repository root; one PASS/FAIL line per case)
"""
import hashlib
import json
import os
import subprocess
import sys

from cases import run_cases

PROGRAM = "test_corpus_tasks"
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "corpus_tasks.py")
TASKS = ("definitions", "verse-endings", "definition-endings")
# sha256 of definitions.jsonl for this test's val.jsonl as scripts/definition_task.py (commit 0fcfefd)
# printed it: the definitions task must not change, so that earlier numbers stay comparable.
DEFINITIONS_SHA256 = "26d39cbe2da5f2f286a9bf65d0c602e720f634718da752f8041d2cef90de6eb0"

NAMES = ["Aram", "Boaz", "Caleb", "Dathan", "Eber", "Gaham", "Heber", "Ithai", "Jokim", "Kenaz", "Laban", "Mahli",
         "Nahor", "Obal", "Pallu"]
PLACES = ["gate", "field", "river", "mountain", "valley", "house", "city", "well", "tent", "vineyard", "wilderness",
          "altar", "camp", "court", "tower"]
THINGS = ["bread", "oil", "silver", "cattle", "wine", "sheep", "gold", "corn", "linen", "cedar", "brass", "salt",
          "honey", "stones", "figs"]
BOOKS = ["Hezron", "Zimran", "Pethor", "Ramoth", "Tekoa", "Elkosh", "Gilgal", "Shiloh"]


def bible():
    """{title: [verse text]}: eight chapters of twelve verses of 15 words, whose last quarters vary in length."""
    chapters = {}
    for b, book in enumerate(BOOKS):
        verses = []
        for v in range(12):
            i = 12 * b + v
            name, place, thing = NAMES[i % 15], PLACES[(i * 7 + b) % 15], THINGS[(i * 4 + 2 * b) % 15]
            name2, place2, thing2 = NAMES[(i * 11 + 3) % 15], PLACES[(i * 2 + 5) % 15], THINGS[(i * 13 + 1) % 15]
            if v % 3 == 0:
                verses.append(f"And {name} went up to the {place} of {book}, and brought {thing} unto the {place2}.")
            elif v % 3 == 1:
                verses.append(f"Then said {name} unto the people, Bring ye the {thing} unto the {place} of {name2}.")
            else:
                verses.append(f"And they gave {thing} to {name} at the {place} of {book} and {thing2} to {name2}.")
        chapters[f"{book} {b + 1}"] = verses
    return chapters


ADJ_DEFS = ["Of or like a {}", "Having the form of a {}", "Made of the {}", "Pertaining to a {}", "Full of the {}"]
NOUN_DEFS = ["A kind of {}", "The keeper of a {}", "One who makes a {}", "A place for the {}",
             "The act of mending a {}"]
VERB_DEFS = ["To make into a {}", "To cover with a {}", "To strike with a {}"]
# five words of each length from 4 to 8 letters, word k of length 4 + k % 5: the definitions end in them
WORDS = [w for five in zip(["reed", "lamp", "horn", "rope", "vine"], ["stone", "river", "horse", "cloud", "tower"],
                           ["bridle", "temple", "barley", "fabric", "cinder"],
                           ["lantern", "thimble", "chariot", "harness", "granary"],
                           ["mulberry", "sycamore", "pavilion", "trumpets", "garrison"]) for w in five]
LABELS = ["", "(Bot.) ", "(Zool.) ", ""]


def dictionary():
    """[(head, part of speech, definition)]: 25 nouns, 25 adjectives and 6 verbs, each definition the first
    sentence of its entry (as the script reads it: etymology and field label skipped)."""
    out = []
    for k in range(25):
        out.append((f"Nounword{chr(97 + k)}", "n.", NOUN_DEFS[k % 5].format(WORDS[k])))
        out.append((f"Adjword{chr(97 + k)}", "a.", ADJ_DEFS[k % 5].format(WORDS[(k * 7) % 25])))
    for k in range(6):
        out.append((f"Verbword{chr(97 + k)}", "v. t.", VERB_DEFS[k % 3].format(WORDS[(k * 3) % 25])))
    return out


def write_corpus(work):
    """val.jsonl with the bible, the dictionary and two fortunes, documents interleaved; train.jsonl
    with a chapter and entries whose words (TRAINONLY, Zebulonite...) appear in no val document."""
    docs = []
    for title, verses in bible().items():
        text = title + "\n" + "\n".join(f"{n + 1} {v}" for n, v in enumerate(verses))
        docs.append({"text": text, "source": "kjv", "id": f"kjv:{title}"})
    for k, (head, pos, definition) in enumerate(dictionary()):
        etym = f"[L. {head.lower()}us.] " if k % 3 == 0 else ""
        text = f"{head}, {pos} {etym}{LABELS[k % 4]}{definition}; also, a second sense. --Author.\nA quotation."
        docs.append({"text": text, "source": "gcide", "id": f"gcide:{k}"})
    docs += [{"text": "A fortune of the validation split.\n\t\t-- Someone", "source": "fortunes", "id": "f:1"},
             {"text": "Another fortune, longer, with several words in it.", "source": "fortunes", "id": "f:2"}]
    order = sorted(range(len(docs)), key=lambda i: (i * 7919) % len(docs))
    train = [{"text": "Zebulonite 1\n" + "\n".join(f"{n} TRAINONLY Zebulonite verse {n} of the chapter that only "
                                                   f"training has, with enough words." for n in range(1, 13)),
              "source": "kjv", "id": "kjv:Zebulonite 1"}]
    train += [{"text": f"Trainonly{c}, n. A TRAINONLY thing of the Zebulonite kind {c}; also another.",
               "source": "gcide", "id": f"gcide:t{c}"} for c in "abcdefgh"]
    for name, rows in (("val.jsonl", [docs[i] for i in order]), ("train.jsonl", train)):
        with open(os.path.join(work, name), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return os.path.join(work, "val.jsonl")


def run(val, out, *extra):
    return subprocess.run([sys.executable, SCRIPT, val, out, *extra], capture_output=True, text=True)


def build(work, name="out"):
    val = write_corpus(work)
    out = os.path.join(work, name)
    p = run(val, out, "--min-items", "1")
    assert p.returncode == 0, f"corpus_tasks.py exited with {p.returncode}: {p.stderr.strip()}"
    tasks = {}
    for t in TASKS:
        with open(os.path.join(out, t + ".jsonl"), encoding="utf-8") as f:
            tasks[t] = [json.loads(line) for line in f]
    return out, tasks


def check_records(name, records, want_min):
    assert len(records) >= want_min, f"{name}: {len(records)} questions, expected at least {want_min}"
    for i, r in enumerate(records):
        assert sorted(r) == ["choices", "context", "label"], f"{name} record {i}: keys {sorted(r)}"
        assert len(r["choices"]) == 4, f"{name} record {i}: {len(r['choices'])} choices"
        assert len(set(r["choices"])) == 4, f"{name} record {i}: repeated choices {r['choices']}"
        assert all(c.startswith(" ") and c.strip() for c in r["choices"]), f"{name} record {i}: {r['choices']}"
        assert isinstance(r["label"], int) and 0 <= r["label"] < 4, f"{name} record {i}: label {r['label']!r}"
    counts = [sum(r["label"] == k for r in records) for k in range(4)]
    assert min(counts) > 0, f"{name}: the answer is at positions 0-3 this many times: {counts}"


def labels_point_at_the_true_answer(work):
    _, tasks = build(work)
    defs = {f"{h}, {p}": (p, d) for h, p, d in dictionary()}
    # definitions: the head's own definition; the others, definitions of other heads of the same part of speech
    check_records("definitions", tasks["definitions"], 50)
    for r in tasks["definitions"]:
        pos, definition = defs[r["context"]]
        assert r["choices"][r["label"]] == " " + definition, f"definitions: {r['context']!r} labelled {r}"
        same_pos = {d for h, (p, d) in defs.items() if p == pos and h != r["context"]}
        wrong = [c for k, c in enumerate(r["choices"]) if k != r["label"] and c[1:] not in same_pos]
        assert not wrong, f"definitions: {r['context']!r}: {wrong} are not other {pos} definitions"

    # verse endings: context + the labelled choice is the chapter's title, the previous verse and the verse
    chapters = bible()
    full = {}  # the text each question must rebuild, by context's last line start
    for title, verses in chapters.items():
        for n, v in enumerate(verses):
            before = f"{n} {verses[n - 1]}\n" if n else ""
            full[(title, n + 1)] = f"{title}\n{before}{n + 1} {v}"
    check_records("verse-endings", tasks["verse-endings"], 50)
    for r in tasks["verse-endings"]:
        title, last = r["context"].split("\n")[0], r["context"].split("\n")[-1]
        number = int(last.split(" ")[0])
        truth = full[(title, number)]
        assert r["context"] + r["choices"][r["label"]] == truth, \
            f"verse-endings: {title}:{number}: the labelled choice does not finish the verse: {r}"
        ending = r["choices"][r["label"]]
        others = [v for t, vs in chapters.items() if t != title for v in vs]
        for k, c in enumerate(r["choices"]):
            if k == r["label"]:
                continue
            assert r["context"] + c != truth
            assert any(v.endswith(c) for v in others), f"verse-endings: {title}:{number}: {c!r} ends no verse of " \
                                                       f"another chapter"
            assert 0.8 * len(ending) - 1 <= len(c) <= 1.25 * len(ending) + 1, \
                f"verse-endings: {title}:{number}: {c!r} against {ending!r}: lengths give the answer away"

    # definition endings: context + the labelled choice is "Head, pos. definition"
    check_records("definition-endings", tasks["definition-endings"], 25)
    for r in tasks["definition-endings"]:
        head = next(h for h in defs if r["context"].startswith(h + " "))
        pos, definition = defs[head]
        truth = f"{head} {definition}"
        ending = r["choices"][r["label"]]
        assert r["context"] + ending == truth, f"definition-endings: {head!r} labelled {r}"
        same_pos = [d for h, (p, d) in defs.items() if p == pos and h != head]
        for k, c in enumerate(r["choices"]):
            if k != r["label"]:
                assert r["context"] + c != truth
                assert any(d.endswith(c) for d in same_pos), f"definition-endings: {head!r}: {c!r} ends no other " \
                                                             f"{pos} definition"
                assert 0.8 * len(ending) - 1 <= len(c) <= 1.25 * len(ending) + 1, \
                    f"definition-endings: {head!r}: {c!r} against {ending!r}: lengths give the answer away"


def length_gives_nothing_away(work):
    """The true ending is the shortest, second, third or longest of the four choices about equally often:
    each rank holds at least an eighth of the two ending tasks' questions (drawing distractors from one
    band around the true ending's length makes it mostly neither the shortest nor the longest), and no
    distractor has its length."""
    _, tasks = build(work)
    ranks = [0] * 4
    for t in ("verse-endings", "definition-endings"):
        for r in tasks[t]:
            n = len(r["choices"][r["label"]])
            tied = [c for k, c in enumerate(r["choices"]) if k != r["label"] and len(c) == n]
            assert not tied, f"{t}: {tied} as long as the answer {r['choices'][r['label']]!r}"
            ranks[sum(len(c) < n for c in r["choices"])] += 1
    assert min(ranks) >= sum(ranks) / 8, f"the answer is the shortest, second, third, longest choice {ranks} times"


def deterministic_and_unchanged(work):
    first, _ = build(work, "a")
    second, _ = build(work, "b")
    for t in TASKS:
        a, b = (open(os.path.join(d, t + ".jsonl"), "rb").read() for d in (first, second))
        assert a == b, f"{t}.jsonl differs between two runs on the same val.jsonl"
    got = hashlib.sha256(open(os.path.join(first, "definitions.jsonl"), "rb").read()).hexdigest()
    assert got == DEFINITIONS_SHA256, f"definitions.jsonl has sha256 {got}, not definition_task.py's " \
                                      f"{DEFINITIONS_SHA256}: the task changed"
    assert sorted(os.listdir(first)) == sorted(t + ".jsonl" for t in TASKS), f"wrote {sorted(os.listdir(first))}"


def reads_validation_only(work):
    out, _ = build(work)
    train_words = {w.strip(".,;") for line in open(os.path.join(work, "train.jsonl"), encoding="utf-8")
                   for w in json.loads(line)["text"].split()}
    val_words = {w.strip(".,;") for line in open(os.path.join(work, "val.jsonl"), encoding="utf-8")
                 for w in json.loads(line)["text"].split()}
    train_only = {w for w in train_words - val_words if len(w) > 3}
    assert {"TRAINONLY", "Zebulonite"} <= train_only
    for t in TASKS:
        text = open(os.path.join(out, t + ".jsonl"), encoding="utf-8").read()
        found = sorted(w for w in train_only if w in text)
        assert not found, f"{t}.jsonl has text found only in train.jsonl: {found[:5]}"


def too_small_fails(work):
    val = write_corpus(work)
    out = os.path.join(work, "out")
    p = run(val, out)  # the default --min-items, 200: more than the synthetic corpus has
    assert p.returncode != 0, f"corpus_tasks.py succeeded on {val} with fewer than 200 questions per task"
    assert "too small" in p.stderr, f"stderr: {p.stderr.strip()!r}"
    assert not os.path.exists(out) or not os.listdir(out), f"wrote {os.listdir(out)} although it failed"


def main():
    run_cases(PROGRAM, [(case, None) for case in (labels_point_at_the_true_answer, length_gives_nothing_away,
                                                 deterministic_and_unchanged, reads_validation_only,
                                                 too_small_fails)], "gk-tasks-")


if __name__ == "__main__":
    main()
