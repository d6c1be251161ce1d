from __future__ import annotations

import pytest

from tradecycle.logs import MemoryLog
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
