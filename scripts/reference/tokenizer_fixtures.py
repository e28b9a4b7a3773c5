#!/usr/bin/env python3
"""Reference fixtures for tests/test_tokenizer.c (data/tokenizer/).

Writes tests/fixtures/tokenizer/:
  mixed.txt                 ~230 KB test text (seeded): prose, C and Python source, many
                            scripts, emoji (ZWJ, skin tones, flags), digit and whitespace runs,
                            CRLF, special-token strings (whole and partial), control characters
                            and invalid UTF-8 (lone continuation bytes, truncated sequences,
                            overlongs, surrogates, 0xFE/0xFF, > U+10FFFF).
  gemma3_mixed.ids/.offs    tokenizers.Tokenizer.from_file(gemma3 tokenizer.json)
                            .encode(text, add_special_tokens=False) on mixed.txt.
  spm_bpe.model             spm_train BPE, vocab 8000, on the Bible (bible-kjv) + fortunes, with
                            the project's flags (identity normalization, no dummy prefix, no
                            whitespace removal, byte fallback, split digits, pad/eos/bos/unk =
                            0/1/2/3, user-defined <start_of_turn>,<end_of_turn>).
  spm_bpe_defaults.model    the same corpus with SentencePiece's defaults for add_dummy_prefix and
                            remove_extra_whitespaces (both true), identity normalization, no byte
                            fallback (unknown characters become <unk>), vocab 4000.
  spm_bpe*_mixed.ids/.offs  sentencepiece.SentencePieceProcessor.encode(text) on mixed.txt.
  gemma3_cases.json         short strings (add_special_tokens True and False) and decode checks.
  spm_cases.json            short strings (add_bos True and False) and decode checks, both models.
  hf_features.json          small tokenizer.json files (inline, as strings) exercising what the
                            Gemma files do not: legacy merges, ignore_merges, lstrip / rstrip /
                            single_word / normalized added tokens, Prepend, every Split behaviour,
                            no unk_token, fuse_unk false, no byte fallback, no decoder, a template
                            with a suffix; with tokenizers' ids, offsets and decodes.
  utf8_repair.json          byte strings and their bytes.decode("utf-8", errors="replace").

Every text is given to the Python libraries as bytes.decode("utf-8", errors="replace"), since
Python strings cannot hold invalid UTF-8. Offsets are byte ranges into the ORIGINAL bytes: the
libraries' offsets (tokenizers: characters of the repaired string; sentencepiece: bytes of its
UTF-8) are mapped back through the repair (a U+FFFD that replaced k bytes covers those k bytes).
sentencepiece gives byte-fallback pieces of one character empty ranges except the last; they are
written here with the last piece's range (the convention of tokenizer_encode).

.ids: the ids as unsigned LEB128 varints. .offs: per token zigzag-varint(start - previous start)
then varint(end - start).

Run from the repository root: python3 scripts/reference/tokenizer_fixtures.py
Needs: tokenizers, sentencepiece (pip), spm_train (Debian sentencepiece), bible-kjv, fortunes,
and ../shared/data/tokenizers/gemma3/tokenizer.json.
"""
import codecs
import glob
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

import sentencepiece as spm
from tokenizers import Tokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
GEMMA3 = os.path.join(ROOT, "..", "shared", "data", "tokenizers", "gemma3", "tokenizer.json")
SEED = 20250611

# ------------------------------------------------------------------ the test text

MULTILINGUAL = [
    # Chinese, Japanese, Korean
    "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。",
    "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。",
    "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",
    # Cyrillic
    "Все люди рождаются свободными и равными в своем достоинстве и правах. Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Україна — держава у Східній Європі. Ґанок, їжак, єнот.",
    # Arabic, Hebrew
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق. وقد وهبوا عقلاً وضميرًا.",
    "כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם.",
    # Devanagari, Thai, Greek
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।",
    "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ",
    "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα.",
    # Latin with diacritics, combining marks, Vietnamese, Turkish, German
    "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. Ça va? Señor, ¿qué tal?",
    "Tiếng Việt có dấu: Mọi người sinh ra đều được tự do. İstanbul'da ılık bir gün.",
    "Combining: e\u0301 a\u0308 n\u0303 o\u0338 Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o\u0358.",
    # Georgian, Armenian, Amharic, Tamil
    "ყველა ადამიანი იბადება თავისუფალი. Բոլոր մարդիկ ծնվում են ազատ. ሁሉም ሰው ሲወለድ ነፃ ነው። அனைத்து மனிதர்களும்.",
]

