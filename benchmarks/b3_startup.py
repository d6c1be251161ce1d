#!/usr/bin/env python3
"""Benchmark 3, start-up: `tradecycle killswitch on` against a one-file typer app that does the same.

    python benchmarks/b3_startup.py [--runs N] [--quick] [--keep]   # the same as run.py --only 3
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import (CRYPTO, STOCKS, FakeServices, Result, cli_env, fmt_runs, median, progress, run_alone, run_cli,
                    write_config)


FLOOR_APP = '''\
"""The floor for a typer CLI: parse, read the TOML config, write one SQLite row."""
import sqlite3
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False)


@app.command()
def killswitch(state: str, config: str = typer.Option(...), reason: Optional[str] = None) -> None:
    with open(config, "rb") as handle:
        settings = tomllib.load(handle)
    path = Path(config).resolve().parent / settings["database"]["path"]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS flag (id INTEGER PRIMARY KEY, active INTEGER, reason TEXT, changed_at TEXT)")
    conn.execute("INSERT OR REPLACE INTO flag VALUES (1, ?, ?, ?)",
                 (int(state == "on"), reason, datetime.now(UTC).isoformat()))
    conn.close()
    print(f"kill switch {state}")


if __name__ == "__main__":
    app()
'''


def bench_startup(opts, root: Path) -> Result:
    result = Result(3, "start-up: `killswitch on` / one-file typer+tomllib+sqlite3 app", "<= 1.2")
    count = opts.startup_runs
    fake = FakeServices()  # never started: only its config writer is used (killswitch sends no request)
    env = cli_env(None)
    config = write_config(fake, root / "tc", STOCKS, CRYPTO)
    floor_dir = root / "floor"
    floor_config = write_config(fake, floor_dir, STOCKS, CRYPTO, database={"path": "floor.db"})
    app = floor_dir / "floor_app.py"
    app.write_text(FLOOR_APP, encoding="utf-8")
    ours = ["killswitch", "on", "--config", str(config)]
    floor_cmd = [sys.executable, str(app), "on", "--config", str(floor_config)]
    progress("3: warm-up")
    for _ in range(2):  # creates both databases, fills the page cache, writes .pyc files
        run_cli(ours, config.parent, env)
        run_cli([], floor_dir, env, command=floor_cmd)
    ours_runs, floor_runs = [], []
    for i in range(count):
        progress(f"3: run {i + 1}/{count}")
        first_ours = i % 2 == 0  # alternate which goes first
        for which in ((0, 1) if first_ours else (1, 0)):
            if which == 0:
                ours_runs.append(run_cli(ours, config.parent, env).wall)
            else:
                floor_runs.append(run_cli([], floor_dir, env, command=floor_cmd).wall)
    a, b = median(ours_runs), median(floor_runs)
    result.add(f"  `killswitch on`                {a:7.3f} s   runs: {fmt_runs(ours_runs)}")
    result.add(f"  floor app (typer+toml+sqlite)  {b:7.3f} s   runs: {fmt_runs(floor_runs)}")
    bare = [run_cli([], root, env, command=[sys.executable, "-c", "pass"]).wall for _ in range(3)]
    result.add(f"  (bare `python -c pass`         {median(bare):7.3f} s, for reference)")
    result.compare(a, b, 1.2)
    return result


if __name__ == "__main__":
    run_alone(3)
