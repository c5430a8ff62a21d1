# Set-up and entry points: `make run` and `make test` each create the environment and
# install whatever is missing first.
#
#   make run                      the main job: BodyNet's Table 4.2 (results/bodynet_table.csv)
#   make all                      every study the default config defines
#   make test                     the test suite: the unit tier and the workflow tier
#   make test-fast                the unit tier without the slow tests (toy sizes, no subprocess)
#   make style                    ruff format --check and ruff check (make test runs it first)
#   make run TARGET=<file>        one artifact (and what it depends on)
#   make install TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128   a CUDA build of torch
#   make trace FILE=results/bodynet_table.csv   where an artifact came from
#   make docs/config.md           rewrite the configuration's reference from the schema
#   make docs/results.md          rewrite the results page's tables found in results/, and the README's table
#   make pull                     fetch the artifacts of dvc.lock from the DVC remote (dvc repro, dvc exp run: docs/operations.md)

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX_URL ?=
CORES ?= $(shell nproc 2>/dev/null || echo 2)
TARGET ?= results/bodynet_table.csv
BIN := $(VENV)/bin

# Recipes (and the jobs Snakemake starts) find the environment's python first.
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install run all test test-fast style lint report clean trace pull docs/config.md docs/results.md

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

run: install
	snakemake --cores $(CORES) $(TARGET)

all: install
	snakemake --cores $(CORES) all

# The code's formatting and lint rules (pyproject.toml), checked before the tests run.
CODE := src tests benchmarks workflow/scripts

# Both tiers, two tests at a time on two cores (more where there are more): the tiny DAG
# that the workflow tier's tests share starts first, in the background (on two cores), the
# tests that read it run last, and every other test runs beside it (tests/conftest.py).
test: install style
	pytest -n $(CORES) tests/unit tests/workflow

style: install
	ruff format --check $(CODE)
	ruff check $(CODE)

test-fast: install
	pytest -n $(CORES) tests/unit -m "not slow"

lint: style
	snakemake --lint

report: install
	snakemake --report results/report.zip

trace: install
	python workflow/scripts/trace_artifact.py $(FILE)

docs/config.md: install
	python workflow/scripts/config_reference.py

# After a run of the default config: the results page, the README's table and its figure, from results/.
# MEASURED names the run the results come from (default: this checkout's commit, today, this machine's cores).
MEASURED ?= at commit $(shell git rev-parse --short HEAD) on $(shell date +%F), $(CORES) CPU cores
docs/results.md: install
	python -m pipeline.evaluation page --results results --out docs/results.md --readme README.md \
		--title "Results at the default configuration" --measured "$(MEASURED)" --update
	cp results/bodynet/learning_curves.png docs/figures/learning_curves.png

# A checkout gives every file the time of the checkout, and Snakemake compares times: once
# DVC confirms the pulled artifacts match the code and config.yaml they were made from, mark
# them current for Snakemake too (all: the DVC stage's target), keeping the run's own records
# of each output's params and code, so that a changed value later reruns what it reaches.
pull: install
	@test -f dvc.lock || (echo "dvc.lock: not found: it names the artifacts to pull; check out a commit that has one (after a run: dvc commit, git add dvc.lock, git commit, dvc push)"; exit 1)
	dvc pull
	dvc status --quiet || (dvc status; echo "the pulled artifacts were not made from this checkout's code and config.yaml: not marking them current"; exit 1)
	snakemake --touch --cores 1 all
	dvc checkout --force --quiet .snakemake/metadata  # the run's records of params and code, which --touch rewrote

clean:
	rm -rf results resources logs mlflow .snakemake
