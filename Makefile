# make demo   — venv, install, the whole DAG on the embedded synthetic default, then the jobs and
#               seconds per stage, the headline table and the path of results/report.html
# make test   — the test suite (this is what .ci/run calls)
# make check  — fast static checks: ruff, snakemake --lint, dvc.yaml freshness
# make bench  — the benchmark suite: one table, results/bench/*.json (BENCH_SKIP=dag: no DAG run)
#
# PyTorch: by default the CPU build of torch==2.13.0 (a wheel pip finds locally, e.g. in its
# find-links, else the PyTorch CPU index), so no CUDA wheels are downloaded; torch's own
# dependencies then come from the package index with the project's. GPU users choose their build, e.g.
#   make demo TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
CORES ?= all
PYTEST_ARGS ?=

BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test check lint format dvc.yaml clean bench

# The install stamp is named by the content of pyproject.toml (not its mtime), so a fresh clone
# pointed at an existing environment (VENV=...) reinstalls only when the dependencies differ.
PYPROJECT_SHA := $(firstword $(shell sha256sum pyproject.toml))
STAMP := $(VENV)/.installed-$(PYPROJECT_SHA)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(TORCH_INDEX_URL),)
	$(BIN)/python -m pip install --quiet --no-index --no-deps "$(TORCH_SPEC)" 2>/dev/null \
	  || $(BIN)/python -m pip install --quiet --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple "$(TORCH_SPEC)"
else
	$(BIN)/python -m pip install --quiet --index-url $(TORCH_INDEX_URL) "$(TORCH_SPEC)"
endif
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: install
	snakemake --cores $(CORES)
	python scripts/demo_summary.py
	python -m pipeline summary

test: install
	python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

check: install
	ruff check .
	ruff format --check .
	snakemake --lint
	python -m pipeline dvc-yaml --check

format: install
	ruff format .
	ruff check --fix .

dvc.yaml: install
	python -m pipeline dvc-yaml

# make bench — the benchmark suite, one table (scripts/bench.py; not part of `make test`), and
# results/bench/<group>.json; the dag group takes ~10 minutes: `make bench BENCH_SKIP=dag`
BENCH_SKIP ?=
BENCH_ONLY ?=
BENCH_ARGS ?=
bench: install
	python scripts/bench.py --skip "$(BENCH_SKIP)" --only "$(BENCH_ONLY)" $(BENCH_ARGS)

clean:
	rm -rf data/raw data/prepared data/features models checkpoints results/predictions \
	  results/scores logs benchmarks .snakemake
