"""Per-tensor relative difference of two safetensors files (float32 tensors):
||a - b|| / ||b|| for each tensor name they share; prints the largest as
"MAX NAME" (0 when identical). With --exact, prints the names whose bytes
differ instead. Standard library only: the tests run it with any python3.

usage: python3 tensor_diff.py A.safetensors B.safetensors [--exact]
"""
import json
import math
import struct
import sys
from array import array


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {t['dtype']}, not F32")
        a, b = t["data_offsets"]
        out[name] = body[a:b]
    return out


def relative(x, y):
    a, b = array("f"), array("f")
    a.frombytes(x)
    b.frombytes(y)
    diff = math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b)))
    norm = math.sqrt(sum(q * q for q in b))
    return diff / norm if norm else diff


def main():
    ta, tb = tensors(sys.argv[1]), tensors(sys.argv[2])
    if set(ta) != set(tb):
        sys.exit(f"tensor names differ: {sorted(set(ta) ^ set(tb))[:5]}")
    if "--exact" in sys.argv[3:]:
        print(" ".join(name for name in sorted(ta) if ta[name] != tb[name]))
        return
    worst = max((relative(ta[k], tb[k]), k) for k in ta)
    print(f"{worst[0]:.3g} {worst[1]}")


main()
