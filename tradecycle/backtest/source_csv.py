"""A folder of OHLCV files, one a symbol: what users download from their data vendor.

``market_data.csv.path`` holds ``AAPL.csv``, ``BTC-USD.csv`` (the slash of a
pair becomes a dash). Columns ``date`` or ``timestamp``, ``open``, ``high``,
``low``, ``close``, ``volume``, the header in any case; other columns are
ignored. A ``date`` (``2024-01-02``) is a daily bar: a stock's covers that
day's NYSE session, a coin's the UTC day. A ``timestamp`` (ISO 8601, UTC
unless it has an offset, or Unix seconds) is when the bar **opens**, as with
Alpaca; the file's bar length is the shortest step between rows. Intraday
files give any longer interval (bars are merged) and their days' bars; a daily
file gives ``--interval 1d`` only. Stock bars outside the sessions are left out.

Bad input stops the backtest before anything is written (exit 2), with one
line naming the file and the line: a missing column, dates not in ascending
order or repeated, a price that is not a positive number, a negative volume.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tradecycle.backtest.history import Bar, Dataset, SymbolHistory, day_of
from tradecycle.backtest.sessions import Sessions
from tradecycle.infra.errors import UsageError
from tradecycle.models import is_crypto

PRICE_COLUMNS = ("open", "high", "low", "close")
ONE_DAY = timedelta(days=1)


def file_for(folder: Path, symbol: str) -> Path:
    return folder / f"{symbol.replace('/', '-')}.csv"


def load_csv(folder: Path, symbols: list[str], interval: timedelta, start: datetime, end: datetime,
             sessions: Sessions | None) -> Dataset:
    if not folder.is_dir():
        raise UsageError(f"market_data.csv.path: folder {folder} does not exist")
    histories = {}
    for symbol in symbols:
        path = file_for(folder, symbol)
        if not path.is_file():
            raise UsageError(f"{symbol}: no file {path.name} in {folder} (market_data.csv.path)")
        rows, daily_file = read_rows(path)
        bars, daily = _bars(symbol, path, rows, daily_file, interval, sessions)
        if not any(start <= b.closes_at < end for b in bars):
            raise UsageError(f"{symbol}: {path.name} has no bar between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
        histories[symbol] = SymbolHistory(symbol, bars, daily)
    return Dataset("csv", interval, histories)


def read_rows(path: Path) -> tuple[list[tuple[int, datetime, tuple[Decimal, ...]]], bool]:
    """(line, opens_at, (open, high, low, close, volume)) of every row, checked; and whether
    the file is daily (a ``date`` column)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise UsageError(f"{path.name}: the file is empty (expected a header: date,open,high,low,close,volume)")
        names = [h.strip().lower() for h in header]
        time_column = "date" if "date" in names else "timestamp" if "timestamp" in names else None
        missing = [c for c in (time_column or "date", *PRICE_COLUMNS, "volume") if c not in names]
        if missing:
            raise UsageError(f"{path.name}: no {missing[0]!r} column (the header has: {', '.join(names)})")
        at = {c: names.index(c) for c in (time_column, *PRICE_COLUMNS, "volume")}
        rows, previous = [], None
        for line, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue
            where = f"{path.name} line {line}"
            moment = _moment(_cell(record, at[time_column], where, time_column), where, time_column)
            if previous is not None and moment <= previous:
                order = "repeats" if moment == previous else "comes before"
                raise UsageError(f"{where}: {time_column} {_cell(record, at[time_column], where, time_column)} {order}"
                                 " the row above (rows must be in ascending order, each once)")
            values = tuple(_number(_cell(record, at[c], where, c), where, c) for c in (*PRICE_COLUMNS, "volume"))
            if values[1] < values[2]:
                raise UsageError(f"{where}: high {values[1]} is below low {values[2]}")
            rows.append((line, moment, values))
            previous = moment
    return rows, time_column == "date"


def _cell(record: list[str], index: int, where: str, column: str) -> str:
    if index >= len(record) or not record[index].strip():
        raise UsageError(f"{where}: {column} is empty")
    return record[index].strip()


