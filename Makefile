# Two entry points, each installing what it needs on first use:
#   make demo   quick sinusoid meta-learning run: prints a table, writes a plot
#   make test   lint, strict docs build, test suite
# Optional, not part of test:
#   make peers  a separate .venv-peers with learn2learn 0.2.0 and higher 0.2.1
#               for benchmarks/speed.py (downloads from the package registry)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean peers

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

# The peer libraries live in their own environment so that the main one never
# carries them. Every install is constrained to the CPU torch (an unconstrained
# torchvision would pull a CUDA torch). learn2learn 0.2.0 ships only an sdist
# whose Cython-generated C files include longintrepr.h, gone from Python 3.11's
# headers: the C files are regenerated from its .pyx files with Cython 3 and the
# tree is built without build isolation. It is installed without its declared
# dependencies: qpth among them requires numpy<2, which pandas 3 (skmeta's)
# refuses, and the part benchmarked (algorithms/maml.py, utils) needs only torch;
# benchmarks/_peers.py loads that part without the package __init__.
PEERS := .venv-peers
PEERS_BIN := $(PEERS)/bin
PEERS_STAMP := $(PEERS)/.installed
L2L := learn2learn-0.2.0

peers: $(PEERS_STAMP)

$(PEERS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PEERS)
	echo "torch==2.13.0" > $(PEERS)/constraints.txt
	$(PEERS_BIN)/python -m pip install --quiet --upgrade pip
	$(PEERS_BIN)/python -m pip install --quiet torch==2.13.0
	$(PEERS_BIN)/python -m pip install --quiet -c $(PEERS)/constraints.txt \
		-e . "cython>=3" setuptools wheel
	rm -rf $(PEERS)/src && mkdir -p $(PEERS)/src
	$(PEERS_BIN)/python -m pip download --quiet --no-deps --no-binary :all: \
		--no-build-isolation -d $(PEERS)/src learn2learn==0.2.0
	tar -xzf $(PEERS)/src/$(L2L).tar.gz -C $(PEERS)/src
	rm -f $(PEERS)/src/$(L2L)/learn2learn/data/*.c
	$(PEERS_BIN)/cython -3 $(PEERS)/src/$(L2L)/learn2learn/data/*.pyx
	$(PEERS_BIN)/python -m pip install --quiet --no-build-isolation --no-deps \
		./$(PEERS)/src/$(L2L)
	$(PEERS_BIN)/python -m pip install --quiet -c $(PEERS)/constraints.txt higher==0.2.1
	OMP_NUM_THREADS=1 $(PEERS_BIN)/python benchmarks/_peers.py
	touch $(PEERS_STAMP)

clean:
	rm -rf $(VENV) $(PEERS) build .pytest_cache
