# Rongxin: two commands on a fresh Debian machine (as root):
#   make demo   set up, then run the end-to-end demo on embedded defaults
#   make test   set up, then ruff + mypy + pytest (default suite)
# While developing (no set-up, no root; the tools of .venv when present, else of PATH):
#   make check  ruff check, ruff format --check, mypy (seconds)
#   make fmt    ruff format, then ruff check --fix
.PHONY: setup demo test test-slow bench lock clean check fmt

RUFF ?= bash scripts/tool.sh ruff
MYPY ?= bash scripts/tool.sh mypy

setup:
	@bash scripts/setup.sh
	@.venv/bin/python scripts/native.py

demo: setup
	.venv/bin/rongxin demo
	.venv/bin/rongxin serve --demo demo-out/platform

test: setup
	@bash scripts/test.sh

test-slow: setup
	.venv/bin/pytest -m slow

bench: setup
	.venv/bin/python bench/crypto.py

# Re-pin every Python package to what is installed in .venv now.
lock:
	.venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

# Every check runs even when an earlier one fails; the exit status says whether all passed.
check:
	@status=0; \
	echo "ruff check"; $(RUFF) check . || status=1; \
	echo "ruff format --check"; $(RUFF) format --check . || status=1; \
	echo "mypy"; $(MYPY) || status=1; \
	exit $$status

fmt:
	$(RUFF) format .
	$(RUFF) check --fix .

clean:
	rm -rf .venv .venv-tools .native .native.new .pytest_cache .mypy_cache .ruff_cache .hypothesis demo-out .pytest-rc
