"""``tradecycle backtest``: the same cycle over history, in one process, into a
database of its own (see ``tradecycle/backtest/`` for how).

Order of work, so that bad input costs nothing: the window and the config are
checked, the history of an offline source (``sim``, ``csv``) is read and
checked, the models' training cutoffs are checked against the first cycle;
only then is the output database opened (never the live one). ``alpaca``
history is fetched into the output database, kept for later runs. The plan
(cycles, at most how many model calls) is announced before the first cycle.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tradecycle.commands.common import iso_now, load, now
from tradecycle.infra.errors import UsageError

DEFAULT_OUT = "backtest.db"


@dataclass(frozen=True)
class Request:
    start: date
    end: date
    interval: str = "1d"
    out: str | None = None
    resume: bool = False
    max_llm_calls: int | None = None
    allow_contaminated: bool = False


def backtest(config_option: str | None, request: Request, announce: Callable[[dict], None],
             progress: Callable[[int, int], Callable]) -> dict:
    """Run (or resume) a backtest; return what the closing line and ``--json`` show.
    ``progress(total, done)`` returns the per-cycle callback (a bar or log lines)."""
    from tradecycle.backtest import llm, runner, sources
    from tradecycle.commands.wiring import backtest_analyst, cycle_settings
    from tradecycle.infra.logs import JsonLog
    from tradecycle.infra.times import iso
    from tradecycle.models import Deadline
    from tradecycle.store.backtests import BacktestBook

    config, secrets = load(config_option)
    span = sources.window(request.start, request.end, request.interval, now().date())
    source = sources.source_of(config)
    out = _output_path(config, request.out)
    symbols = list(config.universe.symbols)
    sessions = sources.sessions_for(symbols, span)
    data = sources.load_offline(config, source, symbols, span, sessions) if source != "alpaca" else None
    if data is not None:
        sources.check_coverage(data, span)
    uses = llm.models_asked(config)
    first_day = _first_cycle_day(data, span)
    problems = llm.contamination(uses, first_day)
    if problems and not request.allow_contaminated:
        raise UsageError(problems[0])
    parameters = _parameters(config, source, span, symbols)
    db, run_row = _open_output(out, request, parameters)
    log = JsonLog(out.with_suffix(".jsonl"), "WARNING", secrets.values())
    try:
        book = BacktestBook(db)
        if data is None:
            from tradecycle.backtest.source_alpaca import load_alpaca
            from tradecycle.commands.wiring import backtest_history_client

            # Alpaca's news needs the keys (its crypto bars do not): without them, no headlines.
            news = config.news.provider != "none" and secrets.is_set("APCA_API_KEY_ID")
            data = load_alpaca(backtest_history_client(config, secrets), book, symbols, span, sessions, news=news)
            sources.check_coverage(data, span)
        if config.news.provider == "none":
            data.has_news = False
        times = data.cycle_times(span.start, span.end)
        replies = llm.ReplyCache(book.replies(), request.max_llm_calls, spent=run_row["llm_calls"] if run_row else 0)
        deadline = Deadline(config.cycle.max_cycle_seconds)
        settings = dataclasses.replace(cycle_settings(config, dry_run=False), keep_days=0)
        setup = runner.Setup(data, sessions, settings, backtest_analyst(config, secrets, deadline, log, replies),
                             config.broker.sim.starting_cash, config.backtest.slippage_bps, config.backtest.fee_bps,
                             config.cycle.max_cycle_seconds, len(uses), deadline)
        done = run_row["cycles"] if run_row else 0
        contaminated = bool(problems)
        plan = {"out": str(out), "source": source, "from": str(request.start), "to": str(request.end),
                "interval": request.interval, "symbols": symbols, "cycles": len(times), "resumed_at": done,
                "max_llm_calls": min(runner.max_llm_calls(setup, times[done:]), request.max_llm_calls)
                if request.max_llm_calls is not None else runner.max_llm_calls(setup, times[done:]),
                "contaminated": contaminated, "warnings": problems}
        if not times:
            raise UsageError(f"no cycle between {request.start} and {request.end} at {request.interval}"
                             " (no bar closes in that window)")
        announce(plan)
        if run_row is None:
            run_id = book.start_run({
                "started_at": iso_now(), "status": "running", "from": str(request.start), "to": str(request.end),
                "interval": request.interval, "source": source, "cycles": 0, "llm_calls": 0,
                "contaminated": int(contaminated), "parameters": json.dumps(parameters, sort_keys=True),
                "total_cycles": len(times),
            })
        else:
            run_id = run_row["id"]
            book.resumed(run_id, "running")
        books = json.loads(run_row["books"]) if run_row and run_row["books"] else None
        try:
            with _ctrl_c() as stop:
                result = runner.run(setup, times, book, run_id, log, replies, progress(len(times), done), stop, books, done)
        except BaseException:  # a second Ctrl-C, a bug: the cycles saved so far stand, --resume goes on from them
            book.finish(run_id, "aborted", iso_now(), None)
            raise
        book.finish(run_id, result.status, iso_now(), result.results)
        return {"id": run_id, "status": result.status, "out": str(out), "source": source, "from": str(request.start),
                "to": str(request.end), "interval": request.interval, "cycles": result.cycles, "total_cycles": len(times),
                "llm_calls": result.llm_calls, "contaminated": contaminated, "results": result.results,
                "last_cycle_at": result.results.get("last_cycle_at") or iso(times[0])}
    finally:
        log.close()
        db.close()


def _output_path(config, out_option: str | None) -> Path:
    out = Path(out_option).expanduser() if out_option else config.base_dir / DEFAULT_OUT
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    live = config.database_path
    if out.resolve() == live.resolve() or (out.exists() and live.exists() and os.path.samefile(out, live)):
        raise UsageError(f"--out {out} is the live database (database.path): a backtest writes a database of its own")
    return out


def _first_cycle_day(data, span) -> date:
    """The first cycle's day; before Alpaca's history is fetched, ``--from`` (the earliest it can be)."""
    if data is None:
        return span.start.date()
    times = data.cycle_times(span.start, span.end)
    return times[0].date() if times else span.start.date()


def _parameters(config, source: str, span, symbols: list[str]) -> dict:
    """What makes two runs the same backtest (``--resume`` continues only the same one)."""
    return {
        "from": span.start.date().isoformat(), "to": span.end.date().isoformat(), "interval": span.interval_name,
        "source": source, "symbols": symbols, "seed": config.market_data.sim.seed if source == "sim" else None,
        "csv_path": str(config.csv_path) if source == "csv" else None,
        "starting_cash": str(config.broker.sim.starting_cash), "slippage_bps": str(config.backtest.slippage_bps),
        "fee_bps": str(config.backtest.fee_bps), "analyst": config.ai.model if config.ai.provider == "openai" else "rules",
        "shadows": [s.model or s.provider for s in config.ai.shadow],
        "risk": {k: str(v) for k, v in config.risk.model_dump().items()},
    }


def _open_output(out: Path, request: Request, parameters: dict):
    """The output database and, with ``--resume``, the unfinished run it continues.
    A new run into an existing file starts its trading tables afresh and keeps
    the earlier runs' rows, fetched history and model replies."""
    from tradecycle.store import open_database
    from tradecycle.store.backtests import BacktestBook, carry_over, holds_foreign_cycles

    if request.resume:
        if not out.exists():
            raise UsageError(f"--resume: there is no {out} to resume")
        db = open_database(out)
        last = BacktestBook(db).last_run()
        if last is None or last["status"] == "completed" or json.loads(last["parameters"]) != parameters:
            db.close()
            what = "no backtest" if last is None else "a completed backtest" if last["status"] == "completed" else \
                "a backtest of other parameters (dates, interval, universe, costs or analyst)"
            raise UsageError(f"--resume: {out} holds {what}; run without --resume to start afresh")
        return db, last
    if not out.exists():
        return open_database(out), None
    if holds_foreign_cycles(out):
        raise UsageError(f"--out {out} holds cycles that are not a backtest's: choose another file")
    open_database(out).close()  # brought up to this version's schema, so that its rows copy over
    previous = out.with_name(out.name + ".previous")
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(out) + suffix)
        if source.exists():
            source.replace(Path(str(previous) + suffix))
    db = open_database(out)
    try:
        carry_over(db, previous)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(previous) + suffix).unlink(missing_ok=True)
    return db, None


@contextmanager
def _ctrl_c():
    """Ctrl-C asks the run to stop after the cycle under way; a second one stops at once."""
    from tradecycle.backtest.runner import StopFlag

    stop = StopFlag()
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:
        previous = None

    def ask(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    try:
        signal.signal(signal.SIGINT, ask)
        installed = True
    except ValueError:  # not the main thread (a test's runner): no handler
        installed = False
    try:
        yield stop
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)



