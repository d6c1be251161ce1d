"""``tradecycle report``: one self-contained HTML file from what ``status`` and ``score`` say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradecycle.commands.common import iso_now, reading, since_utc
from tradecycle.commands.score import score
from tradecycle.commands.status import status


def report(config_option: str | None, db_option: str | None, out: str, since: str | None = None) -> dict[str, Any]:
    """Write ``tradecycle report``'s HTML file (``report.py``) to ``out`` and say what
    it holds: ``{"path", "cycles", "first", "last", "database", "database_exists"}``.

    Everything in it comes from where the commands take it: positions with their
    exit levels from ``status``, the scorecard (and its buy-and-hold benchmark)
    from ``score``. Before the first run (no database, or no cycle yet): an
    empty-state report. A ``since`` that is not an ISO time, or an ``out`` whose
    folder does not exist, is a UsageError (exit 2)."""
    from tradecycle.render import report as html_report
    from tradecycle.rules import scorecard
    from tradecycle.infra.errors import UsageError
    from tradecycle.infra.logline import os_reason
    from tradecycle.store import report as report_rows
    from tradecycle.store import scores
    from tradecycle.store.chain import chain_head

    target = Path(out).expanduser()
    if not target.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name (e.g. --out {target / 'report.html'})")
    since = since_utc(since) if since else None
    state = status(config_option, db_option)
    card = score(config_option, db_option, since, paths=True)
    equity, start, benchmark_at, trades, backtest, head = [], {}, {}, [], None, None
    with reading(Path(state["database"])) as db:
        if db is not None:
            from tradecycle.store.backtests import BacktestBook

            backtest = BacktestBook(db).last_run()  # a backtest's database says so (and if it is contaminated)
            head = chain_head(db)
            equity = scores.equity_by_cycle(db, since)
            start, _ = scores.benchmark_prices(db, since, None)
            points = html_report.chart_points(equity)
            moments = [p["finished_at"] or p["started_at"] for p in points]
            benchmark_at = dict(zip((p["cycle_id"] for p in points), report_rows.prices_at(db, sorted(start), moments)))
            trades = report_rows.last_trades(db, html_report.LAST_TRADES, since)
    data = {
        "generated_at": iso_now(), "since": since, "database": state["database"],
        "database_exists": state["database_exists"], "status": state, "score": card, "equity": equity,
        "benchmark": {"start": start, "at": benchmark_at}, "trades": trades, "min_count": scorecard.MIN_COUNT,
        "backtest": backtest,
        "chain_head": head,
    }
    try:
        target.write_text(html_report.build_html(data), encoding="utf-8")
    except OSError as exc:  # read-only file system, a folder or file we may not write
        raise UsageError(f"--out {out}: cannot write it: {os_reason(exc)}") from None
    return {"path": str(target.resolve()), "cycles": len(equity), "first": equity[0]["started_at"] if equity else None,
            "last": equity[-1]["started_at"] if equity else None, "database": state["database"],
            "database_exists": state["database_exists"]}
