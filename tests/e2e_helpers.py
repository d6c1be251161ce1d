"""Shared plumbing for the end-to-end tests: the real ``tradecycle`` CLI in a
subprocess, pointed at a ``FakeServices`` on loopback, with a real SQLite
file in ``tmp_path``.

The tests assert only what a user could see: the requests that reached the
fake, the rows in the database, exit codes and messages.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .fakeserver import FakeServices

# Every variable the product reads from the environment; the parent's values never leak in.
PRODUCT_ENV = (
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "FINNHUB_API_KEY",
    "COINGECKO_API_KEY",
    "OPENAI_API_KEY",
    "TRADECYCLE_CONFIG",
    "TRADECYCLE_DEBUG",
    "TRADECYCLE_ALERT_URLS",
)

# Small budgets so that the whole end-to-end set runs in seconds.
BASE_CONFIG: dict[str, Any] = {
    "cycle": {
        "analysis_timeout_seconds": 5,
        "order_timeout_seconds": 2,
        "max_retries": 2,
        "retry_base_delay_seconds": 0.01,
        "retry_max_delay_seconds": 0.05,
        "max_cycle_seconds": 20,
    },
    "universe": {"stocks": ["AAPL"], "crypto": ["BTC/USD"]},
    # On by default at Alpaca; off here so that a test sees only the orders it is about
    # (test_e2e_stops.py turns it on).
    "risk": {"broker_held_stops": False},
}

CLI_TIMEOUT_SECONDS = 20
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"


def copy_shipped_config(folder: Path) -> Path:
    """The shipped config.toml in ``folder``, its simulated stocks open around the clock
    (``market_data.sim.market_hours = "always"``): these tests run the CLI at the wall
    clock's time and must see stocks trade whatever the day and hour."""
    folder.mkdir(parents=True, exist_ok=True)
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    assert '\nmarket_hours = "exchange"' in text
    path = folder / "config.toml"
    path.write_text(text.replace('\nmarket_hours = "exchange"', '\nmarket_hours = "always"', 1), encoding="utf-8")
    return path


def cli_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "tradecycle.cli", *args]


def run_cli(args: Sequence[str], env: dict[str, str], timeout: float = CLI_TIMEOUT_SECONDS,
            cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run ``tradecycle ARGS`` to its end (stdout is a pipe, as under cron)."""
    return subprocess.run(cli_command(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start_cli(args: Sequence[str], env: dict[str, str], cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start ``tradecycle ARGS`` without waiting (for races and SIGKILL)."""
    return subprocess.Popen(cli_command(args), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCT_ENV}
    env.update(extra)
    return env


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def wait_for(condition: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class E2E:
    """One fake, one folder, one config.toml; run the CLI and read the database."""

    def __init__(self, fake: FakeServices, folder: Path):
        self.fake = fake
        self.folder = folder
        self.env = clean_env(fake.env())
        self.config = self.configure()

    # -- setup -----------------------------------------------------------------

    def configure(self, **overrides: Any) -> Path:
        """(Re)write config.toml: the fake's URLs, ``BASE_CONFIG``, then ``overrides``."""
        self.config = self.fake.config_toml(self.folder, **merge(BASE_CONFIG, overrides))
        return self.config

    @property
    def db_path(self) -> Path:
        return self.folder / "tradecycle.db"

    @property
    def log_path(self) -> Path:
        return self.folder / "tradecycle.jsonl"

    # -- the CLI ---------------------------------------------------------------

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT_SECONDS, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run_cli([*args, "--config", str(self.config)], env or self.env, timeout, cwd=self.folder)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return start_cli([*args, "--config", str(self.config)], env or self.env, cwd=self.folder)

    def run(self, *args: str, expect: int | None = 0, timeout: float = CLI_TIMEOUT_SECONDS) -> subprocess.CompletedProcess:
        """``tradecycle run ARGS``; asserts the exit code unless ``expect`` is None."""
        result = self.cli("run", *args, timeout=timeout)
        if expect is not None:
            assert result.returncode == expect, describe(result)
        return result

    # -- what the user can see --------------------------------------------------

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows read with the sqlite3 module, as a user's script would."""
        conn = sqlite3.connect(self.db_path)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def trades(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM trades ORDER BY id")

    def decisions(self, cycle_id: str | None = None) -> dict[str, dict[str, Any]]:
        """symbol -> ai_decisions row (of ``cycle_id``, else the newest per symbol)."""
        if cycle_id is None:
            rows = self.rows("SELECT * FROM ai_decisions ORDER BY id")
        else:
            rows = self.rows("SELECT * FROM ai_decisions WHERE cycle_id = ? ORDER BY id", (cycle_id,))
        return {r["symbol"]: r for r in rows}

    def cycles(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM cycles ORDER BY started_at, rowid")

    def last_cycle(self) -> dict[str, Any]:
        return self.cycles()[-1]

    def kill_switch(self) -> dict[str, Any]:
        return self.rows("SELECT kill_switch_active, kill_switch_reason FROM agent_status WHERE id = 1")[0]

    def posted_orders(self) -> list[dict[str, Any]]:
        """Bodies of every POST /v2/orders that reached the fake broker."""
        return self.fake.orders_posted()

    def broker_orders(self) -> list[dict[str, Any]]:
        """The orders the fake broker holds (accepted ones, keyed by client_order_id)."""
        with self.fake.lock:
            return [dict(o) for o in self.fake.orders.values()]


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture
def fake():
    with FakeServices() as services:
        yield services
        assert services.errors == [], "the fake itself failed:\n" + "\n".join(services.errors)


@pytest.fixture
def e2e(fake, tmp_path) -> E2E:
    """An ``E2E``: ``.fake``, ``.config`` (path), ``.env``; ``.configure(**overrides)`` rewrites the config."""
    return E2E(fake, tmp_path)
