"""Tables that fit a terminal: what `cycles`, `trades`, `decisions`, `status`
and `explain` print at 80 and 120 columns, on a real database made by real
`run` invocations of the shipped offline config.

What a user needs: every line fits (nothing wraps in the terminal), a cycle id
is whole on one line (it is copied into `explain`), a header is never split
inside a word, long text is cut with an ellipsis while `--json` keeps it whole,
and `status` for one position fits one 24-line screen."""

from __future__ import annotations

import io
import re

import pytest
from rich.cells import cell_len
from rich.console import Console

from tradecycle.commands import history as history_cmd
from tradecycle.commands import status as status_cmd
from tradecycle.render import history as history_view
from tradecycle.render import status as status_view
from tradecycle.render.console import Col, fit_table

from .test_cli_commands import as_json, invoke, run_cycles, sim_config

WIDTHS = [80, 120]
SCREEN_LINES = 24


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """Three simulator cycles: the first buys AAPL (one position), all five symbols decided each time."""
    config = sim_config(tmp_path_factory.mktemp("tables"))
    run_cycles(config, 3)
    return config


def shown(command: str, config, width: int, *args: str) -> str:
    result = invoke(command, *args, "--config", config, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def rendered(width: int, draw) -> str:
    """What ``draw(console)`` shows on a terminal ``width`` columns wide."""
    console = Console(width=width, record=True, file=io.StringIO())
    draw(console)
    return console.export_text()


def assert_fits(out: str, width: int) -> list[str]:
    lines = out.splitlines()
    too_wide = [line for line in lines if cell_len(line.rstrip()) > width]
    assert not too_wide, too_wide
    return lines


def header_tokens(lines: list[str], title: str) -> list[str]:
    """The words in a table's header: the lines between its title and its rule."""
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rule = next(i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("─"))
    return [token for line in lines[start + 1:rule] for token in line.split()]


def header_words(columns: list[Col]) -> set[str]:
    return {word for column in columns for word in column.header.split()}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", ["cycles", "trades", "decisions"])
def test_history_fits_with_whole_ids_and_headers(database, kind, width):
    rows = as_json(invoke(kind, "--json", "--config", database))
    lines = assert_fits(shown(kind, database, width), width)
    for row in rows:
        assert row["cycle_id"] in "\n".join(lines)
    # One line a row, each starting with the row's whole cycle id (or its time, when there is room for it).
    body = [line for line in lines if re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ-[0-9a-f]{4}\b", line)]
    assert len(body) == len(rows)
    # A header split mid-word would leave pieces ("confide", "nce") that are no header's word.
    assert set(header_tokens(lines, kind)) <= header_words(history_view.HISTORY_COLUMNS[kind])


def test_long_reasoning_is_cut_with_an_ellipsis_and_whole_in_json(database):
    rows = as_json(invoke("decisions", "--json", "-n", "5", "--config", database))
    lines = assert_fits(shown("decisions", database, 80, "-n", "5"), 80)
    body = [line for line in lines if line.startswith(tuple({r["cycle_id"] for r in rows}))]
    assert len(body) == 5
    for row, line in zip(rows, body):
        assert len(row["reasoning"]) > 60  # the simulator's reasoning does not fit 80 columns
        cut = line.rstrip().rsplit("  ", 1)[-1]
        assert cut.endswith("…") and row["reasoning"].startswith(cut[:-1])


def test_columns_left_out_at_80_are_named_and_shown_at_160(database):
    narrow = shown("trades", database, 80)
    assert "not shown at this width:" in narrow and "broker order id" in narrow
    wide = shown("trades", database, 160)
    broker_order_id = as_json(invoke("trades", "--json", "--config", database))[0]["broker_order_id"]
    assert broker_order_id in wide and "not shown" not in wide


@pytest.mark.parametrize("width", WIDTHS)
def test_status_for_one_position_fits_one_screen(database, width):
    data = status_cmd.status(str(database), None)
    assert len(data["positions"]) == 1
    lines = assert_fits(shown("status", database, width), width)
    assert len(lines) <= SCREEN_LINES
    out = "\n".join(lines)
    assert data["last_cycle"]["cycle_id"] in out and data["account"]["equity"] in out
    assert re.search(r"^AAPL +\d", out, re.M)
    assert set(header_tokens(lines, "positions")) <= header_words(status_view.POSITION_COLUMNS)
    assert set(header_tokens(lines, "risk limits")) <= header_words(status_view.LIMIT_COLUMNS)


@pytest.mark.parametrize("width", WIDTHS)
def test_explain_fits_and_keeps_ids_and_the_reasoning_whole(database, width):
    story = history_cmd.explain(str(database), None, as_json(invoke("cycles", "--json", "--config", database))[-1]["cycle_id"])
    long_reasoning = "Momentum is strong and broad. " * 8 + "\nVolume confirms the breakout."
    story["decisions"][0]["reasoning"] = long_reasoning
    lines = assert_fits(rendered(width, lambda console: history_view.explain(story, console=console)), width)
    out = "\n".join(lines)
    [trade] = story["trades"]
    for whole in (story["cycle"]["cycle_id"], trade["client_order_id"], trade["broker_order_id"]):
        assert whole in out
    # The reasoning is wrapped under its verdict, never cut: its words, in order, all there.
    assert " ".join(long_reasoning.split()) in " ".join(out.split())
    for title, columns in (("prices seen", history_view.QUOTE_COLUMNS), ("decisions", history_view.DECISION_COLUMNS)):
        assert set(header_tokens(lines, title)) <= header_words(columns)


@pytest.mark.parametrize(
    "width, expected_headers",
    [
        (120, ["cycle id", "started", "status", "note"]),
        (60, ["cycle id", "status", "note"]),  # "started" is optional: left out first
        (44, ["cycle id", "status", "note"]),  # the note (long text) shrinks, down to its minimum
    ],
)
def test_fit_table_leaves_out_optional_columns_before_splitting_ids(width, expected_headers):
    columns = [Col("cycle id", "cycle_id"), Col("started", "started_at", hide=1),
               Col("status", "status"), Col("note", "note", text=True)]
    rows = [{"cycle_id": "2026-12-01T22:07Z-3f2a", "started_at": "2026-12-01T22:07:12Z", "status": "completed",
             "note": "a long note that will not fit in a narrow terminal at all"}]
    table, hidden = fit_table("t", columns, rows, width)
    out = rendered(width, lambda console: console.print(table))
    assert [c.header for c in columns if c.header not in hidden] == expected_headers
    assert "2026-12-01T22:07Z-3f2a" in out and "completed" in out
    assert all(cell_len(line.rstrip()) <= width for line in out.splitlines())


def test_status_with_the_kill_switch_on_an_outage_and_an_open_order_fits_80_columns(tmp_path):
    config = sim_config(tmp_path)
    run_cycles(config, 1)
    assert invoke("killswitch", "on", "--reason", "manual review after a long weekend of odd fills", "--config", config).exit_code == 0
    data = status_cmd.status(str(config), None)
    [trade] = as_json(invoke("trades", "--json", "--config", config))
    data["open_orders"] = [{**trade, "status": "partially_filled"}]  # as if the fill were still coming
    data["outage"] = {"since": "2026-12-01T22:07:12Z", "cycles": 14, "minutes": 14, "error": "alpaca: HTTP 503 " + "x" * 80}
    lines = assert_fits(rendered(80, lambda console: status_view.status(data, console=console)), 80)
    out = "\n".join(lines)
    assert "ON: no order will be sent" in out and "long weekend" in out
    assert trade["client_order_id"] in out and data["last_cycle"]["cycle_id"] in out
    assert "outage: 14 cycle(s) aborted since 2026-12-01T22:07:12Z" in " ".join(out.split())
    title = "open orders (they count against the limits until they fill)"
    assert set(header_tokens(lines, title)) <= header_words(status_view.OPEN_ORDER_COLUMNS)
