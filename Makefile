# gaslurm: the commands a user types. `make install && make run` on a laptop; `make submit` on a cluster.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/sinewave.yaml
ARGS ?=
RUN_DIR ?=
RUN_DIR_ARG := $(if $(RUN_DIR),--run-dir $(RUN_DIR),)
PYTEST_ARGS ?=
#: pytest-xdist workers for `make test`: the suite is CPU-bound on 2 cores; 4, 6 and 8 took the same 11.4-11.7 min.
TEST_WORKERS ?= 4

.PHONY: install run resume status report test lint data slurm-up slurm-down slurm-logs submit submit-islands islands clean

install:  ## a .venv with the package and every extra (MLP, W&B, islands), MPI for mpi4py and the dev tools
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all,dev,mpi]"

run:  ## the seed's experiment (GA 5 x 20 on sinewave) on this machine
	$(PY) -m workflow run $(CONFIG) $(RUN_DIR_ARG) $(ARGS)

status:
	$(PY) -m workflow status $(or $(RUN_DIR),runs/sinewave)

report:
	$(PY) -m workflow report $(or $(RUN_DIR),runs/sinewave)

# Two invocations (tests/conftest.py): everything but the `serial` tests on TEST_WORKERS xdist workers, then the
# serial tests (they change cluster-wide state) alone. Both always run; exit 5 ("no tests selected") is fine.
test:  ## the whole suite (Slurm/MPI tests skip with a reason unless their services are up)
	@status=0; \
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m "not serial" $(PYTEST_ARGS) \
		|| { rc=$$?; [ $$rc -eq 5 ] || status=$$rc; }; \
	echo "== the serial tests, alone (pytest -m serial)"; \
	$(PY) -m pytest -m serial $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] || status=$$rc; }; \
	exit $$status

lint:
	$(VENV)/bin/ruff check workflow tests
	$(VENV)/bin/mypy

data:  ## Fashion-MNIST from Debian's dataset-fashion-mnist into data/ (offline)
	$(PY) -c "from workflow.trainer.data import prepare_fashion_mnist_from_debian as p; print(p('data'))"

slurm-up:  ## a real Slurm dev cluster on this machine (root; Debian): partitions gpu and gpu2
	bash slurm/dev/up.sh

slurm-down:
	bash slurm/dev/down.sh

slurm-logs:
	bash slurm/dev/logs.sh

ISLANDS ?= 3
ISLANDS_CONFIG ?= configs/islands.yaml
submit-islands:  ## on a Slurm cluster: the island drivers as one small MPI job (sbatch slurm/islands.sbatch)
	GASLURM_PYTHON=$(abspath $(PY)) sbatch --ntasks=$(ISLANDS) slurm/islands.sbatch $(ISLANDS_CONFIG) \
		$(or $(RUN_DIR),runs/islands) $(ARGS)

islands:  ## the island model here, under the venv's mpiexec (ISLANDS_CONFIG, RUN_DIR, ARGS)
	$(PY) -m workflow islands $(ISLANDS_CONFIG) $(RUN_DIR_ARG) $(ARGS)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache

submit:  ## on a Slurm login node: a detached driver submits each generation as a job array
	$(PY) -m workflow submit $(CONFIG) $(RUN_DIR_ARG) $(ARGS)
