"""Run independent calls at once and collect results or exceptions by name.

Workers are daemon threads: a call that never returns (a server that answers
one byte at a time, a hung socket) is abandoned at the deadline and can never
hold the process open after the cycle is done.

They are started with ``_thread.start_new_thread``, which returns at once:
``threading.Thread.start`` waits until the new thread runs, and while other
workers hold the GIL that wait lasts up to a switch interval (5 ms), so a
100-symbol cycle (some 300 workers, started one after the other) spent about
a second only handing the GIL round before its requests had all left.

A thread whose work is done waits, idle, for the next piece of work
(``_spawn``): a cycle's second fan-out (the analyst's requests after the
market data's) and the runners of ``call_within`` reuse the threads of the
first instead of starting hundreds more (each start and exit costs system
time and a turn of the GIL, on cores the services' replies are waiting for).
A thread still busy (a call that never returns) is never handed new work.
"""

from __future__ import annotations

import _thread
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    count = len(tasks)

    def worker() -> None:
        while True:
            try:
                key, task = work.get_nowait()
            except queue.Empty:
                return
            value = _call(task)
            with finished:
                results[key] = value
                if len(results) == count:  # the caller waits for all of them (or its timeout): wake it once
                    finished.notify_all()

    with _fan_out():
        for _ in range(min(max_workers, count)):
            _spawn(worker)
        ends_at = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with finished:
            while len(results) < count:
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

    _spawn(run)
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


# -- the GIL while a fan-out runs ----------------------------------------------------

# A thread that waits for the GIL wakes every switch interval (5 ms by default) to ask
# for it. While a fan-out runs, hundreds of threads wait at once (a 100-symbol cycle:
# a worker and a runner per request), and those wake-ups alone cost a third of the
# cycle's context switches (and a seventh of its CPU), on the cores the replies wait for. The
# threads here give the GIL up themselves at every read and write, long before 20 ms.
FAN_OUT_SWITCH_INTERVAL = 0.02

_fan_outs = 0
_fan_lock = _thread.allocate_lock()
_interval_before = 0.005


@contextmanager
def _fan_out() -> Iterator[None]:
    """The switch interval at ``FAN_OUT_SWITCH_INTERVAL`` (never lowered) while any fan-out runs."""
    global _fan_outs, _interval_before
    with _fan_lock:
        if _fan_outs == 0:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(max(FAN_OUT_SWITCH_INTERVAL, _interval_before))
        _fan_outs += 1
    try:
        yield
    finally:
        with _fan_lock:
            _fan_outs -= 1
            if _fan_outs == 0:
                sys.setswitchinterval(_interval_before)


# -- threads that wait for more work -------------------------------------------------

# Idle threads kept at most: a cycle's widest fan-out (a worker and a runner per request).
MAX_IDLE_THREADS = 2 * MAX_WORKERS + 16


class _Idle:
    """A thread waiting for work: ``job`` is set, then ``wake`` released."""

    __slots__ = ("wake", "job")

    def __init__(self) -> None:
        self.wake = _thread.allocate_lock()
        self.wake.acquire()
        self.job: Callable[[], None] | None = None


_idle: list[_Idle] = []
_idle_lock = _thread.allocate_lock()


def _forget_idle() -> None:
    """In a forked child the idle threads (and the fan-outs) do not exist: never hand them work."""
    global _idle_lock, _fan_lock, _fan_outs
    _idle.clear()
    _idle_lock = _thread.allocate_lock()
    _fan_lock, _fan_outs = _thread.allocate_lock(), 0


os.register_at_fork(after_in_child=_forget_idle)


def _spawn(job: Callable[[], None]) -> None:
    """Run ``job()`` (which must not raise) on a daemon thread: an idle one if any, else a new one."""
    with _idle_lock:
        slot = _idle.pop() if _idle else None
    if slot is None:
        slot = _Idle()
        slot.job = job
        _thread.start_new_thread(_serve, (slot,))  # started without waiting for it to run
    else:
        slot.job = job
        slot.wake.release()


def _serve(slot: _Idle) -> None:
    while True:
        job, slot.job = slot.job, None
        try:
            job()
        except BaseException:  # noqa: BLE001 (a job reports its own outcome; this thread must not die holding a slot)
            pass
        with _idle_lock:
            if len(_idle) >= MAX_IDLE_THREADS:
                return
            _idle.append(slot)
        slot.wake.acquire()  # until _spawn hands over the next job
