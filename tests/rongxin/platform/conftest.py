"""The platform over a real node API (an in-process consortium served by uvicorn on
loopback) with a user of every role."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher

from chain.api import create_app as node_app
from chain.client import NodeClient
from rongxin.contracts import node_registry
from rongxin.platform.accounts import AccountStore
from rongxin.platform.app import close_app, create_app
from rongxin.platform.chainview import ChainView
from rongxin.platform.config import PlatformConfig
from rongxin.platform.roles import ROLES
from tests.chain.api.harness import Node, serve, start_node

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""Cheap Argon2 parameters for tests only (the platform uses RFC 9106 low-memory)."""


@dataclass
class Stack:
    node: Node
    node_url: str
    config: PlatformConfig
    app: Any
    chain: ChainView


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("platform")
    node = start_node(root / "chain", registry_factory=node_registry)  # with the zkp contracts
    with serve(node_app(node.service)) as url:
        client = NodeClient(url, node.member.key, node.member.cert, node.genesis)
        chain = ChainView(client, node.genesis)
        config = PlatformConfig(
            data_dir=root / "data",
            library=root / "library",
            name="test-platform",
            nodes=(url,),
            scan_allow=("127.0.0.1",),
        )
        store = AccountStore(config.data_dir / "accounts.sqlite", hasher=FAST_HASHER)
        for role in ROLES:
            store.create_user(role.replace("_", "-"), PASSWORD, {role}, display=f"{role} user")
        app = create_app(config, chain=chain, store=store)
        yield Stack(node, url, config, app, chain)
        close_app(app)
    node.consortium.close()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client: TestClient, user: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": user, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]
    return client


def client_of(stack: Stack, user: str | None = None) -> TestClient:
    c = TestClient(stack.app, base_url="http://127.0.0.1")
    return login(c, user) if user else c
