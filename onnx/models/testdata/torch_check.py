#!/usr/bin/env python3
"""Runs the networks `backprop export --pytorch DIR` wrote in PyTorch, for the Go test
TestRecipeWeightsRunInPyTorch (recipe_export_test.go).

Usage: python3 torch_check.py DIR CHECK.safetensors...

Each CHECK file names a weights file of DIR ("weights" in its metadata) and holds an input
("input", float32), for a class-conditional network the classes ("class", int64) and
backprop's output for them ("output"). The network is built by DIR/model.py and loaded
with load_state_dict(strict=True) (model.load), in evaluation mode, and run on the input.
Prints one JSON object: {weights file: {"class": ..., "kwargs": ..., "max_abs_diff": ...,
"max_abs_output": ...}}. A failed load raises.
"""
import json
import os
import sys

sys.dont_write_bytecode = True


def main():
    out_dir, checks = sys.argv[1], sys.argv[2:]
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, os.path.abspath(out_dir))
    import model

    report = {}
    for path in checks:
        tensors, meta = model.read_safetensors(path)
        weights = os.path.join(out_dir, meta["weights"])
        _, wmeta = model.read_safetensors(weights)
        m = model.load(weights)
        args = [tensors["input"]]
        if "class" in tensors:
            args.append(tensors["class"])
        with torch.no_grad():
            got = m(*args)
        want = tensors["output"]
        report[meta["weights"]] = {
            "class": wmeta["class"],
            "kwargs": json.loads(wmeta.get("kwargs") or "{}"),
            "shape": list(got.shape),
            "max_abs_diff": float((got.double() - want.double()).abs().max()),
            "max_abs_output": float(want.double().abs().max()),
        }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
