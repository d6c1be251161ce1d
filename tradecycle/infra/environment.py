"""Secrets from the environment, and which of their parts to mask.

Light on purpose (no pydantic): ``killswitch`` uses it to redact the log line
it writes and to learn whether alerts are configured.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, unquote

ALERT_URLS_ENV = "TRADECYCLE_ALERT_URLS"
HEARTBEAT_URL_ENV = "TRADECYCLE_HEARTBEAT_URL"

# A piece of an alert URL shorter than this is not masked on its own (the whole
# URL always is): short words ("alerts", a port) are too common in log lines.
URL_SECRET_MIN_LENGTH = 8
# Pieces of a URL that are addresses, not secrets: host names, IP addresses.
_NOT_SECRET = re.compile(r"(?i)[a-z0-9-]+(?:\.[a-z0-9-]+)+|localhost")


def alert_urls(value: str | None) -> list[str]:
    """The comma-separated apprise URLs of ``TRADECYCLE_ALERT_URLS`` (blank ones dropped)."""
    return [url.strip() for url in (value or "").split(",") if url.strip()]


def url_secrets(url: str) -> list[str]:
    """What to mask of one alert URL: the URL itself and every piece that may be
    a token (user, password, a host that is not an address, path segments,
    query values), raw and URL-decoded. Apprise URLs keep their tokens in all
    of these places (``tgram://BOTTOKEN/CHATID``, ``slack://TA/TB/TC``)."""
    found = {url}
    rest = url.split("://", 1)[-1]
    rest, _, query = rest.partition("?")
    pieces = re.split(r"[/@:#]+", rest) + [value for _, value in parse_qsl(query)]
    for piece in pieces:
        for form in {piece, unquote(piece)}:
            if len(form) >= URL_SECRET_MIN_LENGTH and not _NOT_SECRET.fullmatch(form):
                found.add(form)
    return sorted(found, key=len, reverse=True)


class Secrets:
    """Keys from the environment. Never printed: ``repr`` shows only which are set."""

    NAMES = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FINNHUB_API_KEY", "COINGECKO_API_KEY", "OPENAI_API_KEY",
             ALERT_URLS_ENV, HEARTBEAT_URL_ENV)

    def __init__(self, environ: dict[str, str] | None = None, extra_names: tuple[str, ...] = ()):
        """``extra_names``: more variables read as secrets (the shadows' ``api_key_env``)."""
        env = os.environ if environ is None else environ
        self._values = {name: env.get(name, "").strip() for name in (*self.NAMES, *extra_names)}

    def get(self, name: str) -> str:
        return self._values.get(name, "")

    def is_set(self, name: str) -> bool:
        return bool(self._values.get(name))

    def alert_urls(self) -> list[str]:
        return alert_urls(self._values[ALERT_URLS_ENV])

    def heartbeat_url(self) -> str:
        """``TRADECYCLE_HEARTBEAT_URL`` ("" when unset): a cron monitor's ping URL, a secret (it holds a token)."""
        return self._values[HEARTBEAT_URL_ENV]

    def values(self) -> list[str]:
        """Every secret that is set (for redaction): each key, and each alert or heartbeat URL with its tokens."""
        urls = (ALERT_URLS_ENV, HEARTBEAT_URL_ENV)
        values = [v for n, v in self._values.items() if v and n not in urls]
        for url in [*self.alert_urls(), *([self.heartbeat_url()] if self.heartbeat_url() else [])]:
            values += url_secrets(url)
        return sorted(set(values), key=len, reverse=True)

    def __repr__(self) -> str:
        return f"Secrets(set={[n for n in self._values if self.is_set(n)]})"
