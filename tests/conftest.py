"""Fixtures shared by the test packages."""

from tests.pg import pg_server

__all__ = ["pg_server"]
