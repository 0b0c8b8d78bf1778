#!/usr/bin/env python3
"""Summarises a `backprop eval` table of many seeds per engine (seeds.sh's eval-DATASET.md):
Inception Score and Fréchet distance after each epoch, per engine.

    python3 bench/gan/seeds.py OUT/eval-mnist.md [--rows]

Rows of the input are named "backprop seed S epoch E" and "PyTorch seed S epoch E". Prints,
as markdown and per epoch: each engine's mean, standard deviation and the seeds' values; then
backprop's mean minus PyTorch's with the standard error of that difference (the runs are
independent: the engines draw different random numbers) and on how many seeds backprop's
IS is the higher one. Standard library only.
"""

import math
import re
import statistics as st
import sys

ROW = re.compile(r"^\| (backprop|PyTorch) seed (\d+) epoch (\d+) \| \d+ \| ([0-9.]+) ± [0-9.]+ \| ([0-9.]+) \|")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    rows = {}
    with open(args[0]) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                rows[(m.group(1), int(m.group(3)), int(m.group(2)))] = (float(m.group(4)), float(m.group(5)))
    epochs = sorted({e for _, e, _ in rows})
    if not epochs:
        sys.exit(f"{args[0]}: no rows named 'backprop|PyTorch seed S epoch E'")
    print("| epoch | engine | seeds | IS mean ± sd | FD mean ± sd |" + (" IS per seed |" if "--rows" in sys.argv else ""))
    print("|---:|---|---:|---:|---:|" + ("---|" if "--rows" in sys.argv else ""))
    diffs = []
    for e in epochs:
        vals = {}
        for side in ("backprop", "PyTorch"):
            seeds = sorted(s for k, ep, s in rows if k == side and ep == e)
            if len(seeds) < 2:
                continue
            isv = [rows[(side, e, s)][0] for s in seeds]
            fd = [rows[(side, e, s)][1] for s in seeds]
            vals[side] = dict(zip(seeds, isv))
            line = f"| {e} | {side} | {len(seeds)} | {st.mean(isv):.3f} ± {st.stdev(isv):.3f} | {st.mean(fd):.1f} ± {st.stdev(fd):.1f} |"
            if "--rows" in sys.argv:
                line += " " + " / ".join(f"{s}: {v:.2f}" for s, v in zip(seeds, isv)) + " |"
            print(line)
        if len(vals) == 2:
            b, p = list(vals["backprop"].values()), list(vals["PyTorch"].values())
            d = st.mean(b) - st.mean(p)
            se = math.sqrt(st.variance(b) / len(b) + st.variance(p) / len(p))
            common = sorted(set(vals["backprop"]) & set(vals["PyTorch"]))
            higher = sum(vals["backprop"][s] > vals["PyTorch"][s] for s in common)
            diffs.append((e, d, se, higher, len(common)))
    print("\n| epoch | IS backprop − PyTorch | standard error | in standard errors | backprop higher, same seed number |")
    print("|---:|---:|---:|---:|---:|")
    for e, d, se, higher, n in diffs:
        print(f"| {e} | {d:+.3f} | {se:.3f} | {d / se:+.2f} | {higher} of {n} |")


if __name__ == "__main__":
    main()
