#!/usr/bin/env bash
# Measures the default recipe of `backprop train gan` (issue 16): SEEDS seeds (1 2 3) on each of
# DATASETS (mnist fashion-mnist), EPOCHS epochs each (5 on both), with no recipe flag (the
# default arch: class-conditional, EMA 0.999), plus the ablation runs ABLATE (default: the
# default recipe without conditioning, --conditional=false, MNIST seed 1, 3 epochs). Seed 1 on
# MNIST was also taken on to 10 epochs, which `backprop train gan --resume
# OUT/mnist/default-s1 --epochs 10` reproduces (resuming is bit for bit). The EMA's own effect
# needs no run of its own: the EMA does not change training, and `sample --no-ema` draws from
# the trained generator of the same checkpoint.
#
# Scoring: 10 000 samples per checkpoint of the epochs EVAL_EPOCHS ("1 3 5 10"), `backprop
# sample --seed 1` (a conditional model draws the classes in turn), with the EMA and without,
# scored in one `backprop eval` call per data set (OUT/DATASET/eval.md) and by the independent
# PyTorch classifier (independent_classifier.py, OUT/DATASET/independent.md).
#
#   bash bench/gan/recipe.sh                 # train what is missing, then score
#   STAGE=train bash bench/gan/recipe.sh     # or STAGE=eval
#
# Environment: OUT (default $TMPDIR/backprop-gan-recipe), SEEDS, DATASETS, EPOCHS ("dataset:N
# ..."), EVAL_EPOCHS, ABLATE ("name:dataset:seed:epochs:flags ..."), JOBS (2: runs trained at
# once, each on GOMAXPROCS=1; JOBS=1 trains one run at a time on every core), PYTHON (a python3
# with torch, default /usr/bin/python3; scoring by the independent classifier is skipped without
# one), BACKPROP (binary; built from this tree if absent). Each run's log (seconds per epoch) is OUT/DATASET/NAME.log.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-${TMPDIR:-/tmp}/backprop-gan-recipe}
SEEDS=${SEEDS:-1 2 3}
DATASETS=${DATASETS:-mnist fashion-mnist}
EPOCHS=${EPOCHS:-mnist:5 fashion-mnist:5}
EVAL_EPOCHS=${EVAL_EPOCHS:-1 3 5 10}
ABLATE=${ABLATE:-uncond:mnist:1:3:--conditional=false}
JOBS=${JOBS:-2}
STAGE=${STAGE:-all}
mkdir -p "$OUT"
BP=${BACKPROP:-$OUT/backprop}
[ -x "$BP" ] || go build -o "$BP" ./cmd/backprop

# epochs_of DATASET: its number of epochs in EPOCHS (10 if not listed)
epochs_of() {
	local e
	for e in $EPOCHS; do
		[ "${e%%:*}" = "$1" ] && echo "${e#*:}" && return
	done
	echo 10
}

# runs lists "name dataset seed epochs flags..." one per line
runs() {
	for ds in $DATASETS; do
		for s in $SEEDS; do
			echo "default-s$s $ds $s $(epochs_of "$ds")"
		done
	done
	for a in $ABLATE; do
		IFS=: read -r name ds s e flags <<<"$a"
		echo "$name-s$s $ds $s $e $flags"
	done
}

if [ "$STAGE" != eval ]; then
	threads=$([ "$JOBS" = 1 ] && nproc || echo 1)
	export BP OUT threads
	# shellcheck disable=SC2016 # expanded by the inner shell
	runs | xargs -P "$JOBS" -L 1 bash -c '
		name=$0 ds=$1 seed=$2 epochs=$3; shift 4
		dir=$OUT/$ds/$name
		[ -f "$dir/checkpoint-epoch$epochs.safetensors" ] && exit 0
		mkdir -p "$OUT/$ds"
		if [ -f "$dir/checkpoint.safetensors" ]; then
			GOMAXPROCS=$threads "$BP" train gan --resume "$dir" --epochs "$epochs" -q >>"$OUT/$ds/$name.log"
		else
			GOMAXPROCS=$threads "$BP" train gan --data "$ds" --epochs "$epochs" --seed "$seed" -q "$@" --out "$dir" >"$OUT/$ds/$name.log"
		fi'
fi
[ "$STAGE" = train ] && exit 0

for ds in $DATASETS; do
	args=()
	while read -r name rds _ _; do
		[ "$rds" = "$ds" ] || continue
		for e in $EVAL_EPOCHS; do
			ck=$OUT/$ds/$name/checkpoint-epoch$e.safetensors
			[ -f "$ck" ] || continue
			mkdir -p "$OUT/$ds/samples"
			for w in ema trained; do
				flag=$([ "$w" = trained ] && echo --no-ema || true)
				f=$OUT/$ds/samples/$name-e$e-$w.idx.gz
				# shellcheck disable=SC2086 # flag is empty or one word
				[ -f "$f" ] || "$BP" sample --checkpoint "$ck" $flag --n 10000 --seed 1 --out "$f" >/dev/null
				args+=("$name epoch $e $w=$f")
			done
		done
	done < <(runs)
	[ ${#args[@]} -gt 0 ] || continue
	samples=()
	for a in "${args[@]}"; do samples+=(--samples "$a"); done
	"$BP" eval --data "$ds" "${samples[@]}" | tee "$OUT/$ds/eval.md"
	if "${PYTHON:-/usr/bin/python3}" -c 'import torch' 2>/dev/null; then
		"${PYTHON:-/usr/bin/python3}" bench/gan/independent_classifier.py --data "$ds" "${args[@]}" | tee "$OUT/$ds/independent.md"
	fi
done
