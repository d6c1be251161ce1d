"""An alerts webhook receiver: apprise's ``json://`` notifications (``version``,
``title``, ``message``, ``type``, ``attachments``) POSTed below ``/alerts``; any
2xx counts as delivered."""

from __future__ import annotations

from typing import Any

from .common import PREFIXES, RecordedRequest, Reply


class AlertsMixin:
    """The webhook receiver of ``FakeServices``."""

    def alert_url(self, token: str = "s3cr3t-alert-token") -> str:
        """An apprise ``json://`` URL to this fake, with a token in its path (as
        webhooks carry theirs): what ``TRADECYCLE_ALERT_URLS`` holds in a test."""
        return f"json://{self.host}:{self.port}{PREFIXES['alerts']}/{token}"

    def alerts(self) -> list[dict[str, Any]]:
        """The JSON bodies of every alert received (apprise's json:// shape:
        ``version``, ``title``, ``message``, ``type``, ``attachments``), oldest first."""
        with self.lock:
            return [r.json for r in self.requests if r.service == "alerts" and r.method == "POST" and r.fault is None]

    def _alerts(self, req: RecordedRequest) -> Reply:
        return Reply(200, {})  # a webhook: any 2xx is delivered
