"""Run independent calls at once and collect results or exceptions by name."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAX_WORKERS = 32


def gather(tasks: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Call every task concurrently; each key maps to its return value or the
    Exception it raised (never re-raised here: the caller decides). Every
    call is bounded by its own timeout in the connector, so this returns."""
    if not tasks:
        return {}
    if len(tasks) == 1:
        (key, task), = tasks.items()
        return {key: _call(task)}
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(tasks)), thread_name_prefix="fetch") as pool:
        futures = {key: pool.submit(_call, task) for key, task in tasks.items()}
        return {key: future.result() for key, future in futures.items()}


def _call(task: Callable[[], Any]) -> Any:
    try:
        return task()
    except Exception as exc:  # returned, not raised: one failing source must not sink the others
        return exc
