#!/usr/bin/env bash
# Screening runs of the recipe ingredients of `backprop train gan` (issue 16): each ingredient
# alone on top of the reference DCGAN, EPOCHS epochs (1) on the whole MNIST training set with
# one seed (1), then 10 000 samples per run (`backprop sample`, seed 1; a conditional run draws
# 1 000 of each class) scored in one `backprop eval` call; "combo" is the conditional model with
# EMA, hinge loss and spectral norm together; "default" (not in the default RUNS) is the recipe
# `train gan` now trains by default, for STAGE=speed. These are screening runs; the default
# recipe's measurements over seeds are recipe.sh's.
#
#   bash bench/gan/ingredients.sh                  # train what is missing, sample, score
#   STAGE=train bash bench/gan/ingredients.sh      # or STAGE=eval
#   STAGE=speed bash bench/gan/ingredients.sh      # seconds per step of each run's recipe
#
# Environment: OUT (default $TMPDIR/backprop-gan-ingredients), EPOCHS (1), SEED (1), DATASET
# (mnist), RUNS (names of the runs below, default all), BACKPROP (binary; built from this tree
# if absent). Each run's log (with its seconds per epoch) is OUT/NAME.log; the scores
# OUT/eval.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-${TMPDIR:-/tmp}/backprop-gan-ingredients}
EPOCHS=${EPOCHS:-1}
SEED=${SEED:-1}
DATASET=${DATASET:-mnist}
STAGE=${STAGE:-all}
mkdir -p "$OUT"
BP=${BACKPROP:-$OUT/backprop}
[ -x "$BP" ] || go build -o "$BP" ./cmd/backprop

declare -A FLAGS=(
	[reference]=""
	[ema]="--ema 0.999"
	[hinge]="--loss hinge"
	[ttur]="--lr-d 4e-4 --lr-g 1e-4"
	[smooth]="--label-smoothing 0.9"
	[sn]="--spectral-norm"
	[cond]="--conditional"
	[combo]="--ema 0.999 --loss hinge --spectral-norm --conditional"
	[default]="--conditional --ema 0.999"
)
RUNS=${RUNS:-reference ema hinge ttur smooth sn cond combo}

if [ "$STAGE" = speed ]; then
	# ROUNDS rounds (2) of 100 steps (--limit 6400) per recipe, the recipes interleaved so
	# that a change in the machine's load falls on all of them alike; prints s/step per round
	for round in $(seq 1 "${ROUNDS:-2}"); do
		for r in $RUNS; do
			# shellcheck disable=SC2086
			line=$("$BP" train gan --arch reference --data "$DATASET" --limit 6400 --epochs 1 --seed "$SEED" -q ${FLAGS[$r]} \
				--out "$OUT/speed/$r-$round" | grep '^epoch 1/1')
			secs=$(sed -E 's/.* steps in ([0-9.]+) s .*/\1/' <<<"$line")
			printf '%s\tround %s\t%s s/step\n' "$r" "$round" "$(awk -v s="$secs" 'BEGIN { printf "%.4f", s / 100 }')"
		done
	done | tee "$OUT/speed.tsv"
	exit 0
fi

if [ "$STAGE" != eval ]; then
	for r in $RUNS; do
		[ -f "$OUT/$r/checkpoint-epoch$EPOCHS.safetensors" ] && continue
		# shellcheck disable=SC2086 # FLAGS holds several words
		"$BP" train gan --arch reference --data "$DATASET" --epochs "$EPOCHS" --seed "$SEED" -q ${FLAGS[$r]} \
			--out "$OUT/$r" >"$OUT/$r.log" 2>&1
	done
fi
[ "$STAGE" = train ] && exit 0

args=()
for r in $RUNS; do
	ck="$OUT/$r/checkpoint-epoch$EPOCHS.safetensors"
	s="$OUT/$r/samples-epoch$EPOCHS.idx.gz"
	class=()
	[[ "${FLAGS[$r]}" == *--conditional* ]] && class=(--class all)
	[ -f "$s" ] || "$BP" sample --checkpoint "$ck" --n 10000 --seed "$SEED" "${class[@]}" --out "$s" >/dev/null
	args+=(--samples "$r (${FLAGS[$r]:-reference}), epoch $EPOCHS=$s")
done
"$BP" eval --data "$DATASET" "${args[@]}" | tee "$OUT/eval.md"
