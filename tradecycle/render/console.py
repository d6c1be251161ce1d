"""Rich tables for people (imported only when rendering).

Every function takes an optional ``console``; tests pass one at a fixed width.
Cell text is never read as rich markup: a reasoning or a headline with
``[brackets]`` in it is data, printed as is.

Tables fit the terminal (``fit_table``): every row is one line; ids, times,
numbers and headers are never split; long text (a reasoning, a note, an error)
is cut with an ellipsis (``--json`` has it whole); when even that does not
fit, the least needed columns are left out and a line below the table names
them. Adding a column to a table is adding one ``Col`` to its list.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# Piped (cron mail, ``| less``, a file), rich assumes 80 columns; a wide line
# shows every column. COLUMNS, when set, still wins.
PIPE_WIDTH = 160

OUTCOME_STYLE = {
    "ordered": "bold green",
    "dry_run": "green",
    "rejected": "red",
    "error": "red",
    "ai_unavailable": "yellow",
    "ai_invalid": "yellow",
    "kill_switch": "bold red",
}
CYCLE_STATUS_STYLE = {"completed": "green", "skipped": "yellow", "aborted": "bold red", "running": "cyan"}


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader closed the pipe early (``tradecycle status | head -1``): what it
        read is all it wanted, so exit 0, like the JSON output (rich's own exits 1)."""
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0)


def default_console() -> Console:
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return _Console()
    return _Console(width=PIPE_WIDTH)


# -- tables that fit -----------------------------------------------------------------

COLUMN_GAP = 2  # characters between two columns (see _new_table)
TEXT_MIN_WIDTH = 20  # long text gets at least this much room, or other columns make way


@dataclass(frozen=True)
class Col:
    """One column: a human header, where its value comes from, how it behaves.

    ``value``: a row key, or a function of the row (may return rich ``Text``).
    ``text``: long free text that takes the room left and is cut with "…";
    any other column is shown whole on one line. ``hide``: 0 always shown;
    otherwise, when the terminal is too narrow, the highest is left out first.
    """

    header: str
    value: str | Callable[[dict[str, Any]], Any]
    text: bool = False
    hide: int = 0
    right: bool = False

    def cell(self, row: dict[str, Any]) -> Text:
        value = self.value(row) if callable(self.value) else row.get(self.value)
        if isinstance(value, Text):
            return value
        text = "" if value is None else str(value)
        if self.text:
            text = " ".join(text.split())  # one line: newlines in a reasoning are not a layout
        return Text(text)


@dataclass(frozen=True)
class _Placed:
    index: int
    width: int
    header: str


def _header_lines(header: str, width: int) -> str:
    """The header wrapped at spaces into lines of at most ``width`` (never inside a word)."""
    lines: list[str] = []
    for word in header.split():
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def _layout(columns: Sequence[Col], cells: list[list[Text]], width: int) -> list[_Placed]:
    """Which columns to show, how wide. Headers first stay on one line, then
    wrap at spaces; then optional columns are left out (empty ones first, then
    by ``hide``); as a last resort long text shrinks below ``TEXT_MIN_WIDTH``.
    Ids, times and numbers are never narrowed: only a terminal narrower than
    they are (about 40 columns) cuts them."""
    natural = [max((cell_len(row[i].plain) for row in cells), default=0) for i in range(len(columns))]

    def need(i: int, squeeze: bool, text_min: int) -> int:
        header = columns[i].header
        head = max(cell_len(w) for w in header.split()) if squeeze else cell_len(header)
        body = min(natural[i], text_min) if columns[i].text else natural[i]
        return max(head, body, 1)

    def total(shown: list[int], squeeze: bool, text_min: int) -> int:
        return sum(need(i, squeeze, text_min) for i in shown) + COLUMN_GAP * (len(shown) - 1)

    shown = list(range(len(columns)))
    modes = [(False, TEXT_MIN_WIDTH), (True, TEXT_MIN_WIDTH)]
    while True:
        mode = next((m for m in modes if total(shown, *m) <= width), None)
        droppable = [i for i in shown if columns[i].hide]
        if mode or not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (natural[i] == 0, columns[i].hide, i)))
    squeeze, text_min = mode or (True, 1)
    spare = max(width - total(shown, squeeze, text_min), 0)
    placed = []
    for i in shown:
        w = need(i, squeeze, text_min)
        if columns[i].text and natural[i] > w:
            grow = min(natural[i] - w, spare)
            w, spare = w + grow, spare - grow
        placed.append(_Placed(i, w, _header_lines(columns[i].header, w)))
    return placed


