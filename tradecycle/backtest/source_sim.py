"""The simulator's history: what the shipped config backtests, offline, with no keys.

Each symbol walks day by day from a fixed first day (``EPOCH``), seeded by
``market_data.sim.seed``, the symbol and the day, so the same seed gives the
same history whatever ``--from`` and ``--to`` are: two backtests of the same
month see the same prices. A day opens a little away from the last close and
moves with the simulator's daily volatility; stocks trade NYSE sessions only
(holidays and half days from the calendar), coins every UTC day.

Below a day, the bars at the backtest's interval follow a random path from
the day's open to its close (a Brownian bridge), and the day's high, low and
volume are those of its bars. Headlines: two a day per symbol at seeded
minutes, worded after the last day that had closed when they were published.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from tradecycle.backtest.history import Bar, Dataset, SymbolHistory
from tradecycle.backtest.sessions import Sessions
from tradecycle.connectors.sim import BASE_PRICES, CRYPTO_DAILY_VOLATILITY, STOCK_DAILY_VOLATILITY
from tradecycle.models import NewsItem, is_crypto

EPOCH = date(2020, 1, 2)
DRIFT = 0.0003  # a little upward drift a day, like most markets over the years
PULL = 0.005
# Pulled back towards the simulator's base price a little every day, so that a walk of ten
# years stays in the range the live simulator shows (about +-20 % for a stock).
NEWS_PER_DAY = 2
_UP = ["{name} climbs as analysts raise price targets", "{name} rallies on strong demand outlook"]
_DOWN = ["{name} slides as investors take profits", "{name} falls after cautious guidance"]
_NEUTRAL = ["{name} trades flat ahead of sector data", "Options traders eye {name} into month end"]


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _cents(value: float) -> Decimal:
    return Decimal(f"{max(value, 0.01):.2f}")


def load_sim(symbols: list[str], interval: timedelta, start: datetime, end: datetime, warmup_start: datetime,
             seed: int, sessions: Sessions | None) -> Dataset:
    histories, news = {}, {}
    for symbol in symbols:
        days = _days(symbol, warmup_start.date(), end.date(), sessions)
        daily, bars = _walk(symbol, days, interval, start - timedelta(days=2), seed)
        histories[symbol] = SymbolHistory(symbol, bars if interval < timedelta(days=1) else daily, daily)
        news[symbol] = _headlines(symbol, histories[symbol], start - timedelta(days=2), end, seed)
    return Dataset("sim", interval, histories, news, has_news=True)


def _days(symbol: str, first: date, last: date, sessions: Sessions | None) -> list[tuple[datetime, datetime]]:
    """(opens, closes) of every trading day from ``EPOCH`` (or earlier) to ``last``."""
    begin = min(EPOCH, first)
    if is_crypto(symbol):
        count = (last - begin).days + 1
        return [(datetime.combine(begin + timedelta(days=k), time(), UTC),
                 datetime.combine(begin + timedelta(days=k + 1), time(), UTC)) for k in range(count)]
    assert sessions is not None, "stocks need the exchange's sessions"
    return [s for s in sessions.spans if begin <= s[0].date() <= last]


def _walk(symbol: str, days, interval: timedelta, detail_from: datetime, seed: int) -> tuple[list[Bar], list[Bar]]:
    sigma = CRYPTO_DAILY_VOLATILITY if is_crypto(symbol) else STOCK_DAILY_VOLATILITY
    base = float(BASE_PRICES.get(symbol) or _rng("base", symbol).randint(20, 500))
    close = base
    base_volume = _rng(seed, symbol, "volume").randint(2_000, 40_000) if is_crypto(symbol) else \
        _rng(seed, symbol, "volume").randint(5, 80) * 1_000_000
    daily, bars = [], []
    intraday = interval < timedelta(days=1)
    walk = _rng(seed, symbol, "walk")  # one stream from EPOCH on: day k's draws are the same in every run
    for opens, closes in days:
        rng = walk
        open_ = close * math.exp(rng.gauss(0.0, sigma / 4))
        close = open_ * math.exp(rng.gauss(DRIFT, sigma) - PULL * math.log(open_ / base))
        volume = base_volume * rng.lognormvariate(0.0, 0.35)
        wiggles = (abs(rng.gauss(0.0, 1.0)), abs(rng.gauss(0.0, 1.0)))
        if intraday and closes > detail_from:
            day_bars = _bridge(_rng(seed, symbol, "day", opens.date().isoformat()), opens, closes, interval, open_, close, sigma, volume)
            bars.extend(day_bars)
            high, low = max(b.high for b in day_bars), min(b.low for b in day_bars)
            daily.append(Bar(opens, closes, _cents(open_), high, low, _cents(close), sum(b.volume for b in day_bars)))
        else:
            high = max(open_, close) * (1 + wiggles[0] * sigma / 2)
            low = min(open_, close) * (1 - wiggles[1] * sigma / 2)
            daily.append(Bar(opens, closes, _cents(open_), _cents(high), _cents(low), _cents(close), Decimal(int(volume))))
    return daily, bars


def _bridge(rng: random.Random, opens: datetime, closes: datetime, interval: timedelta, open_: float, close: float,
            sigma: float, volume: float) -> list[Bar]:
    """The day's bars at ``interval``: a random path pinned to the day's open and close."""
    count = max(1, math.ceil((closes - opens) / interval))
    step = sigma / math.sqrt(count)
    walk = [0.0]
    for _ in range(count):
        walk.append(walk[-1] + rng.gauss(0.0, step))
    total = math.log(close / open_)
    path = [open_ * math.exp(w - walk[-1] * k / count + total * k / count) for k, w in enumerate(walk)]
    bars = []
    for k in range(count):
        o, c = path[k], path[k + 1]
        wiggle = abs(rng.gauss(0.0, step / 2))
        bar_open = opens + interval * k
        bars.append(Bar(bar_open, min(bar_open + interval, closes), _cents(o), _cents(max(o, c) * (1 + wiggle)),
                        _cents(min(o, c) * (1 - wiggle)), _cents(c), Decimal(int(volume / count * rng.uniform(0.5, 1.5)))))
    return bars


def _headlines(symbol: str, history: SymbolHistory, start: datetime, end: datetime, seed: int) -> list[NewsItem]:
    name = symbol.split("/")[0]
    items = []
    day = start.date()
    while day <= end.date():
        midnight = datetime.combine(day, time(), UTC)
        for n in range(NEWS_PER_DAY):
            rng = _rng(seed, symbol, "news", day.isoformat(), n)
            published = midnight + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
            known = bisect_left(history.daily_closes, published)  # days closed before it was written
            last = history.daily[known - 1] if known else None
            templates = _NEUTRAL if last is None or rng.random() < 0.4 else (_UP if last.close >= last.open else _DOWN)
            items.append(NewsItem(symbol, rng.choice(templates).format(name=name), published, "Simulated Wire",
                                  news_id=f"sim-{symbol}-{day:%Y%m%d}-{n}"))
        day += timedelta(days=1)
    return items
