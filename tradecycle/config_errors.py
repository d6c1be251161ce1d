"""How a config error is worded: one line naming each bad key
(``risk.max_positions_count: must be >= 1``), from pydantic's errors."""

from __future__ import annotations

from pydantic import ValidationError

_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "extra_forbidden": "unknown key",
    "literal_error": "must be one of {expected}",
    "finite_number": "must be a finite number",
    "decimal_type": "must be a finite number",
    **dict.fromkeys(("date_from_datetime_parsing", "date_parsing", "date_type", "date_from_datetime_inexact"),
                    "must be a date like 2024-06-30"),
}


def describe_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        template = _MESSAGES.get(error["type"])
        ctx = error.get("ctx") or {}
        if template:
            message = template.format(**{k: v for k, v in ctx.items()})
        else:
            message = str(ctx.get("error") or error["msg"])
            message = message.removeprefix("Value error, ")
        # A rule across keys names its keys itself.
        lines.append(message if key and message.startswith(f"{key}.") or not key else f"{key}: {message}")
    return "invalid configuration: " + "; ".join(lines)