def _new_table(title: str | None) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),  # with the box's blank divider: COLUMN_GAP
    )


def fit_table(title: str | None, columns: Sequence[Col], rows: Sequence[dict[str, Any]], width: int) -> tuple[Table, list[str]]:
    """A table of ``rows`` no wider than ``width``, and the headers left out."""
    cells = [[column.cell(row) for column in columns] for row in rows]
    placed = _layout(columns, cells, width)
    table = _new_table(title)
    for p in placed:
        table.add_column(Text(p.header), width=p.width, no_wrap=True, overflow="ellipsis",
                         justify="right" if columns[p.index].right else "left")
    for row in cells:
        table.add_row(*(row[p.index] for p in placed))
    shown = {p.index for p in placed}
    return table, [c.header for i, c in enumerate(columns) if i not in shown]


def _print_table(console: Console, title: str | None, columns: Sequence[Col], rows: Sequence[dict[str, Any]]) -> None:
    table, hidden = fit_table(title, columns, rows, console.width)
    console.print(table)
    if hidden:
        _line(console, f"(not shown at this width: {', '.join(hidden)}; --json has every field)", "dim")


def _grid(rows: Sequence[tuple[str, RenderableType]]) -> Table:
    """Name / value lines for one record; values wrap at spaces (an id or a time is one word)."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value if isinstance(value, (Text, Table)) else Text("" if value is None else str(value)))
    return grid


def _line(console: Console, text: str, style: str = "") -> None:
    """One line of prose, wrapped at spaces to the console's width."""
    console.print(Text(text, style=style), overflow="fold")


def _outcome(outcome: str | None) -> Text:
    return Text(outcome or "", style=OUTCOME_STYLE.get(outcome or "", ""))


def _signed(value: Any) -> Text:
    """A money amount, green when positive, red when negative."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Text("" if value is None else str(value))
    return Text(str(value), style="green" if number > 0 else "red" if number < 0 else "")


def _status(row: dict[str, Any]) -> Text:
    return Text(row.get("status") or "", style=CYCLE_STATUS_STYLE.get(row.get("status") or "", ""))


def _duration(ms: int | None) -> str:
    return "-" if ms is None else f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


# -- run -------------------------------------------------------------------------


STEP_TEXT = {
    "cycle.started": "fetching account, prices and headlines",
    "market.fetched": "analysing",
    "decision": "checking risk and sending orders",
}


@contextmanager
def live_steps(console: Console | None = None):
    """A spinner naming the current step, and a line for each thing that happened."""
    console = console or default_console()
    with console.status("starting the cycle") as spinner:

        def watch(event: str, fields: dict) -> None:
            if event in STEP_TEXT:
                spinner.update(STEP_TEXT[event])
            if event == "market.fetched":
                _line(console, f"✓ fetched {fields.get('quotes')} prices ({fields.get('news_calls')} headline requests)", "green")
            elif event == "order.sent":
                _line(console, f"✓ {fields.get('side')} {fields.get('symbol')} sent: {fields.get('status')}", "green")
            elif event == "order.rejected":
                _line(console, f"✗ {fields.get('symbol')} rejected: {fields.get('message')}", "red")
            elif event == "cycle.note":
                _line(console, f"note: {fields.get('message')}", "yellow")

        yield watch


# What the analyst said of a symbol and what became of it: in `run`, `decisions` and `explain`.
DECIDED_COLUMNS = [
    Col("symbol", "symbol"),
    Col("action", "action"),
    Col("conf.", "confidence", right=True),
    Col("outcome", lambda d: _outcome(d.get("outcome"))),
]
RUN_COLUMNS = [*DECIDED_COLUMNS, Col("detail", "detail", text=True)]


def cycle_report(report, console: Console | None = None) -> None:
    """One row per symbol (action, confidence, outcome, why), then the summary
    line; a cycle that decided nothing (skipped, aborted early) is the line alone."""
    console = console or default_console()
    if report.decisions:
        _print_table(console, f"cycle {report.cycle_id}", RUN_COLUMNS, report.decisions)
    _line(console, report.summary_line())


# -- status ----------------------------------------------------------------------

LIMIT_LABELS = {
    "max_positions_count": ("open positions", ""),
    "max_position_size_percent": ("largest position, % equity", "%"),
    "max_total_exposure_percent": ("all positions, % equity", "%"),
    "daily_loss_limit_percent": ("today's loss, % prev. close", "%"),
}

# The protective exits (stop / target prices) slot in here as two more Col()s.
POSITION_COLUMNS = [
    Col("symbol", "symbol"),
    Col("qty", "qty", right=True),
    Col("avg entry", "avg_entry_price", right=True, hide=2),
    Col("price", "current_price", right=True),
    Col("value", "market_value", right=True),
    Col("unrealized P&L", lambda p: _signed(p["unrealized_pl"]), right=True),
    Col("stop (away)", lambda p: _level(p, "stop_loss", "trailing_stop"), right=True),
    Col("target (away)", lambda p: _level(p, "take_profit"), right=True, hide=1),
]


def _level(position: dict[str, Any], *kinds: str) -> str:
    """The nearest of a position's exit prices of these kinds, with its distance from the price."""
    found = [(position.get(f"{k}_price"), position.get(f"{k}_distance_percent")) for k in kinds if position.get(f"{k}_price")]
    if not found:
        return "-"
    price, away = min(found, key=lambda f: abs(f[1] or 0))
    return f"{price} ({away:+.1f}%)"

