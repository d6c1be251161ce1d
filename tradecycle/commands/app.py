"""What each command does, without any rendering: the CLI parses options,
calls one function here, and renders what it returns.

Imports are local to each function so that ``killswitch`` and ``status`` load
neither pydantic's full config, nor requests, nor the connectors.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import paths
from .times import parse_iso


def _now() -> datetime:
    return datetime.now(UTC)


def _open(db_path: Path):
    from .store import open_database

    return open_database(db_path)


@contextmanager
def _reading(db_path: Path):
    """The database for a read command, or None when there is none yet: reading
    never creates one (a mistyped path must not quietly make a new database)."""
    if not db_path.exists():
        yield None
        return
    db = _open(db_path)
    try:
        yield db
    finally:
        db.close()


def load(config_option: str | None):
    """The validated config and the environment's secrets (ConfigError -> exit 2)."""
    from .config import Secrets, check_environment, load_config, shadow_key_names

    config = load_config(paths.config_path(config_option))
    secrets = Secrets(extra_names=shadow_key_names(config))
    check_environment(config, secrets)
    return config, secrets


def database_path(config_option: str | None, db_option: str | None) -> Path:
    """``--db``, else ``database.path`` from the config (read without full validation)."""
    if db_option:
        return Path(db_option).expanduser()
    return paths.load_database_path(paths.config_path(config_option))


# -- run ------------------------------------------------------------------------


def run(config_option: str | None, db_option: str | None, dry_run: bool, watch=None):
    """One cycle. Config is validated before anything is written. ``watch(event,
    fields)``, if given, sees every event as it happens (the terminal's live view)."""
    from .cycle import run_cycle
    from .logs import JsonLog
    from .store import Store
    from .wiring import build_services, cycle_settings

    config, secrets = load(config_option)
    db_path = Path(db_option).expanduser() if db_option else config.database_path
    db = _open(db_path)
    log = JsonLog(config.log_path, config.log.level, secrets.values(), watch=watch)
    watchdog = _watchdog(config.cycle.max_cycle_seconds, log)
    try:
        services = build_services(config, db, secrets, log)
        report = run_cycle(services, Store(db), cycle_settings(config, dry_run), log)
        after_cycle(services, db, report, log)
        return report
    finally:
        watchdog.cancel()
        log.close()
        db.close()


def after_cycle(services, db, report, log) -> None:
    """Once the cycle is over and its run lock released (a slow alert channel
    can never hold the lock): the kill switch change it made, logged, and its
    alerts, sent within what is left of its budget (``alerts.py``). Never raises."""
    if report.halt_reason:
        log("killswitch.changed", "warning", active=True, changed_by="tool", reason=report.halt_reason)
    if services.alerts is None:  # no TRADECYCLE_ALERT_URLS: apprise is never imported
        return
    from .alerts import CYCLE_SEND_SECONDS
    from .alerts import after_cycle as send_cycle_alerts
    from .store.alerts import AlertBook

    seconds = min(CYCLE_SEND_SECONDS, services.deadline.remaining())
    send_cycle_alerts(services.alerts, AlertBook(db), report, log, services.clock.now(), seconds)


WATCHDOG_GRACE_SECONDS = 5.0


def _watchdog(max_cycle_seconds: float, log):
    """The last line of defence for "a cycle finishes inside its minute".

    Every call has its own timeout and the cycle stops sending orders at
    ``cycle.max_cycle_seconds``; if something still holds the process a
    little later, the process ends itself (exit 1). Nothing is lost: SQLite
    keeps every write whole, the kernel releases the run lock, and the next
    cycle reconciles an order whose answer never came.
    """
    import os
    import sys
    import threading

    from .errors import ExitCode

    grace = min(WATCHDOG_GRACE_SECONDS, max_cycle_seconds * 0.1)

    def overrun() -> None:
        message = f"the cycle overran its budget (cycle.max_cycle_seconds = {max_cycle_seconds:g}) and was stopped"
        try:
            log("cycle.overrun", "error", message=message)
            print(f"tradecycle: {message}; the next cycle reconciles its orders", file=sys.stderr, flush=True)
        finally:
            os._exit(int(ExitCode.ABORTED))

    timer = threading.Timer(max_cycle_seconds + grace, overrun)
    timer.daemon = True
    timer.start()
    return timer


