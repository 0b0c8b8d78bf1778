#!/usr/bin/env python3
"""A 2-layer MLP exported by torch.onnx.export, with its gradients computed by PyTorch.

backprop solve --spec onnx/testdata/solve/mlp.onnx --input onnx/testdata/solve/mlp_input.json
--objective cross_entropy --label 2 works the forward and backward pass of this model;
solve's TestSolveONNXMatchesPyTorch compares its numbers with the ones written here
(float64, to 1e-9):

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/pytorch/export_mlp.py onnx/testdata/solve

writes mlp.onnx (float32 weights, opset 13: Gemm, Relu, Gemm), mlp_input.json (one
sample, a 1x3 nested list) and mlp_torch.json: for each objective (the sum of the
logits; the cross-entropy against label 2) the logits, J and the gradient of every
initializer, computed in float64 from the float32 weights the file holds.
"""
import json
import os
import sys

import torch
import torch.nn as nn


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(14)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.tensor([[0.5, -1.0, 2.0]])
    torch.onnx.export(net, x, os.path.join(out, "mlp.onnx"), input_names=["x"], output_names=["logits"],
                      opset_version=13, do_constant_folding=True)
    with open(os.path.join(out, "mlp_input.json"), "w") as f:
        json.dump(x.tolist(), f)
        f.write("\n")

    ref = {"torch": torch.__version__, "input": x.tolist(), "label": 2, "objectives": {}}
    for objective in ("sum", "cross_entropy"):
        net64 = net.double()
        net64.zero_grad()
        logits = net64(x.double())
        j = logits.sum() if objective == "sum" else nn.functional.cross_entropy(logits, torch.tensor([2]))
        j.backward()
        ref["objectives"][objective] = {
            "logits": logits.detach().tolist(),
            "J": j.item(),
            "gradients": {k: p.grad.tolist() for k, p in net64.named_parameters()},
        }
    with open(os.path.join(out, "mlp_torch.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
