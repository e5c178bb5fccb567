# likeness: `make help` lists the targets.
SHELL := /bin/bash
PY ?= .venv/bin/python
EXP ?=
SETUP_STAMP := .venv/.setup-stamp
APT_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 chromium chromium-driver
N ?= 2000
SIZE ?= 256
STYLE ?= game
DATA ?= data/game-$(STYLE)-$(SIZE)
LINT_PACKAGES = $(wildcard game models losses datamodules lightning_modules callbacks eval bench studies) tests

.PHONY: help setup lint test test-slow test-gpu data sheet train-imitator train-main pretrained demo demo-ablations verify reconstruct app bench clean-venv

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

setup: $(SETUP_STAMP) ## install packages into .venv, the renderer's Debian packages, and the weight cache
$(SETUP_STAMP): pyproject.toml constraints.txt models/weights.py models/__main__.py
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	  else echo "Missing Debian packages (headless rendering, the browser tests' chromium); run: sudo apt-get install -y $(APT_PACKAGES)"; exit 1; fi; fi
	@if ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm; \
	  else echo "npm is needed once to fetch face-api weights; run: sudo apt-get install -y nodejs npm"; exit 1; fi; fi
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m models fetch
	touch $@

lint: setup ## ruff (lint, format check) and pylint's duplicate-code check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pylint $(LINT_PACKAGES)

test: setup ## run the default test suite (CPU, a few minutes)
	$(PY) -m pytest -m "not slow" -q

test-slow: setup ## run the heavier tests too
	$(PY) -m pytest -q

test-gpu: setup ## the CUDA checks (nvdiffrast renderer, DDP on GPUs); needs a GPU machine
	$(PY) -m pytest -m gpu -q

data: setup ## render N screenshots (STYLE=game|photo, SIZE=256) into DATA
	$(PY) -m game generate --out $(DATA) --count $(N) --size $(SIZE) --style $(STYLE)

sheet: setup ## the main demo for now: a small screenshot set per style and a contact sheet of 16 characters each
	$(PY) -m game sheet --out runs/sheet

train-imitator: setup ## pre-train the imitator (EXP=experiments/imitator.yaml; ARGS='--config experiments/trainer/bf16.yaml --ckpt_path last')
	$(PY) -m lightning_modules.cli fit --config $(or $(EXP),experiments/imitator.yaml) $(ARGS)

train-main: setup ## cross-domain regression, needs the imitator run (EXP=experiments/main.yaml; ARGS='--config experiments/ablations/no_domain.yaml')
	$(PY) -m lightning_modules.cli fit --config $(or $(EXP),experiments/main.yaml) $(ARGS)

pretrained: setup ## train both readers, export their mean, score it -> weights/default/{model.pt,MODEL_CARD.md} (ARGS='--budget-minutes 20 --set trainer.accelerator=gpu')
	$(PY) -m studies.pretrained --score $(ARGS)

demo: setup ## the whole method at CPU scale: imitator, regression, baselines, benchmark, tool -> runs/demo/REPORT.md
	$(PY) -m studies.demo

demo-ablations: setup ## full model + 3 ablations x 3 seeds at demo scale (long) -> runs/ablations/ABLATIONS.md
	$(PY) -m studies.ablations

verify: setup ## face verification, Table 3 (CKPT=run.ckpt, default the shipped model; BENCH="lfw cfp_ff cfp_fp agedb synthetic" ARGS=...)
	$(PY) eval/verify.py --bench $(or $(BENCH),lfw cfp_ff cfp_fp agedb) $(if $(CKPT),--ckpt $(CKPT)) --root data/benchmarks $(ARGS)

reconstruct: setup ## photos -> character presets, engine renders, side-by-sides (PHOTOS='a.jpg b.jpg' CKPT=...|none, default the shipped model)
	$(PY) -m eval.reconstruct $(PHOTOS) $(if $(CKPT),--ckpt $(CKPT)) --out runs/reconstruct

app: setup ## the character creator in the browser: photos -> character, sliders, preset and mesh (PORT=7860 CKPT=...)
	$(PY) -m eval.app --port $(or $(PORT),7860) $(if $(CKPT),--ckpt $(CKPT))

bench: setup ## renderer speed and memory -> bench/results/*.json and bench/README.md
	$(PY) -m bench.render

clean-venv: ## remove .venv (the cache folder stays)
	rm -rf .venv
