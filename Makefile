# `make run`: set up and start the chat (building the index on first run).
# `make test`: set up with the test and LLM extras and run the tests.
# `make screenshots`: the browser test that takes the README's and docs/' pictures, saved to docs/images/.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(shell command -v $(PY) || echo python3) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: it is the CPU build on this machine; an unpinned one pulls a CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[llm,test]'
	$(BIN)/pip check
	touch $@

.PHONY: setup run test screenshots
setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python app.py

test: $(VENV)/.installed-test
	$(BIN)/ruff check assistant app.py tests
	$(BIN)/mypy assistant app.py
	$(BIN)/python -m pytest

screenshots: $(VENV)/.installed-test
	ASSISTANT_SCREENSHOTS=docs/images $(BIN)/python -m pytest tests/test_docs.py -k screenshots
