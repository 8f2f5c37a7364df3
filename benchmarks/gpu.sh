#!/usr/bin/env bash
# What the benchmarks measure "on a GPU, when one is available", in one run (make bench-gpu).
# Needs CUDA, the package installed (or on PYTHONPATH) and data/FashionMNIST (make data, or
# FMNIST_GZ=<folder with the four .gz files> to unpack them first). PY picks the interpreter.
#   1. per-step overhead under bf16-mixed (benchmarks.overhead);
#   2. the VGG-like structured grid on the full training set, seed 0, trained on the GPU;
#   3. latency of the full grid's deployed networks in bfloat16 at batch 1, 64 and 256.
set -euo pipefail
PY=${PY:-python}
if [[ -n "${FMNIST_GZ:-}" ]]; then
  "$PY" -m examples.data.fashion_mnist --root data --debian-dir "$FMNIST_GZ"
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'benchmarks/gpu.sh: torch sees no GPU')"
"$PY" -m benchmarks.overhead --accelerator gpu --precision bf16-mixed --threads 0
"$PY" -m benchmarks.structured --accelerator gpu --models vgg --methods autoprune tp_l1 tp_group_norm_oneshot \
  --seeds 0 --out benchmarks/results/structured_gpu_runs.jsonl \
  --summary benchmarks/results/structured_gpu_summary.json --markdown docs/structured_gpu.md --plots docs/img/gpu
"$PY" -m benchmarks.latency --accelerator gpu --batches 1 64 256 --threads 1 --dtype bfloat16 \
  --records benchmarks/results/structured_full_runs.jsonl --models vgg --methods autoprune tp_l1 tp_group_norm_oneshot \
  --out benchmarks/results/latency_gpu.json --markdown docs/latency_gpu.md