EMOJI = [
    "👍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "1️⃣", "❤️", "🧑🏿‍🚀", "👩🏻‍❤️‍💋‍👨🏼",
    "🤷‍♀️", "🙂", "😂", "🦩", "🫠", "☕", "✈️", "🐈‍⬛", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
]

SPECIAL = [
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "<unused17>",
    "<unused0>", "<start_of_image>", "<end_of_image>", "<image_soft_token>", "[multimodal]", "<s>", "</s>",
    "<start_of_tur", "<end_of_turn", "<unused", "<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n",
    "<0x41>", "<0xZZ>", "\u2581", "\u2581\u2581\u2581", "<table>", "</div>", "<h1>", "<<start_of_turn>>",
    "<start_of_turn><end_of_turn>", "\ufffd",
]

INVALID = [
    b"\x80", b"\xbf", b"\x80\x80\x80", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80", b"\xe4\xb8", b"\xe4", b"\xf0\x9f\x98",
    b"\xf0\x9f", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff",
    b"\xff\xfe", b"\xc3", b"\xc3\x28", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"\xf0\x28\x8c\xbc",
    b"\xf0\x90\x28\xbc", b"\xf0\x28\x8c\x28", b"\xc2\x80\xc2", b"\xe0\xa0", b"\xef\xbf", b"\xc0\x80",
]

CONTROL = ["\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1b[0m", "\x7f", "\u0085", "\u00a0", "\u2028", "\u2029",
           "\u200b", "\u200d", "\ufeff", "\u3000", "\u202e", "\ue000", "\U0010fffd", "\uffff"]

# blocks for random characters (many never seen in training -> byte fallback)
BLOCKS = [(0x00A1, 0x024F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x0590, 0x05FF), (0x0600, 0x06FF),
          (0x0900, 0x097F), (0x0E00, 0x0E7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x22FF),
          (0x2500, 0x257F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF),
          (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF), (0x1D400, 0x1D7FF), (0xE0000, 0xE007F)]


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def paragraphs(text):
    return [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def build_text(rng):
    prose = paragraphs(read("/usr/share/common-licenses/GPL-3")) + paragraphs(read("/usr/share/common-licenses/Apache-2.0"))
    csrc = paragraphs(read("/usr/include/stdio.h")) + paragraphs(read("/usr/include/math.h"))
    pysrc = paragraphs(read(os.path.join(os.path.dirname(json.__file__), "decoder.py")))
    pysrc += paragraphs(read(os.path.join(os.path.dirname(os.__file__), "textwrap.py")))
    bible = "".join(subprocess.run(["bible", "-l0", ref], capture_output=True, check=True).stdout.decode()
                    for ref in ("gen1-gen3", "ps23", "john1", "rev21-rev22"))
    fortunes = paragraphs(read("/usr/share/games/fortunes/computers").replace("\n%\n", "\n\n"))

    def random_chars(n):
        out = []
        for _ in range(n):
            lo, hi = rng.choice(BLOCKS)
            c = rng.randint(lo, hi)
            if 0xD800 <= c <= 0xDFFF:
                c = 0x4E00
            out.append(chr(c))
        return "".join(out)

    def whitespace():
        kind = rng.randrange(6)
        if kind == 0:
            return " " * rng.randint(1, 70)
        if kind == 1:
            return "\t" * rng.randint(1, 40)
        if kind == 2:
            return "\n" * rng.randint(1, 40)
        if kind == 3:
            return "\r\n" * rng.randint(1, 5)
        if kind == 4:
            return "".join(rng.choice(" \t\n\r\u00a0\u3000") for _ in range(rng.randint(2, 50)))
        return " \n" * rng.randint(1, 10)

    def mixed_line():
        parts = []
        for _ in range(rng.randint(3, 12)):
            k = rng.randrange(9)
            if k == 0:
                parts.append(rng.choice(MULTILINGUAL))
            elif k == 1:
                parts.append("".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4))))
            elif k == 2:
                parts.append(rng.choice(SPECIAL))
            elif k == 3:
                parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 80))))
            elif k == 4:
                parts.append(whitespace())
            elif k == 5:
                parts.append(random_chars(rng.randint(1, 12)))
            elif k == 6:
                parts.append(rng.choice(CONTROL))
            elif k == 7:
                parts.append("\x00INVALID%d\x00" % rng.randrange(len(INVALID)))
            else:
                words = rng.choice(prose).split()
                start = rng.randrange(len(words))
                parts.append(" ".join(words[start:start + rng.randint(1, 12)]))
        return "".join(rng.choice(["", " ", "  ", "\t"]) + p for p in parts)

    docs = []
    docs += rng.sample(prose, min(len(prose), 60))
    docs += rng.sample(csrc, min(len(csrc), 70))
    docs += rng.sample(pysrc, min(len(pysrc), 60))
    docs += paragraphs(bible)
    docs += rng.sample(fortunes, 80)
    docs += [rng.choice(MULTILINGUAL) + " " + rng.choice(MULTILINGUAL) for _ in range(40)]
    docs += [mixed_line() for _ in range(600)]
    docs += ["".join(rng.choice(EMOJI) for _ in range(30)) for _ in range(5)]
    docs += ["line one\r\nline two\r\n\r\nline four\r\n", "\n" * 45 + "after 45 newlines", " " * 100 + "x",
             "\t" * 33 + "tabs", "9" * 300, "1234567890" * 20, "<start_of_turn>user\nHi!<end_of_turn>\n"
             "<start_of_turn>model\nHello.<end_of_turn>\n"]
    rng.shuffle(docs)
    text = "\n\n".join(docs)
    # invalid UTF-8 replaces the markers (Python strings cannot hold it)
    out = bytearray()
    for i, chunk in enumerate(text.split("\x00INVALID")):
        if i == 0:
            out += chunk.encode("utf-8")
            continue
        num, rest = chunk.split("\x00", 1)
        out += INVALID[int(num)] + rest.encode("utf-8")
    return bytes(out)


