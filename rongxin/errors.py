"""Exception root of the :mod:`rongxin` application package."""

from __future__ import annotations


class RongxinError(Exception):
    """Root of every error raised on purpose by the application layer (CLI, config, demo)."""
