# deltaglider: `make demo` and `make test` each install everything they need (the xdelta3 and
# zstd codec binaries included).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint bench codecs clean image test-images release

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "error: deltaglider needs Python >= 3.11 ($(PYTHON) is $$($(PYTHON) -V 2>&1))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing; installing it with apt-get"; \
	  $(call apt_install,python3-venv) && $(PYTHON) -m venv $(VENV); }
	@echo "installing deltaglider and its test tools into $(VENV) (about 30 s the first time)"
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test,dev]"
	@touch $(STAMP)

# apt_install: as root directly, otherwise through sudo when there is one.
define apt_install
( if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
  else echo "error: need root or sudo to apt-get install $(1)"; exit 1; fi; \
  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq $(1) >/dev/null )
endef

# codecs: the xdelta3 binary (the default codec) and zstd (`--codec zstd`), from apt when missing.
codecs:
	@for tool in xdelta3 zstd; do \
	  command -v $$tool >/dev/null && continue; \
	  echo "$$tool is not installed; installing it with apt-get"; \
	  $(call apt_install,$$tool) || { \
	    echo "error: could not install $$tool; install it yourself (apt-get install $$tool) and re-run"; \
	    exit 1; }; \
	done
	@xdelta3 -V 2>&1 | head -1; zstd --version

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy deltaglider

# test: the images (the project image, and the LocalStack and SeaweedFS images the
# testcontainers suites start; cached when unchanged) build in the background from the start,
# with the system Python (scripts/images.py needs only the standard library), while the venv
# installs, lint runs and the suites start; the container tests wait for them (a file lock).
test: codecs
	@mkdir -p .cache; \
	$(PYTHON) scripts/images.py all > .cache/images.log 2>&1 & images=$$!; \
	echo "building the images in the background (follow: tail -f .cache/images.log)"; \
	$(MAKE) --no-print-directory lint && $(BIN)/python -m pytest -n auto --dist worksteal --durations=25 tests e2e; status=$$?; \
	wait $$images || { echo "error: building the images failed:"; status=1; }; \
	sed 's/^/  /' .cache/images.log; exit $$status

test-images:
	$(PYTHON) scripts/images.py all

# image: the deltaglider image (docker buildx when a Docker engine answers, else podman; a local
# Debian base when the registry's python image cannot be pulled). PLATFORMS=linux/amd64,linux/arm64
# builds both (qemu-user-static where needed). IMAGE_TAG overrides the tag.
PLATFORMS ?=
IMAGE_TAG ?=
image:
	$(PYTHON) scripts/images.py deltaglider $(if $(PLATFORMS),--platforms $(PLATFORMS)) $(if $(IMAGE_TAG),--tag $(IMAGE_TAG))

demo: $(STAMP) codecs
	$(BIN)/python scripts/demo.py

bench: $(STAMP) codecs
	$(BIN)/python scripts/bench.py

# release: VERSION=x.y.z into pyproject.toml, CHANGELOG's Unreleased entry dated, a commit and
# the tag vx.y.z (pushing it starts the PyPI and image workflows).
release:
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=x.y.z"; exit 2; }
	$(PYTHON) scripts/release.py bump $(VERSION)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