# -- kill switch ------------------------------------------------------------------


KILL_SWITCH_CHANGES_SHOWN = 5


@dataclass(frozen=True)
class KillSwitchView:
    switch: Any  # store.KillSwitch
    database: Path
    changes: list[dict] = field(default_factory=list)  # the last few, newest first (when shown)
    note: str | None = None  # what the person should know besides (the log could not be written)


def kill_switch(config_option: str | None, db_option: str | None, active: bool | None, reason: str | None,
                flatten: bool = False) -> KillSwitchView:
    """Show (``active`` None: the switch and its last few changes) or set the
    kill switch. Reads only ``database.path`` (and, to log a change,
    ``log.path``). ``flatten`` asks the next cycles to cancel every open
    order and close every position (``winddown.py``). A change is a row in
    ``kill_switch_changes`` and a ``killswitch.changed`` log event.

    Raises DatabaseUnusable (exit 1) when the flag cannot be read or recorded.
    """
    from .store import KillSwitch, kill_switch_changes, read_kill_switch, write_kill_switch

    path = database_path(config_option, db_option)
    if active is None:
        with _reading(path) as db:
            if db is None:
                return KillSwitchView(KillSwitch(False, None, None), path)
            return KillSwitchView(read_kill_switch(db), path, kill_switch_changes(db, KILL_SWITCH_CHANGES_SHOWN))
    db = _open(path)  # an emergency stop before the first cycle must still be recorded
    try:
        if active and not reason:
            reason = "turned on by hand"
        switch = write_kill_switch(db, active, reason if active else None, _now(), flatten=flatten, changed_by="person")
    finally:
        db.close()
    log = command_log(config_option)
    log("killswitch.changed", "warning", active=switch.active, changed_by="person", reason=switch.reason,
        flatten=switch.flatten, database=str(path))
    return KillSwitchView(switch, path, note=log.error)


def command_log(config_option: str | None):
    """The event log of ``killswitch``: ``log.path`` and ``log.level`` read
    without validation, each event appended (``logging`` is never imported)."""
    from .environment import Secrets
    from .logline import EventFile

    settings = paths.load_log_settings(paths.config_path(config_option))
    return EventFile(*(settings or (None,)), secrets=Secrets().values())


def announce_kill_switch(config_option: str | None, db_option: str | None, switch) -> str | None:
    """After ``killswitch on|off`` recorded the flag: its alert, when
    ``TRADECYCLE_ALERT_URLS`` is set (None, at once and importing nothing,
    when it is not). Best effort: at most ``alerts.COMMAND_SEND_SECONDS``,
    never raises, and the flag stands whatever happens. Returns what became
    of it (``sent``, ``held back``, ``failed: ...``) for the command to say."""
    import os

    from .environment import ALERT_URLS_ENV

    if not os.environ.get(ALERT_URLS_ENV, "").strip():
        return None
    from .alerts import COMMAND_SEND_SECONDS, deliver, kill_switch_alert
    from .connectors.apprise_sender import AppriseSender
    from .environment import Secrets
    from .store import Database
    from .store.alerts import AlertBook

    secrets, log = Secrets(), command_log(config_option)
    alert = kill_switch_alert(switch.active, switch.reason, "person", switch.flatten)
    try:
        db = Database(database_path(config_option, db_option), busy_timeout_seconds=1.0)
    except Exception as exc:  # the flag was recorded a moment ago: this is rare, and only the alert is lost
        log("alert.failed", "warning", kind=alert.kind, error=f"could not open the database: {exc}")
        return f"failed: could not open the database: {exc}"
    try:
        sender = AppriseSender(secrets.alert_urls(), secrets.values())
        return deliver([alert], sender, AlertBook(db), log, _now(), COMMAND_SEND_SECONDS)[0]
    finally:
        db.close()


# -- vacuum -----------------------------------------------------------------------