OPEN_ORDER_COLUMNS = [
    Col("symbol", "symbol"),
    Col("side", "side"),
    Col("notional", "notional_usd", right=True),
    Col("filled qty", "filled_qty", right=True, hide=2),
    Col("status", "status"),
    Col("client order id", "client_order_id"),
    Col("sent", "created_at", hide=1),
]


def _limit_row(key: str, use: dict[str, Any]) -> dict[str, Any]:
    label, unit = LIMIT_LABELS.get(key, (key, ""))
    used, limit = use.get("used"), use.get("limit")
    share = None if used is None or not limit else float(used) / float(limit) * 100
    style = "" if share is None else "bold red" if share >= 100 else "yellow" if share >= 80 else "green"
    return {
        "key": f"risk.{key}",
        "label": label,
        "used": "-" if used is None else f"{used:g}{unit}",
        "limit": f"{limit:g}{unit}",
        "share": Text("-" if share is None else f"{share:.0f}%", style=style),
    }


LIMIT_COLUMNS = [
    Col("config key", "key"),
    Col("used", "used", right=True),
    Col("limit", "limit", right=True),
    Col("use", "share", right=True),
    Col("measures", "label", text=True, hide=1),
]


def status(data: dict[str, Any], console: Console | None = None) -> None:
    """Kill switch, last cycle, account and today's P&L as name / value lines,
    then positions, open orders and the use of each risk limit as tables: one
    screen (24 lines at 80 columns) for one position."""
    console = console or default_console()
    if not data.get("database_exists", True):
        _line(console, f"no database yet at {data['database']} (nothing has run with this config)", "yellow")
    rows: list[tuple[str, RenderableType]] = [("kill switch", _kill_switch(data["kill_switch"]))]
    last = data.get("last_cycle")
    rows += _last_cycle(last) if last else [("last cycle", Text("none yet (try `tradecycle run --dry-run`)"))]
    account = data.get("account")
    rows += _account(account) if account else [("account", Text("not synced yet (no cycle has reached the broker)"))]
    console.print(_grid(rows))
    if outage := data.get("outage"):
        _line(console, f"outage: {outage['cycles']} cycle(s) aborted since {outage['since']} ({outage['minutes']} min), "
                       f"each retried the next minute; last: {outage['error']}", "yellow")
    positions = data.get("positions") or []
    console.print()
    if positions:
        _print_table(console, "positions", POSITION_COLUMNS, positions)
    else:
        _line(console, "positions: none open")
    if orders := data.get("open_orders") or []:
        console.print()
        _print_table(console, "open orders (they count against the limits until they fill)", OPEN_ORDER_COLUMNS, orders)
    console.print()
    _print_table(console, "risk limits", LIMIT_COLUMNS, [_limit_row(k, v) for k, v in (data.get("limits") or {}).items()])


