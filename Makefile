# Two commands do all the set-up:  `make train`  and  `make test`.
# Both create (or reuse) the virtualenv in $(VENV). torch is installed first and pinned, so pip never
# resolves it on its own: this machine's local CPU wheel is used here, and on a GPU machine the same pin
# pulls PyPI's CUDA build (or set TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0 --index-url <wheel index>").

VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train prepare reproduce lint test test-fast clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[test,sweeps,slurm,bench,dashboards]'
	touch $@

install: $(VENV)/.installed

prepare: install  ## raw corpus -> .cache/corpus/*.jsonl.gz (skipped when already there)
	$(PY) run.py task=prepare

train: prepare  ## the default DeCLUTR run (MiniLM on the prepared corpus, CPU); extra overrides via ARGS="..."
	$(PY) run.py $(ARGS)

reproduce: prepare  ## the paper in miniature -> docs/reproduction.md (hours on 2 CPU cores); overrides via ARGS="..."
	$(PY) run.py task=reproduce $(ARGS)

lint: install  ## ruff check . (the rules are in pyproject.toml); CI runs it before the tests
	$(VENV)/bin/ruff check .

# pytest-randomly (the test extra) runs the tests in a new order each time and prints its seed: repeat an order with
# PYTEST_ARGS="--randomly-seed=N", keep file order with PYTEST_ARGS="-p no:randomly".
test: install  ## the whole test suite, slow tests included, in a random order: what CI runs
	WANDB_MODE=$${WANDB_MODE:-offline} HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m pytest $(PYTEST_ARGS)

test-fast: install  ## the inner loop: every test not marked slow (no subprocess runs, notebooks, DDP/FSDP, compile)
	WANDB_MODE=$${WANDB_MODE:-offline} HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .cache outputs multirun .pytest_cache
