"""``tradecycle run``: one cycle, its alerts afterwards, and the watchdog that
ends a process which overran its minute."""

from __future__ import annotations

from pathlib import Path

from tradecycle.commands.common import load, open_db


def run(config_option: str | None, db_option: str | None, dry_run: bool, watch=None):
    """One cycle. Config is validated before anything is written. ``watch(event,
    fields)``, if given, sees every event as it happens (the terminal's live view)."""
    from tradecycle.cycle.run import run_cycle
    from tradecycle.infra.logs import JsonLog
    from tradecycle.store import Store
    from tradecycle.commands.wiring import build_services, cycle_settings

    config, secrets = load(config_option)
    db_path = Path(db_option).expanduser() if db_option else config.database_path
    log = JsonLog(config.log_path, config.log.level, secrets.values(), watch=watch)  # log.path unusable: exit 2
    try:
        db = open_db(db_path)
    except BaseException:
        log.close()
        raise
    watchdog = _watchdog(config.cycle.max_cycle_seconds, log)
    try:
        services = build_services(config, db, secrets, log)
        try:
            report = run_cycle(services, Store(db), cycle_settings(config, dry_run), log)
        except Exception as exc:  # the cycle's own row could not be written: the monitor hears of it
            ping_heartbeat(services, True, f"tradecycle cycle aborted: {exc}", log)
            raise
        after_cycle(services, db, report, log)
        return report
    finally:
        watchdog.cancel()
        log.close()
        db.close()


def after_cycle(services, db, report, log) -> None:
    """Once the cycle is over and its run lock released (a slow alert channel
    can never hold the lock): the kill switch change it made, logged, and its
    alerts, sent within what is left of its budget (``alerts.py``); then the
    heartbeat. Never raises."""
    if report.halt_reason:
        log("killswitch.changed", "warning", active=True, changed_by="tool", reason=report.halt_reason)
    if services.alerts is not None:  # no TRADECYCLE_ALERT_URLS: apprise is never imported
        from tradecycle.commands.alerts import CYCLE_SEND_SECONDS
        from tradecycle.commands.alerts import after_cycle as send_cycle_alerts
        from tradecycle.store.alerts import AlertBook

        seconds = min(CYCLE_SEND_SECONDS, services.deadline.remaining())
        send_cycle_alerts(services.alerts, AlertBook(db), report, log, services.clock.now(), seconds)
    if report.cycle_id is not None:  # a run that found the lock taken did nothing: the cycle holding it pings
        ping_heartbeat(services, report.status == "aborted", report.summary_line(), log)


def ping_heartbeat(services, failed: bool, summary: str, log) -> None:
    """``TRADECYCLE_HEARTBEAT_URL`` (``/fail`` for an aborted cycle), the summary
    line as the body, two seconds at most. Logged either way; never raises."""
    if services.heartbeat is None:
        return
    try:
        status = services.heartbeat.ping(failed, summary)
        log("heartbeat.sent", failed=failed, status=status)
    except Exception as exc:  # a monitor that is down never fails the cycle
        log("heartbeat.failed", "warning", failed=failed, error=str(exc))


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

    from tradecycle.infra.errors import ExitCode

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
