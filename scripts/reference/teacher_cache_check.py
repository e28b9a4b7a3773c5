#!/usr/bin/env python3
"""Reads a gemmakd teacher cache with h5py + hdf5plugin and checks its layout.

  teacher_cache_check.py CACHE_DIR

For every segment file CACHE_DIR/*.h5 (format: distill/teacher_cache.h):
  * root attributes present with the documented types (strings read as str),
    format "gemmakd-teacher-cache", format_version 1;
  * /ids uint32 and /logprobs float16|float32 of shape [n_windows*seq_len, k],
    top-k: /leftover float32 [rows]; sample: /counts uint8|uint16 [rows, k];
    chunked, filters shuffle + zstd (32015);
  * values: ids < vocab_size; top-k: log-probs non-increasing along a row and
    sum(exp(logprobs)) + leftover = 1 (within the float16 rounding);
    sample: counts sum to k, used slots first, unused slots (count 0) have id 0.
Prints "OK " and a JSON object {file name: {"rows", "ids_sum", "logprobs_sum",
"leftover_sum" | "counts_sum"}} (sums in float64, for the C test to compare
with its reader), or one line per problem and exits 1.
"""
import glob
import json
import os
import sys

import h5py
import hdf5plugin  # noqa: F401  (registers filter 32015)
import numpy as np

STR_ATTRS = ["format", "method", "teacher", "teacher_sha256", "tokenizer_sha256", "token_shard",
             "token_shard_sha256", "created_by"]
INT_ATTRS = ["format_version", "k", "seq_len", "vocab_size", "first_window", "n_windows", "shard_windows",
             "segment_windows"]
FLOAT_ATTRS = ["temperature", "final_softcap"]


def check_file(path, problems):
    name = os.path.basename(path)

    def bad(msg):
        problems.append(f"{name}: {msg}")

    with h5py.File(path, "r") as f:
        a = f.attrs
        for key in STR_ATTRS:
            if not isinstance(a.get(key), str):
                bad(f"attribute {key} is {type(a.get(key)).__name__}, expected str")
        for key in INT_ATTRS:
            if not isinstance(a.get(key), (np.integer, int)):
                bad(f"attribute {key} is {type(a.get(key)).__name__}, expected an integer")
        for key in FLOAT_ATTRS:
            if not isinstance(a.get(key), (np.floating, float)):
                bad(f"attribute {key} is {type(a.get(key)).__name__}, expected a float")
        if problems:
            return None
        if a["format"] != "gemmakd-teacher-cache" or a["format_version"] != 1:
            bad(f"format {a['format']!r} version {a['format_version']}")
        method, k, vocab = a["method"], int(a["k"]), int(a["vocab_size"])
        rows = int(a["n_windows"]) * int(a["seq_len"])
        if method == "sample" and not isinstance(a.get("seed"), (np.integer, int)):
            bad("sample cache without an integer seed attribute")
        ids, lp = f["ids"], f["logprobs"]
        if ids.dtype != np.uint32 or ids.shape != (rows, k):
            bad(f"/ids is {ids.dtype} {ids.shape}, expected uint32 {(rows, k)}")
        if lp.dtype not in (np.float16, np.float32) or lp.shape != (rows, k):
            bad(f"/logprobs is {lp.dtype} {lp.shape}, expected float16/float32 {(rows, k)}")
        for ds in (ids, lp):
            if ds.chunks is None or ds.chunks[1] != k or ds.chunks[0] % int(a["seq_len"]) and ds.chunks[0] != rows:
                bad(f"/{ds.name} chunks {ds.chunks} do not hold whole windows")
            if not ds.shuffle or "32015" not in str(ds._filters):
                bad(f"/{ds.name} filters {ds._filters}, expected shuffle + zstd (32015)")
        if problems:
            return None
        ids_v = ids[...].astype(np.int64)
        lp_v = lp[...].astype(np.float64)
        if ids_v.max() >= vocab:
            bad(f"an id {ids_v.max()} >= vocab_size {vocab}")
        out = {"rows": rows, "ids_sum": int(ids_v.sum()), "logprobs_sum": float(lp_v.sum())}
        if method == "topk":
            left = f["leftover"]
            if left.dtype != np.float32 or left.shape != (rows,):
                bad(f"/leftover is {left.dtype} {left.shape}")
                return None
            left_v = left[...].astype(np.float64)
            if np.any(np.diff(lp_v, axis=1) > 0):
                bad("top-k log-probs are not sorted in descending order")
            total = np.exp(lp_v).sum(axis=1) + left_v
            tol = 2e-3 if lp.dtype == np.float16 else 1e-4
            if np.max(np.abs(total - 1)) > tol:
                bad(f"sum(exp(logprobs)) + leftover is off 1 by {np.max(np.abs(total - 1)):.3g}")
            out["leftover_sum"] = float(left_v.sum())
        else:
            c = f["counts"]
            if c.dtype not in (np.uint8, np.uint16) or c.shape != (rows, k):
                bad(f"/counts is {c.dtype} {c.shape}")
                return None
            c_v = c[...].astype(np.int64)
            if np.any(c_v.sum(axis=1) != k):
                bad("a row's counts do not sum to k")
            used = c_v > 0
            if np.any(~used[:, :-1] & used[:, 1:]):
                bad("an unused slot comes before a used one")
            if np.any(ids_v[~used] != 0) or np.any(lp_v[~used] != 0):
                bad("an unused slot has a non-zero id or log-prob")
            out["counts_sum"] = int(c_v.sum())
        return out


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    files = sorted(glob.glob(os.path.join(sys.argv[1], "*.h5")))
    problems, digest = [], {}
    if not files:
        problems.append(f"no *.h5 files in {sys.argv[1]}")
    for path in files:
        d = check_file(path, problems)
        if d is not None:
            digest[os.path.basename(path)] = d
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("OK " + json.dumps(digest))


if __name__ == "__main__":
    main()
