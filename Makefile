# mp3pipe: `make run` converts samples (or INPUT=dir OUTPUT=dir) through the local pipeline; `make test` tests it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# checkov (infra/ policy checks) pins dozens of packages; it gets a venv of its own so it never fights the app's.
CHECKOV_VENV := .tools/checkov

.PHONY: setup run serve test check lint host bench clean

setup: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt infra/hooks/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(PY) -m devhost.run $(if $(INPUT),--input "$(INPUT)") $(if $(OUTPUT),--output "$(OUTPUT)")

serve: setup
	$(PY) -m devhost.serve

host: setup
	$(PY) -m devhost.host

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# The fast tier: ruff and the tests marked `fast` (use-cases on in-memory fakes, contracts' fake halves).
check: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m fast -p no:cacheprovider

bench: setup
	$(PY) -m bench.scaling
	$(PY) -m bench.faults
	$(PY) -m bench.pipeline
	$(PY) -m bench.media
	$(PY) -m bench.many_files
	$(PY) -m bench.scale_day

clean:
	rm -rf .state out
