"""A node's API served by uvicorn on loopback, one per test module of the clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain.api import create_app
from tests.chain.api.harness import Node, serve, start_node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = start_node(tmp_path_factory.mktemp("client"))
    yield n
    n.consortium.close()


@pytest.fixture(scope="module")
def url(node: Node) -> Iterator[str]:
    with serve(create_app(node.service)) as u:
        yield u
