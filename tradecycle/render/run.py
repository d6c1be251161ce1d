"""What ``tradecycle run`` shows: the live steps on a terminal and the cycle's report."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from tradecycle.render.console import (
    DECIDED_COLUMNS,
    Col,
    default_console,
    print_table,
    say,
)


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
                say(console, f"✓ fetched {fields.get('quotes')} prices ({fields.get('news_calls')} headline requests)", "green")
            elif event == "order.sent":
                say(console, f"✓ {fields.get('side')} {fields.get('symbol')} sent: {fields.get('status')}", "green")
            elif event == "order.rejected":
                say(console, f"✗ {fields.get('symbol')} rejected: {fields.get('message')}", "red")
            elif event == "cycle.note":
                say(console, f"note: {fields.get('message')}", "yellow")

        yield watch


# What the analyst said of a symbol and what became of it: in `run`, `decisions` and `explain`.
RUN_COLUMNS = [*DECIDED_COLUMNS, Col("detail", "detail", text=True)]


def cycle_report(report, console: Console | None = None) -> None:
    """One row per symbol (action, confidence, outcome, why), then the summary
    line; a cycle that decided nothing (skipped, aborted early) is the line alone."""
    console = console or default_console()
    if report.decisions:
        print_table(console, f"cycle {report.cycle_id}", RUN_COLUMNS, report.decisions)
    say(console, report.summary_line())
