#!/usr/bin/env bash
# What the benchmarks measure "on a GPU, when one is available", in one run (make bench-gpu).
# Needs CUDA, the package installed (or on PYTHONPATH) and data/FashionMNIST (make data, or
# FMNIST_GZ=<folder with the four .gz files> to unpack them first). PY picks the interpreter.
#   1. latency of the full CPU grid's deployed networks in bfloat16 at batch 1, 64 and 256
#      (benchmarks.latency; random values at the recorded widths);
#   2. per-step overhead under bf16-mixed (benchmarks.overhead; its GPU rows join overhead.json);
#   3. the structured grid on the full training set, trained on the GPU, WORKERS runs at a time
#      (benchmarks.structured --workers): the small ViT and MobileNetV2, 3 seeds.
# Timings (1, 2) run first, on an otherwise idle GPU. GRID_SECONDS caps step 3 (default: no cap);
# the grid resumes where it stopped, and --report (the last line) summarises what is there.
set -euo pipefail
PY=${PY:-python}
WORKERS=${WORKERS:-8}
GRID_SECONDS=${GRID_SECONDS:-0}
if [[ -n "${FMNIST_GZ:-}" ]]; then
  "$PY" -m examples.data.fashion_mnist --root data --debian-dir "$FMNIST_GZ"
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'benchmarks/gpu.sh: torch sees no GPU')"
"$PY" -m benchmarks.latency --accelerator gpu --batches 1 64 256 --threads 1 --dtype bfloat16 \
  --records benchmarks/results/structured_full_runs.jsonl --models vgg resnet20 mobilenetv2 \
  --out benchmarks/results/latency_gpu.json --markdown docs/latency_gpu.md
"$PY" -m benchmarks.overhead --accelerator gpu --precision bf16-mixed --threads 0 --models resnet20 vit --rounds 2
grid=(--accelerator gpu --models vit mobilenetv2
  --methods autoprune_uniform tp_l1 autoprune tp_group_norm_oneshot tp_group_norm tp_taylor --seeds 0 1 2
  --out benchmarks/results/structured_gpu_runs.jsonl --summary benchmarks/results/structured_gpu_summary.json
  --markdown docs/structured_gpu.md --plots docs/img/gpu)
status=0
timeout -k 20 "$GRID_SECONDS" "$PY" -m benchmarks.structured "${grid[@]}" --workers "$WORKERS" || status=$?
"$PY" -m benchmarks.structured "${grid[@]}" --report
exit "$status"
