"""Rongxin (融信): the application that composes forensics, privacy, zero knowledge and the
consortium ledger — CLI, configuration, HTTP API, web UI and the demo."""

from rongxin.errors import RongxinError

__version__ = "0.1.0"

__all__ = ["RongxinError", "__version__"]