def vacuum(config_option: str | None, db_option: str | None) -> dict[str, Any]:
    """Rewrite the database once (``VACUUM``) so that it shrinks as history is
    pruned (``auto_vacuum = INCREMENTAL``, see store/retention.py). Takes the
    run lock, so no cycle runs meanwhile; ``killswitch`` waits for it (and
    gives up after 5 s: turn it on first if you may need it). A UsageError
    (exit 2) when there is no database; DatabaseUnusable (exit 1) when a
    cycle holds the lock."""
    import time

    from .errors import DatabaseUnusable, UsageError
    from .lock import FileLock, lock_path_for
    from .store import retention

    path = database_path(config_option, db_option)
    if not path.exists():
        raise UsageError(f"there is no database at {path}")
    lock = FileLock(lock_path_for(path))
    if not lock.acquire():
        raise DatabaseUnusable(f"a cycle is running on {path}; try again in a minute")
    db = _open(path)
    try:
        before = path.stat().st_size
        started = time.monotonic()
        retention.switch_to_incremental(db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"database": str(path), "bytes_before": before, "bytes_after": path.stat().st_size,
                "seconds": round(time.monotonic() - started, 1)}
    finally:
        db.close()
        lock.release()


# -- read commands ----------------------------------------------------------------


def status(config_option: str | None, db_option: str | None) -> dict[str, Any]:
    """Kill switch, last cycle, account, positions, today's P&L and the use of each limit."""
    from decimal import Decimal

    from .config import load_config
    from .store import reads

    config = load_config(paths.config_path(config_option))
    db_path = Path(db_option).expanduser() if db_option else config.database_path
    with _reading(db_path) as db:
        agent = reads.agent_status(db) if db else {}
        positions = reads.positions(db) if db else []
        orders = reads.open_orders(db) if db else []
        last = reads.last_cycle(db) if db else None
        outage = reads.outage(db) if db else None
        marks = reads.position_marks(db) if db else {}
    positions = [p | _exit_levels(config.risk.exits(), p, marks.get(p["symbol"])) for p in positions]
    if outage:
        outage["minutes"] = round((_now() - parse_iso(outage["since"])).total_seconds() / 60)
    account = None
    if agent.get("equity") is not None:
        equity, last_equity = Decimal(agent["equity"]), Decimal(agent["last_equity"])
        pnl = equity - last_equity
        account = {
            "equity": agent["equity"],
            "last_equity": agent["last_equity"],
            "cash": agent["cash"],
            "buying_power": agent["buying_power"],
            "status": agent["account_status"],
            "synced_at": agent["account_synced_at"],
            "daily_pnl": str(pnl),
            "daily_pnl_percent": _pct(pnl, last_equity),
        }
    return {
        "kill_switch": {
            "active": bool(agent.get("kill_switch_active")),
            "reason": agent.get("kill_switch_reason"),
            "changed_at": agent.get("kill_switch_changed_at"),
            "flatten": bool(agent.get("kill_switch_flatten")),
            "cleanup_done_at": agent.get("kill_switch_cleanup_at"),  # open orders cancelled (and, with flatten, all sold)
        },
        "last_cycle": _cycle_view(last),
        "outage": outage,
        "account": account,
        "positions": positions,
        "open_orders": orders,
        "limits": _limit_use(config.risk, account, positions, orders),
        "database": str(db_path),
        "database_exists": db_path.exists(),
    }


def _exit_levels(rules, position: dict, high: str | None) -> dict[str, Any]:
    """Each protective exit's price for a position and how far it is from the price now
    (percent of the price; negative: below it). Off exits are left out."""
    from decimal import Decimal

    from . import exits

    price, entry = Decimal(position["current_price"]), Decimal(position["avg_entry_price"])
    if Decimal(position["qty"]) <= 0 or entry <= 0:
        return {}
    levels = exits.levels(rules, entry, Decimal(high) if high else price)
    view = {}
    for kind in ("stop_loss", "take_profit", "trailing_stop"):
        level = getattr(levels, kind)
        if level is not None:
            step = Decimal("0.01") if level >= 1 else Decimal("0.000001")
            view[f"{kind}_price"] = str(level.quantize(step))
            view[f"{kind}_distance_percent"] = exits.distance_percent(price, level)
    return view


def _pct(part, whole) -> float | None:
    return round(float(part / whole * 100), 2) if whole else None


def _cycle_view(row: dict | None) -> dict | None:
    if row is None:
        return None
    keys = ("cycle_id", "started_at", "finished_at", "status", "dry_run", "error", "duration_ms", "orders_count", "errors_count")
    view = {k: row.get(k) for k in keys}
    view["dry_run"] = bool(view["dry_run"])
    return view


