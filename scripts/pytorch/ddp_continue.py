#!/usr/bin/env python3
"""Continues a backprop auto-encoder run in PyTorch's DistributedDataParallel.

Start it with torchrun; the gloo backend runs on CPUs, so two processes on one
machine stand in for two machines:

    backprop export --pytorch torch-ae --checkpoint runs/autoencoder/checkpoint.safetensors --loss-batch 64
    torchrun --nproc_per_node 2 scripts/pytorch/ddp_continue.py --weights torch-ae/autoencoder.safetensors \\
        --expect torch-ae/backprop_loss.json --steps 5

Each process loads the weights with load_state_dict(strict=True) into
model.py's AutoEncoder (the model.py beside the weights), wraps it in
DistributedDataParallel and trains on its half of each batch: batch k is the
training images first + k*count ... first + (k+1)*count - 1 of the run's data
set (backprop_loss.json names them), rank r takes the r-th contiguous slice.
The loss is backprop's, the per-image sum of squared errors averaged over the
images; DDP averages the gradients of the equal halves, which is the gradient
of the whole batch's loss, and the processes' losses averaged (all_reduce) are
the whole batch's loss.

The first step's loss is computed before any update, on the batch backprop's
loss was recorded for: the script prints both and fails if they differ by more
than --rtol (float32 arithmetic, summed in different orders). Every --expect
file is compared (for instance the one the export wrote and the one committed
in scripts/pytorch/testdata). The optimizer is the run's (Adam or SGD with its
learning rate, from the JSON) with fresh moments: the weights-only export does
not carry the checkpoint's optimizer state. After the steps it checks that the
two replicas hold the same weights and, with --out, writes them in the same
weights-only format (model.load reads it).
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

sys.dont_write_bytecode = True


def read_idx(path):
    """An IDX file of unsigned bytes (plain or gzipped) as a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def images_file(rec):
    """The training images the record names, or MNIST's from the Go module cache."""
    if os.path.exists(rec["images_file"]):
        return rec["images_file"]
    if rec["dataset"].lower() == "mnist":
        cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True).stdout.strip()
        base = os.path.join(cache, "github.com", "petar")
        for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            p = os.path.join(base, d, "data", "train-images-idx3-ubyte.gz")
            if os.path.exists(p):
                return p
    sys.exit(f"{rec['images_file']}: not found (data set {rec['dataset']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="autoencoder.safetensors written by backprop export --pytorch")
    ap.add_argument("--expect", action="append", required=True, metavar="JSON",
                    help="backprop_loss.json written by backprop export --pytorch --loss-batch N (repeatable)")
    ap.add_argument("--steps", type=int, default=5, help="training steps (default 5)")
    ap.add_argument("--rtol", type=float, default=1e-5, help="largest relative difference of the first loss (default 1e-5)")
    ap.add_argument("--out", help="write the trained weights here (rank 0)")
    a = ap.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    sys.path.insert(0, os.path.dirname(os.path.abspath(a.weights)))
    import model

    recs = [json.load(open(p)) for p in a.expect]
    rec = recs[0]
    if rec["model"] != "autoencoder":
        sys.exit(f"{a.expect[0]}: model {rec['model']}; this script continues auto-encoder runs")
    first, count = rec["first"], rec["count"]
    if count % world:
        sys.exit(f"a batch of {count} images does not split into {world} equal parts")
    per = count // world

    net = model.load(a.weights).train()
    ddp = DDP(net)
    if rec["optimizer"] == "sgd":
        opt = torch.optim.SGD(ddp.parameters(), lr=rec["lr"], momentum=rec["momentum"])
    else:
        opt = torch.optim.Adam(ddp.parameters(), lr=rec["lr"])

    imgs = read_idx(images_file(rec))
    x_all = torch.from_numpy(imgs.reshape(len(imgs), -1).astype(np.float32)) / 255
    say = print if rank == 0 else (lambda *_, **__: None)
    say(f"{world} processes (gloo); weights {a.weights} loaded strictly into AutoEncoder"
        f"({net.encoder.in_features}, {net.encoder.out_features}); batch {count} = {world} x {per} images; "
        f"{rec['optimizer']} lr {rec['lr']:g}")

    failed = False
    for step in range(a.steps):
        lo = first + step * count + rank * per
        x = x_all[lo:lo + per]
        if len(x) < per:
            say(f"the training set ends before step {step + 1}")
            break
        rec_x = ddp(x)
        loss = ((rec_x - x) ** 2).sum() / per  # backprop's loss on this process's half
        total = loss.detach().clone()
        dist.all_reduce(total)  # sum over processes
        total /= world  # = the whole batch's loss: equal halves
        opt.zero_grad()
        loss.backward()  # DDP averages the gradients over the processes
        opt.step()
        line = f"step {step + 1}: loss {total.item():.7f} (images {first + step * count}..{first + (step + 1) * count - 1})"
        if step == 0:
            for path, r in zip(a.expect, recs):
                diff = abs(total.item() - r["loss"])
                ok = (r["first"], r["count"]) == (first, count) and diff <= a.rtol * abs(r["loss"])
                failed |= not ok
                line += (f"\n        backprop's loss on the same batch ({path}, checkpoint step {r['step']}): {r['loss']:.7f}; "
                         f"|difference| {diff:.2g} (relative {diff / abs(r['loss']):.2g}) {'EQUAL' if ok else 'DIFFERENT'}")
        say(line)

    # The replicas must hold the same weights after the steps.
    worst = torch.zeros(())
    for p in net.parameters():
        q = p.detach().clone()
        dist.broadcast(q, 0)
        worst = torch.maximum(worst, (q - p.detach()).abs().max())
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    say(f"replicas after {a.steps} steps: largest weight difference between processes {worst.item():.2g}")
    failed |= worst.item() != 0
    if rank == 0 and a.out:
        _, meta = model.read_safetensors(a.weights)
        model.write_safetensors(a.out, net.state_dict(), meta)
        say(f"wrote {a.out} (model.load reads it)")
    dist.destroy_process_group()
    if failed:
        sys.exit(1)
    say("first step's loss equal to backprop's")


if __name__ == "__main__":
    main()
