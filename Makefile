# Two entry points, each installing what it needs on first use:
#   make demo   quick sinusoid meta-learning run: prints a table, writes a plot
#   make test   lint, strict docs build, test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

# torch is pinned first: the CPU build is served locally, and an unpinned
# torch would pull several GB of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,bench,docs,distributed]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python benchmarks/sinusoid.py --quick

test: $(STAMP)
	$(BIN)/ruff check skmeta tests benchmarks
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --doctest-modules skmeta tests

clean:
	rm -rf $(VENV) build .pytest_cache
