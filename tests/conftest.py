from __future__ import annotations

import pytest
import responses

from tradecycle.infra.logs import MemoryLog
from tradecycle.store import Store, open_database


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "tradecycle.db")
    yield database
    database.close()


@pytest.fixture
def store(db):
    return Store(db)


@pytest.fixture
def log():
    return MemoryLog()


@pytest.fixture
def server():
    """A ``responses`` mock: HTTP never leaves the process, and every mocked call must be used."""
    with responses.RequestsMock() as rsps:
        yield rsps
