"""The one HTTP layer every live connector uses.

One pooled ``requests.Session`` per service (up to ``parallel.MAX_WORKERS``
connections, opened as the universe needs them); a (connect, read) timeout on every
call, never longer than what is left of the cycle's budget; tenacity retries
on connection errors and 5xx with exponential backoff; 429 honours
``Retry-After`` when the wait fits the budget (and ``retry_max_delay_seconds``).
Redirects are never followed: a redirect could carry our key headers to
another host, or turn an order POST into a GET. The environment (proxy
variables, ``REQUESTS_CA_BUNDLE``) is read once per client, not on every
request, and ``~/.netrc`` never replaces the key a service was given. ``requests`` exceptions and
HTTP statuses leave this module only as our own errors (``errors.py``), with
any secret redacted from their text.
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception

from tradecycle.infra.errors import BadResponse, QuotaExhausted, RateLimited, ServiceError, ServiceUnavailable
from tradecycle.models import Deadline
from tradecycle.infra.parallel import MAX_WORKERS, NotDone, call_within
from tradecycle.infra.redact import redact

CONNECT_TIMEOUT_SECONDS = 3.05
USER_AGENT = "tradecycle/0.1 (+paper trading)"


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts and retry policy, built from ``[cycle]`` (see ``from_cycle_config``)."""

    timeout_seconds: float = 10.0
    max_retries: int = 3
    retry_base_delay_seconds: float = 1.0
    retry_max_delay_seconds: float = 30.0
    retry_backoff_multiplier: float = 2.0
    deadline: Deadline | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    pool_size: int = MAX_WORKERS  # connections kept per service; opened only as needed

    @classmethod
    def from_cycle_config(cls, cycle, *, timeout_seconds: float, deadline: Deadline | None, secrets=()) -> "HttpSettings":
        return cls(
            timeout_seconds=timeout_seconds,
            max_retries=cycle.max_retries,
            retry_base_delay_seconds=cycle.retry_base_delay_seconds,
            retry_max_delay_seconds=cycle.retry_max_delay_seconds,
            retry_backoff_multiplier=cycle.retry_backoff_multiplier,
            deadline=deadline,
            secrets=tuple(secrets),
        )

    def remaining_seconds(self) -> float:
        return self.deadline.remaining() if self.deadline else float("inf")


class ServiceDown(ServiceUnavailable):
    """ServiceUnavailable that also says whether the request may have reached the server."""

    def __init__(self, service: str, message: str, *, may_have_arrived: bool, status_code: int | None = None):
        super().__init__(service, message)
        self.may_have_arrived = may_have_arrived
        self.status_code = status_code


class ServiceRefused(BadResponse):
    """The service answered 4xx (not 429). ``detail`` is the service's own message, redacted;
    ``error_code`` and ``error_param`` are the ``code`` and ``param`` of an OpenAI-shaped
    ``{"error": {...}}`` body, when it has them as strings."""

    def __init__(self, service: str, message: str, status_code: int, detail: str,
                 error_code: str | None = None, error_param: str | None = None):
        super().__init__(service, message, status_code)
        self.detail = detail
        self.error_code = error_code
        self.error_param = error_param


