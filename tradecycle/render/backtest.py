"""What ``tradecycle backtest`` shows: the plan before the first cycle, its
progress (a rich bar with an ETA on a terminal, a line every few hundred
cycles otherwise, both on stderr so that ``--json`` stays clean), and the
closing line. Plain text lines are built by functions that tests call."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

LOG_EVERY = 250  # cycles between two progress lines when stderr is not a terminal


def plan_line(plan: dict) -> str:
    resumed = f", resuming after cycle {plan['resumed_at']}" if plan["resumed_at"] else ""
    line = (f"backtest: {plan['cycles']} cycles from {plan['from']} to {plan['to']} at {plan['interval']} over"
            f" {len(plan['symbols'])} symbols (source {plan['source']}) into {plan['out']}{resumed};"
            f" at most {plan['max_llm_calls']} LLM calls")
    return line


def contaminated_lines(plan: dict) -> list[str]:
    return [f"CONTAMINATED (--allow-contaminated): {problem}" for problem in plan["warnings"]]


def closing_line(result: dict) -> str:
    r = result["results"]
    buy_hold = "n/a" if r.get("buy_and_hold_percent") is None else f"{r['buy_and_hold_percent']:+.2f}%"
    status = {"completed": "completed", "interrupted": "interrupted", "budget": "stopped at --max-llm-calls"}.get(
        result["status"], result["status"])
    line = (f"backtest {status}: {result['cycles']}/{result['total_cycles']} cycles to {r.get('last_cycle_at', '?')}:"
            f" return {r['return_percent']:+.2f}% (buy-and-hold {buy_hold}), max drawdown {r['max_drawdown_percent']:.2f}%,"
            f" {r['trades']} trades, {r['llm_calls']} LLM calls ({r.get('llm_replies_reused', 0)} reused)")
    if r.get("kill_switch_trips"):
        line += f", kill switch tripped {r['kill_switch_trips']}x"
    if result["contaminated"]:
        line += " [CONTAMINATED]"
    return line


def next_step(result: dict) -> str:
    if result["status"] == "completed":
        return f"tradecycle report --db {result['out']} draws it; score, trades, decisions and explain read it with --db"
    return f"continue with the same command and --resume (--out {result['out']})"


def announce(plan: dict) -> None:
    print(plan_line(plan), file=sys.stderr, flush=True)
    for line in contaminated_lines(plan):
        print(line, file=sys.stderr, flush=True)


def log_lines(total: int, done: int, write=None) -> Callable[[int, datetime, Decimal], None]:
    """A line every ``LOG_EVERY`` cycles and at the last one (cron, CI, a pipe)."""
    write = write or (lambda text: print(text, file=sys.stderr, flush=True))

    def step(cycles: int, t: datetime, equity: Decimal) -> None:
        if cycles % LOG_EVERY == 0 or cycles == total:
            write(f"backtest: {cycles}/{total} cycles ({cycles * 100 // max(total, 1)}%), at {t:%Y-%m-%d %H:%M}Z,"
                  f" equity {equity:,.2f}")

    return step


class ProgressBar:
    """A rich progress bar with an ETA, on stderr."""

    def __init__(self, total: int, done: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.description}"), console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("", total=total, completed=done)
        self.progress.start()

    def __call__(self, cycles: int, t: datetime, equity: Decimal) -> None:
        self.progress.update(self.task, completed=cycles, description=f"{t:%Y-%m-%d %H:%M}Z equity {equity:,.0f}")

    def stop(self) -> None:
        self.progress.stop()
