"""Strict parsing of an LLM reply into per-symbol decisions.

The reply is untrusted input. It must hold one JSON object
``{"decisions": [{"symbol", "action", "confidence", "reasoning"}, ...]}``.
What models wrap around it is tolerated: a Markdown code fence, prose before
and after (with or without a fence), and the thinking of reasoning models
(``<think>...</think>``, or only the closing ``</think>`` when the chat
template opened the block). A reply that holds two *different* JSON objects
is refused: which one is the answer would be a guess. Every requested symbol
comes out either as a valid decision or with the reason it is invalid;
nothing here raises for a bad reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradecycle.models import Action, normalize_symbol

MAX_REASONING_CHARS = 1000

# A whole reply wrapped in ```json ... ``` (or a bare ``` fence).
_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\r?\n?(?P<body>.*?)\r?\n?[ \t]*```\Z", re.DOTALL)
# Local reasoning models (DeepSeek-R1, Qwen3 via llama.cpp or Ollama) may think aloud first;
# when the chat template opens the block in the prompt, the reply has only the closing tag.
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
# Scanning prose for embedded JSON objects: at most this many "{" are tried, so that a
# long reply full of braces cannot cost more than a bounded amount of work.
_MAX_OBJECT_STARTS = 200


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
    """The reply without the thinking before the last ``</think>`` and without a
    Markdown code fence around the whole of what is left."""
    text = text.strip()
    _, closed, answer = text.rpartition(_THINK_CLOSE)
    if closed:
        text = answer.strip()
    match = _FENCE.match(text)
    return match.group("body").strip() if match else text


def _load_json(text: str | None) -> tuple[Any, str | None]:
    """(body, None) or (None, why there is no one JSON answer). NaN and Infinity are not JSON.

    The text (thinking and a whole-reply fence removed) is parsed as JSON; failing
    that, the JSON objects embedded in it (in prose, in a fence inside prose) are
    collected: exactly one distinct object is the answer, several are refused.
    """
    if text is None or not text.strip():
        return None, "reply is empty"
    if text.lstrip().startswith(_THINK_OPEN) and _THINK_CLOSE not in text:
        return None, "reply is unfinished thinking (<think> without </think>)"
    answer = strip_wrapping(text)
    if not answer:
        return None, "reply is empty after the model's thinking"
    try:
        return json.loads(answer, parse_constant=_reject_constant), None
    except (ValueError, RecursionError) as exc:
        problem = f"reply is not valid JSON: {_truncate(str(exc), 120)}"
    distinct = {json.dumps(obj, sort_keys=True): obj for obj in _embedded_objects(answer)}
    if len(distinct) == 1:
        return next(iter(distinct.values())), None
    if len(distinct) > 1:
        return None, f"reply holds {len(distinct)} different JSON objects: which one is the answer is unclear"
    return None, problem


def _embedded_objects(text: str) -> list[dict]:
    """Every top-level JSON object found in ``text``, in order (an object inside
    another is part of it, not a second one)."""
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    found: list[dict] = []
    position = 0
    for _ in range(_MAX_OBJECT_STARTS):
        start = text.find("{", position)
        if start < 0:
            break
        try:
            obj, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            position = start + 1
            continue
        found.append(obj)
        position = end
    return found


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
