"""Rongxin (融信): the application that composes forensics, privacy, zero knowledge and the
consortium ledger.

What it holds today: the ``rongxin`` command line (:func:`main`; ``rongxin --help``:
``demo``, ``verify`` for receipts, ``crypto``, ``works``, ``query``, ``transfer``,
``ledger``, ``chain`` and ``datasets`` commands; also ``python -m rongxin``), the operator
tooling behind ``rongxin chain init|up|down|status`` (:mod:`rongxin.ops`: a network
directory with keys, genesis, one ``node.toml`` per node, scripts and monitoring files)
the end-to-end demo (:func:`run_demo`, behind ``make demo``), which runs a whole
consortium in one process, and the fault tests of real node processes
(:mod:`rongxin.e2e`: manifests, perturbations, black-box checks). There is no web UI yet.

Examples
--------
>>> import rongxin
>>> rongxin.__version__
'0.1.0'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports
from rongxin.errors import RongxinError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rongxin.cli import main
    from rongxin.demo import DemoReport, DemoStep, run_demo

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "main": "rongxin.cli",
    "DemoReport": "rongxin.demo",
    "DemoStep": "rongxin.demo",
    "run_demo": "rongxin.demo",
}

__all__ = [
    "DemoReport",
    "DemoStep",
    "RongxinError",
    "__version__",
    "main",
    "run_demo",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