def _kill_switch(switch: dict[str, Any]) -> Text:
    since = f" (since {switch['changed_at']})" if switch.get("changed_at") else ""
    if switch["active"]:
        return Text(f"ON: no order will be sent. {switch.get('reason') or 'no reason given'}{since}", style="bold red")
    return Text(f"off: cycles trade normally{since}", style="green")


def _switch_state(change: dict[str, Any]) -> Text:
    if not change["active"]:
        return Text("off", style="green")
    return Text("ON, flatten" if change["flatten"] else "ON", style="bold red")


KILL_SWITCH_CHANGE_COLUMNS = [
    Col("when (UTC)", "changed_at"),
    Col("state", _switch_state),
    Col("by", "changed_by"),
    Col("reason", lambda c: c["reason"] or "", text=True),
    Col("cycle", lambda c: c["cycle_id"] or "", hide=1),
]


def kill_switch_changes(changes: list[dict[str, Any]], console: Console | None = None) -> None:
    """The last few changes of the kill switch, newest first (``killswitch`` with no argument)."""
    console = console or default_console()
    by_tool = any(c["cycle_id"] for c in changes)  # a person's change has no cycle: no empty column
    columns = [c for c in KILL_SWITCH_CHANGE_COLUMNS if by_tool or c.header != "cycle"]
    _print_table(console, "last changes", columns, changes)


def _last_cycle(last: dict[str, Any]) -> list[tuple[str, RenderableType]]:
    text = Text(f"{last['cycle_id']} ")
    text.append_text(_status(last))
    if last.get("dry_run"):
        text.append(" (dry run)")
    text.append(f": {last.get('orders_count') or 0} order(s), {last.get('errors_count') or 0} error(s)"
                f"\nstarted {last['started_at']}, took {_duration(last.get('duration_ms'))}")
    rows: list[tuple[str, RenderableType]] = [("last cycle", text)]
    if last.get("error"):
        rows.append(("error", Text(last["error"], style="red")))
    return rows


def _account(account: dict[str, Any]) -> list[tuple[str, RenderableType]]:
    pnl = _signed(account["daily_pnl"])
    if account.get("daily_pnl_percent") is not None:
        pnl.append(f" ({account['daily_pnl_percent']:+.2f}%)")
    pnl.append(f" vs. previous close {account['last_equity']}")
    return [
        ("account", f"equity {account['equity']}, cash {account['cash']} ({account.get('status')})\n"
                    f"synced {account.get('synced_at')}"),
        ("today's P&L", pnl),
    ]


# -- history -----------------------------------------------------------------------

HISTORY_COLUMNS: dict[str, list[Col]] = {
    "cycles": [
        Col("cycle id", "cycle_id"),
        Col("started", "started_at", hide=3),
        Col("status", _status),
        Col("dry run", lambda c: "yes" if c.get("dry_run") else "", hide=2),
        Col("orders", "orders_count", right=True),
        Col("errors", "errors_count", right=True, hide=1),
        Col("took", lambda c: _duration(c.get("duration_ms")), right=True, hide=4),
        Col("error", "error", text=True),
    ],
    "trades": [
        Col("time", "created_at", hide=4),
        Col("cycle id", "cycle_id"),
        Col("symbol", "symbol"),
        Col("side", "side"),
        Col("notional", "notional_usd", right=True),
        Col("qty", "quantity", right=True, hide=1),
        Col("quoted", "price", right=True, hide=3),
        Col("fill price", "filled_avg_price", right=True, hide=2),
        Col("status", "status"),
        Col("broker order id", "broker_order_id", hide=5),
        Col("notes", "notes", text=True, hide=1),
    ],
    "decisions": [
        Col("time", "created_at", hide=3),
        Col("cycle id", "cycle_id"),
        *DECIDED_COLUMNS,
        Col("span", lambda d: _span(d), hide=1),
        Col("price", "price", right=True, hide=2),
        Col("reasoning", "reasoning", text=True, hide=1),
    ],
}


