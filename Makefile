# Two commands do all set-up on a fresh machine:
#   make run    install into .venv and start Puppetcam
#   make test   install into .venv (with the neural engines and test tools) and run the tests
# Python 3.11 or 3.12 is needed (mediapipe 0.10.21 has no wheels for newer ones).

PYTHON ?= $(shell for p in python3.11 python3.12 python3; do \
  $$p -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12)' 2>/dev/null && echo $$p && break; done)
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU build of torch; on this project's CI it is served from local disk. NVIDIA users: see README.
TORCH  ?= torch==2.13.0

.PHONY: run test install install-test bench clean

$(PY):
	@test -n "$(PYTHON)" || { echo 'Puppetcam needs Python 3.11 or 3.12 (mediapipe 0.10.21)'; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e .

install-test: $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[neural,test]"

run: install
	$(PY) -m app $(ARGS)

test: install-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(VENV)/bin/puppetcam bench --source assets/avatars/mona-lisa.jpg --driving demo

clean:
	rm -rf $(VENV) .pytest_cache
