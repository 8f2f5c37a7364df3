# Every target does its own set-up: a fresh machine needs nothing but python3 (and apt-get for the data).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data
DEBIAN_FMNIST := /usr/share/datasets/fashion-mnist
export WANDB_MODE ?= offline

.PHONY: setup data demo test lint typecheck unit bench bench-structured bench-gpu bench-all docs clean

# The demo, the tests and the benchmarks run on the CPU: a CPU build of torch is about 1 GB installed,
# the CUDA build with its libraries about 5.5 GB. On a GPU machine: make TORCH=torch EXTRAS=all ...
# (EXTRAS=all adds torchvision, which is optional: the data module reads the IDX files itself).
TORCH ?= torch==2.13.0
EXTRAS ?= wandb,tensorboard,cli,plot,structured,docs,dev
PIP := $(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) '$(TORCH)' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PIP) -e '.[$(EXTRAS)]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST offline, from Debian's dataset-fashion-mnist, unpacked in torchvision's layout.
data: setup
	@if [ ! -f $(DEBIAN_FMNIST)/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1) || \
	  echo "could not apt-get install dataset-fashion-mnist; pass --download to examples.data.fashion_mnist (needs torchvision)"; fi
	$(PY) -m examples.data.fashion_mnist --root $(DATA) --debian-dir $(DEBIAN_FMNIST)

demo: data
	$(PY) -m examples.demo --data-dir $(DATA) --out runs/demo

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy lightning_auxprune examples $(wildcard benchmarks)

unit: data
	$(PY) -m pytest -q

test: lint typecheck docs unit

# The benchmarks that were run for the docs (about 6 hours on 2 cores): the LeNet-300-100,
# LeNet-5 and VGG-like (neuron, 10,000 training images) comparisons (3 seeds), the ablations, the switches, the per-step overhead (4 models, CPU, one thread), the speed of
# shrunk models and of the CSR path. Writes benchmarks/results/* and the generated docs pages.
# Neuron/filter pruning at equal FLOPs against Torch-Pruning's criteria (many CPU hours; resumable).
# The ViT has no 25% budget: the recipe keeps a quarter of each layer's units, 26.1% of its FLOPs.
# The full training set has its own results, page and plots (the 10,000-image subset's are the defaults).
FULL_DATA = --out benchmarks/results/structured_full_runs.jsonl --summary benchmarks/results/structured_full_summary.json \
	--markdown docs/structured_full.md --plots docs/img/full
bench-structured: data
	$(PY) -m benchmarks.structured --models vgg resnet20 mobilenetv2 --seeds 0 1 2 $(FULL_DATA) $(STRUCTURED_ARGS)
	$(PY) -m benchmarks.structured --models vit --budgets 0.5 0.35 --seeds 0 1 2 $(FULL_DATA) $(STRUCTURED_ARGS)

# On a machine with a GPU: benchmarks/gpu.sh says what it runs (it refuses to start without CUDA).
bench-gpu: data
	PY=$(PY) bash benchmarks/gpu.sh

