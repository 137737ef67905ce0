"""HTTPS to the checked address: the TLS server name and the certificate check keep the host name."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crawlers.errors import FetchError
from crawlers.fetch import Fetcher, FetchLimits
from crawlers.guard import AddressGuard
from crawlers.politeness import HostPacer


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    cert, key = _self_signed(tmp_path, "site.test")
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            hosts.append(self.headers["Host"])
            body = b"<html><body>secure</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert, hosts
    finally:
        server.shutdown()
        server.server_close()


def test_https_keeps_the_name_for_sni_and_verification(tls_site: tuple[int, Path, list[str]]) -> None:
    port, ca, hosts = tls_site
    names = {"site.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]}
    guard = AddressGuard(["127.0.0.1"], lambda host, _port: names[host])
    limits = FetchLimits(total_seconds=5.0)
    with Fetcher(guard, HostPacer(delay=0.0), limits, obey_robots=False, ca_file=str(ca)) as f:
        r = f.fetch(f"https://site.test:{port}/")
        assert r.status == 200 and r.body.endswith(b"secure</body></html>")
        with pytest.raises(FetchError, match=r"CERTIFICATE_VERIFY_FAILED|certificate|hostname"):
            f.fetch(f"https://impostor.test:{port}/")  # same address, a name the certificate lacks
    with Fetcher(guard, HostPacer(delay=0.0), limits, obey_robots=False) as f, pytest.raises(FetchError):
        f.fetch(f"https://site.test:{port}/")  # not trusted by the system's authorities
    assert hosts == [f"site.test:{port}"]
