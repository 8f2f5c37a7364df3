# Every target does its own set-up: a fresh machine needs nothing but python3 (and apt-get for the data).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data
DEBIAN_FMNIST := /usr/share/datasets/fashion-mnist
export WANDB_MODE ?= offline

.PHONY: setup data demo test lint typecheck unit bench bench-quick docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST offline, from Debian's dataset-fashion-mnist, unpacked where torchvision looks.
data: setup
	@if [ ! -f $(DEBIAN_FMNIST)/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1) || \
	  echo "could not apt-get install dataset-fashion-mnist; examples will try torchvision's download"; fi
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

# Speed of shrunk models and of the CSR path (about 10 minutes on 2 cores). Writes
# benchmarks/results/*.json and the generated tables docs/latency*.md, docs/sparse_linear.md.
bench: setup
	$(PY) -m benchmarks.latency
	$(PY) -m benchmarks.latency --fuse-bn --out benchmarks/results/latency_fused_bn.json --markdown docs/latency_fused_bn.md
	$(PY) -m benchmarks.sparse_linear

docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) runs lightning_logs site
