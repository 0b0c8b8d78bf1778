#!/usr/bin/env bash
# Regenerate every golden file from its committed generator and report how
# each compares with the committed file (scripts/golden_diff.py): byte for
# byte, values within 1e-12, or a failure naming the values that moved.
#
#   scripts/regen-goldens.sh          regenerate, compare, run the tests that
#                                     read the goldens against the regenerated
#                                     files, then restore the committed files
#   scripts/regen-goldens.sh --keep   the same, but leave the regenerated files
#
# Needs Debian's python3-torch (PyTorch 1.13, with NumPy) and python3-yaml,
# and the Go toolchain (the safetensors reference writer is fetched as a Go
# module). Run from anywhere inside the repository. Exit status 1 if any
# file does not reproduce or a test fails against the regenerated files.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PYTHON:-/usr/bin/python3}
export OMP_WAIT_POLICY=PASSIVE
keep=false
[[ ${1:-} == --keep ]] && keep=true

goldens=(
  gan/testdata/torch_reference_steps.json
  gan/testdata/torch_reference_step1.safetensors
  autoencoder/testdata/torch_reference_steps.json
  solve/testdata/reference.json
  nn/testdata/reference.json
  ops/testdata/cross_entropy.json
  ops/testdata/pool.json
  ops/testdata/softmax_layernorm.json
  ops/testdata/seq_ops.json
  ops/testdata/onnx_ops.json
  optim/testdata/reference.json
  safetensors/testdata/torch_fixture.json
  safetensors/testdata/torch_fixture.safetensors
  safetensors/testdata/reference_writer.safetensors
  data/testdata/tiny/train-images-idx3-ubyte.gz
  data/testdata/tiny/train-labels-idx1-ubyte.gz
  data/testdata/tiny/t10k-images-idx3-ubyte
  data/testdata/tiny/t10k-labels-idx1-ubyte
)
if ! git diff --quiet HEAD -- "${goldens[@]}"; then
  echo "regen-goldens: uncommitted changes in golden files; commit or restore them first" >&2
  exit 1
fi
committed=$(mktemp -d)
trap 'rm -rf "$committed"' EXIT
for g in "${goldens[@]}"; do
  mkdir -p "$committed/$(dirname "$g")"
  git show "HEAD:$g" >"$committed/$g"
done

run() { echo "+ $*" >&2; "$@" >/dev/null 2>"$committed/log" || { cat "$committed/log" >&2; exit 1; }; }
run "$PY" bench/gan/reference_steps.py
run "$PY" bench/autoencoder/reference_steps.py
run "$PY" solve/testdata/reference.py
(cd nn/testdata && run "$PY" reference.py)
(cd ops/testdata && run "$PY" cross_entropy.py && run "$PY" pool.py && run "$PY" softmax_layernorm.py && run "$PY" seq_ops.py)
echo "+ $PY ops/testdata/onnx_ops.py > ops/testdata/onnx_ops.json" >&2
"$PY" ops/testdata/onnx_ops.py >ops/testdata/onnx_ops.json
(cd optim/testdata && run "$PY" reference.py)
run "$PY" safetensors/testdata/make_torch_fixture.py
(cd safetensors/testdata/refwriter && run go run .)
run go test ./data -run '^TestWriteTinyFixture$' -count=1 -update

status=0
"$PY" scripts/golden_diff.py "$committed" . "${goldens[@]}" || status=1
echo "+ go test (the tests that read the goldens, against the regenerated files)" >&2
go test -count=1 ./gan ./autoencoder ./solve ./nn ./ops ./optim ./safetensors ./data \
  -run 'PyTorch|Reference|Torch|Fixture|CrossEntropy|Pool|Optim|Adam|SGD' || status=1
if ! $keep; then
  git checkout HEAD -- "${goldens[@]}"
  echo "restored the committed golden files (--keep leaves the regenerated ones)" >&2
fi
exit $status
