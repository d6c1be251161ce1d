"""Alerts without the network: which events a finished cycle produced, the
daily summary's timing and words, the 10-minute limit kept in the database,
and what happens when a channel fails (``alerts.py``, ``store/alerts.py``).
A recording sender stands in for apprise here; ``test_e2e_alerts.py`` sends
through apprise to a local receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradecycle.commands import alerts
from tradecycle.cycle.state import CycleReport
from tradecycle.infra.environment import Secrets, url_secrets
from tradecycle.infra.errors import AlertFailed
from tradecycle.store.alerts import AlertBook

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York


class RecordingSender:
    """Keeps what it was asked to send; ``fail`` makes every send raise."""

    name = "recording"

    def __init__(self, fail: str | None = None):
        self.sent: list[tuple[str, str, str]] = []
        self.fail = fail

    def send(self, title: str, body: str, severity: str, timeout_seconds: float) -> None:
        if self.fail:
            raise AlertFailed(self.fail)
        self.sent.append((title, body, severity))


def report(status: str = "completed", **fields) -> CycleReport:
    return CycleReport(fields.pop("cycle_id", "2026-12-01T15:00Z-ab12"), status, False, **fields)


REJECTED = [{"symbol": "AAPL", "side": "buy", "notes": "insufficient buying power", "cycle_id": "2026-12-01T15:00Z-ab12"}]
STOP = {"symbol": "NVDA", "outcome": "stop_loss", "reasoning": "stop-loss: price 90 is 10.00% under the entry 100",
        "detail": "sell sent: accepted"}


@pytest.mark.parametrize(
    "situation, finished, marks, rejected, exits, kinds",
    [
        ("a quiet completed cycle", report(), {}, [], [], []),
        ("another cycle held the lock", report("locked", cycle_id=None), {"cycle_health": "down"}, REJECTED, [STOP], []),
        ("the tool tripped the kill switch", report(halt_reason="daily loss limit: -6.0% (limit 5%)"), {}, [], [], ["kill_switch_on"]),
        ("the first abort of a run", report("aborted", error="broker unreachable"), {}, [], [], ["cycle_aborted"]),
        ("the first abort after a recovery", report("aborted", error="x"), {"cycle_health": "up"}, [], [], ["cycle_aborted"]),
        ("a later abort of the same run", report("aborted", error="x"), {"cycle_health": "down"}, [], [], []),
        ("the first completed cycle after announced aborts", report(), {"cycle_health": "down"}, [], [], ["cycle_recovered"]),
        ("a skipped cycle during an outage is no recovery", report("skipped"), {"cycle_health": "down"}, [], [], []),
        ("an order rejected", report(), {}, REJECTED, [], ["order_rejected"]),
        ("a stop-loss sold", report(), {}, [], [STOP], ["protective_exit"]),
        ("three criticals trip the switch on an abort", report("aborted", error="bug", halt_reason="3 critical errors"), {},
         [], [], ["kill_switch_on", "cycle_aborted"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_which_events_a_finished_cycle_produced(situation, finished, marks, rejected, exits, kinds):
    assert [a.kind for a in alerts.cycle_alerts(finished, marks, rejected, exits)] == kinds


def test_the_alerts_words_name_what_happened():
    tripped = alerts.cycle_alerts(report(halt_reason="daily loss limit: -6.0% (limit 5%)"), {}, [])[0]
    assert tripped.title == "tradecycle: kill switch ON"
    assert "by the tool (cycle 2026-12-01T15:00Z-ab12): daily loss limit: -6.0% (limit 5%)" in tripped.body
    assert "tradecycle killswitch off" in tripped.body
    rejected = alerts.cycle_alerts(report(), {}, REJECTED)[0]
    assert rejected.title == "tradecycle: order rejected (AAPL)" and "insufficient buying power" in rejected.body
    stop = alerts.cycle_alerts(report(), {}, [], [STOP])[0]
    assert stop.title == "tradecycle: protective exit (NVDA)"
    assert "NVDA: stop-loss: price 90 is 10.00% under the entry 100 (sell sent: accepted)" in stop.body
    person = alerts.kill_switch_alert(True, "going on holiday", "person", flatten=True)
    assert "Turned on by a person: going on holiday." in person.body and "--flatten" in person.body
    assert alerts.kill_switch_alert(False, None, "person").kind == "kill_switch_off"


@pytest.mark.parametrize(
    "moment, day",
    [
        (datetime(2026, 12, 1, 20, 59, tzinfo=UTC), None),  # Tuesday 15:59 EST
        (datetime(2026, 12, 1, 21, 0, tzinfo=UTC), "2026-12-01"),  # Tuesday 16:00 EST
        (datetime(2026, 12, 2, 4, 30, tzinfo=UTC), "2026-12-01"),  # 23:30 in New York, still Tuesday there
        (datetime(2026, 7, 7, 20, 0, tzinfo=UTC), "2026-07-07"),  # 16:00 EDT (summer time)
        (datetime(2026, 7, 7, 19, 59, tzinfo=UTC), None),
        (datetime(2026, 12, 5, 22, 0, tzinfo=UTC), None),  # Saturday
    ],
)
def test_the_daily_summary_is_due_after_the_us_close_on_weekdays(moment, day):
    assert alerts.summary_day(moment) == day


def test_the_daily_summary_gives_equity_pnl_orders_and_the_best_and_worst_decision():
    trades = [
        {"symbol": "AAPL", "side": "buy", "status": "filled", "dry_run": 0, "filled_qty": "10", "filled_avg_price": "180",
         "last_price": "182.5", "confidence": 0.82, "reasoning": "Breakout above the 20-day high"},
        {"symbol": "MSFT", "side": "buy", "status": "filled", "dry_run": 0, "filled_qty": "2", "filled_avg_price": "400",
         "last_price": "390", "confidence": 0.7, "reasoning": "Cloud growth"},
        {"symbol": "NVDA", "side": "buy", "status": "rejected", "dry_run": 0, "filled_qty": None, "filled_avg_price": None,
         "last_price": "100", "confidence": 0.9, "reasoning": "x"},
    ]
    summary = alerts.daily_summary("2026-12-01", {"equity": "101234.56", "last_equity": "100000"}, trades)
    assert summary.title == "tradecycle: daily summary 2026-12-01"
    assert "Equity $101,234.56; P&L today +$1,234.56 (+1.23%)" in summary.body
    assert "Orders today: 3 (2 filled, 1 rejected)." in summary.body
    assert 'Best: buy 10 AAPL at 180, now 182.5: +$25.00 (confidence 0.82; "Breakout above the 20-day high")' in summary.body
    assert "Worst: buy 2 MSFT at 400, now 390: -$20.00" in summary.body
    quiet = alerts.daily_summary("2026-12-01", {}, [])
    assert "Equity: not synced yet." in quiet.body and "No order filled today." in quiet.body
    assert "chain head" not in quiet.body  # nothing written yet: no head to keep
    head = {"hash": "ab" * 32, "seq": 1234, "linked_at": "2026-12-01T21:01:00Z"}
    kept = alerts.daily_summary("2026-12-01", {}, [], head)
    assert f"Record: chain head {'ab' * 32} (link 1234, 2026-12-01T21:01:00Z)" in kept.body


def test_one_alert_per_kind_per_ten_minutes_and_the_next_says_how_many_were_held_back(db, log):
    book, sender = AlertBook(db), RecordingSender()
    rejected = alerts.cycle_alerts(report(), {}, REJECTED)
    assert alerts.deliver(rejected, sender, book, log, NOW, 5) == ["sent"]
    assert alerts.deliver(rejected, sender, book, log, NOW + timedelta(minutes=1), 5) == ["held back"]
    assert alerts.deliver(rejected, sender, book, log, NOW + timedelta(minutes=9, seconds=59), 5) == ["held back"]
    # Another kind is not held back by this one.
    stop = alerts.cycle_alerts(report(), {}, [], [STOP])
    assert alerts.deliver(stop, sender, book, log, NOW + timedelta(minutes=2), 5) == ["sent"]
    assert alerts.deliver(rejected, sender, book, log, NOW + timedelta(minutes=10), 5) == ["sent"]
    titles = [t for t, _, _ in sender.sent]
    assert titles == ["tradecycle: order rejected (AAPL)", "tradecycle: protective exit (NVDA)", "tradecycle: order rejected (AAPL)"]
    assert "2 more alerts of this kind held back by the 10-minute limit" in sender.sent[2][1]
    assert [e["kind"] for e in log.events if e["event"] == "alert.held_back"] == ["order_rejected", "order_rejected"]


def test_an_alert_that_fails_is_logged_and_tried_again_by_the_next_cycle(db, log):
    book = AlertBook(db)
    aborted = alerts.cycle_alerts(report("aborted", error="broker unreachable"), book.marks(), [])
    assert alerts.deliver(aborted, RecordingSender(fail="connection refused"), book, log, NOW, 5) == ["failed: connection refused"]
    assert [(e["event"], e["kind"], e["error"]) for e in log.events] == [("alert.failed", "cycle_aborted", "connection refused")]
    # Nobody was told: the run of aborts is not announced yet, and the slot is not used up.
    assert book.last_sent("cycle_aborted") is None
    again = alerts.cycle_alerts(report("aborted", error="again"), book.marks(), [])
    sender = RecordingSender()
    assert alerts.deliver(again, sender, book, log, NOW + timedelta(minutes=1), 5) == ["sent"]
    assert len(sender.sent) == 1


def test_no_time_left_in_the_budget_sends_nothing(db, log):
    sender = RecordingSender()
    assert alerts.deliver(alerts.cycle_alerts(report(), {}, REJECTED), sender, AlertBook(db), log, NOW, 0.1) == [
        "failed: no time left to send it"]
    assert sender.sent == [] and AlertBook(db).last_sent("order_rejected") is None


def test_without_a_sender_nothing_is_worked_out(db, log):
    assert alerts.after_cycle(None, AlertBook(db), report(halt_reason="x"), log, NOW, 5) == []
    assert log.events == []


@pytest.mark.parametrize(
    "url, masked, kept",
    [
        ("tgram://123456789:AAHdEfGhIjKlMnOp/-1001234567", ["123456789", "AAHdEfGhIjKlMnOp", "-1001234567"], []),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F", ["T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7F"], []),
        ("ntfys://ntfy.sh/tradecycle-7f3a9c2e", ["tradecycle-7f3a9c2e"], ["ntfy.sh"]),
        ("json://127.0.0.1:8080/alerts/s3cr3t-alert-token?token=abcdefgh123", ["s3cr3t-alert-token", "abcdefgh123"],
         ["127.0.0.1", "alerts", "8080"]),
        ("mailto://me:hunter2pass@gmail.com", ["hunter2pass"], ["gmail.com"]),
    ],
)
def test_alert_urls_are_secrets_and_so_is_every_token_in_them(url, masked, kept):
    values = Secrets({"TRADECYCLE_ALERT_URLS": f" {url} , json://localhost/other-hook-id "}).values()
    assert url in values and "json://localhost/other-hook-id" in values
    assert set(masked) <= set(url_secrets(url))
    assert not set(kept) & set(values)
