"""Reference values for ops.CrossEntropy, computed with PyTorch.

Run once with `python3 cross_entropy.py` from this directory; it writes
cross_entropy.json next to itself. ops/crossentropy_test.go compares the loss
and the logits' gradient of every case with F.cross_entropy's (mean
reduction), in float64 to 1e-12 and, for the float32 cases, in float32.
"""

import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20261127)


def case(name, logits, labels, dtype=torch.float64):
    a = logits.to(dtype).clone().requires_grad_(True)
    y = torch.tensor(labels, dtype=torch.long)
    loss = F.cross_entropy(a, y)
    loss.backward()
    return {
        "name": name,
        "dtype": str(dtype).replace("torch.", ""),
        "shape": list(a.shape),
        "logits": [float(v) for v in a.detach().reshape(-1).tolist()],
        "labels": labels,
        "loss": float(loss.item()),
        "grad": [float(v) for v in a.grad.reshape(-1).tolist()],
    }


cases = [
    case("one_row", torch.tensor([[0.5, -1.0, 2.0]]), [2]),
    case("batch5_k10", torch.randn(5, 10, dtype=torch.float64) * 3, [3, 0, 9, 9, 4]),
    case("batch7_k2", torch.randn(7, 2, dtype=torch.float64), [0, 1, 1, 0, 1, 0, 0]),
    case("one_class", torch.randn(3, 1, dtype=torch.float64), [0, 0, 0]),
    # large logits: exp would overflow without taking the maximum out
    case("large", torch.tensor([[1000.0, -1000.0, 999.0], [-800.0, -805.0, -790.0]]), [1, 2]),
    case("large_f32", torch.tensor([[88.0, 90.0, -90.0], [1e4, 0.0, -1e4]]), [0, 2], torch.float32),
    case("batch4_k6_f32", torch.randn(4, 6) * 2, [5, 1, 0, 3], torch.float32),
]

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cross_entropy.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
