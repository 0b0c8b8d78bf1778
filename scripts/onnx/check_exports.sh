#!/usr/bin/env bash
# ONNX's own checker (Debian's python3-onnx, full_check: the graph, the
# operator schemas and shape inference) over every model backprop exports:
# the DCGAN generator and discriminator, the auto-encoder, the evaluation
# classifier, Problem 1's spec and the bank specs export supports. The Go
# test TestExportsReimport (onnx/models) writes them as backend-test
# directories; this script checks each model.onnx and fails on the first
# model the checker refuses.
#
#   scripts/onnx/check_exports.sh [DIR]   (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-$(mktemp -d -t backprop-onnx-exports.XXXXXX)}
mkdir -p "$dir"
BACKPROP_ONNX_EXPORT_DIR=$(cd "$dir" && pwd) go test -count=1 -run 'TestExportsReimport$' ./onnx/models >/dev/null
/usr/bin/python3 - "$dir" <<'PY'
import glob, os, sys
import onnx
dirs = sorted(glob.glob(os.path.join(sys.argv[1], "*", "model.onnx")))
if not dirs:
    sys.exit("no exported models found in " + sys.argv[1])
for path in dirs:
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"ok  {os.path.basename(os.path.dirname(path))}: opset {m.opset_import[0].version}, {ops}")
print(f"onnx {onnx.__version__ if hasattr(onnx, '__version__') else '(Debian python3-onnx)'} checker: {len(dirs)} exported models accepted")
PY
