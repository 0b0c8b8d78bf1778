#!/usr/bin/env python3
"""Checks that a backprop auto-encoder checkpoint is readable by PyTorch.

It parses the safetensors file by hand (the `safetensors` package is not
needed): the 8-byte little-endian header length, the JSON header, the raw
little-endian tensor bytes. It loads "encoder.*" and "decoder.*" into
torch.nn.Linear modules through torch.frombuffer, then

  1. checks the names, dtypes and nn.Linear (out, in) shapes, and that the
     optimizer state (Adam's step as I64, exp_avg, exp_avg_sq) is readable;
  2. compares PyTorch's reconstructions with Go's, as written by
     `backprop reconstruct --tensors FILE` (the shown test images and their
     reconstructions), element by element;
  3. recomputes the test reconstruction error over the whole MNIST test set
     and compares it with the value recorded in the checkpoint's metadata.

    go run ./cmd/backprop reconstruct --checkpoint runs/autoencoder/checkpoint.safetensors \\
        --n 16 --out /tmp/recon.png --tensors /tmp/recon.safetensors
    /usr/bin/python3 bench/autoencoder/check_checkpoint.py runs/autoencoder/checkpoint.safetensors /tmp/recon.safetensors

Exits non-zero if any check fails.
"""

import argparse
import os
import sys

import torch

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_torch import AE, find_mnist_dir, read_images, read_safetensors, test_error  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("go_tensors", help="output of `backprop reconstruct --tensors FILE`")
    ap.add_argument("--data-dir", help="MNIST-layout IDX directory (default: GoMNIST in the Go module cache)")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest allowed |PyTorch - Go| per pixel")
    args = ap.parse_args()
    torch.set_num_threads(2)
    failed = []

    t, meta = read_safetensors(args.checkpoint)
    inp, hidden = int(meta["input_size"]), int(meta["hidden_size"])
    print(f"{args.checkpoint}: {len(t)} tensors; model {meta.get('model')}, {inp} -> {hidden} -> {inp}, "
          f"epoch {meta.get('epoch')}, dataset {meta.get('dataset')}, test_error {meta.get('test_error')}")
    want = {"encoder.weight": [hidden, inp], "encoder.bias": [hidden], "decoder.weight": [inp, hidden], "decoder.bias": [inp]}
    for name, shape in want.items():
        got = list(t[name].shape) if name in t else None
        ok = got == shape and t[name].dtype == torch.float32
        print(f"  {name:16s} {str(got):12s} {'ok' if ok else 'WRONG, want F32 ' + str(shape)}")
        if not ok:
            failed.append(name)
    opt = sorted(k for k in t if k.startswith("optimizer."))
    steps = {k: t[k].item() for k in opt if k.endswith(".step")}
    print(f"  optimizer state: {len(opt)} tensors, e.g. {opt[:3]}; steps {set(steps.values()) or '-'}")

    # Load into torch.nn.Linear through a state dict with PyTorch's own names.
    model = AE(inp, hidden)
    model.load_state_dict({k: t[k] for k in want}, strict=True)
    model.eval()

    g, _ = read_safetensors(args.go_tensors)
    x, go_rec = g["images"], g["reconstructions"]
    with torch.no_grad():
        pt_rec = model(x)
    diff = (pt_rec - go_rec).abs().max().item()
    sse_pt = ((pt_rec - x) ** 2).sum(1)
    sse_go = ((go_rec - x) ** 2).sum(1)
    print(f"reconstructions of {len(x)} test images: max |PyTorch - Go| = {diff:.3g} (tolerance {args.tol:g})")
    for i in range(min(4, len(x))):
        print(f"  image {i}: SSE PyTorch {sse_pt[i].item():.6f}, Go {sse_go[i].item():.6f}")
    if not diff <= args.tol:
        failed.append("reconstructions")

    directory = args.data_dir or find_mnist_dir()
    xtest, _, _ = read_images(directory, "t10k")
    err = test_error(model, xtest)
    rec = float(meta.get("test_error", "nan"))
    rel = abs(err - rec) / rec
    print(f"test error over {len(xtest)} images: PyTorch {err:.6f}, recorded by Go {rec:.6f} (relative difference {rel:.2g})")
    if not rel <= 1e-5:
        failed.append("test error")

    if failed:
        sys.exit(f"FAILED: {', '.join(failed)}")
    print("OK: the checkpoint loads into torch.nn.Linear and reproduces Go's reconstructions")


if __name__ == "__main__":
    main()
