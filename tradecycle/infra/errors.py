"""The few named errors the core understands. Connectors translate HTTP and
``requests`` failures into these at the boundary; the CLI maps them to an
``ExitCode`` and one line of text."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # completed, skipped by the kill switch, or another cycle holds the lock
    ABORTED = 1  # broker unreachable, database unusable, unexpected error
    USAGE = 2  # bad usage or invalid configuration


class TradecycleError(Exception):
    """Base of every error we raise on purpose. ``str()`` is one line for a user.

    ``critical`` errors (an unusable database, state that cannot be
    reconciled) count towards the aborts that trip the kill switch; a service
    that is unreachable does not: the next cycle simply tries again."""

    exit_code = ExitCode.ABORTED
    critical = False


class ConfigError(TradecycleError):
    exit_code = ExitCode.USAGE


class UsageError(TradecycleError):
    """An option the command cannot use (exit 2)."""

    exit_code = ExitCode.USAGE


class NotFound(TradecycleError):
    """What a command was asked about is not in the database (exit 1)."""


class DatabaseUnusable(TradecycleError):
    """The database cannot be opened, read or written: nothing may be traded."""

    critical = True


class Unreconcilable(TradecycleError):
    """What the broker says cannot be squared with what we recorded."""

    critical = True


class ServiceError(TradecycleError):
    """A remote service failed. ``service`` names it for the user ("alpaca", "finnhub", ...)."""

    def __init__(self, service: str, message: str):
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message


class ServiceUnavailable(ServiceError):
    """Connection refused, timeout, DNS, or 5xx after retries."""


class RateLimited(ServiceError):
    """429 that could not be waited out inside the budget."""

    def __init__(self, service: str, message: str, retry_after_seconds: float | None = None):
        super().__init__(service, message)
        self.retry_after_seconds = retry_after_seconds
        self.retry_after_given = retry_after_seconds is not None  # the header was there (maybe unreadable)


class QuotaExhausted(ServiceError):
    """429 that says the account's quota or credit is used up (OpenAI's
    ``insufficient_quota``): waiting does not help, so it is never retried."""

    def __init__(self, service: str, message: str, status_code: int = 429):
        super().__init__(service, message)
        self.status_code = status_code


class BadResponse(ServiceError):
    """The service answered, but not with something we can use (4xx, malformed body)."""

    def __init__(self, service: str, message: str, status_code: int | None = None):
        super().__init__(service, message)
        self.status_code = status_code


class OrderRejected(ServiceError):
    """The broker refused the order (403 buying power / blocked, 422 invalid)."""

    def __init__(self, service: str, message: str, status_code: int | None = None):
        super().__init__(service, message)
        self.status_code = status_code


class DuplicateOrder(OrderRejected):
    """The client_order_id was used before (Alpaca 422): the order is already there."""


class OrderNotReceived(ServiceUnavailable):
    """The order may have been lost on the way, and the broker confirms it has
    no order with this client order id: it is safe to send again with the SAME
    id (the caller decides, after re-checking the kill switch and its budget)."""


class OrderUncertain(ServiceError):
    """The order may or may not have reached the broker (timeout, dropped connection)."""


class AlertFailed(TradecycleError):
    """An alert did not reach every channel (refused, unreachable, too slow).
    Its message never names a URL or a token. An alert never affects a cycle."""
