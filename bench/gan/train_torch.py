#!/usr/bin/env python3
"""The reference DCGAN of backprop's package gan, trained the same way in PyTorch.

Same models (layer for layer, same biases, same state_dict names), same
initialization law (DCGAN's N(0, 0.02)), same recipe (Adam lr 2e-4, betas
(0.5, 0.999), batch 64 with the last incomplete batch dropped, z ~ N(0, 1) of
size 100, images in [-1, 1], BCE-with-logits for D on real (1) and fake (0),
the non-saturating loss for G on the same fake batch), same order of
operations within a step. The random streams differ, so the runs are
comparable in distribution, not bit for bit.

After the epochs listed in --save-epochs it writes N samples drawn with the
generator in evaluation mode (BatchNorm running statistics, as `backprop
sample` does) to OUT/samples-epochE.idx.gz, an IDX file of unsigned bytes in
MNIST's format that `backprop eval --samples` reads. Seconds per epoch
(training only, sampling excluded) go to stdout and OUT/epochs.tsv.

Usage:
  train_torch.py --data DIR --epochs 5 --out OUT [--seed 1] [--threads 2]
DIR holds train-images-idx3-ubyte[.gz] (MNIST layout).
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Z_DIM = 100


def read_idx(path):
    """Reads an IDX file of unsigned bytes (plain or gzipped) into a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, dimensions {dims} need {int(np.prod(dims))}")
    return data.reshape(dims)


def write_idx_gz(path, images):
    """Writes uint8 images (N, H, W) as a gzipped IDX file, atomically."""
    n, h, w = images.shape
    tmp = path + ".tmp"
    with gzip.open(tmp, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, 3))
        f.write(struct.pack(">III", n, h, w))
        f.write(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    os.replace(tmp, path)


def find(dirname, base):
    for name in (base, base + ".gz"):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{dirname}: no {base}[.gz]")


def generator():
    return nn.Sequential(
        nn.Linear(Z_DIM, 128 * 7 * 7, bias=False),
        nn.BatchNorm1d(128 * 7 * 7),
        nn.ReLU(),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=True),
        nn.Tanh(),
    )


def discriminator():
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1, bias=True),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1, bias=True),
    )


def dcgan_init(m):
    """DCGAN's weights_init: N(0, 0.02) weights, BatchNorm γ ~ N(1, 0.02), β = 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@torch.no_grad()
def sample(g, n, seed):
    """n images in [0, 255] from g in evaluation mode, noise from its own generator."""
    was = g.training
    g.eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for lo in range(0, n, 256):
        z = torch.randn(min(256, n - lo), Z_DIM, generator=gen)
        x = (g(z) + 1) / 2
        out.append(torch.round(x.clamp(0, 1) * 255).to(torch.uint8)[:, 0].numpy())
    g.train(was)
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="directory of MNIST-layout IDX files")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-epochs", default="1,3,5", help="epochs after which samples are written")
    ap.add_argument("--n-samples", type=int, default=10000)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    save_epochs = {int(e) for e in a.save_epochs.split(",") if e}

    imgs = read_idx(find(a.data, "train-images-idx3-ubyte"))
    if a.limit > 0:
        imgs = imgs[: a.limit]
    x_all = torch.from_numpy(imgs.astype(np.float32) / 255.0 * 2 - 1).unsqueeze(1)
    n = x_all.shape[0]
    steps = n // a.batch

    g, d = generator(), discriminator()
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    log = open(os.path.join(a.out, "epochs.tsv"), "w")
    log.write("epoch\tseconds\tsteps\tmean_d_loss\tmean_g_loss\n")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n} images, {steps} steps/epoch", flush=True)
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        d_sum = g_sum = 0.0
        for s in range(steps):
            real = x_all[perm[s * a.batch:(s + 1) * a.batch]]
            b = real.shape[0]
            ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
            z = torch.randn(b, Z_DIM)

            opt_d.zero_grad()
            out_real = d(real)
            loss_real = F.binary_cross_entropy_with_logits(out_real, ones)
            loss_real.backward()
            fake = g(z)
            out_fake = d(fake.detach())
            loss_fake = F.binary_cross_entropy_with_logits(out_fake, zeros)
            loss_fake.backward()
            opt_d.step()

            opt_g.zero_grad()
            out_gen = d(fake)
            loss_g = F.binary_cross_entropy_with_logits(out_gen, ones)
            loss_g.backward()
            opt_g.step()

            dl, gl = loss_real.item() + loss_fake.item(), loss_g.item()
            if not (np.isfinite(dl) and np.isfinite(gl)):
                sys.exit(f"non-finite loss at epoch {epoch}, step {s + 1}: D {dl}, G {gl}")
            d_sum += dl
            g_sum += gl
            if (s + 1) % 100 == 0:
                print(f"epoch {epoch} step {s + 1}/{steps} D {dl:.3f} G {gl:.3f} "
                      f"D(x) {torch.sigmoid(out_real).mean():.2f} D(G(z)) {torch.sigmoid(out_fake).mean():.2f} "
                      f"{(s + 1) / (time.perf_counter() - t0):.2f} steps/s", flush=True)
        took = time.perf_counter() - t0
        print(f"epoch {epoch}/{a.epochs}: {steps} steps in {took:.1f} s ({steps / took:.2f} steps/s), "
              f"mean D loss {d_sum / steps:.4f}, mean G loss {g_sum / steps:.4f}", flush=True)
        log.write(f"{epoch}\t{took:.2f}\t{steps}\t{d_sum / steps:.5f}\t{g_sum / steps:.5f}\n")
        log.flush()
        if epoch in save_epochs:
            path = os.path.join(a.out, f"samples-epoch{epoch}.idx.gz")
            write_idx_gz(path, sample(g, a.n_samples, a.seed + 1000 + epoch))
            torch.save({"G": g.state_dict(), "D": d.state_dict()}, os.path.join(a.out, f"checkpoint-epoch{epoch}.pt"))
            print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
