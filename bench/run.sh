#!/usr/bin/env bash
# Race backprop against PyTorch on the same workloads (see bench/README.md):
#
#   bash bench/run.sh                      # every workload, 3 rounds
#   ROUNDS=5 COUNT=30 bash bench/run.sh gan-step ae-step
#
# Each round runs `backprop bench --json` and then bench/torch_workloads.py
# --json (A/B/A/B …), so that load from other jobs on the machine hits both
# engines alike; bench/race.py then prints the Markdown report (ratio
# backprop/PyTorch per workload, < 1: backprop is faster), also saved to
# OUT/report.md.
#
# Environment: OUT (default ${TMPDIR:-/tmp}/backprop-race), ROUNDS (3),
# COUNT (timed runs per workload per round, 15), WARMUP (3), PYTHON
# (/usr/bin/python3, with torch), THREADS (PyTorch's threads, 2),
# OMP_WAIT_POLICY (PASSIVE: with the default spinning policy PyTorch's
# OpenMP threads and OpenBLAS's pthreads fight over the 2 cores and a
# gan-step takes seconds instead of ~150 ms; set OMP_WAIT_POLICY= to
# measure that), BACKPROP (the binary; built from this tree by default).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-${TMPDIR:-/tmp}/backprop-race}
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-15}
WARMUP=${WARMUP:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY-PASSIVE}
mkdir -p "$OUT"
rm -f "$OUT"/go-*.json "$OUT"/torch-*.json
BP=${BACKPROP:-$OUT/backprop}
[ -n "${BACKPROP:-}" ] || go build -o "$BP" ./cmd/backprop

go_files=() torch_files=()
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r/$ROUNDS: backprop" >&2
	"$BP" bench --json --count "$COUNT" --warmup "$WARMUP" "$@" >"$OUT/go-$r.json"
	go_files+=("$OUT/go-$r.json")
	echo "round $r/$ROUNDS: PyTorch" >&2
	"$PYTHON" bench/torch_workloads.py --json --count "$COUNT" --warmup "$WARMUP" --threads "$THREADS" "$@" >"$OUT/torch-$r.json"
	torch_files+=("$OUT/torch-$r.json")
done
"$PYTHON" bench/race.py "${go_files[@]}" -- "${torch_files[@]}" | tee "$OUT/report.md"
