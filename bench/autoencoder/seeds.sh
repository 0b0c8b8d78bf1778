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
# and, when KINDS names them, gi-S (--go-init: backprop's initial weights only), gs-S
# (--go-shuffle: backprop's batch order only) and t64-S (--go-rng --float64: PyTorch in double
# precision, the stand-in for exact arithmetic); then it prints seeds.py's summary of OUT.
# Runs whose log already reports epoch 3 are skipped, so the script can simply be run
# again. PyTorch uses one thread (its fastest setting on a 2-core machine); the test errors
# do not depend on it.
#
# Environment: OUT (default $TMPDIR/backprop-ae-seeds), SEEDS (1…100), KINDS ("bp torch
# tgo"), BACKPROP (binary; built from this tree if absent), PYTHON (/usr/bin/python3, with
# torch and numpy).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-${TMPDIR:-/tmp}/backprop-ae-seeds}
SEEDS=${SEEDS:-$(seq 1 100)}
KINDS=${KINDS:-bp torch tgo}
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"
BP=${BACKPROP:-$OUT/backprop}
[ -x "$BP" ] || go build -o "$BP" ./cmd/backprop

done_log() { [ -f "$1" ] && grep -q "^epoch 3/3" "$1"; }

for s in $SEEDS; do
	for k in $KINDS; do
		log="$OUT/$k-$s.log"
		done_log "$log" && continue
		case $k in
		bp) "$BP" train autoencoder --data mnist --hidden 256 --epochs 3 --seed "$s" --out "$OUT/bp-$s" --quiet >"$log" 2>&1 ;;
		torch) flag= ;;
		tgo) flag=--go-rng ;;
		gi) flag=--go-init ;;
		gs) flag=--go-shuffle ;;
		t64) flag="--go-rng --float64" ;;
		*) echo "seeds.sh: unknown kind $k (want bp, torch, tgo, gi, gs or t64)" >&2; exit 2 ;;
		esac
		[ "$k" = bp ] || OMP_WAIT_POLICY=PASSIVE "$PYTHON" bench/autoencoder/train_torch.py \
			--seed "$s" --threads 1 $flag >"$log" 2>&1
	done
done
"$PYTHON" bench/autoencoder/seeds.py "$OUT"
