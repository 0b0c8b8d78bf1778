"""PyTorch reference for the ops that serve imported ONNX graphs
(ops/onnx_*.go): broadcasting add/sub/mul/div, exp, log, transpose,
batched matmul and constant pad/crop. For each case it records the inputs,
the output, an upstream gradient g and the gradients of sum(out * g) with
respect to every input, in float64.

Regenerate with: python3 ops/testdata/onnx_ops.py > ops/testdata/onnx_ops.json
(torch 1.13)."""
import json

import torch
import torch.nn.functional as F

torch.manual_seed(14)


def t(*shape, positive=False):
    x = torch.randn(tuple(shape), dtype=torch.float64)
    if positive:
        x = x.abs() + 0.5
    return x.requires_grad_(True)


def enc(x):
    return {"shape": list(x.shape), "data": x.detach().reshape(-1).tolist()}


cases = []


def case(op, args, inputs, fn):
    out = fn(*inputs)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    cases.append({
        "op": op, "args": args,
        "inputs": [enc(x) for x in inputs],
        "out": enc(out), "gout": enc(g),
        "grads": [enc(x.grad) for x in inputs],
    })


for kind, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div)]:
    for sa, sb in [((2, 3), (2, 3)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (2, 2)), ((1,), (3, 2))]:
        case(kind, {}, [t(*sa), t(*sb, positive=(kind == "div"))], fn)
case("exp", {}, [t(2, 3)], torch.exp)
case("log", {}, [t(2, 3, positive=True)], torch.log)
for perm in [[1, 0], [2, 0, 1], [0, 2, 1, 3], None]:
    shape = (2, 3) if perm is not None and len(perm) == 2 else (2, 3, 4) if perm is not None and len(perm) == 3 else (2, 3, 4, 5) if perm else (2, 3, 4)
    p = perm if perm is not None else list(reversed(range(len(shape))))
    case("transpose", {"perm": perm}, [t(*shape)], lambda x, p=p: x.permute(*p))
for sa, sb in [((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (3, 4, 2)), ((2, 3, 4), (4,)), ((3, 4), (4, 5))]:
    case("batch_matmul", {}, [t(*sa), t(*sb)], torch.matmul)
for before, after, value in [([0, 1, 2], [1, 0, 1], 0.0), ([0, 0, -1, 1], [0, 0, 2, -1], 0.5)]:
    shape = (2, 3, 4) if len(before) == 3 else (1, 2, 3, 4)
    pads = []
    for b, a in zip(reversed(before), reversed(after)):
        pads += [b, a]
    case("pad", {"before": before, "after": after, "value": value}, [t(*shape)], lambda x, pads=pads, value=value: F.pad(x, pads, value=value))

print(json.dumps({"torch": torch.__version__, "cases": cases}))
