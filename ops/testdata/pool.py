"""Reference values for ops.MaxPool2d and ops.AvgPool2d, computed with PyTorch.

Run once with `python3 pool.py` from this directory; it writes pool.json next
to itself. ops/pool_test.go runs each case with the same options, input and
upstream gradient and compares the output and the input gradient (the
objective is sum(y * gout)) to 1e-12, in float64.
"""

import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20261127)
torch.set_default_dtype(torch.float64)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(name, op, shape, kernel, stride=None, padding=(0, 0), count_include_pad=True, x=None):
    x = (torch.randn(*shape) if x is None else x.reshape(shape).to(torch.float64)).requires_grad_(True)
    if op == "max":
        y = F.max_pool2d(x, kernel, stride, padding)
    else:
        y = F.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)
    gout = torch.randn(*y.shape)
    (y * gout).sum().backward()
    return {
        "name": name, "op": op, "kernel": list(kernel), "stride": list(stride) if stride else [0, 0],
        "padding": list(padding), "count_include_pad": count_include_pad,
        "shape": list(shape), "x": flat(x), "gout": flat(gout),
        "y_shape": list(y.shape), "y": flat(y), "dx": flat(x.grad),
    }


# Ties: a max pool over small integers, so that windows hold equal maxima.
ties = torch.randint(0, 3, (1, 2, 4, 4))

cases = [
    case("max_k2_batch", "max", (2, 3, 6, 5), (2, 2)),
    case("max_k3_s2_p1", "max", (2, 2, 7, 7), (3, 3), (2, 2), (1, 1)),
    case("max_rect_s12_p10", "max", (1, 2, 5, 6), (3, 2), (1, 2), (1, 0)),
    case("max_unbatched", "max", (3, 4, 4), (2, 2)),
    case("max_overlap_s1", "max", (2, 1, 4, 5), (2, 2), (1, 1)),
    case("max_ties", "max", (1, 2, 4, 4), (3, 3), (1, 1), (1, 1), x=ties),
    case("avg_k2_batch", "avg", (2, 3, 6, 5), (2, 2)),
    case("avg_k3_s2_p1", "avg", (2, 2, 7, 7), (3, 3), (2, 2), (1, 1)),
    case("avg_k3_s2_p1_exclude", "avg", (2, 2, 7, 7), (3, 3), (2, 2), (1, 1), count_include_pad=False),
    case("avg_rect_s12_p11", "avg", (2, 1, 5, 6), (2, 3), (1, 2), (1, 1)),
    case("avg_unbatched", "avg", (2, 5, 5), (3, 3), (2, 2)),
]

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
