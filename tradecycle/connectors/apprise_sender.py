"""Alerts through apprise (https://github.com/caronc/apprise): one library for
Telegram, Slack, Discord, e-mail, ntfy, JSON webhooks and many more, each a URL.

apprise (and the requests, markdown and yaml it loads) is imported on the
first send, never before: a cycle with no ``TRADECYCLE_ALERT_URLS`` and the
``killswitch``/``status`` commands never pay for it.

The URLs hold tokens, so nothing apprise says leaves this module unmasked:
its log records are caught (never printed to stderr, where cron would mail
them), masked and folded into the ``AlertFailed`` message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from tradecycle.infra.errors import AlertFailed
from tradecycle.infra.redact import redact

SEVERITIES = ("info", "success", "warning", "failure")  # apprise's notify types


class _Caught(logging.Handler):
    """apprise's warnings and errors, kept for the failure message."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a record that cannot format itself is not worth a crash
            pass


class AppriseSender:
    """The ``AlertSender`` port over apprise. ``secrets``: every value to mask
    (the URLs and their tokens, see ``environment.url_secrets``)."""

    name = "apprise"

    def __init__(self, urls: Sequence[str], secrets: Sequence[str]):
        self.urls = list(urls)
        self.secrets = list(secrets)

    def send(self, title: str, body: str, severity: str, timeout_seconds: float) -> None:
        """Deliver to every URL within ``timeout_seconds`` (apprise runs in a
        daemon thread: one that does not answer in time is left behind, and
        ends with the process). Raises AlertFailed."""
        caught = _Caught()
        outcome: dict[str, object] = {}

        def deliver() -> None:
            try:
                outcome["ok"] = self._notify(title, body, severity, timeout_seconds, caught)
            except Exception as exc:  # apprise's own bug or a URL it chokes on
                outcome["error"] = exc

        worker = threading.Thread(target=deliver, name="tradecycle-alert", daemon=True)
        worker.start()
        worker.join(timeout_seconds)
        if worker.is_alive():
            raise AlertFailed(f"no answer within {timeout_seconds:.1f}s")
        error = outcome.get("error")
        if isinstance(error, AlertFailed):
            raise error
        if error is not None:
            raise AlertFailed(self._mask(f"apprise failed: {error!r}"))
        if outcome.get("ok") is not True:
            said = "; ".join(dict.fromkeys(caught.messages)) or "a channel did not accept it"
            raise AlertFailed(self._mask(said))

    def _notify(self, title: str, body: str, severity: str, timeout_seconds: float, caught: _Caught) -> bool:
        import apprise

        logger = logging.getLogger("apprise")
        logger.propagate = False  # never to the root logger (stderr, cron's mail)
        logger.addHandler(caught)
        try:
            notifier = apprise.Apprise()
            unknown = [n for n, url in enumerate(self.urls, start=1) if not notifier.add(url)]
            for service in notifier:
                # Each request must also end in time (apprise's defaults are 4 s each).
                service.socket_connect_timeout = min(service.socket_connect_timeout, timeout_seconds)
                service.socket_read_timeout = min(service.socket_read_timeout, timeout_seconds)
            # The URLs apprise understood still get the alert when another one is wrong.
            sent = len(notifier) > 0 and bool(
                notifier.notify(body=body, title=title, notify_type=severity if severity in SEVERITIES else "info")
            )
            if unknown:
                raise AlertFailed(f"{_positions(unknown)} of TRADECYCLE_ALERT_URLS not understood by apprise"
                                  + ("" if len(notifier) == 0 else f" (the other{'s' if len(notifier) > 1 else ''}: {'sent' if sent else 'failed'})"))
            return sent
        finally:
            logger.removeHandler(caught)

    def _mask(self, text: str) -> str:
        return redact(text, self.secrets)


def _positions(positions: list[int]) -> str:
    """``URL 2`` or ``URLs 1, 3``: which entries, by position (never the URL itself)."""
    return ("URL " if len(positions) == 1 else "URLs ") + ", ".join(str(n) for n in positions)
