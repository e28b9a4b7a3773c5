#!/usr/bin/env python3
"""gemmakd info's memory per device (--ranks, --zero, --ema, --teacher, --device-memory)
against the layout worked out here from the config alone:

  P = the parameters of config.json (reference/gemma2-spec.md: embedding V*d tied with the
  head; per layer q, k, v, o, gate, up, down and 4 RMSNorm weights; the final norm);
  block = ceil(P/N) rounded up to 65,536 elements (rank 0's, the largest; at most P);
  bf16: weights 2P and gradients 2P whole, the float32 master 4*block with ZeRO-1 on cuda,
  else 4P (the cpu host keeps all of it); fp32: weights 4P (the master), gradients 4P;
  AdamW m and v 8*block with ZeRO-1, else 8P; EMA 4*block with ZeRO-1, else 4P;
  an in-process teacher's weights 2 or 4 bytes x its own P on every rank.

Activations are not derived here: the per-device figure must be the one-process plan's
(the same micro-batch), and a teacher's forward-only figure must lie between one layer's
MLP buffers and the teacher's own training activations. Also: the fits verdict against
device sizes on either side of the expected total in each unit, usage errors naming their
flag, and the issue's 9B figure (9.24B x (2+2) + 12 x 9.24B/8 bytes, about 47 GiB).

    GEMMAKD=build/gemmakd python3 tests/py/test_info_ranks.py   (from the repository root)
"""
import json
import math
import os
import subprocess

from cases import run_cases

PROGRAM = "test_info_ranks"
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GEMMAKD = os.environ.get("GEMMAKD", os.path.join(ROOT, "build", "gemmakd"))
MODELS = os.path.join(ROOT, "configs", "models")
GIB = 2 ** 30


def config(size):
    return os.path.join(MODELS, f"gemma2-{size}.json")


def params(path):
    with open(path) as f:
        c = json.load(f)
    d, ff, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    layer = d * q + 2 * d * kv + q * d + 3 * d * ff + 4 * d
    return V * d + c["num_hidden_layers"] * layer + d


