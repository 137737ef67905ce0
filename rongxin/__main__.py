"""``python -m rongxin …``: the ``rongxin`` command line (what the start scripts and units run)."""

from rongxin.cli import main

if __name__ == "__main__":
    main()
