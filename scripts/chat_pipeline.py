#!/usr/bin/env python3
"""Helpers of the teacher-answers pipeline (scripts/chat_pipeline.sh); standard library only.

  prompts CORPUS.jsonl N OUT.jsonl   N chat prompts about dictionary entries and verses of the corpus
  pairs ANSWERS.jsonl OUT.jsonl      (chat prompt, answer) pairs for `gemmakd eval --loglikelihood`
  table NAME=TEACHER_ON_STUDENT.json:STUDENT_ON_TEACHER.json:STUDENT_ON_OWN.json:ANSWERS.jsonl ...
                                     the agreement table from `gemmakd eval` results: the teacher's
                                     log-prob per token of each student's greedy answers, KL(teacher ‖
                                     student) on those answers, their repetition rate, and the
                                     student's loss, KL to the teacher and top-1 agreement with it on
                                     the teacher's own greedy answers (model turns only)
  sampling-share METRICS.jsonl       the share of an on-policy run's step time spent sampling
"""
import json
import random
import re
import sys

HEAD = re.compile(r"^([A-Z][A-Za-z'-]+), ((?:[a-z]+\. ?)+)")
VERSE = re.compile(r"(\d+:\d+) ([^\n]{30,200})")


def prompts(corpus, n, out):
    rng = random.Random(20261123)
    found = []
    for line in open(corpus, encoding="utf-8"):
        text = json.loads(line)["text"]
        m = HEAD.match(text)
        if m:
            found.append(f"What does the word \"{m.group(1)}\" mean?")
            continue
        v = VERSE.search(text)
        if v:
            words = v.group(2).split()
            found.append("Continue this verse: " + " ".join(words[: max(4, len(words) // 3)]))
    rng.shuffle(found)
    with open(out, "w", encoding="utf-8") as f:
        for p in found[:n]:
            f.write(json.dumps({"prompt": p}) + "\n")


def render(messages):
    """The chat template up to the model turn, as gemmakd's chat_render writes it (gemmakd adds <bos>):
    a leading system message is put, untrimmed and followed by a blank line, at the start of the first user turn."""
    prefix = ""
    if messages and messages[0]["role"] == "system":
        prefix, messages = messages[0]["content"] + "\n\n", messages[1:]
    text = ""
    for i, m in enumerate(messages):
        role = "model" if m["role"] == "assistant" else m["role"]
        text += f"<start_of_turn>{role}\n{prefix if i == 0 else ''}{m['content'].strip()}<end_of_turn>\n"
    return text + "<start_of_turn>model\n"


def pairs(path, out):
    records = sorted((json.loads(line) for line in open(path, encoding="utf-8")), key=lambda r: r["meta"]["record"])
    with open(out, "w", encoding="utf-8") as f:
        for r in records:
            msgs, answer = r["messages"][:-1], r["messages"][-1]["content"]
            if answer.strip():
                f.write(json.dumps({"context": render(msgs), "continuation": answer + "<end_of_turn>"}) + "\n")


def repetition_rate(path):
    """The share of answer words that complete a word trigram already seen earlier in the same answer."""
    repeated = total = 0
    for line in open(path, encoding="utf-8"):
        words = json.loads(line)["messages"][-1]["content"].split()
        seen = set()
        for i in range(2, len(words)):
            gram = tuple(words[i - 2:i + 1])
            repeated += gram in seen
            seen.add(gram)
            total += 1
    return repeated / total if total else 0.0


def table(specs):
    print("| student | teacher's log-prob per token of the student's greedy answers | KL(teacher ‖ student) on them |"
          " their repetition rate | student's loss on the teacher's answers | KL(teacher ‖ student) there |"
          " top-1 agreement there |")
    print("|---|---|---|---|---|---|---|")
    for spec in specs:
        name, _, rest = spec.partition("=")
        teacher_on_student, student_on_teacher, student_on_own, answers = rest.split(":")
        t = json.load(open(teacher_on_student))["loglikelihood"][0]["results"]
        s, own = json.load(open(student_on_teacher)), json.load(open(student_on_own))
        lp = sum(x["loglikelihood"] for x in t) / sum(x["tokens"] for x in t)
        print(f"| {name} | {lp:.3f} | {own['teacher']['kl']:.3f} | {repetition_rate(answers):.1%} |"
              f" {s['data']['loss']:.3f} | {s['teacher']['kl']:.3f} | {s['teacher']['top1_agreement']:.1%} |")


def sampling_share(metrics):
    """Sampling's share of the training steps' time (log.every 1: every step is logged)."""
    steps = [json.loads(line) for line in open(metrics, encoding="utf-8")]
    steps = [r for r in steps if "sampling_s" in r]
    sampled = sum(r["sampling_s"] for r in steps)
    total = steps[-1]["elapsed"]  # cumulative over the run
    print(f"on-policy run: {len(steps)} steps, {sum(r['sampled_tokens'] for r in steps)} sampled tokens, "
          f"sampling {sampled:.1f} s of {total:.1f} s ({sampled / total:.0%} of the step time)")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "prompts":
        prompts(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "pairs":
        pairs(sys.argv[2], sys.argv[3])
    elif cmd == "sampling-share":
        sampling_share(sys.argv[2])
    else:
        table(sys.argv[2:])
