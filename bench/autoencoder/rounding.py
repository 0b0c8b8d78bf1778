"""Which float32 engine stays closer to exact arithmetic: backprop or PyTorch?

For each seed and step count K it trains the auto-encoder for K Adam steps
(batch 64, --limit 64·K images, one epoch) three times from the same
initial weights and batches (backprop's random numbers, as --go-rng):

    bp    backprop train autoencoder, float32
    t32   PyTorch, float32
    t64   PyTorch, float64 (the stand-in for exact arithmetic)

and prints, per parameter, the distance ‖w − w_t64‖ of each float32 engine
from the float64 run, and their ratio bp/t32. A ratio below 1 means
backprop's rounding moved the weights less than PyTorch's did.

    /usr/bin/python3 bench/autoencoder/rounding.py                  # seeds 1-3, K = 1, 10, 100
    /usr/bin/python3 bench/autoencoder/rounding.py --seeds 1 2 --steps 1 1000

It needs the backprop binary (--backprop, default: go build into a
temporary directory) and PyTorch; MNIST comes from the GoMNIST module.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_torch as tt  # noqa: E402


def torch_run(x, seed, steps, dtype):
    """K Adam steps from backprop's init and batch order, in dtype."""
    torch.manual_seed(seed)
    model = tt.AE(x.shape[1], 256)
    tt.go_init(model, seed)
    model = model.to(dtype)
    n = min(len(x), 64 * steps)
    perm = tt.go_permutation(tt.go_pcg(seed, tt.SHUFFLE_STREAM), n)
    xd = x[:n].to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for s in range(steps):
        xb = xd[perm[s * 64:(s + 1) * 64]]
        loss = ((model(xb) - xb) ** 2).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().double() for k, v in model.state_dict().items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--backprop", help="backprop binary (default: built from this tree)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    tmp = tempfile.mkdtemp(prefix="backprop-rounding-")
    bp = args.backprop
    if not bp:
        bp = os.path.join(tmp, "backprop")
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        subprocess.run(["go", "build", "-o", bp, "./cmd/backprop"], cwd=root, check=True)
    x, _, _ = tt.read_images(tt.find_mnist_dir(), "train")

    print("| seed | steps | parameter | ‖bp − t64‖ | ‖t32 − t64‖ | bp / t32 |")
    print("|---:|---:|---|---:|---:|---:|")
    for seed in args.seeds:
        for steps in args.steps:
            out = os.path.join(tmp, f"bp-{seed}-{steps}")
            subprocess.run([bp, "train", "autoencoder", "--data", "mnist", "--hidden", "256", "--epochs", "1",
                            "--seed", str(seed), "--limit", str(64 * steps), "--out", out, "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
            wbp, _ = tt.read_safetensors(os.path.join(out, "checkpoint.safetensors"))
            w32 = torch_run(x, seed, steps, torch.float32)
            w64 = torch_run(x, seed, steps, torch.float64)
            for name in w64:
                dbp = (wbp[name].double() - w64[name]).norm().item()
                d32 = (w32[name] - w64[name]).norm().item()
                print(f"| {seed} | {steps} | `{name}` | {dbp:.3g} | {d32:.3g} | {dbp / d32:.2f} |", flush=True)


if __name__ == "__main__":
    main()
