"""The fan-out's threads: a call that never returns is abandoned at its limit and
never handed more work; the calls after it still run, all at once."""

from __future__ import annotations

import sys
import threading

import pytest

from tradecycle.infra.parallel import NotDone, call_within, gather


def test_a_hung_call_is_abandoned_and_never_handed_more_work():
    release = threading.Event()
    try:
        with pytest.raises(NotDone):
            call_within(0.05, release.wait)  # hangs until released: abandoned at its limit
        # Its thread is still busy: the 40 calls after it must each get a thread of their own, all
        # at once (each waits at the barrier for the other 39: one left waiting would break it).
        everyone = threading.Barrier(40, timeout=10)
        results = gather({str(i): (lambda i=i: (everyone.wait(), i)[1]) for i in range(40)})
    finally:
        release.set()
    assert results == {str(i): i for i in range(40)}


def test_threads_that_finished_take_the_next_fan_out_and_report_its_errors():
    interval = sys.getswitchinterval()
    first = gather({str(i): (lambda i=i: i * 2) for i in range(30)})
    second = gather({str(i): (lambda i=i: 1 // (i % 3)) for i in range(30)})
    assert first == {str(i): i * 2 for i in range(30)}
    assert all(isinstance(second[str(i)], ZeroDivisionError) for i in range(0, 30, 3))
    assert [second[str(i)] for i in (1, 2, 4)] == [1, 0, 1]
    assert sys.getswitchinterval() == interval  # the fan-outs' longer GIL interval ends with them


def test_a_call_within_its_limit_returns_or_raises_what_the_task_did():
    assert call_within(1.0, lambda: "done") == "done"
    with pytest.raises(ValueError, match="bad"):
        call_within(1.0, lambda: (_ for _ in ()).throw(ValueError("bad")))
