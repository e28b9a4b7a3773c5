#!/usr/bin/env python3
"""Interop between gemmakd's HDF5 token shards and h5py + hdf5plugin.

  shards_interop.py write OUT.h5 OUT.json
      (a) Writes a chat shard with h5py in the exact gemmakd layout, zstd
      (filter 32015) at level 5, with chunks of 4096 tokens (not the C writer's
      65536, so the C reader is tested on another chunking). Token and mask
      values come from formulas the C test (tests/test_shards.c) recomputes:
          token(i) = bos_id                                   if i is a document start
                   = ((i * 2654435761 + 12345) mod 2^32) mod vocab_size   otherwise
          mask(i)  = 0 if i is a document start else (i // 7) mod 2
          doc_len(d) = 1 + (d * 7919 + 13) mod 3001,  d = 0 .. n_docs-1
      OUT.json records doc_starts, the attributes and the layout.
      Committed as tests/fixtures/shards/h5py_written.{h5,json}.

  shards_interop.py check SHARD.h5 EXPECT.json
      (b) Reads a shard written by the C code and compares tokens, doc_starts,
      loss_mask, attributes (values and Python types: strings must read as str)
      and layout with EXPECT.json. Prints OK, or each mismatch and exits 1.

Needs h5py and hdf5plugin (importing hdf5plugin registers filter 32015).
"""
import hashlib
import json
import sys

import h5py
import hdf5plugin
import numpy as np

ZSTD_ID = 32015
FORMAT = "gemmakd-tokens"


def fixture_values(n_docs, vocab, bos):
    lengths = [1 + (d * 7919 + 13) % 3001 for d in range(n_docs)]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.uint64)
    n = int(sum(lengths))
    i = np.arange(n, dtype=np.uint64)
    tokens = (((i * np.uint64(2654435761) + np.uint64(12345)) % np.uint64(2**32)) % np.uint64(vocab)).astype(np.uint32)
    mask = ((i // np.uint64(7)) % np.uint64(2)).astype(np.uint8)
    tokens[starts.astype(np.int64)] = bos
    mask[starts.astype(np.int64)] = 0
    return tokens, starts, mask


def write_fixture(out_h5, out_json):
    n_docs, vocab, bos, eos, pad, chunk, clevel = 9, 256000, 2, 1, 0, 4096, 5
    tokens, starts, mask = fixture_values(n_docs, vocab, bos)
    attrs = {
        "format": FORMAT,
        "format_version": 1,
        "tokenizer_sha256": hashlib.sha256(b"gemmakd fixture tokenizer").hexdigest(),
        "vocab_size": vocab,
        "bos_id": bos,
        "eos_id": eos,
        "pad_id": pad,
        "n_tokens": int(tokens.size),
        "n_docs": n_docs,
        "has_loss_mask": 1,
        "source": "scripts/reference/shards_interop.py write (formula fixture)",
        "created_by": "h5py + hdf5plugin (shards_interop.py)",
    }
    with h5py.File(out_h5, "w") as f:
        f.create_dataset("tokens", data=tokens, dtype="<u4", chunks=(chunk,), maxshape=(None,),
                         compression=hdf5plugin.Zstd(clevel=clevel))
        f.create_dataset("doc_starts", data=starts, dtype="<u8")
        f.create_dataset("loss_mask", data=mask, dtype="u1", chunks=(chunk,), maxshape=(None,),
                         compression=hdf5plugin.Zstd(clevel=clevel))
        for k, v in attrs.items():
            if isinstance(v, str):
                f.attrs[k] = v  # variable-length UTF-8
            elif k in ("n_tokens", "n_docs"):
                f.attrs[k] = np.uint64(v)
            elif k == "has_loss_mask":
                f.attrs[k] = np.uint8(v)
            else:
                f.attrs[k] = np.int64(v)
    with open(out_json, "w") as f:
        json.dump({"chunk": chunk, "zstd_level": clevel, "doc_starts": [int(s) for s in starts], "attrs": attrs,
                   "token_formula": "bos_id at document starts, else ((i*2654435761+12345) mod 2^32) mod vocab_size",
                   "mask_formula": "0 at document starts, else (i // 7) mod 2"}, f, indent=1)
        f.write("\n")
    print(f"wrote {out_h5}: {tokens.size} tokens, {n_docs} documents")


def check_shard(path, expect_json):
    with open(expect_json) as f:
        want = json.load(f)
    bad = []
    with h5py.File(path, "r") as f:
        for name, value in want["attrs"].items():
            if name not in f.attrs:
                bad.append(f"attribute {name} missing")
                continue
            got = f.attrs[name]
            if isinstance(value, str):
                if not isinstance(got, str):
                    bad.append(f"attribute {name} reads as {type(got).__name__}, expected str")
                elif got != value:
                    bad.append(f"attribute {name} = {got!r}, expected {value!r}")
            elif not isinstance(got, np.integer) or int(got) != value:
                bad.append(f"attribute {name} = {got!r}, expected integer {value}")
        checks = [("tokens", "<u4", want["tokens"]), ("doc_starts", "<u8", want["doc_starts"])]
        if want.get("loss_mask") is not None:
            checks.append(("loss_mask", "|u1", want["loss_mask"]))
        elif "loss_mask" in f:
            bad.append("/loss_mask exists but none was expected")
        for name, dtype, values in checks:
            if name not in f:
                bad.append(f"/{name} missing")
                continue
            d = f[name]
            if d.dtype.str != dtype:
                bad.append(f"/{name} dtype {d.dtype.str}, expected {dtype}")
            a = d[...]
            b = np.asarray(values, dtype=np.uint64)
            if a.shape != b.shape:
                bad.append(f"/{name} shape {a.shape}, expected {b.shape}")
            elif not np.array_equal(a.astype(np.uint64), b):
                i = int(np.argmax(a.astype(np.uint64) != b))
                bad.append(f"/{name}[{i}] = {a[i]}, expected {b[i]}")
        for name in ["tokens"] + (["loss_mask"] if want.get("loss_mask") is not None else []):
            if name not in f:
                continue
            d = f[name]
            if d.chunks != (want["chunk"],):
                bad.append(f"/{name} chunks {d.chunks}, expected ({want['chunk']},)")
            if d.maxshape != (None,):
                bad.append(f"/{name} maxshape {d.maxshape}, expected (None,)")
            filters = d.id.get_create_plist()
            found = [filters.get_filter(i) for i in range(filters.get_nfilters())]
            zstd = [fl for fl in found if fl[0] == ZSTD_ID]
            if not zstd:
                bad.append(f"/{name} has filters {[fl[0] for fl in found]}, expected {ZSTD_ID}")
            elif tuple(zstd[0][2]) != (want["zstd_level"],):
                bad.append(f"/{name} zstd cd_values {zstd[0][2]}, expected ({want['zstd_level']},)")
    if bad:
        for line in bad:
            print("MISMATCH:", line)
        return 1
    print("OK")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "write":
        write_fixture(argv[2], argv[3])
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check_shard(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