# ------------------------------------------------------------------ repair and offsets

_spans = []


def _record(e):
    _spans.append((e.start, e.end))
    return ("\ufffd", e.end)


codecs.register_error("gk_record", _record)


def repair(b):
    """The repaired string and, per character (and one past the end), its start in b."""
    _spans.clear()
    s = b.decode("utf-8", "gk_record")
    assert s == b.decode("utf-8", "replace")
    bad = dict(_spans)
    starts, i = [], 0
    for ch in s:
        starts.append(i)
        i = bad[i] if i in bad else i + len(ch.encode("utf-8"))
    assert i == len(b)
    starts.append(len(b))
    return s, starts


def utf8_to_orig(s, starts):
    """Map from byte positions of s.encode() to byte positions in the original."""
    m = []
    for k, ch in enumerate(s):
        m += [starts[k]] * len(ch.encode("utf-8"))
    m.append(starts[-1])
    return m


def varints(values):
    out = bytearray()
    for v in values:
        assert v >= 0
        while True:
            byte = v & 0x7F
            v >>= 7
            out.append(byte | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def write_ids(name, ids, offsets):
    with open(os.path.join(OUT, name + ".ids"), "wb") as f:
        f.write(varints(ids))
    if offsets is not None:
        vals, prev = [], 0
        for a, b in offsets:
            d = a - prev
            vals += [2 * d if d >= 0 else -2 * d - 1, b - a]
            prev = a
        with open(os.path.join(OUT, name + ".offs"), "wb") as f:
            f.write(varints(vals))


def hf_encode(tok, b, add_special):
    s, starts = repair(b)
    e = tok.encode(s, add_special_tokens=add_special)
    return e.ids, [(starts[x], starts[y]) for x, y in e.offsets]


# sentencepiece: serialized SentencePieceText (field 2 pieces: 2 id, 4 begin, 5 end)
def _fields(buf):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield f, v


def _varint(buf, i):
    v, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def spm_encode(sp, b, add_bos=False):
    s, starts = repair(b)
    ids = sp.encode(s, add_bos=add_bos)
    to_orig = utf8_to_orig(s, starts)
    pieces = []
    for f, v in _fields(sp.encode(s, return_type="serialized_proto")):  # (the proto API takes no add_bos)
        if f == 2:
            d = {k: x for k, x in _fields(v)}
            pieces.append((d.get(2, 0), d.get(4, 0), d.get(5, 0)))
    offs = [[to_orig[a], to_orig[e]] for _, a, e in pieces]
    for k in range(len(pieces) - 2, -1, -1):  # byte pieces of one character share its range
        if sp.IsByte(pieces[k][0]) and sp.IsByte(pieces[k + 1][0]) and offs[k][0] == offs[k][1] == offs[k + 1][0]:
            offs[k] = list(offs[k + 1])
    if add_bos:
        pieces.insert(0, (sp.bos_id(), 0, 0))
        offs.insert(0, [0, 0])
    assert [p[0] for p in pieces] == ids
    return ids, [tuple(o) for o in offs]


# ------------------------------------------------------------------ SentencePiece models

def corpus(tmp):
    path = os.path.join(tmp, "corpus.txt")
    bible = subprocess.run(["bible", "-l0", "gen1-rev22"], capture_output=True, check=True).stdout
    fortunes = b""
    for p in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if os.path.islink(p) or p.endswith(".dat") or not os.path.isfile(p):
            continue
        with open(p, "rb") as f:
            fortunes += f.read().replace(b"\n%\n", b"\n\n")
    with open(path, "wb") as f:
        f.write(bible + fortunes.decode("utf-8", "replace").encode("utf-8"))
    return path


def train(tmp, name, flags):
    prefix = os.path.join(tmp, name)
    subprocess.run(["spm_train", "--input=" + corpus_path, "--model_prefix=" + prefix, "--model_type=bpe",
                    "--normalization_rule_name=identity", "--num_threads=2", "--pad_id=0", "--eos_id=1",
                    "--bos_id=2", "--unk_id=3"] + flags, check=True, capture_output=True)
    with open(prefix + ".model", "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, name + ".model"), "wb") as f:
        f.write(data)
    return spm.SentencePieceProcessor(model_file=os.path.join(OUT, name + ".model"))


SHORT = [
    b"", b" ", b"  ", b"Hello world", b" Hello  world ", b"Hello this is a test", b"\n", b"a\n\nb",
    b"<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
    b"<bos>text<eos>", b"  leading and trailing  ", b"tab\tand\r\nCRLF", b"12345678901234567890",
    "naïve café 中文 👩‍💻 🇯🇵".encode(), b"bad \xff byte", b"trunc \xe4\xb8", b"\xed\xa0\x80 surrogate",
    b"\x00nul", "\u2581 literal lower block".encode(), b"<0x41><0x42>", b"<start_of_tur <unused17> <mask>",
    b"     five spaces then text", "ideographic\u3000space and\u00a0nbsp".encode(),
]


def spm_cases(sp, name, extra=()):
    cases = []
    for b in list(SHORT) + list(extra):
        for add_bos in (False, True):
            ids, offs = spm_encode(sp, b, add_bos)
            cases.append({"input_hex": b.hex(), "add_bos": add_bos, "ids": ids, "offsets": offs})
    rng = random.Random(SEED + 1)
    decodes = []
    specials = [sp.pad_id(), sp.eos_id(), sp.bos_id(), sp.unk_id()] + [i for i in range(sp.vocab_size()) if sp.IsByte(i)][:0]
    byte = {i for i in range(sp.vocab_size()) if sp.IsByte(i)}
    for _ in range(40):
        n = rng.randint(0, 20)
        ids = []
        for _ in range(n):
            k = rng.randrange(4)
            if k == 0 and byte:
                ids.append(rng.choice(sorted(byte)))
            elif k == 1:
                ids.append(rng.choice(specials))
            else:
                ids.append(rng.randrange(sp.vocab_size()))
        decodes.append({"ids": ids, "text_hex": sp.decode(ids).encode("utf-8").hex()})
    # byte pieces that form / break UTF-8 characters
    b2id = {sp.id_to_piece(i): i for i in byte}
    for seq in (b"\xe4\xb8\xad", b"\xe4\xb8", b"\xe4\xb8a", b"\xf0\x9f\x98\x80\xff", b"\x80\x80", b"\xed\xa0\x80"):
        ids = [b2id["<0x%02X>" % c] if "<0x%02X>" % c in b2id else sp.piece_to_id(chr(c)) for c in seq]
        decodes.append({"ids": ids, "text_hex": sp.decode(ids).encode("utf-8").hex()})
    with open(os.path.join(OUT, name + ".model"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return {"model": name + ".model", "sha256": sha, "vocab_size": sp.vocab_size(), "bos_id": sp.bos_id(), "eos_id": sp.eos_id(),
            "pad_id": sp.pad_id(), "unk_id": sp.unk_id(), "encode": cases, "decode": decodes}


def _key(field, wire):
    return varints([field << 3 | wire])


def mark_unused(src, dst, every=4):
    """Copies a model, turning every `every`-th multi-character NORMAL piece into UNUSED (type 5):
    SentencePiece still merges through them, then splits them again (rev_merge)."""
    with open(src, "rb") as f:
        data = f.read()
    out, i, k = bytearray(), 0, 0
    while i < len(data):
        start = i
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            i += n
        elif wire == 5:
            i += 4
        raw = data[start:i]
        if field == 1 and wire == 2:
            body = raw[1:]
            n, j = _varint(body, 0)
            d = {f: v for f, v in _fields(body[j:j + n])}
            piece, ptype = d.get(1, b""), d.get(3, 1)
            if ptype == 1 and len(piece.decode("utf-8")) > 1:
                k += 1
                if k % every == 0:
                    msg = _key(1, 2) + varints([len(piece)]) + piece + _key(2, 5) + d.get(2, b"\0\0\0\0") + _key(3, 0) + varints([5])
                    raw = _key(1, 2) + varints([len(msg)]) + msg
        out += raw
    with open(dst, "wb") as f:
        f.write(bytes(out))


# ------------------------------------------------------------------ tokenizer.json features

def gemma_like_json(sp, merges_as_pairs=False):
    """A small Gemma-style tokenizer.json from a SentencePiece BPE model (as GemmaConverter)."""
    vocab = {sp.id_to_piece(i): i for i in range(sp.vocab_size())}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.vocab_size())}
    merges = []
    for piece, pid in vocab.items():
        if sp.IsControl(pid) or sp.IsUnknown(pid) or sp.IsByte(pid):
            continue
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                merges.append((scores[piece], vocab[a], vocab[b], a, b))
    merges.sort(key=lambda m: (-m[0], m[1], m[2]))
    added = []
    for i in range(sp.vocab_size()):
        if sp.IsControl(i) or sp.IsUnknown(i) or sp.id_to_piece(i) in ("<start_of_turn>", "<end_of_turn>"):
            added.append({"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True})
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [sp.bos_id()], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab,
                  "merges": [[m[3], m[4]] if merges_as_pairs else m[3] + " " + m[4] for m in merges]},
    }


FEATURE_INPUTS = [
    b"Hello world", b"  two  spaces  ", b"In the beginning God created the heaven and the earth.",
    "caf\u00e9 \u4e2d\u6587 \U0001F600 \u05e9\u05dc\u05d5\u05dd".encode(), b"x\xffy \xe4\xb8 z",
    b"<s>begin</s> and <start_of_turn>user\nhi<end_of_turn>", b"a <mask> b<mask>c  <mask>  d",
    b"[X] [X]x x[X]  [X]   e", b"word words sword word. (word) _word word_", b"the  fox", b"  ",
    b"\t\n tab\tnew\nline", "\u00e9t\u00e9 \u00e0 \u2581 \u3000wide\u00a0nbsp".encode(), b"",
    b"zzzz qqq jjj", "\U0001F469\u200d\U0001F4bb\U0001F1EF\U0001F1F5".encode(),
]


def feature_tokenizers(sp):
    base = gemma_like_json(sp)
    v = []

    def variant(name, change):
        d = json.loads(json.dumps(base))
        change(d)
        v.append((name, d))

    variant("gemma_like_legacy_merges", lambda d: None)
    variant("pairs_merges_ignore_merges", lambda d: (d["model"].update(ignore_merges=True),
                                                     d["model"].update(merges=gemma_like_json(sp, True)["model"]["merges"])))

    def added_flags(d):
        voc, n = d["model"]["vocab"], max(d["model"]["vocab"].values()) + 1
        for content, sw, ls, rs, norm, special in (("<mask>", False, True, False, False, True),
                                                   ("[X]", False, False, True, False, False),
                                                   ("word", True, False, False, False, False),
                                                   ("the fox", False, False, False, True, False),
                                                   ("e", True, True, True, True, False)):
            tid = voc.get(content)
            if tid is None:
                tid, n = n, n + 1
            d["added_tokens"].append({"id": tid, "content": content, "single_word": sw, "lstrip": ls, "rstrip": rs,
                                      "normalized": norm, "special": special})
    variant("added_token_flags", added_flags)
    variant("prepend_sequence", lambda d: d.update(
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        pre_tokenizer=None))
    for behavior in ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
        for invert in (False, True):
            variant("split_%s%s" % (behavior, "_invert" if invert else ""), lambda d, b=behavior, i=invert: d.update(
                normalizer=None,
                pre_tokenizer={"type": "Split", "pattern": {"String": " "}, "behavior": b, "invert": i}))
    variant("multi_char_replace", lambda d: d.update(normalizer={"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"String": "the"}, "content": "\u2581\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}))

    def no_unk(d):
        d["model"].update(unk_token=None, byte_fallback=False)
    variant("no_unk_no_byte_fallback", no_unk)
    variant("unk_not_fused", lambda d: d["model"].update(byte_fallback=False, fuse_unk=False))
    variant("unk_fused", lambda d: d["model"].update(byte_fallback=False, fuse_unk=True))

    def partial_bytes(d):  # byte fallback with some byte tokens missing: the pending-unk quirk
        voc = d["model"]["vocab"]
        for b in (0x78, 0x7A, 0xE4, 0x9F):
            voc.pop("<0x%02X>" % b, None)
        d["model"]["merges"] = [m for m in d["model"]["merges"] if all(t in voc for t in m.split(" "))]
        ids = sorted(voc.values())
        remap = {old: new for new, old in enumerate(ids)}
        d["model"]["vocab"] = {t: remap[i] for t, i in voc.items()}
        for a in d["added_tokens"]:
            a["id"] = remap[a["id"]]
        for st in d["post_processor"]["special_tokens"].values():
            st["ids"] = [remap[i] for i in st["ids"]]
    variant("byte_fallback_partial", partial_bytes)
    variant("no_decoder_no_template", lambda d: d.update(decoder=None, post_processor=None))
    variant("template_with_suffix", lambda d: d["post_processor"].update(
        single=[{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        special_tokens={"<s>": {"id": "<s>", "ids": [sp.bos_id()], "tokens": ["<s>"]},
                        "</s>": {"id": "</s>", "ids": [sp.eos_id()], "tokens": ["</s>"]}}))
    return v


def features(sp):
    out = []
    rng = random.Random(SEED + 2)
    for name, d in feature_tokenizers(sp):
        text = json.dumps(d, ensure_ascii=False)
        tok = Tokenizer.from_str(text)
        cases = []
        for b in FEATURE_INPUTS:
            for add in (False, True):
                if add and d["post_processor"] is None:
                    continue
                ids, offs = hf_encode(tok, b, add)
                cases.append({"input_hex": b.hex(), "add_bos": add, "ids": ids, "offsets": offs})
        decodes = []
        vs = tok.get_vocab_size()
        for _ in range(12):
            ids = [rng.randrange(vs) for _ in range(rng.randint(0, 12))]
            ids = [i for i in ids if tok.id_to_token(i) is not None]
            for skip in (False, True):
                decodes.append({"ids": ids, "skip_special": skip,
                                "text_hex": tok.decode(ids, skip_special_tokens=skip).encode("utf-8").hex()})
        out.append({"name": name, "tokenizer_json": text, "encode": cases, "decode": decodes})
    return out


# ------------------------------------------------------------------ main

def gemma3_cases(tok):
    cases = []
    for b in SHORT:
        for add in (False, True):
            ids, offs = hf_encode(tok, b, add)
            cases.append({"input_hex": b.hex(), "add_bos": add, "ids": ids, "offsets": offs})
    decodes = []
    tid = tok.token_to_id
    lists = [
        [2, 105, 2364, 107, 9259, 106, 107], [tid("<0xE4>"), tid("<0xB8>"), tid("<0xAD>")],
        [tid("<0xE4>"), tid("<0xB8>"), tid("a"), tid("<0xFF>")], [1, 0, 3, 4, 262144, 138, 108, 236743],
        [tid("\u2581hello"), tid("\u2581world")], [],
    ]
    rng = random.Random(SEED + 3)
    lists += [[rng.randrange(262145) for _ in range(rng.randint(1, 30))] for _ in range(20)]
    for ids in lists:
        for skip in (False, True):
            decodes.append({"ids": ids, "skip_special": skip,
                            "text_hex": tok.decode(ids, skip_special_tokens=skip).encode("utf-8").hex()})
    with open(GEMMA3, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return {"encode": cases, "decode": decodes, "sha256": sha, "bos_id": tid("<bos>"), "eos_id": tid("<eos>"),
            "pad_id": tid("<pad>"), "unk_id": tid("<unk>"),
            "token_ids": {k: tid(k) for k in ("<bos>", "<eos>", "<pad>", "<unk>", "<start_of_turn>", "<end_of_turn>",
                                               "<mask>", "<image_soft_token>", "\n", "\u2581\u2581")},
            "vocab_size": tok.get_vocab_size()}


def utf8_cases():
    rng = random.Random(SEED + 4)
    inputs = [bytes([b]) for b in range(0x80, 0x100)] + INVALID
    inputs += [b"ok" + x + b"ok" for x in INVALID]
    inputs += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 24))) for _ in range(300)]
    return [{"in_hex": b.hex(), "out_hex": b.decode("utf-8", "replace").encode("utf-8").hex()} for b in inputs]


def dump(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    global corpus_path
    os.makedirs(OUT, exist_ok=True)
    text = build_text(random.Random(SEED))
    with open(os.path.join(OUT, "mixed.txt"), "wb") as f:
        f.write(text)
    print("mixed.txt: %d bytes" % len(text))
    dump("utf8_repair.json", utf8_cases())

    tok = Tokenizer.from_file(GEMMA3)
    ids, offs = hf_encode(tok, text, False)
    s, _ = repair(text)
    # lossless on (repaired) text, except that a literal U+2581 comes back as a space
    assert tok.decode(ids, skip_special_tokens=False) == s.replace("\u2581", " ")
    write_ids("gemma3_mixed", ids, offs)
    print("gemma3: %d tokens" % len(ids))
    dump("gemma3_cases.json", gemma3_cases(tok))

    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = corpus(tmp)
        common = ["--user_defined_symbols=<start_of_turn>,<end_of_turn>"]
        a = train(tmp, "spm_bpe", common + [
            "--vocab_size=8000", "--byte_fallback=true", "--split_digits=true", "--add_dummy_prefix=false",
            "--remove_extra_whitespaces=false", "--allow_whitespace_only_pieces=true"])
        b = train(tmp, "spm_bpe_defaults", common + ["--vocab_size=4000", "--control_symbols=<ctrl>"])
        small = train(tmp, "spm_small", common + ["--vocab_size=400", "--byte_fallback=true"])
    mark_unused(os.path.join(OUT, "spm_small.model"), os.path.join(OUT, "spm_unused.model"))
    os.remove(os.path.join(OUT, "spm_small.model"))  # the source of hf_features.json and spm_unused.model
    unused = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "spm_unused.model"))
    assert sum(unused.IsUnused(i) for i in range(unused.vocab_size())) > 10
    for sp, name in ((a, "spm_bpe"), (b, "spm_bpe_defaults")):
        ids, offs = spm_encode(sp, text)
        write_ids(name + "_mixed", ids, offs)
        print("%s: %d tokens" % (name, len(ids)))
    s, _ = repair(text)
    assert a.decode(a.encode(s)) == s.replace("\u2581", " ")  # spm_bpe: lossless but for U+2581
    prose = [p.encode() for p in paragraphs(read("/usr/share/common-licenses/Apache-2.0"))[:12]]
    prose.append(subprocess.run(["bible", "-l0", "gen1"], capture_output=True, check=True).stdout)
    dump("spm_cases.json", [spm_cases(a, "spm_bpe"), spm_cases(b, "spm_bpe_defaults"),
                            spm_cases(unused, "spm_unused", prose)])
    dump("hf_features.json", features(small))
    for f in sorted(os.listdir(OUT)):
        print("  %-28s %8d bytes" % (f, os.path.getsize(os.path.join(OUT, f))))


if __name__ == "__main__":
    main()
