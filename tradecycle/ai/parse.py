"""Strict parsing of an LLM reply into per-symbol decisions.

The reply is untrusted input. It must be one JSON object
``{"decisions": [{"symbol", "action", "confidence", "reasoning"}, ...]}``
(optionally wrapped in a Markdown code fence). Every requested symbol comes
out either as a valid decision or with the reason it is invalid; nothing
here raises for a bad reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..models import Action, normalize_symbol

MAX_REASONING_CHARS = 1000

# A whole reply wrapped in ```json ... ``` (or a bare ``` fence).
_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\r?\n?(?P<body>.*?)\r?\n?[ \t]*```\Z", re.DOTALL)
# Local reasoning models (DeepSeek-R1, Qwen3 via llama.cpp) may think aloud first.
_THINKING = re.compile(r"\A<think>.*?</think>", re.DOTALL)


class _ReplyDecision(BaseModel):
    """One item of ``decisions``. Extra fields (quantity, price, size...) are ignored:
    the model never sets sizes. Types are strict: ``"0.7"`` is not a confidence."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    symbol: str
    action: Literal["buy", "sell", "hold"]
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str


@dataclass(frozen=True)
class ValidDecision:
    symbol: str  # spelled as requested, not as the model wrote it
    action: Action
    confidence: float
    reasoning: str


@dataclass(frozen=True)
class ParsedReply:
    """Every requested symbol is in exactly one of ``decisions`` or ``invalid``.

    ``invalid`` maps a requested symbol to why it holds (outcome ``ai_invalid``).
    ``dropped`` lists the symbols the reply named outside the requested set,
    as the model wrote them (truncated), for the caller to log.
    """

    decisions: dict[str, ValidDecision] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def parse_reply(text: str | None, requested: Iterable[str]) -> ParsedReply:
    """Validate a reply text against the requested symbols.

    - Not JSON, or not an object with a ``decisions`` list: every requested
      symbol is invalid with that reason.
    - An item that fails validation makes its symbol invalid with the reason.
    - A requested symbol with no item, or with more than one, is invalid.
    - Items for other symbols are dropped and reported in ``dropped``.

    Symbols match after ``normalize_symbol`` (``btcusd`` answers ``BTC/USD``).
    """
    wanted = {normalize_symbol(s): s for s in requested}
    body, problem = _load_json(text)
    if problem is None and not (isinstance(body, dict) and isinstance(body.get("decisions"), list)):
        problem = "reply is not a JSON object with a 'decisions' list"
    if problem is not None:
        return ParsedReply(invalid={symbol: problem for symbol in wanted.values()})

    items_by_symbol: dict[str, list[Any]] = {}
    unattributed: list[str] = []
    dropped: list[str] = []
    for index, item in enumerate(body["decisions"], start=1):
        raw_symbol = item.get("symbol") if isinstance(item, dict) else None
        if not isinstance(raw_symbol, str) or not raw_symbol.strip():
            unattributed.append(f"item {index} has no symbol")
            continue
        key = normalize_symbol(raw_symbol)
        if key not in wanted:
            dropped.append(raw_symbol.strip()[:32])
            continue
        items_by_symbol.setdefault(wanted[key], []).append(item)

    decisions: dict[str, ValidDecision] = {}
    invalid: dict[str, str] = {}
    for symbol in wanted.values():
        items = items_by_symbol.get(symbol, [])
        if not items:
            reason = f"no decision for {symbol} in the reply"
            invalid[symbol] = reason + (f" ({'; '.join(unattributed)})" if unattributed else "")
        elif len(items) > 1:
            invalid[symbol] = f"more than one decision for {symbol} in the reply"
        else:
            try:
                item = _ReplyDecision.model_validate(items[0])
            except ValidationError as exc:
                invalid[symbol] = f"invalid decision for {symbol}: {_describe(exc)}"
                continue
            decisions[symbol] = ValidDecision(
                symbol=symbol,
                action=item.action,
                confidence=item.confidence,
                reasoning=_truncate(" ".join(item.reasoning.split()), MAX_REASONING_CHARS),
            )
    return ParsedReply(decisions=decisions, invalid=invalid, dropped=tuple(dropped))


def strip_wrapping(text: str) -> str:
    """The reply without a leading ``<think>`` block and a surrounding Markdown code fence."""
    text = _THINKING.sub("", text.strip(), count=1).strip()
    match = _FENCE.match(text)
    return match.group("body").strip() if match else text


def _load_json(text: str | None) -> tuple[Any, str | None]:
    """(body, None) or (None, why it is not JSON). NaN and Infinity are not JSON."""
    if text is None or not text.strip():
        return None, "reply is empty"
    try:
        return json.loads(strip_wrapping(text), parse_constant=_reject_constant), None
    except (ValueError, RecursionError) as exc:
        return None, f"reply is not valid JSON: {_truncate(str(exc), 120)}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _describe(exc: ValidationError) -> str:
    """``field: message (got value)`` for each error, on one line."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "decision"
        part = f"{where}: {error['msg']}"
        if error["type"] != "missing":
            part += f" (got {_truncate(repr(error.get('input')), 40)})"
        parts.append(part)
    return "; ".join(parts)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
