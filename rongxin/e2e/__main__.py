"""``python -m rongxin.e2e MANIFEST [--workdir DIR]``: run one manifest, print its report.

Exit status 0 when every check passed, 1 when one failed, 2 for a manifest that cannot run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rongxin.e2e.manifest import ManifestError, load_manifest
from rongxin.e2e.runner import run_manifest


def main(argv: list[str] | None = None) -> int:
    """Run the manifest named on the command line; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m rongxin.e2e", description=__doc__)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--workdir", type=Path, default=None, help="network and logs (default: a temp dir)")
    args = parser.parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}] {text}", flush=True)

    report = run_manifest(manifest, args.workdir, log)
    print(report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
