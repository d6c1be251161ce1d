"""Alpaca's history: bars of every symbol (one call per asset class per page) and
news, fetched once and kept in the output database (``backtest_bars``,
``backtest_news``, with what each covers), so a later run over the same days
asks Alpaca nothing.

Daily bars from 100 days before ``--from`` feed the indicators; below a day,
the bars at the interval. A bar's ``t`` is when it opens: a daily stock bar
closes at its session's close (16:00 New York, 13:00 on a half day), an
intraday one an interval later (at the session's close at the latest); a stock
bar outside the sessions is left out.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tradecycle.backtest.history import Bar, Dataset, SymbolHistory, day_of
from tradecycle.backtest.sessions import Sessions
from tradecycle.infra.times import iso, parse_iso
from tradecycle.models import NewsItem, is_crypto
from tradecycle.store.backtests import BacktestBook

TIMEFRAMES = {"1d": "1Day", "1h": "1Hour", "15m": "15Min", "1m": "1Min"}
SOURCE = "alpaca"
ONE_DAY = timedelta(days=1)


def load_alpaca(client, book: BacktestBook, symbols: list[str], span, sessions: Sessions | None, news: bool = True) -> Dataset:
    daily_rows = _bars(client, book, symbols, "1Day", span.warmup_start, span.end)
    if span.interval_name == "1d":
        interval_rows = daily_rows
    else:
        interval_rows = _bars(client, book, symbols, TIMEFRAMES[span.interval_name], span.start - 2 * ONE_DAY, span.end)
    histories = {}
    for symbol in symbols:
        daily = [b for b in (_daily(symbol, row, sessions) for row in daily_rows[symbol]) if b]
        bars = daily if span.interval_name == "1d" else \
            [b for b in (_intraday(symbol, row, span.interval, sessions) for row in interval_rows[symbol]) if b]
        histories[symbol] = SymbolHistory(symbol, bars, daily)
    headlines = _news(client, book, symbols, span.start - 2 * ONE_DAY, span.end) if news else {}
    return Dataset(SOURCE, span.interval, histories, headlines, has_news=news)


def _bars(client, book: BacktestBook, symbols: list[str], timeframe: str, start, end) -> dict[str, list[dict]]:
    """Every symbol's stored bars over [start, end), fetched first for the symbols not covered yet."""
    covered = book.coverage(SOURCE, f"bars:{timeframe}")
    begin, finish = iso(start), iso(end)
    missing = [s for s in symbols if not (s in covered and covered[s][0] <= begin and covered[s][1] >= finish)]
    if missing:
        book.save_bars(SOURCE, timeframe, client.bars(missing, timeframe, start, end), (begin, finish))
    return {s: book.bars(SOURCE, s, timeframe, begin, finish) for s in symbols}


def _news(client, book: BacktestBook, symbols: list[str], start, end) -> dict[str, list[NewsItem]]:
    covered = book.coverage(SOURCE, "news")
    begin, finish = iso(start), iso(end)
    missing = [s for s in symbols if not (s in covered and covered[s][0] <= begin and covered[s][1] >= finish)]
    if missing:
        book.save_news(SOURCE, missing, client.news(missing, start, end), (begin, finish))
    found = {}
    for symbol in symbols:
        found[symbol] = [NewsItem(symbol, r["headline"], parse_iso(r["published_at"]), r["publisher"] or "", r["summary"] or "",
                                  r["url"] or "", f"alpaca-{r['news_id']}") for r in book.news(SOURCE, symbol, begin, finish)]
    return found


def _values(row: dict) -> tuple[Decimal, ...]:
    return tuple(Decimal(row[k]) for k in ("open", "high", "low", "close", "volume"))


def _daily(symbol: str, row: dict, sessions: Sessions | None) -> Bar | None:
    opens = parse_iso(row["opens_at"])
    if is_crypto(symbol):
        return Bar(opens, opens + ONE_DAY, *_values(row))
    from datetime import date

    session = sessions.session_of(date.fromisoformat(day_of(symbol, opens))) if sessions is not None else None
    return Bar(session[0], session[1], *_values(row)) if session else None


def _intraday(symbol: str, row: dict, interval: timedelta, sessions: Sessions | None) -> Bar | None:
    opens = parse_iso(row["opens_at"])
    closes = opens + interval
    if not is_crypto(symbol):
        session = sessions.containing(closes) or sessions.containing(opens + timedelta(seconds=1)) if sessions else None
        if session is None:
            return None  # before the bell or after the close
        closes = min(closes, session[1])
    return Bar(opens, closes, *_values(row))
