"""What every command of ``cli.py`` shares: our errors turned into one line and
an exit code (a traceback only when asked), plain lines wrapped at 80
columns, JSON for scripts, and each command's module and view imported only
when it runs."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import typer

from tradecycle.infra.errors import ConfigError, ExitCode, TradecycleError
from tradecycle.infra.paths import CONFIG_ENV


def debug(flag: bool) -> bool:
    return flag or os.environ.get("TRADECYCLE_DEBUG", "") not in ("", "0")


def error(message: str) -> None:
    print(f"tradecycle: {message}", file=sys.stderr)


def config_origin(config: str | None) -> str:
    """Where the config path came from, when a user could not guess it: the
    environment (``TRADECYCLE_CONFIG``), set in some profile and forgotten."""
    from_env = os.environ.get(CONFIG_ENV)
    if config or not from_env:
        return ""
    return f" (config {from_env}: the path came from ${CONFIG_ENV})"


@contextmanager
def guard(show_traceback: bool, prefix: str = "", exit_code: ExitCode | None = None, config: str | None = None,
           as_json: bool = False):
    """Turn our errors into one line and an exit code (``exit_code`` for all of
    them, if given); a bug into exit 1. A config error says where the config's
    path came from when it was not ``--config``. ``as_json``: the error is also
    a JSON object on stdout (``{"error", "exit_code"}``), for the script that asked for JSON."""
    try:
        yield
    except typer.Exit:
        raise
    except TradecycleError as exc:
        if debug(show_traceback):
            traceback.print_exc()
        origin = config_origin(config) if isinstance(exc, ConfigError) else ""
        code = int(exit_code or exc.exit_code)
        error(f"{prefix}{exc}{origin}")
        if as_json:
            print_json({"error": f"{prefix}{exc}{origin}", "exit_code": code})
        raise typer.Exit(code) from None
    except Exception as exc:
        if debug(show_traceback):
            traceback.print_exc()
        message = f"{prefix}unexpected error: {exc!r}"
        error(f"{message} (run with --traceback for details)")
        if as_json:
            print_json({"error": message, "exit_code": int(ExitCode.ABORTED)})
        raise typer.Exit(int(ExitCode.ABORTED)) from None


def say(text: str) -> None:
    """A line of plain output, wrapped at 80 columns (a word or path longer than that stays whole)."""
    import textwrap

    print(textwrap.fill(text, 80, break_long_words=False, break_on_hyphens=False))


def note(text: str) -> None:
    """What a person should know besides, on stderr, wrapped at 80 columns."""
    import textwrap

    print(textwrap.fill(f"tradecycle: note: {text}", 80, break_long_words=False, break_on_hyphens=False), file=sys.stderr)


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_json(data: Any) -> None:
    try:
        print(json.dumps(data, indent=2, default=str), flush=True)
    except BrokenPipeError:
        # The reader closed the pipe early (`tradecycle cycles --json | head`): what it read
        # is all it wanted, not an error (click would exit 1). Quiet the exit flush too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def command_module(name: str):
    """``tradecycle.commands.<name>``, imported when its command runs (never at start-up)."""
    import importlib

    return importlib.import_module(f"tradecycle.commands.{name}")


def show(data: Any, as_json: bool, view: str, draw: Callable[[Any], None]) -> None:
    """JSON for scripts, or rich tables drawn by ``draw(tradecycle.render.<view>)`` (rich loads only then)."""
    if as_json:
        print_json(data)
    else:
        import importlib

        draw(importlib.import_module(f"tradecycle.render.{view}"))
