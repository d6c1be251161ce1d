"""Alerts: which events deserve a message, the 10-minute limit, the words.

Events (each a *kind*; at most one alert per kind per ``RATE_LIMIT``):

- ``kill_switch_on`` / ``kill_switch_off``: a person (``tradecycle killswitch``,
  sent by the command itself once the flag is recorded) or the tool (a tripped
  limit, sent after the cycle) changed the kill switch, with the reason.
- ``cycle_aborted``: the first aborted cycle of a run of aborts;
  ``cycle_recovered``: the first completed cycle after it (only when the
  abort was announced, so the two always come as a pair).
- ``order_rejected``: the broker rejected an order while the cycle ran.
- ``protective_exit``: a stop-loss, take-profit, trailing stop or kill switch
  ``--flatten`` sell went out.
- ``stop_guard``: the stop-loss guard tripped (``risk.stop_loss_guard_count``
  stop-outs within ``risk.stop_loss_guard_minutes``): every buy is paused
  until the time it names. Once per pause (its end is the alert's mark).
- ``orders_adopted``: orders of this tool at the broker that the database had
  lost, adopted by the cycle (``cycle/adopt.py``).
- ``new_database``: a cycle's new database met a broker account that already
  holds positions or orders of this tool.
- ``daily_summary``: once a day, by the first cycle after 16:00 New York time
  on a weekday (the US close; holidays are not known, so a holiday gets one too).

A finished cycle's alerts are worked out from its report and a few store
queries (pure functions below), then sent *after* the cycle, outside its
lock, within what is left of its time budget (``deliver``). An alert that
fails is logged (``alert.failed``) and never retried; it never changes the
cycle's outcome. The right to send is taken in the database before sending
(``AlertBook.claim``), so two processes never both send one kind in a window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tradecycle.ports import AlertSender, EventLog

if TYPE_CHECKING:
    from tradecycle.cycle.state import CycleReport
    from tradecycle.store.alerts import AlertBook

RATE_LIMIT = timedelta(minutes=10)
CYCLE_SEND_SECONDS = 5.0  # after a cycle: at most this, and never past the cycle's budget
COMMAND_SEND_SECONDS = 3.0  # `tradecycle killswitch on|off`, after the flag is recorded
MIN_SEND_SECONDS = 0.5  # less time than this left: the alert is not attempted

KILL_SWITCH_ON = "kill_switch_on"
KILL_SWITCH_OFF = "kill_switch_off"
CYCLE_ABORTED = "cycle_aborted"
CYCLE_RECOVERED = "cycle_recovered"
ORDER_REJECTED = "order_rejected"
PROTECTIVE_EXIT = "protective_exit"
STOP_GUARD = "stop_guard"
DAILY_SUMMARY = "daily_summary"
ORDERS_ADOPTED = "orders_adopted"
NEW_DATABASE = "new_database"
KINDS = (KILL_SWITCH_ON, KILL_SWITCH_OFF, CYCLE_ABORTED, CYCLE_RECOVERED, ORDER_REJECTED, PROTECTIVE_EXIT, STOP_GUARD,
         DAILY_SUMMARY, ORDERS_ADOPTED, NEW_DATABASE)

HEALTH = "cycle_health"  # mark: "down" once an abort was announced, "up" once its recovery was
EXIT_OUTCOMES = ("stop_loss", "take_profit", "trailing_stop", "flatten")
MARKET_ZONE = "America/New_York"
MARKET_CLOSE = clock_time(16, 0)
REASONING_CHARS = 120


@dataclass(frozen=True)
class Alert:
    kind: str
    title: str
    body: str
    severity: str = "info"  # info | success | warning | failure
    mark: tuple[str, str] | None = None  # (key, value) recorded when it is sent


# -- what deserves an alert (pure) -------------------------------------------------


def kill_switch_alert(active: bool, reason: str | None, changed_by: str, flatten: bool = False,
                      cycle_id: str | None = None) -> Alert:
    if not active:
        return Alert(KILL_SWITCH_OFF, "tradecycle: kill switch off", "Turned off by a person: cycles trade normally again.", "warning")
    who = "by a person" if changed_by == "person" else f"by the tool (cycle {cycle_id})" if cycle_id else "by the tool"
    body = f"Turned on {who}: {reason or 'no reason given'}.\nNo order will be sent until a person runs `tradecycle killswitch off`."
    if flatten:
        body += "\nThe next cycles cancel every open order and sell every position (--flatten)."
    return Alert(KILL_SWITCH_ON, "tradecycle: kill switch ON", body, "failure")


def cycle_alerts(report: "CycleReport", marks: dict[str, str | None], rejected: Sequence[dict[str, Any]] = (),
                 exits: Sequence[dict[str, Any]] = ()) -> list[Alert]:
    """The alerts a finished cycle produced, most urgent first. ``marks``: the
    alerts' memory (``AlertBook.marks``); ``rejected``: orders rejected while it
    ran; ``exits``: its protective-exit sells that went out (``AlertBook``'s queries)."""
    if report.cycle_id is None:  # the lock was taken: no cycle ran
        return []
    found = []
    if report.halt_reason:
        found.append(kill_switch_alert(True, report.halt_reason, "tool", cycle_id=report.cycle_id))
    if report.status == "aborted" and marks.get(HEALTH) != "down":
        found.append(Alert(
            CYCLE_ABORTED, "tradecycle: cycle aborted",
            f"Cycle {report.cycle_id} aborted: {report.error or 'no reason recorded'}.\n"
            "The next cycles try again every minute; you hear once more when one completes.",
            "failure", (HEALTH, "down"),
        ))
    if rejected:
        symbols = ", ".join(dict.fromkeys(r["symbol"] for r in rejected))
        lines = [f"{r['side']} {r['symbol']} (cycle {r['cycle_id']}): {r['notes'] or 'no reason given'}" for r in rejected]
        found.append(Alert(ORDER_REJECTED, f"tradecycle: order rejected ({symbols})", "\n".join(lines), "warning"))
    if report.inherited:
        found.append(Alert(NEW_DATABASE, "tradecycle: new database, existing broker account",
                           f"Cycle {report.cycle_id}: {report.inherited}.\nWas the database deleted or replaced? "
                           "Orders of this tool still at the broker are adopted and counted against the limits.", "warning"))
    if report.adopted:
        found.append(Alert(ORDERS_ADOPTED, f"tradecycle: {len(report.adopted)} order(s) missing from the database",
                           f"Cycle {report.cycle_id} found orders of this tool at the broker that the database had no row for "
                           "(restored from a backup? its WAL file lost?). They are now in trades (notes: adopted) and count "
                           "against the limits:\n" + "\n".join(report.adopted), "warning"))
    if exits:
        symbols = ", ".join(d["symbol"] for d in exits)
        lines = [f"{d['symbol']}: {d['reasoning']} ({d['detail']})" for d in exits]
        found.append(Alert(PROTECTIVE_EXIT, f"tradecycle: protective exit ({symbols})",
                           "\n".join(lines) + f"\n(cycle {report.cycle_id})", "warning"))
    if report.stop_guard is not None:
        until = report.stop_guard.until.isoformat()
        if marks.get(STOP_GUARD) != until:
            found.append(Alert(STOP_GUARD, "tradecycle: buys paused (stop-loss guard)",
                               f"{report.stop_guard.detail}.\nSells and protective exits go on. (cycle {report.cycle_id})",
                               "warning", (STOP_GUARD, until)))
    if report.status == "completed" and marks.get(HEALTH) == "down":
        found.append(Alert(
            CYCLE_RECOVERED, "tradecycle: cycles complete again",
            f"Cycle {report.cycle_id} completed: the aborts are over.", "success", (HEALTH, "up"),
        ))
    return found


def _market_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo(MARKET_ZONE)


def summary_day(now: datetime) -> str | None:
    """The New York date whose summary is due at ``now`` (a weekday, 16:00 or later there), else None."""
    local = now.astimezone(_market_zone())
    if local.weekday() >= 5 or local.time() < MARKET_CLOSE:
        return None
    return local.date().isoformat()


def day_start(day: str) -> datetime:
    """Midnight in New York at the start of ``day``, in UTC."""
    return datetime.combine(date.fromisoformat(day), clock_time(0), _market_zone()).astimezone(UTC)


def daily_summary(day: str, account: dict[str, Any], trades: Sequence[dict[str, Any]],
                  chain_head: dict[str, Any] | None = None) -> Alert:
    """Equity, P&L against the previous close, the day's orders, and the best
    and worst decision: of the day's filled orders, the one that gained most
    (and least) since, at the newest stored price (a buy gains as the price
    rises, a sell as it falls). Last, the record's chain head (store/chain.py):
    the message, kept wherever it lands, is the copy that proves later edits."""
    lines = []
    if account.get("equity") is not None and account.get("last_equity") is not None:
        equity, last = Decimal(account["equity"]), Decimal(account["last_equity"])
        pnl = equity - last
        percent = f" ({pnl / last * 100:+.2f}%)" if last else ""
        lines.append(f"Equity {_usd(equity)}; P&L today {_usd(pnl, signed=True)}{percent} against the previous close.")
    else:
        lines.append("Equity: not synced yet.")
    sent = [t for t in trades if not t["dry_run"]]
    by_status: dict[str, int] = {}
    for trade in sent:
        by_status[trade["status"]] = by_status.get(trade["status"], 0) + 1
    detail = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
    lines.append(f"Orders today: {len(sent)}" + (f" ({detail})" if detail else "") + ".")
    if dry := len(trades) - len(sent):
        lines.append(f"Would-be orders (dry run): {dry}.")
    scored = sorted((s for s in (_since_fill(t) for t in sent) if s), key=lambda s: s[0])
    if scored:
        best, worst = scored[-1], scored[0]
        lines.append(("Only filled order: " if best is worst else "Best: ") + best[1])
        if best is not worst:
            lines.append("Worst: " + worst[1])
    else:
        lines.append("No order filled today.")
    if chain_head:
        lines.append(f"Record: chain head {chain_head['hash']} (link {chain_head['seq']}, {chain_head['linked_at']});"
                     " `tradecycle verify --head` with it proves every decision and trade up to it unchanged.")
    return Alert(DAILY_SUMMARY, f"tradecycle: daily summary {day}", "\n".join(lines), "info", (DAILY_SUMMARY, day))


def _since_fill(trade: dict[str, Any]) -> tuple[Decimal, str] | None:
    """(gain in USD since the fill, its description) of a filled order; None without a fill or a price."""
    try:
        qty, fill, last = Decimal(trade["filled_qty"]), Decimal(trade["filled_avg_price"]), Decimal(trade["last_price"])
    except (TypeError, InvalidOperation):
        return None
    if qty <= 0:
        return None
    gain = (last - fill) * qty * (1 if trade["side"] == "buy" else -1)
    why = " ".join((trade["reasoning"] or "").split())
    why = why if len(why) <= REASONING_CHARS else why[: REASONING_CHARS - 1] + "…"
    confidence = f"confidence {trade['confidence']:.2f}" if trade["confidence"] is not None else ""
    said = "; ".join(p for p in (confidence, f'"{why}"' if why else "") if p)
    text = f"{trade['side']} {_plain(qty)} {trade['symbol']} at {_plain(fill)}, now {_plain(last)}: {_usd(gain, signed=True)}"
    return gain, text + (f" ({said})" if said else "")


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _usd(value: Decimal, signed: bool = False) -> str:
    text = f"${abs(value):,.2f}"
    return ("-" if value < 0 else "+" if signed else "") + text


# -- sending -------------------------------------------------------------------------


def deliver(alerts: Sequence[Alert], sender: AlertSender, book: "AlertBook", log: EventLog, now: datetime,
            seconds: float) -> list[str]:
    """Send each alert the 10-minute limit allows, all within ``seconds``.
    Never raises. Returns what became of each: ``sent``, ``held back``,
    ``failed: <why>``; each is also a log event (``alert.sent``,
    ``alert.held_back``, ``alert.failed``)."""
    ends = time.monotonic() + seconds
    results = []
    for alert in alerts:
        results.append(_deliver_one(alert, sender, book, log, now, ends - time.monotonic()))
    return results


def _deliver_one(alert: Alert, sender: AlertSender, book: "AlertBook", log: EventLog, now: datetime, left: float) -> str:
    if left < MIN_SEND_SECONDS:
        log("alert.failed", "warning", kind=alert.kind, error="no time left to send it")
        return "failed: no time left to send it"
    try:
        before = (alert.mark[0], book.marks().get(alert.mark[0])) if alert.mark else None
        held = book.claim(alert.kind, now, RATE_LIMIT, alert.mark)
    except Exception as exc:  # the database is busy or broken: no alert, nothing else changes
        log("alert.failed", "warning", kind=alert.kind, error=f"could not check the rate limit: {exc}")
        return f"failed: could not check the rate limit: {exc}"
    if held is None:
        log("alert.held_back", kind=alert.kind, message="one alert of this kind per 10 minutes")
        return "held back"
    body = alert.body
    if held:
        body += f"\n({held} more alert{'s' if held > 1 else ''} of this kind held back by the 10-minute limit since the last one.)"
    try:
        sender.send(alert.title, body, alert.severity, left)
    except Exception as exc:  # AlertFailed, or a bug in the adapter: logged, never raised
        log("alert.failed", "warning", kind=alert.kind, error=str(exc))
        try:
            book.unclaim(alert.kind, now, before)  # nobody was told: the next one must not be held back
        except Exception as undo:
            log("alert.failed", "warning", kind=alert.kind, error=f"could not give the rate-limit slot back: {undo}")
        return f"failed: {exc}"
    log("alert.sent", kind=alert.kind, title=alert.title)
    return "sent"


def after_cycle(sender: AlertSender | None, book: "AlertBook", report: "CycleReport", log: EventLog, now: datetime,
                seconds: float) -> list[str]:
    """Work out and send a finished cycle's alerts within ``seconds``. Never
    raises: an alert never affects the cycle. Nothing at all without a sender."""
    if sender is None or report.cycle_id is None:
        return []
    try:
        marks = book.marks()
        alerts = cycle_alerts(report, marks, book.rejected_orders(report.cycle_id),
                              book.protective_exits(report.cycle_id, EXIT_OUTCOMES))
        day = summary_day(now)
        if day and marks.get(DAILY_SUMMARY) != day:
            alerts.append(daily_summary(day, book.account(), book.trades_since(day_start(day)), book.chain_head()))
    except Exception as exc:
        log("alert.failed", "warning", error=f"could not work out the alerts: {exc}")
        return [f"failed: {exc}"]
    return deliver(alerts, sender, book, log, now, seconds)