def _moment(text: str, where: str, column: str) -> datetime:
    try:
        if column == "date" and len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        if text.replace(".", "", 1).isdigit():
            seconds = float(text)
            return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise UsageError(f"{where}: {column} {text!r} is not a date (2024-01-02) or time (2024-01-02T14:30:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _number(text: str, where: str, column: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"{where}: {column} {text!r} is not a number") from None
    if not value.is_finite():
        raise UsageError(f"{where}: {column} is {text} (not a number)")
    if column == "volume" and value < 0:
        raise UsageError(f"{where}: volume {text} is negative")
    if column != "volume" and value <= 0:
        raise UsageError(f"{where}: {column} {text} is not a positive price")
    return value


def _bars(symbol: str, path: Path, rows, daily_file: bool, interval: timedelta, sessions: Sessions | None):
    """(bars at ``interval``, daily bars) from the file's rows."""
    if not rows:
        raise UsageError(f"{symbol}: {path.name} has no rows")
    steps = [b[1] - a[1] for a, b in zip(rows, rows[1:])]
    native = ONE_DAY if daily_file else min(steps, default=ONE_DAY)
    if daily_file or native >= ONE_DAY:
        daily = [b for b in (_daily_bar(symbol, moment, values, sessions) for _, moment, values in rows) if b]
        if interval < ONE_DAY:
            raise UsageError(f"{symbol}: {path.name} has daily bars; --interval 1d is the only one it can give")
        return daily, daily
    if interval < native or interval % native:
        raise UsageError(f"{symbol}: {path.name} has bars of {_length(native)}; --interval must be a multiple of it")
    raw = [Bar(m, m + native, *v) for _, m, v in rows]
    if not is_crypto(symbol):
        raw = [b for b in raw if sessions is not None and sessions.overlaps(b.opens_at, b.closes_at)]
        raw = [_clip(b, sessions) for b in raw]
    return merge(symbol, raw, interval, sessions), merge(symbol, raw, ONE_DAY, sessions)


def _daily_bar(symbol: str, moment: datetime, values, sessions: Sessions | None) -> Bar | None:
    if is_crypto(symbol):
        start = datetime.combine(moment.date(), time(), UTC)
        return Bar(start, start + ONE_DAY, *values)
    session = sessions.session_of(moment.date()) if sessions is not None else None
    return Bar(session[0], session[1], *values) if session else None  # not a session day: no trading, no bar


def _clip(bar: Bar, sessions: Sessions) -> Bar:
    session = sessions.containing(bar.closes_at) or sessions.containing(bar.opens_at + timedelta(seconds=1))
    return Bar(bar.opens_at, min(bar.closes_at, session[1]), *_ohlcv(bar)) if session else bar


def merge(symbol: str, bars: list[Bar], interval: timedelta, sessions: Sessions | None) -> list[Bar]:
    """Bars merged into ``interval`` buckets: a day (its session, for a stock) or a step of
    the interval from the day's start (its opening bell, for a stock)."""
    buckets: dict[tuple[str, int], list[Bar]] = {}
    for bar in bars:
        day = day_of(symbol, bar.opens_at)
        begin = _day_start(symbol, day, sessions)
        index = 0 if interval >= ONE_DAY else int((bar.opens_at - begin) // interval)
        buckets.setdefault((day, index), []).append(bar)
    merged = []
    for (day, index), group in sorted(buckets.items()):
        begin = _day_start(symbol, day, sessions)
        session = None if is_crypto(symbol) or sessions is None else sessions.session_of(date.fromisoformat(day))
        if interval >= ONE_DAY:
            opens, closes = begin, session[1] if session else begin + ONE_DAY
        else:
            opens = begin + interval * index
            closes = min(opens + interval, session[1]) if session else opens + interval
        merged.append(Bar(opens, closes, group[0].open, max(b.high for b in group), min(b.low for b in group),
                          group[-1].close, sum((b.volume for b in group), Decimal(0))))
    return merged


def _day_start(symbol: str, day: str, sessions: Sessions | None) -> datetime:
    if not is_crypto(symbol) and sessions is not None:
        session = sessions.session_of(date.fromisoformat(day))
        if session:
            return session[0]
    return datetime.combine(date.fromisoformat(day), time(), UTC)


def _ohlcv(bar: Bar) -> tuple:
    return bar.open, bar.high, bar.low, bar.close, bar.volume


def _length(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