def _span(row: dict[str, Any]) -> str:
    """A row that stood for several cycles in a row (store/spans.py): until when, how many."""
    repeats = row.get("repeats") or 0
    return f"until {row.get('last_seen_at')} ({repeats + 1} cycles)" if repeats else ""


def _with_spans(columns: list[Col], rows: list[dict[str, Any]]) -> list[Col]:
    """The span column only when some row stood for several cycles."""
    return [c for c in columns if c.header != "span" or any(row.get("repeats") for row in rows)]


def history(kind: str, rows: list[dict[str, Any]], filters: dict[str, Any] | None = None,
            console: Console | None = None) -> None:
    """One line per row, newest first. Empty: "no trades yet", or, when
    ``filters`` (option -> value) narrowed it, "no trades match ..."."""
    console = console or default_console()
    if not rows:
        used = " ".join(f"{option} {value}" for option, value in (filters or {}).items() if value)
        _line(console, f"no {kind} match {used}" if used else f"no {kind} yet")
        return
    _print_table(console, kind, _with_spans(HISTORY_COLUMNS[kind], rows), rows)


# -- explain ---------------------------------------------------------------------

QUOTE_COLUMNS = [
    Col("symbol", "symbol"),
    Col("price", "price", right=True),
    Col("as of", "as_of"),
    Col("source", "source"),
    Col("day change %", "change_percent", right=True),
    Col("span", lambda q: _span(q), hide=1),
]
DECISION_COLUMNS = [
    *DECIDED_COLUMNS,
    Col("price", "price", right=True),
    Col("age", lambda d: "-" if d.get("quote_age_seconds") is None else f"{d['quote_age_seconds']:.0f}s", right=True),
    Col("source", "quote_source"),
    Col("span", lambda d: _span(d), hide=1),
]
HEADLINE_COLUMNS = [Col("symbol", "symbol"), Col("headline", "title", text=True)]
CHALLENGER_COLUMNS = [
    Col("symbol", "symbol"),
    Col("analyst", "analyst"),
    Col("role", "role", hide=2),
    Col("action", "action"),
    Col("conf.", "confidence", right=True),
    Col("outcome", lambda d: _outcome(d.get("outcome"))),
    Col("reasoning", "reasoning", text=True, hide=1),
]


def explain(story: dict[str, Any], console: Console | None = None) -> None:
    """What one cycle saw (prices, headlines), decided (per symbol: the
    outcome, the risk verdict and the analyst's reasoning, whole) and did (orders)."""
    console = console or default_console()
    cycle = story["cycle"]
    header = Text(f"cycle {cycle['cycle_id']}: ", style="bold")
    header.append_text(_status(cycle))
    if cycle["dry_run"]:
        header.append(" (dry run)")
    console.print(header)
    _line(console, f"started {cycle['started_at']}, finished {cycle['finished_at'] or '?'} ({_duration(cycle.get('duration_ms'))})")
    if cycle.get("error"):
        _line(console, f"error: {cycle['error']}", "red")
    if story["quotes"]:
        console.print()
        _print_table(console, "prices seen", _with_spans(QUOTE_COLUMNS, story["quotes"]), story["quotes"])
    console.print()
    if story["decisions"]:
        _print_table(console, "decisions", _with_spans(DECISION_COLUMNS, story["decisions"]), story["decisions"])
        console.print()
        console.print(Text("why", style="bold"))
        console.print(_grid([(d["symbol"], _why(d)) for d in story["decisions"]]))
    else:
        _line(console, "no decisions recorded in this cycle")
    if story.get("challengers"):
        console.print()
        _print_table(console, "shadow and replayed analysts (recorded, never traded)", CHALLENGER_COLUMNS, story["challengers"])
    _market_context(story["decisions"], console)
    headlines = [{"symbol": d["symbol"], "title": h.get("title")}
                 for d in story["decisions"] for h in ((d.get("inputs") or {}).get("headlines") or [])]
    if headlines:
        console.print()
        _print_table(console, "headlines the analyst saw", HEADLINE_COLUMNS, headlines)
    if story["trades"]:
        console.print()
        console.print(Text("orders", style="bold"))
        for t in story["trades"]:
            console.print(_order(t))
    for note in (cycle.get("summary") or {}).get("notes") or []:
        _line(console, f"note: {note}", "yellow")


