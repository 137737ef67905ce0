"""A real S3-compatible server on loopback for the S3 backend's tests: ``moto`` in server
mode, in its own process on 127.0.0.1 and a free port. Clients get the endpoint and
explicit credentials, so boto3 never looks anything up nor contacts another address."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from chain.vault.s3 import S3Store

ACCESS_KEY_ID = "test-vault-key"
SECRET = "test-vault-secret-not-real"
REGION = "cn-north-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def store(self, bucket: str, prefix: str = "", part_bytes: int | None = None) -> S3Store:
        kwargs = {} if part_bytes is None else {"part_bytes": part_bytes}
        store = S3Store.connect(
            self.endpoint,
            bucket,
            region=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET,
            prefix=prefix,
            **kwargs,
        )
        with contextlib.suppress(Exception):
            store.client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        return store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def s3_server(timeout_s: float = 30.0) -> Iterator[S3Server]:
    """Start ``moto`` on 127.0.0.1 (a free port); stop it on exit."""
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the moto S3 server exited at start")
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1.0, trust_env=False)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
