"""Run independent calls at once and collect results or exceptions by name.

Workers are daemon threads: a call that never returns (a server that answers
one byte at a time, a hung socket) is abandoned at the deadline and can never
hold the process open after the cycle is done.

They are started with ``_thread.start_new_thread``, which returns at once:
``threading.Thread.start`` waits until the new thread runs, and while other
workers hold the GIL that wait lasts up to a switch interval (5 ms), so a
100-symbol cycle (some 300 workers, started one after the other) spent about
a second only handing the GIL round before its requests had all left.
"""

from __future__ import annotations

import _thread
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

# Requests in flight at once, per step and per service. Threads (and pooled
# connections) are made only as needed, so the pools grow with the universe up
# to this cap: 100 symbols cost one round trip, not seven waves of 16.
MAX_WORKERS = 128


class NotDone(TimeoutError):
    """The task had not finished when the time ran out (its thread is abandoned)."""


def gather(tasks: dict[str, Callable[[], Any]], *, timeout: float | None = None, max_workers: int = MAX_WORKERS) -> dict[str, Any]:
    """Call every task concurrently, at most ``max_workers`` at a time. Each key
    maps to the task's return value, the Exception it raised (never re-raised
    here: the caller decides), or ``NotDone`` if it was still running after
    ``timeout`` seconds."""
    if not tasks:
        return {}
    if len(tasks) == 1 and timeout is None:
        ((key, task),) = tasks.items()
        return {key: _call(task)}
    work: queue.SimpleQueue = queue.SimpleQueue()
    for item in tasks.items():
        work.put(item)
    results: dict[str, Any] = {}
    finished = threading.Condition()

    def worker() -> None:
        while True:
            try:
                key, task = work.get_nowait()
            except queue.Empty:
                return
            value = _call(task)
            with finished:
                results[key] = value
                finished.notify_all()

    for _ in range(min(max_workers, len(tasks))):
        _thread.start_new_thread(worker, ())  # a daemon thread, started without waiting for it to run
    ends_at = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    with finished:
        while len(results) < len(tasks):
            left = None if ends_at is None else ends_at - time.monotonic()
            if left is not None and left <= 0:
                break
            finished.wait(left)
        done = dict(results)
    return {key: done[key] if key in done else NotDone(f"not finished within {timeout:g}s") for key in tasks}


def call_within(seconds: float, task: Callable[[], Any]) -> Any:
    """``task()``, or ``NotDone`` raised if it has not returned after ``seconds``.

    Every HTTP request goes through here (its hard time limit), so it is kept
    lean: one daemon thread and one lock, no queue."""
    finished = _thread.allocate_lock()
    finished.acquire()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(_call(task))
        finally:
            finished.release()

    _thread.start_new_thread(run, ())
    if not finished.acquire(timeout=min(max(seconds, 0.0), threading.TIMEOUT_MAX)):
        raise NotDone(f"not finished within {seconds:g}s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _call(task: Callable[[], Any]) -> Any:
    try:
        return task()
    except Exception as exc:  # returned, not raised: one failing source must not sink the others
        return exc
