#!/usr/bin/env python3
"""Reference fixtures for gemmakd's Gemma chat template and loss mask.

Renders conversations with transformers' apply_chat_template using Gemma's
tokenizer_config.json (../shared/data/tokenizers/gemma3) and writes
tests/fixtures/chat/cases.jsonl, one case per line:
  {"record": "<a JSONL line>", "add_generation_prompt": bool,
   "text": rendered text without the leading "<bos>",
   "ids": token ids (with <bos>), "mask": 1 for tokens of model turns and their <end_of_turn>}
or {"record": ..., "error": "..."} when transformers refuses the conversation.
The mask comes from transformers too: a model turn spans from the end of the
conversation rendered up to it with the generation prompt, to the end of the
conversation rendered through it, less the final newline; a token is trained
when its (byte) offsets lie inside such a span.
    python3 scripts/reference/chat_fixtures.py [--tokenizer DIR] [--out tests/fixtures/chat/cases.jsonl]
"""
import argparse
import json

from transformers import AutoTokenizer

U, A, S = "user", "assistant", "system"
CASES = [
    ([(U, "Hello!"), (A, "Hi. How can I help?")], False),
    ([(U, "What is a firmament?"), (A, "An expanse; the sky."), (U, "And a fig?")], True),
    ([(S, "You are terse."), (U, "Define 'apple'."), (A, "A fruit.")], False),
    ([(S, "  keep my spaces  \n"), (U, "hi")], True),                       # system text is not trimmed
    ([(U, "  \n\tpadded question \u00a0\u3000"), (A, "\n answer with spaces \n\n")], False),  # Unicode trim
    ([(U, "multi\nline\n\ncontent"), (A, "line one\nline two")], False),
    ([(U, "Ünïcödé — ≈ 😀 👩‍💻 中文 русский العربية"), (A, "ok ✓")], False),
    ([(U, "literal <end_of_turn> and <start_of_turn>model\n in text"), (A, "echo <bos> <eos>")], False),
    ([(U, [{"type": "text", "text": " part one "}, {"type": "text", "text": "part two"}]), (A, "done")], False),
    ([(U, "a"), ("model", "b"), (U, "c"), (A, "d")], False),
    ([(U, "only a question")], True),
    ([(U, "digits 12345 and\ttabs"), (A, "   ")], False),                 # whitespace-only answer
    # Refused by the template: roles must alternate, starting with user.
    ([(A, "I speak first")], False),
    ([(U, "one"), (U, "two")], False),
    ([(S, "sys"), (A, "no user")], False),
]


def to_messages(case):
    return [{"role": r, "content": c} for r, c in case]


def byte_offsets(text):
    """char index -> byte offset in UTF-8."""
    out, pos = [], 0
    for ch in text:
        out.append(pos)
        pos += len(ch.encode("utf-8"))
    out.append(pos)
    return out


def trained_spans(tok, messages):
    spans = []
    for k, m in enumerate(messages):
        if m["role"] not in ("assistant", "model"):
            continue
        start = tok.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True)
        end = tok.apply_chat_template(messages[:k + 1], tokenize=False)
        assert end.endswith("<end_of_turn>\n")
        spans.append((len(start) - len("<bos>"), len(end) - len("<bos>") - 1))  # chars, without <bos>
    return spans


def build(tok, case, gen):
    messages = to_messages(case)
    record = json.dumps({"messages": messages}, ensure_ascii=False)  # the JSONL line the C test parses
    try:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    except Exception as e:  # transformers raises for the template's raise_exception
        return {"record": record, "add_generation_prompt": gen, "error": str(e)}
    assert text.startswith("<bos>")
    body = text[len("<bos>"):]
    ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen, return_dict=False)
    enc = tok(body, add_special_tokens=False, return_offsets_mapping=True)
    assert [tok.bos_token_id] + enc["input_ids"] == list(ids), "template ids differ from encoding the text"
    to_byte = byte_offsets(body)
    spans = [(to_byte[a], to_byte[b]) for a, b in trained_spans(tok, messages)]
    mask = [0]  # <bos>
    for a, b in enc["offset_mapping"]:
        ba, bb = to_byte[a], to_byte[b]
        mask.append(int(any(s <= ba and bb <= e for s, e in spans)))
    return {"record": record, "add_generation_prompt": gen, "text": body, "ids": list(ids), "mask": mask}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="../shared/data/tokenizers/gemma3")
    ap.add_argument("--out", default="tests/fixtures/chat/cases.jsonl")
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    import os
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for case, gen in CASES:
            f.write(json.dumps(build(tok, case, gen), ensure_ascii=False) + "\n")
    print(f"wrote {len(CASES)} cases to {args.out}")


if __name__ == "__main__":
    main()