class HttpClient:
    """A JSON client for one service. ``request`` returns the decoded body."""

    def __init__(
        self,
        service: str,
        base_url: str,
        settings: HttpSettings,
        headers: dict[str, str] | None = None,
        *,
        retry_unexplained_429: bool = True,
    ):
        self.service = service
        self.retry_unexplained_429 = retry_unexplained_429
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.calls = 0  # requests actually sent, for tests and `check`
        self._calls_lock = threading.Lock()  # connectors send from several threads at once
        self.session = requests.Session()
        # requests would read the proxy variables and ~/.netrc again on every request (some
        # 0.3 ms of CPU each: 300 requests in a 100-symbol cycle); and a netrc entry for the
        # host would replace our Authorization header. Read the environment once, here.
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(self.base_url)
        if bundle := os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
            self.session.verify = bundle
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.headers.update(headers or {})

    def get(self, path: str, params: dict[str, Any] | None = None, **options) -> Any:
        return self.request("GET", path, params=params, **options)

    def post(self, path: str, body: Any, **options) -> Any:
        return self.request("POST", path, json=body, **options)

    def delete(self, path: str, **options) -> Any:
        return self.request("DELETE", path, **options)

    def patch(self, path: str, body: Any, **options) -> Any:
        return self.request("PATCH", path, json=body, **options)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout_seconds: float | None = None,
        retry: bool = True,
        missing_ok: bool = False,
    ) -> Any:
        """Send one request (retried when ``retry``) and decode its JSON body.

        ``missing_ok`` turns a 404 into ``None``. Raises ``RateLimited``,
        ``ServiceDown`` (a ``ServiceUnavailable``) or ``BadResponse``
        (``ServiceRefused`` for a 4xx answer).
        """
        attempts = 1 + (self.settings.max_retries if retry else 0)
        retrying = Retrying(
            stop=lambda state: self._should_stop(state, attempts),
            wait=self._wait_seconds,
            retry=retry_if_exception(self._is_retryable),
            reraise=True,
            sleep=time.sleep,
        )
        return retrying(self._send_once, method, path, params, json, timeout_seconds, missing_ok)

    # -- one attempt ---------------------------------------------------------

    def _send_once(self, method, path, params, json, timeout_seconds, missing_ok) -> Any:
        remaining = self.settings.remaining_seconds()
        if remaining <= 0:
            raise ServiceDown(self.service, "no time left in this cycle's budget", may_have_arrived=False)
        read_timeout = min(timeout_seconds or self.settings.timeout_seconds, remaining)
        url = f"{self.base_url}/{path.lstrip('/')}"
        with self._calls_lock:
            self.calls += 1
        connect_timeout = min(CONNECT_TIMEOUT_SECONDS, read_timeout)
        whole_call = min(connect_timeout + read_timeout, remaining)

        def send() -> requests.Response:
            response = self._send(method, url, params, json, (connect_timeout, read_timeout))
            response.content  # read the whole body here, inside the time limit
            return response

        try:
            # requests' timeouts bound each socket read, not the whole answer: a server that
            # sends a byte at a time could hold a call for ever. The call gets a hard limit.
            response = call_within(whole_call, send)
        except NotDone:
            raise ServiceDown(self.service, f"no answer within {whole_call:.1f}s", may_have_arrived=True) from None
        except requests.exceptions.Timeout as exc:
            if _never_sent(exc):
                raise ServiceDown(self.service, f"cannot connect ({_reason(exc)})", may_have_arrived=False) from None
            raise ServiceDown(self.service, f"no answer within {read_timeout:.1f}s", may_have_arrived=True) from None
        except requests.exceptions.RequestException as exc:
            if _never_sent(exc):
                raise ServiceDown(self.service, f"cannot connect ({_reason(exc)})", may_have_arrived=False) from None
            raise ServiceDown(self.service, f"connection failed ({_reason(exc)})", may_have_arrived=True) from None
        return self._decode(response, missing_ok)

    def _send(self, method: str, url: str, params: dict[str, Any] | None, json: Any, timeout: tuple[float, float]) -> requests.Response:
        """What ``session.request`` does, without the merging it repeats on every call:
        the request is prepared from the session's own headers and cookies (a client
        sets no per-request ones), and the settings ``request`` would merge from an
        environment we never trust are the session's. That merging was about 0.1 ms of
        a request's 0.6 ms of CPU (much of it typing-Protocol checks), 300 times in a
        100-symbol cycle, all of it under the one GIL."""
        session = self.session
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method.upper(), url=url, headers=session.headers, params=_query(params), json=json,
                         cookies=session.cookies, hooks=session.hooks)
        return session.send(prepared, timeout=timeout, allow_redirects=False, proxies=session.proxies,
                            stream=False, verify=session.verify, cert=session.cert)

    def _decode(self, response: requests.Response, missing_ok: bool) -> Any:
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status == 429:
            if "insufficient_quota" in _error_fields(response, "code", "type"):
                raise QuotaExhausted(self.service, self._message(response, "quota exhausted"))
            limited = RateLimited(self.service, self._message(response, "rate limited"), _retry_after(response))
            limited.retry_after_given = "Retry-After" in response.headers
            raise limited
        if status >= 500:
            raise ServiceDown(
                self.service, f"HTTP {status}: {self._message(response, 'server error')}", may_have_arrived=True, status_code=status
            )
        if status >= 400:
            detail = self._message(response, "request refused")
            code, param = _error_fields(response, "code", "param")
            raise ServiceRefused(self.service, f"HTTP {status}: {detail}", status, detail, code, param)
        if 300 <= status < 400:
            location = redact(response.headers.get("Location", "elsewhere"), self.settings.secrets)[:200]
            raise BadResponse(
                self.service, f"HTTP {status}: redirected to {location} (set base_url to the final address)", status
            )
        if status == 204 or not response.content:
            return None  # no content: a DELETE done
        try:
            return response.json()
        except ValueError:
            raise BadResponse(self.service, f"HTTP {status} but the body is not JSON", status) from None

    def _message(self, response: requests.Response, fallback: str) -> str:
        """The error text of any of the shapes services use, redacted, on one line."""
        text = ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            candidate = body.get("message") or body.get("error") or body.get("status")
            if isinstance(candidate, dict):
                candidate = candidate.get("message") or candidate.get("error_message")
            text = str(candidate or "")
        if not text:
            text = response.text[:200] if response.text else fallback
        return redact(" ".join(text.split()), self.settings.secrets)[:300]

    # -- retry policy --------------------------------------------------------

    def _is_retryable(self, exc: BaseException) -> bool:
        """Connection errors, 5xx and 429. A 429 without ``Retry-After`` is not
        retried when ``retry_unexplained_429`` is off (Finnhub: its quota is per
        minute, so a retry inside the same minute only spends more of it)."""
        if isinstance(exc, RateLimited) and not exc.retry_after_given and not self.retry_unexplained_429:
            return False
        return _is_retryable(exc)

    def _wait_seconds(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after_seconds is not None:
            return exc.retry_after_seconds
        s = self.settings
        delay = s.retry_base_delay_seconds * s.retry_backoff_multiplier ** (state.attempt_number - 1)
        return min(delay, s.retry_max_delay_seconds)

    def _should_stop(self, state: RetryCallState, attempts: int) -> bool:
        if state.attempt_number >= attempts:
            return True
        # Never sleep past the cycle's budget: a wait that does not fit ends the retries now.
        # Backoff is capped at retry_max_delay_seconds; a longer Retry-After (an hour, say)
        # ends them too, even with no deadline set.
        upcoming = getattr(state, "upcoming_sleep", 0) or 0
        return upcoming >= self.settings.remaining_seconds() or upcoming > self.settings.retry_max_delay_seconds


def _query(params: dict[str, Any] | None) -> str | None:
    """The query string ``requests`` would make of ``params`` (a None value left out,
    a list repeated), made without its per-call typing-Protocol checks."""
    if not params:
        return None
    pairs = []
    for key, values in (params.items() if isinstance(params, dict) else params):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        pairs.extend((key, value) for value in values if value is not None)
    return urlencode(pairs, doseq=True)


def _never_sent(exc: Exception) -> bool:
    """True only when the request surely did not reach the server (no connection was made).

    A reset or a read timeout after connecting may mean the server got it:
    for an order that is the difference between "retry" and "look it up".
    """
    if isinstance(exc, _NEVER_SENT):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, NameResolutionError)):
            return True
        nested = getattr(current, "reason", None) or (current.args[0] if current.args else None)
        current = nested if isinstance(nested, BaseException) else current.__context__
    return False