def _indicator(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: "-" if (row.get("indicators") or {}).get(key) is None else row["indicators"][key]


INDICATOR_COLUMNS = [
    Col("symbol", "symbol"),
    Col("RSI 14", _indicator("rsi_14"), right=True),
    Col("SMA 20", _indicator("sma_20"), right=True),
    Col("SMA 50", _indicator("sma_50"), right=True, hide=2),
    Col("volume ratio", _indicator("volume_ratio"), right=True),
    Col("from 20d high %", _indicator("from_high_20_percent"), right=True, hide=3),
    Col("from 20d low %", _indicator("from_low_20_percent"), right=True, hide=3),
    Col("ATR 14", _indicator("atr_14"), right=True, hide=4),
    Col("volume today", _indicator("volume_today"), right=True, hide=5),
    Col("avg volume 20d", _indicator("avg_volume_20"), right=True, hide=5),
    Col("bars", _indicator("bars_count"), right=True, hide=6),
]


def _market_context(decisions: list[dict[str, Any]], console: Console) -> None:
    """The indicators each symbol's analyst saw, and the portfolio it was shown (once)."""
    seen = [(d["symbol"], d["inputs"]) for d in decisions if "indicators" in (d.get("inputs") or {})]
    if not seen:
        return
    known = [{"symbol": symbol, "indicators": inputs["indicators"]} for symbol, inputs in seen if inputs.get("indicators")]
    console.print()
    if known:
        _print_table(console, "indicators the analyst saw (daily bars, TA-Lib)", INDICATOR_COLUMNS, known)
    for symbol, inputs in seen:
        if inputs.get("indicators") is None:
            _line(console, f"{symbol}: indicators unavailable: {inputs.get('indicators_unavailable') or 'no daily bars'}", "yellow")
    portfolio = next((inputs["portfolio"] for _, inputs in seen if inputs.get("portfolio")), None)
    if portfolio:
        _line(console, f"portfolio the analyst saw: equity {portfolio['equity']} USD, cash {portfolio['cash']} USD, exposure "
                       f"{portfolio['exposure_usd']} USD ({portfolio['exposure_percent']}%, room {portfolio['exposure_room_usd']} USD), "
                       f"{portfolio['positions_count']} positions (room {portfolio['positions_room']})")


def _why(decision: dict[str, Any]) -> Text:
    """The risk verdict, then the analyst's reasoning, whole (wrapped, not cut)."""
    text = Text(f"{decision['action']} -> ")
    text.append_text(_outcome(decision["outcome"]))
    if decision.get("detail"):
        text.append(f": {decision['detail']}")
    if decision.get("reasoning"):
        text.append("\n" + " ".join(str(decision["reasoning"]).split()), style="italic")
    return text


def _order(trade: dict[str, Any]) -> Table:
    fill = f", filled at {trade['filled_avg_price']} ({trade['executed_at'] or '?'})" if trade.get("filled_avg_price") else ""
    rows: list[tuple[str, RenderableType]] = [
        (f"{trade['symbol']} {trade['side']}",
         f"{trade['status']}: notional {trade['notional_usd'] or '-'}, qty {trade['quantity']}, quoted {trade['price']}{fill}"),
        ("", f"client order id {trade['client_order_id']}"),
        ("", f"broker order id {trade['broker_order_id'] or '-'}"),
    ]
    if trade.get("notes"):
        rows.append(("", f"notes: {trade['notes']}"))
    return _grid(rows)


# -- check -----------------------------------------------------------------------

SERVICE_COLUMNS = [
    Col("service", "service"),
    Col("provider", "provider"),
    Col("result", lambda s: Text("OK", style="green") if s["ok"] else Text("FAILED", style="bold red")),
    Col("time", lambda s: "-" if s["elapsed_ms"] is None else f"{s['elapsed_ms']} ms", right=True),
    Col("detail", "detail", text=True),
]


def check(result: dict[str, Any], console: Console | None = None) -> None:
    """The config verdict, which variables are set (names only) and, after
    ``--online``, what each service answered."""
    console = console or default_console()
    _line(console, f"config {result['config']}: valid")
    _line(console, "providers: " + ", ".join(f"{k}={v}" for k, v in result["providers"].items()))
    if result.get("offline"):
        _line(console, "no keys needed: every provider runs offline", "green")
    else:
        for name, is_set in result["environment"].items():
            need = " (required)" if name in result["required"] else ""
            _line(console, f"  {name}: {'set' if is_set else 'not set'}{need}")
    if services := result.get("services"):
        _print_table(console, "services", SERVICE_COLUMNS, services)


# -- score and replay ------------------------------------------------------------

HORIZON_LABELS = {"15m": "15 min", "1h": "1 h", "1d": "1 day"}


def _rate(cell: dict[str, Any]) -> str:
    """``57% of 21``, or ``n too small`` when fewer decisions than the minimum count."""
    if not cell["n"]:
        return "-"
    return "n too small" if cell["rate"] is None else f"{cell['rate'] * 100:.0f}% of {cell['n']}"


def _count(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row["stats"]["decisions"].get(key, 0)


def _hit(horizon: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: _rate(row["stats"]["hit_rate"][horizon])


def _analyst_columns(horizons: Sequence[str]) -> list[Col]:
    return [
        Col("symbol", "symbol"),
        Col("buy", _count("buy"), right=True),
        Col("sell", _count("sell"), right=True),
        Col("hold", _count("hold"), right=True),
        Col("failed", _count("failed"), right=True, hide=1),
        *(Col(f"hit {HORIZON_LABELS.get(h, h)}", _hit(h), right=True) for h in horizons),
    ]


AGREEMENT_COLUMNS = [
    Col("analyst", "analyst"),
    Col("role", "role"),
    Col("same action as main", lambda a: _rate(a), right=True),
]
TOKEN_COLUMNS = [
    Col("day (UTC)", "day"),
    Col("analyst", "analyst"),
    Col("role", "role", hide=1),
    Col("requests", "requests", right=True),
    Col("prompt tokens", "prompt_tokens", right=True),
    Col("completion tokens", "completion_tokens", right=True),
]
PNL_COLUMNS = [
    Col("symbol", "symbol"),
    Col("realized", lambda p: _signed(p["realized_usd"]), right=True),
    Col("fees", "fees_usd", right=True),
    Col("unrealized", lambda p: _signed(p["unrealized_usd"]), right=True),
]


def _analyst_blocks(card: dict[str, Any], console: Console) -> None:
    """Per analyst: a table of its symbols (decisions by action, hit rates), then its calibration line."""
    for entry in card["analysts"]:
        rows = [{"symbol": symbol, "stats": stats} for symbol, stats in entry["symbols"].items()]
        console.print()
        _print_table(console, f"{entry['analyst']} ({entry['role']})", _analyst_columns(card["horizons"]), rows)
        overall = entry["symbols"]["all"]
        brier = overall["brier"]
        score = "-" if not brier["n"] else "n too small" if brier["score"] is None else f"{brier['score']:.4f}"
        bands = ", ".join(f"{b['band']}: {_rate(b)}" for b in overall["bands"] if b["n"])
        horizon = HORIZON_LABELS.get(card["calibration_horizon"], card["calibration_horizon"])
        _line(console, f"calibration at {horizon}: Brier {score} (n={brier['n']}; 0 is perfect, 0.25 a coin flip)"
                       + (f"; hit rate by confidence: {bands}" if bands else ""))


def score(card: dict[str, Any], console: Console | None = None) -> None:
    """The scorecard: each analyst's decisions and hit rates, agreement with the main
    analyst, tokens per day, P&L and performance against buy-and-hold."""
    console = console or default_console()
    filters = card.get("filters") or {}
    used = ", ".join(f"{k} {v}" for k, v in filters.items() if v)
    _line(console, f"scorecard ({used or 'all decisions'}); a rate needs {card['min_count']} decisions, "
                   "else 'n too small'", "bold")
    if not card["analysts"]:
        _line(console, "no analysed decisions " + ("match" if used else "yet"))
    _analyst_blocks(card, console)
    if card["agreement"]:
        console.print()
        _print_table(console, "agreement with the main analyst (same symbol, same cycle)", AGREEMENT_COLUMNS, card["agreement"])
    if card["tokens_per_day"]:
        console.print()
        _print_table(console, "tokens per day", TOKEN_COLUMNS, card["tokens_per_day"])
    pnl, perf = card["pnl"], card["performance"]
    console.print()
    realized = _signed(pnl["realized_usd"])
    realized.append(f" (after {pnl['fees_usd']} fees; first in, first out)")

    def pct(value: str | None) -> Text:
        return Text("-") if value is None else _signed(value).append("%")

    benchmark = pct(perf["benchmark_return_percent"])
    if perf["benchmark_symbols"]:
        benchmark.append(f" (equal weights in {', '.join(perf['benchmark_symbols'])}, held from the first cycle)")
    equity = (f"{perf['start_equity']} -> {perf['end_equity']} over {perf['cycles']} cycles" if perf["cycles"]
              else "no cycle has recorded its equity yet")
    console.print(_grid([
        ("realized P&L", realized),
        ("unrealized P&L", _signed(pnl["unrealized_usd"])),
        ("equity", equity),
        ("strategy return", pct(perf["strategy_return_percent"])),
        ("buy and hold", benchmark),
        ("vs buy and hold", pct(perf["vs_benchmark_percent"])),
        ("max drawdown", Text("-" if perf["max_drawdown_percent"] is None else f"{perf['max_drawdown_percent']}%")),
    ]))
    if pnl["by_symbol"]:
        console.print()
        _print_table(console, "P&L by symbol (USD)", PNL_COLUMNS, pnl["by_symbol"])


def _said(decision: dict[str, Any]) -> Text:
    if decision["outcome"] in ("ai_unavailable", "ai_invalid"):
        return _outcome(decision["outcome"])
    confidence = "-" if decision["confidence"] is None else f"{decision['confidence']:.2f}"
    return Text(f"{decision['action']} {confidence}")


REPLAY_COLUMNS = [
    Col("cycle id", "cycle_id"),
    Col("symbol", "symbol"),
    Col("recorded", lambda p: _said(p["recorded"])),
    Col("replayed", lambda p: _said(p["replayed"])),
    Col("same", lambda p: "yes" if p["agree"] else "no"),
    Col("replayed reasoning", lambda p: p["replayed"]["reasoning"], text=True, hide=1),
]
WHY_LIMIT = 10  # a window's replay lists more pairs than anyone reads whole


def replay(result: dict[str, Any], console: Console | None = None) -> None:
    """Both decisions side by side; for a few, both reasonings whole; for a window, the scores."""
    console = console or default_console()
    pairs = result["replayed"]
    same = sum(1 for p in pairs if p["agree"])
    _line(console, f"replayed {len(pairs)} recorded request(s) on {result['model']} at {result['base_url']}: "
                   f"{same} of {len(pairs)} with the same action", "bold")
    _print_table(console, None, REPLAY_COLUMNS, pairs)
    if len(pairs) <= WHY_LIMIT:
        console.print()
        for p in pairs:
            console.print(Text(f"{p['symbol']} in {p['cycle_id']}", style="bold"))
            console.print(_grid([
                (f"recorded ({p['recorded']['analyst']})", " ".join(str(p["recorded"]["reasoning"] or "").split())),
                (f"replayed ({p['replayed']['analyst']})", " ".join(str(p["replayed"]["reasoning"] or "").split())),
            ]))
    if result.get("score"):
        _analyst_blocks(result["score"], console)
        if result["score"]["agreement"]:
            console.print()
            _print_table(console, "agreement with the main analyst", AGREEMENT_COLUMNS, result["score"]["agreement"])
