# Set up, run the demo, test, lint. `make demo` and `make test` are the README's quickstart.
SHELL := /bin/bash
PYTHON ?= python3.11
POETRY_VERSION := 2.5.1
TOOLS := .tools
POETRY := $(TOOLS)/bin/poetry
TORCH_WHEEL := vendor/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
DEMO_QUESTION := How much is the minimum guarantee payable by Northwind Textiles?

# `poetry install` compiles llama.cpp. Not for the build machine's exact CPU (GGML_NATIVE):
# on CPUs with AMX that build crashes in ggml_backend_amx_mul_mat. AVX-512 only where present.
cpu_has = $(shell grep -qw $(1) /proc/cpuinfo 2>/dev/null && echo ON || echo OFF)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
  -DGGML_F16C=ON -DGGML_AVX512=$(call cpu_has,avx512f) \
  -DGGML_AVX512_VNNI=$(call cpu_has,avx512_vnni) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
export POETRY_VIRTUALENVS_IN_PROJECT := true

.PHONY: setup demo test test-fast test-tools lint docs sample quality bench cluster

setup: .venv/.installed

demo: setup
	$(POETRY) run python ingest.py
	$(POETRY) run python main.py "$(DEMO_QUESTION)"

test: setup test-tools
	$(POETRY) run pytest

# The tests that need no model, browser or Redis (seconds): the logic, on fakes.
test-fast: setup
	$(POETRY) run pytest -m "not slow"

# What the tests drive besides Python, from Debian's packages: tmux, for a real terminal
# session of `docqa chat`; redis-server, for the API's queue and workers; chromium, the
# browser Playwright drives through the web page.
TEST_TOOLS := tmux redis-server chromium
test-tools:
	@missing=$$(for tool in $(TEST_TOOLS); do command -v $$tool >/dev/null || echo $$tool; done); \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  apt-get install -y -qq $$missing >/dev/null; } || \
	  { echo "install $$missing (apt-get install $$missing)"; exit 1; }

# The HTTP API with its queue on this machine: Redis (AOF, in .redis/, bound to 127.0.0.1), two
# workers sharing the cores, and `docqa serve` on 127.0.0.1:8000 until Ctrl-C. Redis's password
# is made once into .redis/password and given to it in .redis/redis.conf (both the owner's
# alone); the workers and the API get it in the queue URL, in DOCQA_SERVER__QUEUE: none of the
# three has it on its command line, for every user of the machine to see.
REDIS_PORT ?= 6379
REDIS_DIR ?= $(CURDIR)/.redis
cluster: setup
	@command -v redis-server >/dev/null || { echo "install Redis: apt-get install redis-server"; exit 1; }
	@mkdir -p -m 700 $(REDIS_DIR) && umask 077 && cd $(REDIS_DIR) && \
	  { [ -s password ] || $(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > password; } && \
	  printf 'port %s\nbind 127.0.0.1\ndir %s\nappendonly yes\nrequirepass %s\n' \
	    $(REDIS_PORT) $(REDIS_DIR) "$$(cat password)" > redis.conf && chmod 600 password redis.conf
	@if redis-cli -p $(REDIS_PORT) ping 2>/dev/null | grep -q PONG; then \
	  echo "a Redis without a password runs on port $(REDIS_PORT): redis-cli -p $(REDIS_PORT) shutdown"; \
	  exit 1; fi
	@REDISCLI_AUTH=$$(cat $(REDIS_DIR)/password) redis-cli -p $(REDIS_PORT) ping 2>/dev/null | \
	  grep -q PONG || redis-server $(REDIS_DIR)/redis.conf --daemonize yes
	@export DOCQA_SERVER__QUEUE=redis://:$$(cat $(REDIS_DIR)/password)@127.0.0.1:$(REDIS_PORT)/0; \
	trap 'kill $$(jobs -p) 2>/dev/null' EXIT; \
	for n in 1 2; do DOCQA_LLM__THREADS=$$(( $$(nproc) / 2 > 0 ? $$(nproc) / 2 : 1 )) \
	  $(POETRY) run docqa worker --name worker$$n & done; \
	$(POETRY) run docqa serve

lint: setup
	$(POETRY) run ruff check .
	$(POETRY) run ruff format --check .
	$(POETRY) run mypy
	$(POETRY) run cog --check README.md config.yml

# The README's settings table and config.yml, written from the settings in docqa/config.py.
docs: setup
	$(POETRY) run cog -r README.md config.yml

# docqa and the reference pipeline on both halves of the held-out 20-F question set, with
# 95% intervals (needs ../shared/data/manu-20f-2022-09-24.pdf; about 10 minutes). Variants:
# `poetry run python -m bench.quality --part retrieval` (or answers), on the tuning half.
quality: setup
	$(POETRY) install --with bench --compile
	$(POETRY) run python -m bench.quality

# Every speed benchmark against the reference pipeline and the hardware's limits, side by side
# (the 20-F parts need ../shared/data/manu-20f-2022-09-24.pdf; about 60 minutes; writes
# bench/results/latest.md, latest.json and PNG plots; two ~7 GB model files in models/bench/).
bench: setup
	$(POETRY) install --with bench --compile
	$(POETRY) run python -m bench

# Regenerate the bundled sample PDF from the text in tests/fixtures/pdfs.py.
sample: setup
	$(POETRY) run python -m tests.fixtures.pdfs data

$(POETRY):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet poetry==$(POETRY_VERSION)

# The CPU-only torch wheel that poetry.lock pins by hash (PyPI's default build is CUDA, ~3 GB).
$(TORCH_WHEEL):
	mkdir -p vendor
	cp /opt/wheels/$(notdir $@) $@ 2>/dev/null || $(PYTHON) -m pip download --no-deps \
	  --dest vendor --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu

# --compile, and compileall for docqa itself: bytecode written once at install, so a Python
# that may not write it (PYTHONDONTWRITEBYTECODE, a read-only install) does not compile
# LangChain and the rest from source in every run (`ask`: 3.64 s without bytecode, 2.17 s with).
.venv/.installed: $(POETRY) $(TORCH_WHEEL) pyproject.toml poetry.lock
	$(POETRY) env use $(PYTHON)
	$(POETRY) install --compile
	$(POETRY) run python -m compileall -q docqa
	touch $@
