# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick docs setup system-deps bench-deps clean

$(STAMP): pyproject.toml
	$(MAKE) system-deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: on this machine 2.13.0 is a CPU wheel on disk; an unpinned torch
	# would pull a multi-GB CUDA build. Set TORCH_VERSION= to keep an installed one.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -q -e ".[all,dev,docs]"
	touch $(STAMP)

setup: $(STAMP)

system-deps:
	@# espeak-ng (phonemes for TTS) and libusb (open3d) from Debian, when we may install them
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  missing=""; \
	  command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	  ldconfig -p | grep -q libusb-1.0 || missing="$$missing libusb-1.0-0"; \
	  ldconfig -p | grep -q libgomp || missing="$$missing libgomp1"; \
	  if [ -n "$$missing" ]; then \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null)) \
	    || echo "warning: could not apt-get install$$missing"; \
	  fi; \
	else echo "note: not root or no apt-get; install espeak-ng and libusb-1.0-0 yourself for TTS phonemes and open3d"; fi

demo: $(STAMP)
	$(BIN)/python -m multidiff.demo

# two pytest workers (pytest-xdist), one per core; each test file stays on one worker so its module
# fixtures are built once; tests run torch on one thread (tests/conftest.py). TEST_WORKERS=0 runs serially.
# A worker that crashes ends the run at once and names its test (--max-worker-restart=0): with a
# replacement worker, --dist loadfile can wait forever (pytest-xdist issues 784, 1378).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=10 --max-worker-restart=0

test: $(STAMP)
	$(PYTEST)

# everything but the tests marked slow (end-to-end runs with real training budgets)
test-quick: $(STAMP)
	$(PYTEST) -m "not slow"

# the documentation site (mkdocs.yml) into site/, offline; --strict fails on a broken link or anchor, a
# docstring role that names nothing, or a public object without a docstring (docs/griffe_docstrings.py).
# No --quiet: it drops warnings before --strict counts them (mkdocs 1.6), so the build would pass.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# the purification benchmark's torchattacks cross-check (part of the bench extra), without its
# dependencies: torchvision would pull a CUDA torch; the attacks used never import it
bench-deps: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps "torchattacks>=3.5,<4"

clean:
	rm -rf $(VENV) demo_output .pytest_cache site
