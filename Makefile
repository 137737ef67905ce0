# Rongxin: two commands on a fresh Debian machine (as root):
#   make demo   set up, then run the end-to-end demo on embedded defaults
#   make test   set up, then ruff + mypy + pytest (default suite)
.PHONY: setup demo test test-slow bench lock clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/rongxin demo

test: setup
	@bash scripts/test.sh

test-slow: setup
	.venv/bin/pytest -m slow

bench: setup
	.venv/bin/python bench/crypto.py

# Re-pin every Python package to what is installed in .venv now.
lock:
	.venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis demo-out .pytest-rc
