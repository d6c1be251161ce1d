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


class _TrimmedLines:
    """stdout for a pipe: each line without the trailing spaces rich pads cells and
    grids with (a script, a mail or ``diff`` sees the text, not the padding)."""

    def __init__(self, stream):
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.stream.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(self.pending)
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


def default_console() -> Console:
    if sys.stdout.isatty():
        return _Console()
    trimmed = _TrimmedLines(sys.stdout)
    if os.environ.get("COLUMNS"):
        return _Console(file=trimmed)
    return _Console(width=PIPE_WIDTH, file=trimmed)


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


def print_table(console: Console, title: str | None, columns: Sequence[Col], rows: Sequence[dict[str, Any]]) -> None:
    table, hidden = fit_table(title, columns, rows, console.width)
    console.print(table)
    if hidden:
        say(console, f"(not shown at this width: {', '.join(hidden)}; --json has every field)", "dim")


def grid(rows: Sequence[tuple[str, RenderableType]]) -> Table:
    """Name / value lines for one record; values wrap at spaces (an id or a time is one word)."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value if isinstance(value, (Text, Table)) else Text("" if value is None else str(value)))
    return grid


PROSE_WIDTH = 80  # prose wraps here even on a wider console (or a pipe's 160): it is read, not scanned


def say(console: Console, text: str, style: str = "") -> None:
    """One line of prose, wrapped at spaces to the console's width, 80 columns at most."""
    console.print(Text(text, style=style), overflow="fold", width=min(console.width, PROSE_WIDTH))


def outcome_text(outcome: str | None) -> Text:
    return Text(outcome or "", style=OUTCOME_STYLE.get(outcome or "", ""))


def signed(value: Any) -> Text:
    """A money amount, green when positive, red when negative."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Text("" if value is None else str(value))
    return Text(str(value), style="green" if number > 0 else "red" if number < 0 else "")


def status_text(row: dict[str, Any]) -> Text:
    return Text(row.get("status") or "", style=CYCLE_STATUS_STYLE.get(row.get("status") or "", ""))


def duration(ms: int | None) -> str:
    return "-" if ms is None else f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


# What a decision was and what became of it: the first columns of `run` and `decisions`.
DECIDED_COLUMNS = [
    Col("symbol", "symbol"),
    Col("action", "action"),
    Col("conf.", "confidence", right=True),
    Col("outcome", lambda d: outcome_text(d.get("outcome"))),
]