def _limit_use(risk, account: dict | None, positions: list[dict], orders: list[dict]) -> dict[str, dict]:
    """How much of each limit is used, counting what open buys may still buy (as the risk check does)."""
    from decimal import Decimal

    equity = Decimal(account["equity"]) if account else Decimal(0)
    by_symbol = {p["symbol"]: abs(Decimal(p["market_value"])) for p in positions}  # gross: a short adds too
    for order in orders:
        if order["side"] == "buy" and order["notional_usd"]:
            filled = Decimal(order["filled_qty"] or 0) * Decimal(order["filled_avg_price"] or order["price"] or 0)
            by_symbol[order["symbol"]] = by_symbol.get(order["symbol"], Decimal(0)) + max(Decimal(order["notional_usd"]) - filled, Decimal(0))
    values = list(by_symbol.values())
    loss = -Decimal(str(account["daily_pnl_percent"] or 0)) if account else Decimal(0)
    return {
        "max_positions_count": {"used": len(by_symbol), "limit": risk.max_positions_count},
        "max_position_size_percent": {"used": _pct(max(values, default=Decimal(0)), equity), "limit": float(risk.max_position_size_percent)},
        "max_total_exposure_percent": {"used": _pct(sum(values, Decimal(0)), equity), "limit": float(risk.max_total_exposure_percent)},
        "daily_loss_limit_percent": {"used": float(max(loss, Decimal(0))), "limit": float(risk.daily_loss_limit_percent)},
    }


def history(kind: str, config_option: str | None, db_option: str | None, limit: int, since: str | None = None,
            symbol: str | None = None) -> list[dict[str, Any]]:
    """Newest-first rows of ``cycles``, ``trades`` or ``decisions``. A ``since``
    that is not an ISO time, or ``symbol`` for cycles, is a UsageError (exit 2)."""
    from .errors import UsageError
    from .store import reads

    if symbol and kind == "cycles":
        raise UsageError("--symbol applies to trades and decisions, not to cycles")
    if since:
        since = since_utc(since)

    with _reading(database_path(config_option, db_option)) as db:
        if db is None:
            return []
        if kind == "cycles":
            return reads.cycles(db, limit, since)
        return getattr(reads, kind)(db, limit, since, symbol.upper() if symbol else None)


def since_utc(text: str) -> str:
    """``--since`` as the stored times are written (ISO-8601 UTC with a Z, so
    that they compare as text): an offset is honoured (``23:07+01:00`` is
    ``22:07Z``); a time without one is UTC. Not an ISO time: UsageError (exit 2)."""
    from .errors import UsageError
    from .times import iso

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: not an ISO time (e.g. 2026-11-25, 2026-11-25T14:00 (UTC) or 2026-11-25T15:00+01:00)") from None
    return iso((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC))


def explain(config_option: str | None, db_option: str | None, cycle_id: str) -> dict[str, Any] | None:
    from .store import reads

    with _reading(database_path(config_option, db_option)) as db:
        return reads.cycle_story(db, cycle_id) if db else None


def check(config_option: str | None) -> dict[str, Any]:
    """Validate the config and report which environment variables are set (names only)."""
    from .config import Secrets, load_config, required_environment, shadow_key_names

    path = paths.config_path(config_option)
    config = load_config(path)
    extra = shadow_key_names(config)
    secrets = Secrets(extra_names=extra)
    return {
        "config": str(path),
        "database": str(config.database_path),
        "providers": {
            "broker": config.broker.provider,
            "market_data": config.market_data.provider,
            "news": config.news.provider,
            "ai": config.ai.provider,
        },
        "environment": {name: secrets.is_set(name) for name in (*Secrets.NAMES, *extra)},  # extra: the shadows' keys
        "required": sorted(required_environment(config)),
        # Nothing leaves the machine: no provider needs a key, or reads one.
        "offline": (config.broker.provider, config.market_data.provider, config.news.provider in ("sim", "none"),
                    config.ai.provider) == ("sim", "sim", True, "rules"),
    }


