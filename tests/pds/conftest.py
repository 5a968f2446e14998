"""One reference PDS per test session (per xdist worker), started only when a test asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import need
from tests.pds.pdskit import Pds, installed, node, running_pds


@pytest.fixture(scope="session")
def pds() -> Iterator[Pds]:
    need(node() is not None, "node is not installed (apt-get install nodejs npm)")
    need(installed(), "the reference PDS is not installed (cd tests/pds && npm ci)")
    with running_pds() as server:
        print(f"\nreference PDS up in {server.startup_seconds:.2f}s at {server.service}")
        yield server
