# Two commands do all set-up: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mlops-ci-installed

.PHONY: demo test venv bench clean

venv: $(STAMP)

# torch is pinned to the CPU build that pip finds on disk here; the rest is pinned by the
# constraints file so that CI and the GitHub Action resolve the same versions.
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/constraints.txt -e '.[train,test,argo]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlops-ci demo

# Two workers, one test file each at a time (a file's module fixtures are set up once).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .mlops-ci .mlops-ci-demo .pytest_cache
