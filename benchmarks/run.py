#!/usr/bin/env python3
"""End-to-end benchmarks of the real ``tradecycle`` CLI against the local fake services.

    /root/venv-bench/bin/python benchmarks/run.py            # 5 runs each, full history
    /root/venv-bench/bin/python benchmarks/run.py --quick    # 3 runs each, smaller history
    /root/venv-bench/bin/python benchmarks/run.py --only 1,3 --runs 7
    /root/venv-bench/bin/python benchmarks/b3_startup.py     # one benchmark: the same as --only 3

Every figure comes from ``[sys.executable, "-m", "tradecycle.cli", ...]`` run in a
subprocess against ``tests.fakeserver.FakeServices`` running in this process, with
a fresh temporary folder (database + config) per benchmark. Each benchmark catches
its own failure and reports it; the run goes on. Each benchmark lives in its own
module (``bN_<name>.py``), the helpers they share in ``common.py``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import b1_critical_path
import b2_fan_out
import b3_startup
import b4_history
import b5_calls
import b6_quota
import b7_market_data
import b8_wide_fan_out
import b9_shadows
import b10_backtest
from common import LATENCY, REPO, BenchError, Result


# ----------------------------------------------------------------------------- main


BENCHMARKS: dict[int, Callable] = {
    1: b1_critical_path.bench_critical_path,
    2: b2_fan_out.bench_fan_out,
    3: b3_startup.bench_startup,
    4: b4_history.bench_history,
    5: b5_calls.bench_calls,
    6: b6_quota.bench_quota,
    7: b7_market_data.bench_market_data,
    8: b8_wide_fan_out.bench_wide,
    9: b9_shadows.bench_shadows,
    10: b10_backtest.bench_backtest,
}
SHORT_NAMES = {1: "critical path", 2: "fan-out", 3: "start-up", 4: "history", 5: "calls", 6: "quota", 7: "market data",
               8: "wide fan-out", 9: "shadows", 10: "backtest"}
TARGETS = {1: "<= 1.25", 2: "<= 1.15", 3: "<= 1.2", 4: "<= 1.1", 5: "<= 12, <= 1, 0", 6: "free tiers", 7: "2 a cycle, bars <= 2",
           8: "<= 1.5", 9: "<= 1.15", 10: "<= 0.5"}


def environment_lines(opts) -> list[str]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "?"
    except Exception:
        commit = "?"
    try:
        from importlib.metadata import version

        tc_version = version("tradecycle")
    except Exception:
        tc_version = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"tradecycle benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"  python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, sqlite {sqlite3.sqlite_version}",
        f"  tradecycle {tc_version} at {REPO} (commit {commit}), load average {load}",
        f"  runs per figure: {opts.runs} (medians){', quick' if opts.quick else ''}; fake latency {LATENCY * 1000:.0f} ms "
        f"(benchmarks 1, 2), 0 ms (4, 5, 6)",
    ]


def check_cli(scratch: Path) -> None:
    """The CLI must be importable by ``sys.executable`` from outside the repo (pip install -e)."""
    proc = subprocess.run([sys.executable, "-c", "import tradecycle.cli"], cwd=scratch, capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        sys.exit(f"{sys.executable} cannot import tradecycle.cli: run with the venv where tradecycle is installed "
                 f"(pip install -e '.[test]')\n{proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3 runs and a 5x smaller history database")
    parser.add_argument("--only", default="", help="comma-separated benchmark numbers, e.g. 1,3")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (printed at the end)")
    opts = parser.parse_args(argv)
    opts.runs = opts.runs or (3 if opts.quick else 5)
    if opts.runs < 1:
        parser.error("--runs must be >= 1")
    opts.startup_runs = max(opts.runs, 6 if opts.quick else 10)
    selected = sorted({int(x) for x in opts.only.split(",") if x.strip()}) if opts.only else sorted(BENCHMARKS)
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {unknown}; choose from {sorted(BENCHMARKS)}")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="tradecycle-bench-"))
    try:
        # What an installed tradecycle runs: its modules compiled once. Without this, an
        # environment with PYTHONDONTWRITEBYTECODE=1 (this sandbox's) compiles every edited
        # module from source in every CLI process, and `run`, which loads more of them than
        # `killswitch`, pays it in the critical path.
        compileall.compile_dir(str(REPO / "tradecycle"), quiet=1)
        check_cli(root)
        for line in environment_lines(opts):
            print(line)
        print(flush=True)
        results: list[Result] = []
        for number in selected:
            folder = root / f"bench{number}"
            folder.mkdir()
            t = time.perf_counter()
            try:
                result = BENCHMARKS[number](opts, folder)
            except Exception as exc:  # one benchmark failing must not sink the others
                result = Result(number, SHORT_NAMES[number], TARGETS[number], error=f"{type(exc).__name__}: {exc}")
                if not isinstance(exc, BenchError):
                    result.lines += ["  " + line for line in traceback.format_exc(limit=4).rstrip().splitlines()]
            result.seconds = time.perf_counter() - t
            results.append(result)
            print(f"{result.number}. {result.name}  [{result.seconds:.0f} s]")
            for line in result.lines:
                print(line)
            if result.error:
                print(f"  ERROR: {result.error}")
            print(flush=True)

        print("summary")
        for r in results:
            figure = r.figure if not r.error else "-"
            print(f"  {r.number}. {SHORT_NAMES[r.number]:<14} {figure:<46} target {TARGETS[r.number]:<16} {r.verdict}")
        print(f"total {time.perf_counter() - started:.0f} s")
        if any(r.error for r in results):
            return 2
        return 0 if all(r.passed for r in results) else 1
    finally:
        if opts.keep:
            print(f"temporary folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
