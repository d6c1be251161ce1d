"""What ``tradecycle check`` shows: the config, the environment, each service reached."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text
from tradecycle.render.console import (
    Col,
    default_console,
    print_table,
    say,
)


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
    say(console, f"config {result['config']}: valid")
    say(console, "providers: " + ", ".join(f"{k}={v}" for k, v in result["providers"].items()))
    if result.get("offline"):
        say(console, "no keys needed: every provider runs offline", "green")
    else:
        needed = result.get("needed_by") or {}
        if needed:
            reasons: dict[str, list[str]] = {}
            for name, why in needed.items():
                reasons.setdefault(why, []).append(name)
            say(console, "this config needs: " + "; ".join(f"{', '.join(names)} (for {why})" for why, names in reasons.items()))
        else:
            say(console, "this config needs no environment variable (the others are optional)")
        for name, is_set in result["environment"].items():
            need = " (required)" if name in result["required"] else ""
            say(console, f"  {name}: {'set' if is_set else 'not set'}{need}")
    if services := result.get("services"):
        print_table(console, "services", SERVICE_COLUMNS, services)
