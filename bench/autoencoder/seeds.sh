#!/usr/bin/env bash
# Many-seed comparison of the auto-encoder's test error, backprop vs PyTorch.
#
#   bash bench/autoencoder/seeds.sh            # seeds 1…100, then the table
#   SEEDS="$(seq 1 24)" bash bench/autoencoder/seeds.sh
#
# For every seed it runs, one after another (never two at once):
#   bp-S     backprop train autoencoder --seed S (hidden 256, Adam 1e-3, batch 64, 3 epochs)
#   torch-S  train_torch.py --seed S                PyTorch with its own random numbers
#   tgo-S    train_torch.py --seed S --go-rng       PyTorch with backprop's initial weights and
#                                                   batch order, so that only the engine differs
# and then prints seeds.py's summary of OUT. Runs whose log already reports epoch 3 are
# skipped, so the script can simply be run again. PyTorch uses one thread (its fastest
# setting on a 2-core machine); the test errors do not depend on it.
#
# Environment: OUT (default $TMPDIR/backprop-ae-seeds), SEEDS (1…100), BACKPROP (binary;
# built from this tree if absent), PYTHON (/usr/bin/python3, with torch and numpy).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-${TMPDIR:-/tmp}/backprop-ae-seeds}
SEEDS=${SEEDS:-$(seq 1 100)}
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"
BP=${BACKPROP:-$OUT/backprop}
[ -x "$BP" ] || go build -o "$BP" ./cmd/backprop

done_log() { [ -f "$1" ] && grep -q "^epoch 3/3" "$1"; }

for s in $SEEDS; do
	done_log "$OUT/bp-$s.log" || "$BP" train autoencoder --data mnist --hidden 256 --epochs 3 --seed "$s" \
		--out "$OUT/bp-$s" --quiet >"$OUT/bp-$s.log" 2>&1
	done_log "$OUT/torch-$s.log" || OMP_WAIT_POLICY=PASSIVE "$PYTHON" bench/autoencoder/train_torch.py \
		--seed "$s" --threads 1 >"$OUT/torch-$s.log" 2>&1
	done_log "$OUT/tgo-$s.log" || OMP_WAIT_POLICY=PASSIVE "$PYTHON" bench/autoencoder/train_torch.py \
		--seed "$s" --threads 1 --go-rng >"$OUT/tgo-$s.log" 2>&1
done
"$PYTHON" bench/autoencoder/seeds.py "$OUT"
