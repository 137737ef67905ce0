"""The fault-injecting link proxies: bytes forwarded both ways, partitions cut and heal."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from rongxin.e2e.proxy import ProxyError, ProxyNet


@pytest.fixture
def echo() -> Iterator[int]:
    """An echo server on loopback; its port."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def roundtrip(port: int, data: bytes = b"hello") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(data)
        return c.recv(4096)


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return True


def test_links_forward_and_partitions_cut_then_heal(echo: int) -> None:
    net = ProxyNet()
    net.start()
    try:
        ab = free_port()
        ba = free_port()
        net.add_link("a", "b", ("127.0.0.1", ab), ("127.0.0.1", echo))
        net.add_link("b", "a", ("127.0.0.1", ba), ("127.0.0.1", echo))
        assert roundtrip(ab) == b"hello"
        held = socket.create_connection(("127.0.0.1", ab), timeout=5)
        held.sendall(b"x")
        assert held.recv(10) == b"x"
        assert net.open_connections() == 2

        cut = net.partition([["a"], ["b"]])
        assert sorted(cut) == [("a", "b"), ("b", "a")]
        held.settimeout(5)
        assert closed(held)  # an existing connection is dropped
        held.close()
        with socket.create_connection(("127.0.0.1", ba), timeout=5) as c:
            c.settimeout(5)
            assert closed(c)  # a new one is refused
        assert net.links[("b", "a")].refused >= 1

        net.heal()
        assert roundtrip(ba, b"again") == b"again"
        with pytest.raises(ProxyError, match="cannot listen"):
            net.add_link("a", "c", ("127.0.0.1", ab), ("127.0.0.1", echo))
    finally:
        net.stop()


def test_a_partition_leaves_links_inside_a_group(echo: int) -> None:
    net = ProxyNet()
    net.start()
    try:
        ports = {}
        for pair in [("a", "b"), ("a", "c"), ("b", "c")]:
            ports[pair] = free_port()
            net.add_link(*pair, ("127.0.0.1", ports[pair]), ("127.0.0.1", echo))
        assert sorted(net.partition([["a", "b"], ["c"]])) == [("a", "c"), ("b", "c")]
        assert roundtrip(ports[("a", "b")]) == b"hello"
    finally:
        net.stop()
