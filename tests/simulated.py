"""Cycles on a simulated clock against ``tests/fakeserver/``.

A subprocess cannot be given a frozen clock, so these cycles run in this
process through the same path as ``tradecycle run``: the config file is
loaded and validated, ``wiring.build_services`` builds the real connectors
(pointed at the fake) around a clock the caller moves, ``run_cycle``
runs one cycle, and ``commands.run.after_cycle`` logs and alerts what it did. The fake serves quote times from the same clock, so a price
is exactly as old as the simulation says. Used by the quota tests and by
``benchmarks/b6_quota.py`` (calls per 30 days). ``OfflineCycles`` runs the shipped
offline config the same way, with no server at all (the report's week of cycles).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tradecycle.commands.run import after_cycle
from tradecycle.config import Secrets, check_environment, load_config
from tradecycle.cycle.run import run_cycle
from tradecycle.cycle.state import CycleReport
from tradecycle.infra.logs import JsonLog
from tradecycle.store import Store, open_database
from tradecycle.commands.wiring import build_services, cycle_settings

from .fakeserver import FakeServices


class SimulatedClock:
    def __init__(self, start: datetime | None = None):
        self.current = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class _Cycles:
    """Cycles run in this process, one per ``run()`` at the clock's time (``config``, ``secrets``, ``clock`` set by a subclass)."""

    config: Any
    secrets: Secrets
    clock: SimulatedClock
    log_path: Path

    def run(self, dry_run: bool = False) -> CycleReport:
        db = open_database(self.config.database_path)
        log = JsonLog(self.log_path, self.config.log.level, self.secrets.values())
        try:
            services = build_services(self.config, db, self.secrets, log, clock=self.clock)
            report = run_cycle(services, Store(db), cycle_settings(self.config, dry_run), log)
            after_cycle(services, db, report, log)
            return report
        finally:
            log.close()
            db.close()

    def run_every(self, seconds: float, count: int) -> list[CycleReport]:
        """``count`` cycles, ``seconds`` apart (the first one now)."""
        reports = []
        for i in range(count):
            if i:
                self.clock.advance(seconds)
            reports.append(self.run())
        return reports


class SimulatedCycles(_Cycles):
    """One config and one database in ``folder``; ``run()`` is one cycle at the clock's time."""

    def __init__(self, fake: FakeServices, folder: Path, env: dict[str, str] | None = None, **overrides: Any):
        self.fake, self.folder = fake, folder
        self.clock = SimulatedClock()
        fake.time_source = lambda: self.clock.now().timestamp()
        self.secrets = Secrets(fake.env(**(env or {})))
        self.configure(**overrides)

    def configure(self, **overrides: Any) -> None:
        """(Re)write config.toml: the fake's URLs, then ``overrides``; the clock and database stay."""
        self.config = load_config(self.fake.config_toml(self.folder, **overrides))
        check_environment(self.config, self.secrets)
        self.log_path = self.config.log_path

    def decision(self, cycle_id: str, symbol: str) -> dict[str, Any]:
        """The ``ai_decisions`` row of one symbol in one cycle, read as a user's script would."""
        with sqlite3.connect(self.config.database_path) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM ai_decisions WHERE cycle_id = ? AND symbol = ?", (cycle_id, symbol)).fetchone()
        return dict(row)


class OfflineCycles(_Cycles):
    """The shipped, offline config (simulated market, broker and rules analyst, no keys),
    plus ``extra_toml``, in ``folder``: cycles need no server at all."""

    SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"

    def __init__(self, folder: Path, start: datetime, extra_toml: str = ""):
        path = folder / "config.toml"
        path.write_text(self.SHIPPED_CONFIG.read_text(encoding="utf-8") + extra_toml, encoding="utf-8")
        self.config_path = path
        self.config = load_config(path)
        self.secrets = Secrets({})
        self.clock = SimulatedClock(start)
        self.log_path = self.config.log_path
