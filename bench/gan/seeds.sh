#!/usr/bin/env bash
# Many-seed comparison of the DCGAN's sample quality, backprop vs PyTorch.
#
#   bash bench/gan/seeds.sh                    # MNIST, seeds 1…10, 5 epochs per run
#   SEEDS="6 7 8" DATASET=fashion-mnist bash bench/gan/seeds.sh
#
# Trains each seed on both sides with run.sh (OUT/seedS/go-DATASET, OUT/seedS/torch-DATASET;
# finished runs are skipped, an interrupted backprop run is resumed), samples backprop's
# checkpoints after epochs 1, 3 and 5 (10 000 images, `backprop sample`), scores every
# sample set in one `backprop eval` call (OUT/eval-DATASET.md) and prints seeds.py's
# per-epoch summary. A run is about 5 minutes for backprop and 10 for PyTorch on 2 cores.
#
# Environment: OUT (default $TMPDIR/backprop-gan-seeds), SEEDS (1…10), DATASET (mnist),
# STAGE (all | train | eval), BACKPROP (binary; built from this tree if absent), and
# run.sh's PYTHON and THREADS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-${TMPDIR:-/tmp}/backprop-gan-seeds}
SEEDS=${SEEDS:-$(seq 1 10)}
DATASET=${DATASET:-mnist}
STAGE=${STAGE:-all}
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"
BP=${BACKPROP:-$OUT/backprop}
[ -x "$BP" ] || go build -o "$BP" ./cmd/backprop

if [ "$STAGE" != eval ]; then
	for s in $SEEDS; do
		OUT="$OUT/seed$s" BACKPROP="$BP" SEED="$s" DATASETS="$DATASET" OMP_WAIT_POLICY=PASSIVE \
			bash bench/gan/run.sh train >"$OUT/train-seed$s-$DATASET.log" 2>&1
	done
fi
[ "$STAGE" = train ] && exit 0

args=()
for e in 1 3 5; do
	for s in $SEEDS; do
		g="$OUT/seed$s/go-$DATASET"
		if [ -f "$g/checkpoint-epoch$e.safetensors" ]; then
			[ -f "$g/samples-epoch$e.idx.gz" ] || "$BP" sample --checkpoint "$g/checkpoint-epoch$e.safetensors" \
				--n 10000 --seed "$s" --out "$g/samples-epoch$e.idx.gz" >/dev/null
			args+=(--samples "backprop seed $s epoch $e=$g/samples-epoch$e.idx.gz")
		fi
		t="$OUT/seed$s/torch-$DATASET/samples-epoch$e.idx.gz"
		[ -f "$t" ] && args+=(--samples "PyTorch seed $s epoch $e=$t")
	done
done
"$BP" eval --data "$DATASET" "${args[@]}" >"$OUT/eval-$DATASET.md"
"$PYTHON" bench/gan/seeds.py "$OUT/eval-$DATASET.md"
