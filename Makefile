# Two commands on a fresh machine: `make run` (the pipeline once, on the built-in sandbox) and
# `make test` (the whole suite). Both create .venv and install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test dev validate bench clean reliability

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install                    ## run every configured connection once and print what it did
	@$(BIN)/sync-pipeline run

test: install validate          ## the whole test suite
	@$(BIN)/pytest -n 2 -q

validate: install               ## the Dagster definitions load (`dg check defs`: exits 1 and says why when they do not)
	@mkdir -p var
	@$(BIN)/dg check defs > var/validate.log 2>&1 || (cat var/validate.log; exit 1)
	@grep -aho "All definitions loaded successfully." var/validate.log

dev: install                    ## sandbox + Dagster UI on http://127.0.0.1:3000
	@$(BIN)/sync-pipeline dev

# `make reliability TRIALS=50 DEV_TRIALS=5 SEED=7 SOAK_SEEDS=5`: CLI crash trials per writing connection,
# trials per connection under dagster dev (scheduled runs), then the fault soak; RELIABILITY_ARGS passes
# more to the crash harness (see bench/reliability/crash_trials.py --help).
TRIALS     ?= 50
DEV_TRIALS ?= 5
SEED       ?=
SOAK_SEEDS ?= 5
reliability: install            ## crash harness + fault soak (about 75 min; not part of `make test`)
	@$(BIN)/python bench/reliability/crash_trials.py --trials $(TRIALS) --dev-trials $(DEV_TRIALS) \
		$(if $(SEED),--seed $(SEED)) $(RELIABILITY_ARGS)
	@$(BIN)/python bench/reliability/fault_soak.py --seeds $(SOAK_SEEDS)

# `make bench BENCH_ARGS="--clients 20000 --rounds 1"`: the scale benchmark (bench/scale_bench.py --help).
# Default: 1M invoices / 100k clients, 3 interleaved rounds of the floor, ours and dlt (two loaders), then the
# real write phase; appends to bench/RESULTS.md. dlt lives in bench/.venv-dlt, never in the product's .venv.
BENCH_ARGS ?=
bench: install                  ## scale benchmark: ours vs the bare fetch vs dlt (1M invoices: over an hour)
	@test -x bench/.venv-dlt/bin/python || ($(PYTHON) -m venv bench/.venv-dlt && \
		bench/.venv-dlt/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-dlt.txt)
	@$(BIN)/python bench/scale_bench.py $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache
