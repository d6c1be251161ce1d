"""The heartbeat: one ping to a cron monitor (healthchecks.io and the like)
after every cycle, so that a monitor says so when cycles stop coming.

healthchecks.io's convention (API_NOTES.md, "Cron monitoring"): ``POST`` the
check's URL when a run succeeded, ``URL/fail`` when it failed; the body (up
to 100 kB) is kept as the run's log; any 2xx is fine. The ping goes on a
thread of its own and is waited for at most ``PING_SECONDS``: a monitor that
is slow or down can delay the end of the process by two seconds at most,
and never an order (the cycle's work is over when it is sent). The URL is
a secret (it holds the check's token): it never appears in a message.
Only the standard library: ``run`` must not pay for ``requests`` for this.
"""

from __future__ import annotations

import threading

from tradecycle.infra.errors import ServiceUnavailable

PING_SECONDS = 2.0
MAX_BODY_BYTES = 100_000


class HttpHeartbeat:
    name = "heartbeat"

    def __init__(self, url: str):
        self.url = url.strip().rstrip("/")

    def ping(self, failed: bool, body: str, timeout_seconds: float = PING_SECONDS) -> int:
        """POST ``body`` to the URL (``/fail`` appended when ``failed``); the HTTP
        status. Raises ServiceUnavailable (without the URL) when no 2xx came in time."""
        outcome: dict[str, object] = {}

        def send() -> None:
            import urllib.error
            import urllib.request

            request = urllib.request.Request(
                self.url + ("/fail" if failed else ""), data=body.encode("utf-8")[:MAX_BODY_BYTES], method="POST",
                headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "tradecycle"},
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                    outcome["status"] = response.status
            except urllib.error.HTTPError as exc:
                outcome["error"] = f"HTTP {exc.code}"
            except Exception as exc:  # refused, DNS, TLS, timeout: all the same to a ping
                outcome["error"] = type(exc).__name__ if isinstance(exc, OSError) and not str(exc) else _plain(exc)

        thread = threading.Thread(target=send, name="heartbeat", daemon=True)
        thread.start()
        thread.join(timeout_seconds)
        if thread.is_alive():
            raise ServiceUnavailable(self.name, f"no answer within {timeout_seconds:g} s")
        if "error" in outcome:
            raise ServiceUnavailable(self.name, str(outcome["error"]))
        status = int(outcome["status"])  # type: ignore[arg-type]
        if not 200 <= status < 300:
            raise ServiceUnavailable(self.name, f"HTTP {status}")
        return status


def _plain(exc: Exception) -> str:
    """The reason, without the URL (urllib puts none in its messages; ``reason`` is the socket's)."""
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason if reason is not None else exc}"