def block(P, ranks):
    b = -(-P // ranks)
    return min(-(-b // 65536) * 65536, P)


def expected_state(P, ranks, zero, bf16, cuda, ema):
    S = block(P, ranks) if zero else P
    master = 0 if not bf16 else 4 * (block(P, ranks) if zero and cuda else P)
    return {"weights": P * (2 if bf16 else 4), "master": master, "grads": P * (2 if bf16 else 4),
            "adamw": 8 * S, "ema": 4 * S if ema else 0}


def info(*args, check=True):
    r = subprocess.run([GEMMAKD, "info", *args], cwd=ROOT, capture_output=True, text=True)
    if check:
        assert r.returncode == 0, f"info {' '.join(args)}: status {r.returncode}: {r.stderr.strip()}"
    return r


def info_json(*args):
    return json.loads(info(*args, "--json").stdout)


# (student, ranks, zero, precision, device, ema, teacher, teacher precision or None)
SETUPS = [
    ("2b", 8, 1, "bf16", "cuda", False, None, None),
    ("2b", 8, 0, "bf16", "cuda", False, None, None),
    ("9b", 8, 1, "bf16", "cpu", True, None, None),       # the host keeps the whole master
    ("9b", 3, 1, "fp32", "cpu", True, None, None),       # uneven: P/3 is not a multiple of 65,536
    ("2b", 7, 1, "bf16", "cuda", True, "27b", None),     # uneven, teacher bf16 (the student's)
    ("2b", 1, 1, "bf16", "cuda", False, "9b", None),     # --zero without --ranks > 1
    ("9b", 5, 0, "bf16", "cpu", False, "27b", "fp32"),
    ("9b", 8, 1, "bf16", "cuda", False, "cache", None),
]


def setup_args(s):
    size, ranks, zero, prec, dev, ema, teacher, tprec = s
    a = ["--config", config(size), "--ranks", str(ranks), "--zero", str(zero), "--precision", prec,
         "--device", dev, "--batch", "1", "--seq-len", "1024"]
    if ema:
        a.append("--ema")
    if teacher:
        a += ["--teacher", "cache" if teacher == "cache" else config(teacher)]
    if tprec:
        a += ["--teacher-precision", tprec]
    return a


def teacher_bounds(s, got):
    """The teacher's forward activations: at least one layer's gate, up and GeGLU output
    [N, ff] in its storage type, at most its own training activations for the micro-batch."""
    size, _, _, prec, dev, _, teacher, tprec = s
    tprec = tprec or prec
    with open(config(teacher)) as f:
        ff = json.load(f)["intermediate_size"]
    low = 1024 * 3 * ff * (2 if tprec == "bf16" else 4)
    high = info_json("--config", config(teacher), "--precision", tprec, "--device", dev, "--batch", "1",
                     "--seq-len", "1024")["bytes_activations"]
    t = got["per_device"]["teacher_activations"]
    assert low <= t < high, f"teacher forward {t} not in [{low}, {high})"


def case_params(work):
    for size in ("2b", "9b", "27b"):
        got = info_json("--config", config(size))["params_total"]
        assert got == params(config(size)), f"{size}: {got} vs {params(config(size))}"


def case_unchanged_without_flags(work):
    j = info_json("--config", config("2b"))
    assert "ranks" not in j and "bytes_per_device" not in j, sorted(j)
    text = info("--config", config("2b")).stdout
    assert "training memory" in text and "memory per device" not in text, text


def case_uneven_split(work):
    for size, ranks in (("9b", 3), ("2b", 7)):
        P, b = params(config(size)), block(params(config(size)), ranks)
        last = P - (ranks - 1) * b
        assert 0 < last < b, f"{size} over {ranks}: blocks {b} and last {last} are not uneven"


def case_per_device(work):
    for s in SETUPS:
        size, ranks, zero, prec, dev, ema, teacher, tprec = s
        got = info_json(*setup_args(s))
        P, bf16 = params(config(size)), prec == "bf16"
        want = expected_state(P, ranks, zero, bf16, dev == "cuda", ema)
        pd = got["per_device"]
        for k, v in want.items():
            assert pd[k] == v, f"{s}: {k} {pd[k]} vs {v}"
        assert pd["state"] == sum(want.values()), f"{s}: state {pd['state']}"
        assert got["ranks"] == ranks and got["zero"] == zero, s
        if zero:
            assert got["shard_params"] == block(P, ranks), f"{s}: shard {got['shard_params']}"
        assert pd["activations"] == got["bytes_activations"], f"{s}: activations differ from the one-process plan"
        in_process = teacher not in (None, "cache")
        tw = params(config(teacher)) * (2 if (tprec or prec) == "bf16" else 4) if in_process else 0
        assert pd["teacher_weights"] == tw, f"{s}: teacher weights {pd['teacher_weights']} vs {tw}"
        if in_process:
            teacher_bounds(s, got)
        else:
            assert pd["teacher_activations"] == 0, s
            assert got["teacher"] == ("cache" if teacher else "none"), got["teacher"]
        total = sum(want.values()) + pd["activations"] + tw + pd["teacher_activations"]
        assert got["bytes_per_device"] == total, f"{s}: total {got['bytes_per_device']} vs {total}"
        assert got["fits"] is None and got["device_memory"] is None, s


def case_fits(work):
    s = SETUPS[0]
    total = info_json(*setup_args(s))["bytes_per_device"]
    gb, gib = total / 1e9, total / GIB
    sizes = [(f"{math.ceil(gb)}GB", math.ceil(gb) * 10 ** 9), (f"{math.floor(gb)}GB", math.floor(gb) * 10 ** 9),
             (f"{math.ceil(gib)}GiB", math.ceil(gib) * GIB), (f"{math.floor(gib)}GiB", math.floor(gib) * GIB),
             (f"{math.ceil(gb)}G", math.ceil(gb) * 10 ** 9), (str(total), total), (str(total - 1), total - 1),
             ("1.5TB", 15 * 10 ** 11)]
    for text, n in sizes:
        got = info_json(*setup_args(s), "--device-memory", text)
        assert got["device_memory"] == n, f"{text}: {got['device_memory']} vs {n}"
        assert got["fits"] == (total <= n), f"{text}: fits {got['fits']} for {total} bytes"
        assert got["bytes_free"] == n - total, f"{text}: bytes_free {got['bytes_free']}"
    out = info(*setup_args(s), "--device-memory", str(total - 1)).stdout
    assert any(l.strip().startswith(f"fits in {total - 1}") and " no: " in l and l.rstrip().endswith(")")
               and "short" in l for l in out.splitlines()), out


def case_usage_errors(work):
    base = ["--config", config("2b")]
    for args, flag in ((["--zero", "2"], "--zero"), (["--zero", "x"], "--zero"), (["--ranks", "0"], "--ranks"),
                       (["--device-memory", "80XB"], "--device-memory"), (["--device-memory", "0"], "--device-memory"),
                       (["--teacher-precision", "bf16"], "--teacher-precision"),
                       (["--teacher", "cache", "--teacher-precision", "fp32"], "--teacher-precision")):
        r = info(*base, *args, check=False)
        assert r.returncode == 2, f"{args}: status {r.returncode}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0], f"{args}: {r.stderr!r}"


def case_9b_zero1_about_47_gib(work):
    got = info_json("--config", config("9b"), "--ranks", "8", "--zero", "1", "--precision", "bf16", "--device",
                    "cuda")
    P = params(config("9b"))
    issue = 9.24e9 * (2 + 2) + 12 * 9.24e9 / 8  # the issue's rounding of P
    state = got["per_device"]["state"]
    assert abs(state - issue) / issue < 0.001, f"{state / GIB:.3f} GiB vs the issue's {issue / GIB:.3f}"
    assert round(state / GIB) == 47, f"{state / GIB:.3f} GiB"
    assert state == 4 * P + 12 * block(P, 8), state


skip = None if os.access(GEMMAKD, os.X_OK) else f"{GEMMAKD} is not built (make gemmakd)"
run_cases(PROGRAM, [(c, skip) for c in (case_params, case_unchanged_without_flags, case_uneven_split, case_per_device,
                                        case_fits, case_usage_errors, case_9b_zero1_about_47_gib)], "gk-info-ranks-")
