"""A throw-away PostgreSQL cluster for tests, benchmarks and demos (Debian's ``postgresql``).

:class:`ThrowawayCluster` runs ``initdb`` and ``pg_ctl`` from the newest
``/usr/lib/postgresql/<version>/bin`` (or ``$RONGXIN_PG_BIN``) in a fresh temporary
directory, listening only on a Unix socket in that directory (no TCP port), with ``trust``
authentication for that socket alone; :meth:`ThrowawayCluster.stop` stops it and removes
the directory. PostgreSQL refuses to run as root: when the caller is root, the cluster
runs as the unprivileged user ``nobody`` (the directory is handed to it), via
``setpriv``.

Examples
--------
>>> pg_bin_dir() is None or (pg_bin_dir() / "initdb").exists()
True
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from privacy.errors import ConnectorError

PG_BIN_ENV = "RONGXIN_PG_BIN"
UNPRIVILEGED_USER = "nobody"


def pg_bin_dir() -> Path | None:
    """The PostgreSQL server binaries' directory, or ``None`` when not installed."""
    env = os.environ.get(PG_BIN_ENV)
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class ThrowawayCluster:
    """Start with :meth:`start` (or ``with``); connect with :attr:`conninfo`."""

    def __init__(self, port: int = 5432, database: str = "rongxin") -> None:
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise ConnectorError(
                "PostgreSQL server binaries not found (install Debian's postgresql: scripts/setup.sh)"
            )
        self.bin = bin_dir
        self.port = port
        self.database = database
        self.dir = Path(tempfile.mkdtemp(prefix="rongxin-pg-"))
        self.data = self.dir / "data"
        self._as: list[str] = []
        self.user = os.environ.get("USER", "postgres")
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
            self.user = UNPRIVILEGED_USER
        self.started = False

    @property
    def conninfo(self) -> str:
        """The libpq connection string (Unix socket in the cluster's directory)."""
        return f"host={self.dir} port={self.port} dbname={self.database} user={self.user}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
        proc = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=self.dir
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ConnectorError(f"{Path(args[0]).name} failed: {' | '.join(tail)}")

    def start(self) -> ThrowawayCluster:
        """``initdb``, ``pg_ctl start``, ``createdb``; the cluster is ready when this returns."""
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth-local=trust",
            "--auth-host=reject",
            "-E",
            "UTF8",
            "--no-sync",
        )
        opts = f"-c listen_addresses='' -k {self.dir} -p {self.port} -c fsync=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        self.started = True
        deadline = time.monotonic() + 30
        while True:
            try:
                self._run(
                    str(self.bin / "createdb"),
                    "-h",
                    str(self.dir),
                    "-p",
                    str(self.port),
                    "-U",
                    self.user,
                    self.database,
                )
                return self
            except ConnectorError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        try:
            if self.started:
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60
                )
                self.started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
