#!/usr/bin/env python3
"""Writes the state_dict of every class of model.py as JSON: names, dtypes and shapes.

backprop's Go test TestWeightsMatchModelPy compares the weights files that
`backprop export --pytorch` writes with this list, without Python. Run it
again when model.py changes:

    /usr/bin/python3 scripts/pytorch/state_dict_keys.py > onnx/models/testdata/pytorch_state_dicts.json
"""
import json
import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "onnx", "models", "pytorch"))
import torch  # noqa: E402
import model  # noqa: E402

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def main():
    torch.set_num_threads(2)
    out = {"torch": torch.__version__, "classes": {}}
    for name, cls in model.CLASSES.items():
        m = cls()
        out["classes"][name] = [
            {"name": k, "dtype": DTYPES[t.dtype], "shape": list(t.shape)} for k, t in m.state_dict().items()
        ]
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
