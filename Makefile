# Two commands do all the set-up on a fresh machine: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20

.PHONY: serve test test-deps image lab train lint typecheck system-deps synth-cdk8s clean

$(VENV)/.runtime: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) -e '.[dev,deploy,lab]'
	touch $@

# the cdk8s CLI (npm), so tests run the documented `cdk8s synth` itself
CDK8S_CLI_VERSION := 2.207.60
.cdk8s-cli/.installed:
	npm install --prefix .cdk8s-cli --no-audit --no-fund --silent cdk8s-cli@$(CDK8S_CLI_VERSION)
	touch $@

$(VENV)-checkov/.installed:
	test -x $(VENV)-checkov/bin/python || python3 -m venv $(VENV)-checkov
	$(VENV)-checkov/bin/python -m pip install --quiet --disable-pip-version-check checkov
	touch $@

## serve: install the runtime and start the API on 127.0.0.1:8000 (bundled model, SQLite in ./data)
serve: $(VENV)/.runtime
	$(VENV)/bin/fingerprint serve

## system-deps: Debian tools the tests drive for real (promtool, amtool, docker-compose, PostgreSQL)
system-deps:
	scripts/install-system-deps.sh

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check fingerprint lab tests deploy_cdk8s

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy

## test: everything CI runs: lint, types, the whole test suite (two workers: many tests wait on processes)
test: test-deps lint typecheck
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --durations=20

# the four installs share nothing (apt, two venvs, npm): side by side, a fresh machine waits for the longest only
test-deps:
	$(MAKE) -j4 system-deps $(VENV)/.dev $(VENV)-checkov/.installed .cdk8s-cli/.installed

## image: build the container image with whichever of docker, podman or buildah is on PATH
IMAGE ?= ghcr.io/fingerprint-api/fingerprint-api:0.1.0
image:
	@tool=$$(command -v docker || command -v podman || command -v buildah) || { echo "no docker, podman or buildah on PATH" >&2; exit 2; }; \
	case "$$tool" in *buildah) $$tool bud -f Containerfile -t $(IMAGE) . ;; *) $$tool build -f Containerfile -t $(IMAGE) . ;; esac

## lab: what training, evaluation and benchmarks need beyond the runtime (`python -m lab ...`)
lab: $(VENV)/.dev

## train: the recipe that wrote the bundled weights (lab/recipes/fast: 1 h 51 min on 2 cores, +3 min for the
## card) from the real sets in $(DATA); resumable from runs/fastN/checkpoint.pt. Writes runs/fast2/fingerprint-net.{pt,json}
## ready to serve (WEIGHTS_PATH): minutiae weight 6, thresholds calibrated on the held-out split and unseen synthetic fingers.
DATA ?= ../shared/fingerprints
train: $(VENV)/.dev
	$(PY) -m lab train --config lab/recipes/fast/stage1.toml --data $(DATA) --out runs/fast1 --weights runs/fast1/fingerprint-net.pt
	$(PY) -m lab train --config lab/recipes/fast/stage2.toml --data $(DATA) --out runs/fast2 --weights runs/fast2/fingerprint-net.pt
	$(PY) -m lab.release --data $(DATA) --model runs/fast2/fingerprint-net.pt --config lab/recipes/fast/stage2.toml \
		--weights 6 --synthetic 100 --direction-offsets=-6,6 --minutiae-window 400 --write 6

clean:
	rm -rf $(VENV) .cdk8s-cli .pytest_cache .mypy_cache .ruff_cache
