"""A cron monitor's ping receiver, after healthchecks.io (API_NOTES.md, "Cron
monitoring"): ``GET`` or ``POST`` ``/ping/<uuid>`` when a run succeeded,
``/ping/<uuid>/fail`` when it failed, ``/ping/<uuid>/start`` when one starts;
the body (up to 100 kB) is kept as the run's log; the answer is ``200 OK``
with the text ``OK``. An unknown check answers ``404`` with ``not found``."""

from __future__ import annotations

from typing import Any

from .common import PREFIXES, RecordedRequest, Reply

HEARTBEAT_UUID = "5f1c3a2e-8d4b-4c1e-9a7f-0b2d6e4f8a13"  # a check's token, like healthchecks.io's


class HeartbeatMixin:
    """The ping receiver of ``FakeServices``."""

    @property
    def heartbeat_url(self) -> str:
        """The check's ping URL (its token in the path): what ``TRADECYCLE_HEARTBEAT_URL`` holds in a test."""
        return f"{self.base_url}{PREFIXES['heartbeat']}/{HEARTBEAT_UUID}"

    def pings(self) -> list[dict[str, Any]]:
        """Every ping received, oldest first: ``kind`` (``success``, ``fail``, ``start``), ``method``, ``body`` (text)."""
        with self.lock:
            found = [r for r in self.requests if r.service == "heartbeat" and r.fault is None]
        return [{"kind": _kind(r.subpath) or "unknown", "method": r.method, "body": r.body.decode("utf-8", "replace"),
                 "path": r.path} for r in found]

    def _heartbeat(self, req: RecordedRequest) -> Reply:
        kind = _kind(req.subpath)
        if req.method not in ("GET", "POST", "HEAD") or kind is None:
            return Reply(404, "not found", content_type="text/plain; charset=utf-8")
        return Reply(200, "OK", content_type="text/plain; charset=utf-8")


def _kind(subpath: str) -> str | None:
    parts = [p for p in subpath.split("/") if p]
    if not parts or parts[0] != HEARTBEAT_UUID or len(parts) > 2:
        return None
    return "success" if len(parts) == 1 else {"fail": "fail", "start": "start"}.get(parts[1])
