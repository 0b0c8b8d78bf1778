#!/usr/bin/env python3
"""Loads the weights `backprop export --pytorch DIR` wrote into PyTorch, strictly.

For every DIR/*.safetensors it builds the module of DIR/model.py the file names
(Generator, Discriminator, AutoEncoder or Classifier) and calls
load_state_dict(strict=True): a missing or unexpected key, or a shape that does
not fit, fails. With --check NAME=TESTDIR it also runs the loaded module (in
evaluation mode) on the input of an ONNX backend-test directory written by
`backprop export --onnx ... --model NAME --test-data TESTDIR` from the same
checkpoint and compares with backprop's output there, so the weights are not
only accepted but compute what backprop computes. With --checkpoint CK it shows
that the training checkpoint itself is refused by a strict load into the first
module (it also holds the optimizer state and the run's progress).

    backprop export --pytorch torch-weights --checkpoint runs/gan/checkpoint.safetensors
    backprop export --onnx g.onnx --checkpoint runs/gan/checkpoint.safetensors --test-data g-test
    /usr/bin/python3 scripts/pytorch/load_strict.py torch-weights --check generator=g-test

Exits non-zero if a load or a comparison fails.
"""
import argparse
import glob
import os
import sys

sys.dont_write_bytecode = True


def read_pb(path):
    """A TensorProto file as a torch tensor (python3-onnx reads it)."""
    import onnx
    import onnx.numpy_helper
    import torch

    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return torch.from_numpy(onnx.numpy_helper.to_array(t).copy())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="directory written by backprop export --pytorch")
    ap.add_argument("--check", action="append", default=[], metavar="NAME=TESTDIR",
                    help="compare NAME's output with an ONNX backend-test directory of the same checkpoint")
    ap.add_argument("--checkpoint", help="also try a strict load of this training checkpoint (expected to fail)")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest allowed |PyTorch - backprop| (default 1e-5)")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    sys.path.insert(0, os.path.abspath(a.dir))
    import model

    failed = 0
    loaded, metas = {}, {}
    files = sorted(glob.glob(os.path.join(a.dir, "*.safetensors")))
    if not files:
        sys.exit(f"{a.dir}: no .safetensors files")
    for path in files:
        tensors, meta = model.read_safetensors(path)
        try:
            m = model.load(path)
        except Exception as e:  # noqa: BLE001 - report every failure
            print(f"FAIL  {path}: {meta.get('class')}: {e}")
            failed += 1
            continue
        n = sum(p.numel() for p in m.parameters())
        print(f"ok    {path}: {meta['class']}({meta.get('kwargs', '{}')}) load_state_dict(strict=True) "
              f"accepted {len(tensors)} tensors, {n} parameters")
        loaded[meta["model"]] = m
        metas[meta["model"]] = meta

    for spec in a.check:
        name, _, testdir = spec.partition("=")
        if name not in loaded:
            print(f"FAIL  --check {spec}: no {name} weights in {a.dir}")
            failed += 1
            continue
        x = read_pb(os.path.join(testdir, "test_data_set_0", "input_0.pb"))
        want = read_pb(os.path.join(testdir, "test_data_set_0", "output_0.pb"))
        # a class-conditional network's second input: the classes (int64)
        extra = [read_pb(p) for p in sorted(glob.glob(os.path.join(testdir, "test_data_set_0", "input_[1-9].pb")))]
        with torch.no_grad():
            got = loaded[name](x, *extra)
        diff = (got - want).abs().max().item()
        ok = got.shape == want.shape and diff <= a.tol
        print(f"{'ok' if ok else 'FAIL':5s} {name} on {testdir}'s input {list(x.shape)}: output {list(got.shape)}, "
              f"max |PyTorch - backprop| = {diff:.3g} (tolerance {a.tol:g})")
        failed += not ok

    if a.checkpoint:
        # Every tensor of the checkpoint by name and shape (its header), as a
        # state dict: the strict load names what does not belong.
        import json
        import struct

        with open(a.checkpoint, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        sd = {k: torch.zeros(v["shape"]) for k, v in header.items()}
        m = model.build(next(iter(metas.values())))
        try:
            m.load_state_dict(sd, strict=True)
            print(f"FAIL  {a.checkpoint}: the training checkpoint loaded strictly as well")
            failed += 1
        except RuntimeError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            print(f"ok    {a.checkpoint} itself ({len(sd)} tensors) is refused by a strict load into {m.__class__.__name__}, "
                  f"as it should: {' '.join(lines[1:])[:200]}...")

    print("all loads strict" + (", outputs equal" if a.check else "") if not failed else f"{failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