def check_online(config_option: str | None) -> dict[str, Any]:
    """``check``, then reach each configured service once (``probe.py``).

    Adds ``services``: one dict per service (``service``, ``provider``, ``ok``,
    ``detail``, ``elapsed_ms``). Nothing is sent while a required environment
    variable is missing: ``services`` is then empty and the CLI exits 2.
    """
    from .config import Secrets, load_config
    from .probe import probe_services

    result = check(config_option)
    result["services"] = []
    if any(not result["environment"][name] for name in result["required"]):
        return result
    config = load_config(paths.config_path(config_option))
    result["services"] = [probe.as_dict() for probe in probe_services(config, Secrets())]
    return result


# -- score and replay ---------------------------------------------------------------


def score(config_option: str | None, db_option: str | None, since: str | None = None, model: str | None = None,
          symbol: str | None = None) -> dict[str, Any]:
    """The scorecard (``scorecard.py``) of the decisions at or after ``since``,
    narrowed to one model and/or symbol. Before the first run: an empty scorecard."""
    from . import scorecard
    from .store import scores

    since = since_utc(since) if since else None
    symbol = symbol.upper() if symbol else None
    with _reading(database_path(config_option, db_option)) as db:
        if db is None:
            rows, fills, positions, equity, benchmark = [], [], [], [], ({}, {})
        else:
            rows = scores.scored_decisions(db, scorecard.HORIZONS, since, model, symbol)
            fills = scores.fills(db, symbol)
            positions = scores.position_rows(db, symbol)
            equity = scores.equity_by_cycle(db, since)
            benchmark = scores.benchmark_prices(db, since, None)
    card = scorecard.scorecard(rows, fills, positions, equity, benchmark, since)
    return {"filters": {"since": since, "model": model, "symbol": symbol}, **card}


def report(config_option: str | None, db_option: str | None, out: str, since: str | None = None) -> dict[str, Any]:
    """Write ``tradecycle report``'s HTML file (``report.py``) to ``out`` and say what
    it holds: ``{"path", "cycles", "first", "last", "database", "database_exists"}``.

    Everything in it comes from where the commands take it: positions with their
    exit levels from ``status``, the scorecard (and its buy-and-hold benchmark)
    from ``score``. Before the first run (no database, or no cycle yet): an
    empty-state report. A ``since`` that is not an ISO time, or an ``out`` whose
    folder does not exist, is a UsageError (exit 2)."""
    from . import report as html_report
    from . import scorecard
    from .errors import UsageError
    from .store import report as report_rows
    from .store import scores

    target = Path(out).expanduser()
    if not target.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {target.parent} does not exist")
    since = since_utc(since) if since else None
    state = status(config_option, db_option)
    card = score(config_option, db_option, since)
    equity, start, benchmark_at, trades = [], {}, {}, []
    with _reading(Path(state["database"])) as db:
        if db is not None:
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
    }
    target.write_text(html_report.build_html(data), encoding="utf-8")
    return {"path": str(target.resolve()), "cycles": len(equity), "first": equity[0]["started_at"] if equity else None,
            "last": equity[-1]["started_at"] if equity else None, "database": state["database"],
            "database_exists": state["database_exists"]}


