"""Builders shared by the AI tests: analysis inputs and chat completion bodies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tradecycle.models import AnalysisInput, NewsItem, Position, Quote, RiskLimits

NOW = datetime(2024, 11, 25, 15, 0, tzinfo=timezone.utc)
LIMITS = RiskLimits(
    max_position_size_percent=Decimal("10"),
    max_total_exposure_percent=Decimal("50"),
    max_positions_count=15,
    daily_loss_limit_percent=Decimal("5"),
    min_confidence=0.6,
)


def news(symbol: str, headline: str, minutes_ago: int = 10, summary: str = "", news_id: str = "") -> NewsItem:
    return NewsItem(
        symbol=symbol,
        headline=headline,
        published_at=NOW - timedelta(minutes=minutes_ago),
        source="Reuters",
        summary=summary,
        news_id=news_id or f"{symbol}-{minutes_ago}",
    )


def make_input(
    symbol: str = "AAPL",
    price: str = "187.21",
    age_seconds: float = 12.0,
    change_percent: str | None = "1.23",
    position: Position | None = None,
    headlines: tuple[NewsItem, ...] = (),
    recent_prices: tuple[str, ...] = (),
) -> AnalysisInput:
    quote = Quote(
        symbol=symbol,
        price=Decimal(price),
        as_of=NOW - timedelta(seconds=age_seconds),
        source="finnhub",
        change_percent=None if change_percent is None else Decimal(change_percent),
    )
    return AnalysisInput(
        symbol=symbol,
        quote=quote,
        quote_age_seconds=age_seconds,
        position=position,
        headlines=headlines,
        recent_prices=tuple(Decimal(p) for p in recent_prices),
        limits=LIMITS,
    )


def decisions_json(*items: dict) -> str:
    return json.dumps({"decisions": list(items)})


def item(symbol: str = "AAPL", action: str = "buy", confidence=0.72, reasoning: str = "Breakout on volume", **extra) -> dict:
    return {"symbol": symbol, "action": action, "confidence": confidence, "reasoning": reasoning, **extra}


def completion(content: str | list | None, finish_reason: str = "stop", usage: dict | None = None, **message_fields) -> dict:
    """A chat completion body shaped like OpenAI's (and Ollama's /v1) answer.
    ``message_fields`` are added to the message (``reasoning_content=...``)."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1732546800,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, **message_fields},
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body
