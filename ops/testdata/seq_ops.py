"""Reference values for ops.Slice, ops.Embedding, ops.CausalMask (alone and
followed by a softmax over the key positions) and the exact GELU activation,
computed with PyTorch.

Run once with `/usr/bin/python3 seq_ops.py` from this directory (PyTorch 1.13); it
writes seq_ops.json next to itself. ops/seq_ops_test.go runs every case with
the same inputs and upstream gradient (y.backward(gout)) and compares the
output and the gradient: float64 cases to 1e-12, float32 cases to 1e-5 of
each tensor's largest magnitude.

- slice: x[..., start:stop] along an axis (tensor indexing).
- embedding: F.embedding(ids, W), ids with repeated tokens, so that W's
  gradient adds rows.
- causal_mask: x.masked_fill(triu(ones(T, T), 1), -inf); its output is
  written with the masked elements as 0 and listed in "masked" (JSON has no
  -inf).
- causal_softmax: F.softmax of the masked scores over the last axis.
- gelu: F.gelu(x) (approximate='none'), including the far tails.
"""

import json
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(20260113)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def leaf(t, dtype):
    return t.to(dtype).clone().requires_grad_(True)


def finish(case, x, y, dtype):
    gout = torch.randn(y.shape, dtype=torch.float64).to(dtype)
    y.backward(gout)
    case.update({"dtype": str(dtype)[6:], "shape": list(x.shape), "x": flat(x), "gout": flat(gout), "grad_x": flat(x.grad)})
    return case


def slice_case(name, x, axis, start, stop, dtype=torch.float64):
    x = leaf(x, dtype)
    idx = [slice(None)] * x.dim()
    idx[axis] = slice(start, stop)
    y = x[tuple(idx)]
    return finish({"name": name, "op": "slice", "axis": axis, "start": start, "stop": stop, "y": flat(y)}, x, y, dtype)


def embedding_case(name, w, ids, dtype=torch.float64):
    w = leaf(w, dtype)
    y = F.embedding(torch.tensor(ids, dtype=torch.long), w)
    return finish({"name": name, "op": "embedding", "ids": ids, "y": flat(y)}, w, y, dtype)


def causal(x):
    t = x.shape[-1]
    return x.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))


def causal_case(name, x, dtype=torch.float64):
    x = leaf(x, dtype)
    y = causal(x)
    masked = torch.isinf(y)
    shown = y.detach().masked_fill(masked, 0.0)
    return finish({"name": name, "op": "causal_mask", "y": flat(shown), "masked": [bool(b) for b in masked.reshape(-1).tolist()]}, x, y, dtype)


def causal_softmax_case(name, x, dtype=torch.float64):
    x = leaf(x, dtype)
    y = F.softmax(causal(x), -1)
    return finish({"name": name, "op": "causal_softmax", "y": flat(y)}, x, y, dtype)


def gelu_case(name, x, dtype=torch.float64):
    x = leaf(x, dtype)
    y = F.gelu(x)
    return finish({"name": name, "op": "gelu", "y": flat(y)}, x, y, dtype)


f32 = torch.float32
cases = [
    slice_case("slice_vector", torch.randn(8), 0, 2, 5),
    slice_case("slice_lstm_gates", torch.randn(3, 12), -1, 6, 9),
    slice_case("slice_rows", torch.randn(5, 4), 0, 1, 4),
    slice_case("slice_one_column", torch.randn(4, 6), 1, 5, 6),
    slice_case("slice_heads_3d", torch.randn(2, 3, 8), 2, 4, 8),
    slice_case("slice_middle_axis", torch.randn(2, 5, 3), -2, 0, 2),
    slice_case("slice_f32", torch.randn(3, 8) * 3, 1, 2, 6, dtype=f32),
    embedding_case("embedding_repeats", torch.randn(5, 3), [1, 4, 1, 0, 1]),
    embedding_case("embedding_one", torch.randn(4, 6), [3]),
    embedding_case("embedding_all", torch.randn(3, 2), [2, 1, 0]),
    embedding_case("embedding_f32", torch.randn(6, 4) * 2, [5, 0, 5, 2], dtype=f32),
    causal_case("causal_2x2", torch.randn(2, 2)),
    causal_case("causal_4x4", torch.randn(4, 4) * 2),
    causal_case("causal_heads", torch.randn(2, 2, 3, 3)),
    causal_case("causal_f32", torch.randn(3, 3), dtype=f32),
    causal_softmax_case("causal_softmax_3x3", torch.randn(3, 3) * 2),
    causal_softmax_case("causal_softmax_batch", torch.randn(2, 4, 4)),
    causal_softmax_case("causal_softmax_heads", torch.randn(2, 2, 5, 5) * 3),
    causal_softmax_case("causal_softmax_f32", torch.randn(2, 4, 4) * 2, dtype=f32),
    gelu_case("gelu_vector", torch.randn(9) * 2),
    gelu_case("gelu_tails", torch.tensor([-40.0, -12.0, -6.0, -3.0, -1e-8, 0.0, 1e-8, 0.5, 3.0, 6.0, 40.0])),
    gelu_case("gelu_batch", torch.randn(3, 4, 5)),
    gelu_case("gelu_f32", torch.randn(4, 6) * 3, dtype=f32),
]

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seq_ops.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
    f.write("\n")