def replay(config_option: str | None, db_option: str | None, cycle_id: str | None, since: str | None,
           model: str | None = None, base_url: str | None = None, key_env: str | None = None) -> dict[str, Any]:
    """Send the exact recorded messages of a cycle's analysed decisions (``cycle_id``,
    or ``last``), or of every analysed decision since ``since``, to ``model`` at
    ``base_url`` (default: ``ai.model`` at ``ai.base_url``), and record each answer
    with ``role = "replay"`` (never traded). Returns both decisions side by side,
    and with ``since`` the scorecard of the main analyst and the replayed model.

    UsageError (exit 2) for a bad option; NotFound (exit 1) for a cycle that is
    not there or has no recorded request."""
    from pydantic import ValidationError

    from . import scorecard
    from .config import Secrets, ShadowConfig, describe_errors, load_config
    from .errors import ConfigError, NotFound, UsageError
    from .models import analyst_identity
    from .parallel import gather
    from .store import scores
    from .wiring import replay_analyst

    if (cycle_id is None) == (since is None):
        raise UsageError("replay: give a CYCLE_ID (or 'last') or --since ISO, not both")
    since = since_utc(since) if since else None
    config = load_config(paths.config_path(config_option))
    try:
        target = ShadowConfig(base_url=base_url, model=model or config.ai.model, temperature=config.ai.temperature,
                              api_key_env=key_env)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc).replace("invalid configuration: ", "replay: --")) from None
    secrets = Secrets(extra_names=(key_env,) if key_env else ())
    path = database_path(config_option, db_option)
    with _reading(path) as db:
        if db is None:
            raise NotFound(f"there is no database at {path} yet: nothing to replay")
        originals = scores.replayable(db, cycle_id, since)
        if not originals:
            if cycle_id not in (None, "last") and not scores.cycle_exists(db, cycle_id):
                raise NotFound(f"no cycle {cycle_id!r} in the database (see `tradecycle cycles`)")
            where = f"cycle {cycle_id}" if cycle_id else f"the decisions since {since}"
            raise NotFound(f"{where}: no recorded analyst request to replay (only decisions an LLM was asked for, "
                           "since this version, carry their messages; holds that stood, exits and the rules analyst send none)")
        messages = {o["request_id"]: scores.request_messages(db, o["request_id"]) for o in originals}
        analyst = replay_analyst(config, secrets, target)
        timeout = config.cycle.analysis_timeout_seconds
        answers = gather({str(o["id"]): (lambda o=o: analyst.ask(o["symbol"], messages[o["request_id"]], timeout))
                          for o in originals}, max_workers=8)
        now = iso_now()
        pairs = []
        for original in originals:
            answer = answers[str(original["id"])]
            analyst_id = analyst_identity(target.model, original["prompt_hash"])
            row = _replay_row(original, answer, analyst_id, now)
            scores.record_replay(db, original, row)
            pairs.append({
                "cycle_id": original["cycle_id"], "symbol": original["symbol"], "decided_at": original["created_at"],
                "price": original["price"], "request_id": original["request_id"],
                "recorded": {k: original[k] for k in ("analyst", "action", "confidence", "reasoning", "outcome")},
                "replayed": {k: row[k] for k in ("analyst", "action", "confidence", "reasoning", "outcome")},
                "agree": row["outcome"] not in scorecard.FAILURES and original["outcome"] not in scorecard.FAILURES
                and row["action"] == original["action"],
            })
        card = None
        if since is not None:
            rows = [r for r in scores.scored_decisions(db, scorecard.HORIZONS, since, None, None)
                    if r["role"] == "main" or (r["role"] == "replay" and r["model"] == target.model)]
            card = {"analysts": scorecard.analysts(rows), "agreement": scorecard.agreement(rows),
                    "min_count": scorecard.MIN_COUNT, "horizons": list(scorecard.HORIZONS),
                    "calibration_horizon": scorecard.CALIBRATION_HORIZON}
    return {"model": target.model, "base_url": target.base_url or config.ai.base_url, "since": since, "cycle_id": cycle_id,
            "replayed": pairs, "score": card}


def _replay_row(original: dict[str, Any], answer, analyst_id: str, now: str) -> dict[str, Any]:
    """The ai_decisions row of a replayed decision: the original's time and price (the
    horizons are measured from the moment it re-asks), the new model's answer."""
    from .models import Decision

    if not isinstance(answer, Decision):  # a bug in the analyst: it never raises otherwise
        answer = Decision.held(original["symbol"], "ai_unavailable", f"replay failed: {answer!r}", analyst_id)
    return {
        "cycle_id": original["cycle_id"], "symbol": original["symbol"], "created_at": original["created_at"],
        "price": original["price"], "quote_age_seconds": original["quote_age_seconds"], "quote_source": original["quote_source"],
        "action": answer.action, "confidence": answer.confidence, "reasoning": answer.reasoning, "model": answer.model,
        "outcome": answer.failure or "replay", "detail": f"replay of decision {original['id']}, asked {now}; never traded",
        "role": "replay", "analyst": analyst_id, "prompt_hash": original["prompt_hash"], "request_id": original["request_id"],
        "replay_of": original["id"], "raw_reply": answer.raw_reply, "latency_ms": answer.latency_ms,
        "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
    }


def iso_now() -> str:
    from .times import iso

    return iso(_now())
