#!/usr/bin/python3
"""Compare regenerated golden files with the committed ones.

    golden_diff.py COMMITTED_DIR WORKTREE_DIR PATH...

For each PATH (relative to both directories): identical bytes pass; JSON
files are compared value by value (numbers by relative difference, arrays
of numbers relative to their largest magnitude, other values exactly) and
safetensors files tensor by tensor. Numbers under keys
that only record how a file was made or measured (versions, platform,
torch_version, measured spreads and the tolerances derived from them) are
reported but never fail. Anything else that differs by more than --rtol
(default 1e-12, float64 summation-order noise) and by more than 1e-14
absolute fails. Exit status 1 if any
file fails.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

# Differences this small are rounding noise around zero (a gradient that is
# mathematically 0, as a bias's ahead of BatchNorm): far below every test's
# tolerance, and meaningless relative to a tensor made only of such noise.
ATOL = 1e-14
INFO_KEYS = {"versions", "torch_version", "platform", "spread", "tol", "float32_max_rel_dev",
             "step1_float32_max_rel_err", "made_by", "torch", "python", "numpy", "machine"}


def numbers(v):
    """The numbers of a nested list, flattened, or None if it holds anything else."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return [v]
    if isinstance(v, list):
        flat = []
        for x in v:
            n = numbers(x)
            if n is None:
                return None
            flat.extend(n)
        return flat
    return None


def walk(a, b, path, out, info):
    na, nb = (numbers(a), numbers(b)) if isinstance(a, list) else (None, None)
    if na is not None and nb is not None and len(na) == len(nb) and na:
        # A tensor: differences relative to its largest magnitude, so that
        # rounding noise around a value that is mathematically zero does not
        # count as a large relative change.
        scale = max(max(abs(x) for x in na), max(abs(x) for x in nb))
        for i, (x, y) in enumerate(zip(na, nb)):
            if x != y:
                rel = 0.0 if abs(x - y) <= ATOL else abs(x - y) / scale
                out.append((path + "[%d]" % i, "%r → %r (tensor scale %.3g)" % (x, y, scale), rel))
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = path + "/" + str(k)
            if k not in a or k not in b:
                out.append((p, "only in %s" % ("new" if k not in a else "committed"), float("inf")))
                continue
            walk(a[k], b[k], p, info if k in INFO_KEYS else out, info)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append((path, "length %d → %d" % (len(a), len(b)), float("inf")))
            return
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, path + "[%d]" % i, out, info)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if a != b:
            rel = 0.0 if abs(a - b) <= ATOL else abs(a - b) / max(abs(a), abs(b))
            out.append((path, "%r → %r" % (a, b), rel))
    elif a != b:
        out.append((path, "%r → %r" % (a, b), float("inf")))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    kinds = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "U8": "u1"}
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        tensors[name] = np.frombuffer(data[lo:hi], dtype=kinds[e["dtype"]]).astype(np.float64).tolist()
    return {"__metadata__": header.get("__metadata__", {}), "tensors": tensors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("committed")
    ap.add_argument("new")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--rtol", type=float, default=1e-12)
    args = ap.parse_args()
    failed = 0
    for p in args.paths:
        old_p, new_p = os.path.join(args.committed, p), os.path.join(args.new, p)
        if not os.path.exists(old_p) or not os.path.exists(new_p):
            print("FAIL  %s: %s" % (p, "not committed" if not os.path.exists(old_p) else "not regenerated"))
            failed += 1
            continue
        with open(old_p, "rb") as f:
            old = f.read()
        with open(new_p, "rb") as f:
            new = f.read()
        if old == new:
            print("same  %s (byte for byte)" % p)
            continue
        if p.endswith(".json"):
            a, b = json.loads(old), json.loads(new)
        elif p.endswith(".safetensors"):
            a, b = read_safetensors(old_p), read_safetensors(new_p)
        else:
            print("FAIL  %s: bytes differ (%d → %d bytes)" % (p, len(old), len(new)))
            failed += 1
            continue
        out, info = [], []
        walk(a, b, "", out, info)
        worst = max(out, key=lambda d: d[2]) if out else None
        if worst is None or worst[2] <= args.rtol:
            note = ""
            if worst and worst[2] > 0:
                note = "; largest relative difference %.2g at %s" % (worst[2], worst[0])
            elif worst:
                note = "; the values that moved did so by at most %g absolute" % ATOL
            print("close %s (values within %g%s; %d informational differences)" % (p, args.rtol, note, len(info)))
            continue
        failed += 1
        bad = [d for d in out if d[2] > args.rtol]
        print("FAIL  %s: %d values differ by more than %g, worst %s: %s" % (p, len(bad), args.rtol, worst[0], worst[1]))
        for d in bad[:5]:
            print("        %s: %s" % (d[0], d[1]))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
