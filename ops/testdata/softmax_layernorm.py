"""Reference values for ops.Softmax, ops.LogSoftmax, ops.LayerNorm and
ops.CrossEntropyReduce, computed with PyTorch.

Run once with `python3 softmax_layernorm.py` from this directory (PyTorch
1.13); it writes softmax_layernorm.json next to itself. ops/golden_test.go
runs every case with the same inputs and upstream gradient (the objective
is sum(y * gout), or the loss itself for cross-entropy) and compares the
output and every gradient: float64 cases to 1e-12, float32 cases to 1e-5.
"""

import json
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(20261212)


def flat(t):
    return None if t is None else [float(v) for v in t.detach().reshape(-1).tolist()]


def leaf(t, dtype):
    return None if t is None else t.to(dtype).clone().requires_grad_(True)


def softmax_case(name, x, axis, log=False, dtype=torch.float64):
    x = leaf(x, dtype)
    y = F.log_softmax(x, axis) if log else F.softmax(x, axis)
    gout = torch.randn(y.shape, dtype=torch.float64).to(dtype)
    (y * gout).sum().backward()
    return {"name": name, "op": "log_softmax" if log else "softmax", "dtype": str(dtype)[6:], "axis": axis,
            "shape": list(x.shape), "x": flat(x), "gout": flat(gout), "y": flat(y), "grad_x": flat(x.grad)}


def layer_norm_case(name, x, weight, bias, eps, dtype=torch.float64):
    x, w, b = leaf(x, dtype), leaf(weight, dtype), leaf(bias, dtype)
    y = F.layer_norm(x, (x.shape[-1],), w, b, eps)
    gout = torch.randn(y.shape, dtype=torch.float64).to(dtype)
    (y * gout).sum().backward()
    return {"name": name, "op": "layer_norm", "dtype": str(dtype)[6:], "eps": eps, "shape": list(x.shape),
            "x": flat(x), "weight": flat(w), "bias": flat(b), "gout": flat(gout), "y": flat(y),
            "grad_x": flat(x.grad), "grad_weight": flat(None if w is None else w.grad),
            "grad_bias": flat(None if b is None else b.grad)}


def cross_entropy_case(name, logits, labels, mean, dtype=torch.float64):
    a = leaf(logits, dtype)
    y = torch.tensor(labels if a.dim() == 2 else labels[0], dtype=torch.long)
    loss = F.cross_entropy(a, y, reduction="mean" if mean else "sum")
    loss.backward()
    return {"name": name, "op": "cross_entropy", "dtype": str(dtype)[6:], "mean": mean, "shape": list(a.shape),
            "x": flat(a), "labels": labels, "y": [float(loss.item())], "grad_x": flat(a.grad)}


f32 = torch.float32
cases = [
    softmax_case("softmax_rows", torch.randn(4, 5) * 2, -1),
    softmax_case("softmax_channels", torch.randn(2, 3, 4, 4), 1),
    softmax_case("softmax_vector", torch.tensor([0.5, -1.0, 2.0, 0.0]), 0),
    softmax_case("softmax_axis0", torch.randn(3, 4), 0),
    softmax_case("softmax_large", torch.tensor([[1000.0, -1000.0, 999.0], [-800.0, -805.0, -790.0]]), -1),
    softmax_case("softmax_f32", torch.randn(3, 6) * 3, -1, dtype=f32),
    softmax_case("softmax_large_f32", torch.tensor([[88.0, 90.0, -90.0], [1e4, 0.0, -1e4]]), -1, dtype=f32),
    softmax_case("log_softmax_rows", torch.randn(4, 5) * 2, -1, log=True),
    softmax_case("log_softmax_3d", torch.randn(2, 3, 5), -1, log=True),
    softmax_case("log_softmax_large", torch.tensor([[1000.0, -1000.0, 999.0], [-800.0, -805.0, -790.0]]), 1, log=True),
    softmax_case("log_softmax_f32", torch.randn(4, 7) * 3, 1, log=True, dtype=f32),
    layer_norm_case("layer_norm_affine", torch.randn(4, 6), torch.randn(6), torch.randn(6), 1e-5),
    layer_norm_case("layer_norm_3d_weight", torch.randn(2, 3, 5), torch.randn(5), None, 1e-5),
    layer_norm_case("layer_norm_plain_vector", torch.randn(7), None, None, 1e-5),
    layer_norm_case("layer_norm_bias_eps", torch.randn(3, 4), None, torch.randn(4), 0.1),
    layer_norm_case("layer_norm_offset", torch.randn(3, 8) + 1000.0, torch.randn(8), torch.randn(8), 1e-5),
    layer_norm_case("layer_norm_f32", torch.randn(5, 6) * 2 + 3, torch.randn(6), torch.randn(6), 1e-5, dtype=f32),
    cross_entropy_case("ce_sum", torch.randn(5, 4) * 2, [3, 0, 1, 1, 2], False),
    cross_entropy_case("ce_mean", torch.randn(5, 4) * 2, [3, 0, 1, 1, 2], True),
    cross_entropy_case("ce_vector_sum", torch.tensor([0.5, -1.0, 2.0]), [0], False),
    cross_entropy_case("ce_vector_mean", torch.tensor([0.5, -1.0, 2.0]), [2], True),
    cross_entropy_case("ce_sum_large", torch.tensor([[1000.0, -1000.0, 999.0], [-800.0, -805.0, -790.0]]), [1, 2], False),
    cross_entropy_case("ce_sum_f32", torch.randn(4, 6) * 2, [5, 1, 0, 3], False, dtype=f32),
]

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "softmax_layernorm.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
