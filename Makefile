# mp3pipe: `make run` converts samples (or INPUT=dir OUTPUT=dir) through the local pipeline; `make test` tests it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# checkov (infra/ policy checks) pins dozens of packages; it gets a venv of its own so it never fights the app's.
CHECKOV_VENV := .tools/checkov
# The real Azure Functions Python worker (../shared/realworker) runs the app on Python 3.12, as Azure does, in a venv
# of its own: the worker's gRPC pins beside the app's requirements. pyenv's python3.12 shim may refuse while another
# version is global, so each candidate is asked for its real executable.
WORKER_VENV := .venv-worker
REALWORKER := ../shared/realworker
WORKER_PYTHON ?= $(shell for p in python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null && break; done)

.PHONY: setup run serve test check lint host bench clean

setup: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed $(WORKER_VENV)/.installed

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

$(WORKER_VENV)/.installed: requirements.txt tests/support/realworker_setup.py
	@test -n "$(WORKER_PYTHON)" || { echo "python3.12 not found (the real Functions worker needs it)"; exit 1; }
	test -x $(WORKER_VENV)/bin/python || $(WORKER_PYTHON) -m venv $(WORKER_VENV)
	$(WORKER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(WORKER_VENV)/bin/python -m pip install --quiet 'grpcio~=1.59.0' 'protobuf~=4.25.3' 'python-dateutil~=2.9.0' \
		-r requirements.txt
	if [ -d $(REALWORKER) ]; then $(WORKER_VENV)/bin/python tests/support/realworker_setup.py \
		$(REALWORKER)/worker434 $(WORKER_VENV)/worker434; else echo "no $(REALWORKER): real-worker tests will skip"; fi
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# make turns any failing recipe into its own exit code 2, so `make run` keeps the program's 1 (some files failed,
# each with a report, listed in the summary) as success: it fails (2) only when the pipeline broke or a file was
# left without an outcome. `.venv/bin/python -m devhost.run` exits 0/1/2 itself (README).
run: setup
	@code=0; $(PY) -m devhost.run $(if $(INPUT),--input "$(INPUT)") $(if $(OUTPUT),--output "$(OUTPUT)") \
		$(if $(STATE),--state "$(STATE)") || code=$$?; test $$code -le 1

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