bench: data
	rm -f benchmarks/results/runs.jsonl benchmarks/results/ablation.jsonl benchmarks/results/switches.jsonl
	$(PY) -m benchmarks.compare --models lenet300100 --seeds 0 1 2
	$(PY) -m benchmarks.compare --models lenet5 --methods gmp autoprune_target autoprune_target_sgd autoprune_target_sgd_floor --seeds 0 1 2
	$(PY) -m benchmarks.compare --models vgg --methods torchpruning autoprune_neuron_target --seeds 0 1 2 --train-subset 10000
	$(MAKE) bench-structured
	$(PY) -m benchmarks.ablation --seeds 0 --epochs 8
	$(PY) -m benchmarks.switches --seeds 0 1 2
	$(PY) -m benchmarks.overhead
	$(PY) -m benchmarks.spread --model lenet5 --setting 0.99
	$(PY) -m benchmarks.spread --structured --model vgg --methods autoprune_final_bound --setting 0.35 --train-subset 10000 --threads 1 2
	$(PY) -m benchmarks.spread --structured --model vgg --methods autoprune tp_group_norm_oneshot autoprune_slow_masks dense --setting 0.35 --train-subset 10000 --threads 1 2 3 4
	$(PY) -m benchmarks.spread --structured --model vgg --methods autoprune_hysteresis --setting 0.35 --train-subset 10000 --threads 1 2 3 4
	$(PY) -m benchmarks.spread --structured --model vgg --methods autoprune autoprune_hysteresis --seed 1 --setting 0.35 --train-subset 10000 --threads 1 2 3 4
	$(PY) -m benchmarks.spread --structured --model vgg --methods autoprune_uniform tp_l1 autoprune_early_freeze autoprune_late --setting 0.35 --train-subset 10000 --threads 1 2 3 4
	$(PY) -m benchmarks.spread --structured --model vgg --methods autoprune_uniform tp_l1 --seed 1 --setting 0.35 --train-subset 10000 --threads 1 2 3 4
	$(PY) -m benchmarks.spread --structured --model vgg --methods autoprune tp_l1 autoprune_uniform --seed 2 --setting 0.35 --train-subset 10000 --threads 1 2 3 4
	$(PY) -m examples.logging_gallery --data-dir $(DATA) --out docs/img/logging
	$(PY) -m benchmarks.report
	$(PY) -m benchmarks.latency --models vgg resnet20 --methods autoprune autoprune_final_bound tp_group_norm_oneshot tp_l1 --seeds 0 1
	$(PY) -m benchmarks.latency --models vit --methods autoprune tp_l1 --seeds 0 1 --out benchmarks/results/latency_vit.json --markdown docs/latency_vit.md
	$(PY) -m benchmarks.latency --round-to 8 --models vgg resnet20 --methods autoprune autoprune_final_bound tp_l1 --seeds 0 --out benchmarks/results/latency_round8.json --markdown docs/latency_round8.md
	$(PY) -m benchmarks.latency --records benchmarks/results/structured_full_runs.jsonl --models vgg resnet20 --seeds 0 --out benchmarks/results/latency_full.json --markdown docs/latency_full.md
	$(PY) -m benchmarks.latency --records benchmarks/results/structured_full_runs.jsonl --models mobilenetv2 vit --seeds 0 --out benchmarks/results/latency_full_mobilenetv2_vit.json --markdown docs/latency_full_mobilenetv2_vit.md
	$(PY) -m benchmarks.latency --closing 0.5 --out benchmarks/results/latency_closing.json --markdown docs/latency_closing.md
	$(PY) -m benchmarks.op_share --records benchmarks/results/structured_full_runs.jsonl --models resnet20 vgg --seeds 0 --out benchmarks/results/op_share.json --markdown docs/op_share.md
	$(PY) -m benchmarks.op_share --models vit --methods autoprune tp_l1 --seeds 0 --threads 1 2 --out benchmarks/results/op_share_vit.json --markdown docs/op_share_vit.md
	$(PY) -m benchmarks.layer_speed --records benchmarks/results/structured_full_runs.jsonl --models resnet20 --methods autoprune tp_l1 --seeds 0 --budgets 0.25 --out benchmarks/results/layer_speed.json --markdown docs/layer_speed.md
	$(PY) -m benchmarks.layer_speed --records benchmarks/results/structured_full_runs.jsonl --models mobilenetv2 --methods autoprune_uniform --seeds 0 --out benchmarks/results/layer_speed_mobilenetv2.json --markdown docs/layer_speed_mobilenetv2.md
	$(PY) -m benchmarks.op_share --records benchmarks/results/structured_full_runs.jsonl --models mobilenetv2 --methods autoprune_uniform --seeds 0 --threads 1 2 --out benchmarks/results/op_share_mobilenetv2.json --markdown docs/op_share_mobilenetv2.md
	$(PY) -m benchmarks.sparse_linear

# The full grid of benchmarks/compare.py (LeNet-5 and VGG-like too): many hours on 2 cores.
bench-all: data
	rm -f benchmarks/results/runs.jsonl
	$(PY) -m benchmarks.compare
	$(PY) -m benchmarks.report

docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) runs lightning_logs site