# Raised before any byte leaves: connect timeout, or a URL requests cannot even use.
_NEVER_SENT = (
    requests.exceptions.ConnectTimeout,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset", "Remote end closed"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (RateLimited, ServiceDown)) and not isinstance(exc, BadResponse)


def _error_fields(response: requests.Response, *names: str) -> tuple[str | None, ...]:
    """The named string fields of an ``{"error": {...}}`` body (OpenAI and its imitators), else None
    each; ``code`` is also CoinGecko's numeric ``status.error_code``, as text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        # CoinGecko's shape: {"status": {"error_code": 10010, "error_message": "..."}}
        status = body.get("status") if isinstance(body, dict) else None
        code = status.get("error_code") if isinstance(status, dict) else None
        if isinstance(code, int) and not isinstance(code, bool):
            return tuple(str(code) if name == "code" else None for name in names)
        return (None,) * len(names)
    return tuple(value if isinstance(value := error.get(name), str) else None for name in names)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the other form the RFC allows: an HTTP date
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    if parsed.tzinfo is None:  # "-0000" parses naive; HTTP dates are UTC
        parsed = parsed.replace(tzinfo=timezone.utc)
    return max(0.0, parsed.timestamp() - time.time())


__all__ = ["HttpClient", "HttpSettings", "ServiceDown", "ServiceError", "ServiceRefused"]
