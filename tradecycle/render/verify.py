"""What ``tradecycle verify`` shows: the chain head to keep, or where the record differs."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from tradecycle.render.console import default_console, say


def verify(result: dict[str, Any], console: Console | None = None) -> None:
    """Intact: the head (the line to keep elsewhere) and what it covers. Broken:
    the first problem (the earliest row that differs), then the next few."""
    console = console or default_console()
    rows = result["rows"]
    covers = f"{_count(rows['ai_decisions'], 'decision')} and {_count(rows['trades'], 'trade')}, {_count(result['links'], 'link')}"
    if result["checkpoint"]:
        covers += f" (from the checkpoint after link {result['checkpoint']['upto']:,}: older history was pruned)"
    head = result["head"]
    if result["problem_count"]:
        say(console, f"The record differs from its chain: {result['problems'][0]['message']}.", "bold red")
        for problem in result["problems"][1:]:
            say(console, f"  also: {problem['message']}")
        if result["problem_count"] > len(result["problems"]):
            say(console, f"  ... {result['problem_count'] - len(result['problems']):,} more (--json lists the first"
                         f" {len(result['problems'])})")
    elif head is None:
        say(console, "The chain is empty: no decision or trade has been written yet.")
    else:
        say(console, f"The chain is intact: {covers}.", "green")
    if head is not None:
        say(console, f"head {head['hash']}  (link {head['seq']:,}, {head['linked_at']})")
    if result.get("kept_head"):
        kept = result["kept_head"]
        if kept["found"]:
            say(console, f"The kept head {kept['hash']} is link {kept['seq']:,}: every write up to it is as it was.", "green")
        else:
            say(console, result["kept_head_note"], "bold red")
    if not result["problem_count"] and head is not None:
        say(console, "Keep the head line elsewhere (the daily summary alert carries it); later,"
                     " `tradecycle verify --head HASH` proves the record up to it unchanged.")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
