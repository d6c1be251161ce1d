"""Challenger analysts in shadow: asked the same messages as the main analyst,
at the same time, recorded beside it, never traded.

``ShadowedAnalyst`` is the one ``Analyst`` the cycle talks to. It asks the
main analyst on the calling thread (exactly as if it were alone) and every
shadow at once on daemon threads, all inside the same ``timeout_seconds``.
The main decisions come back unchanged but for ``Decision.shadows``: each
shadow's decision for that symbol. The cycle records those rows with
``role = "shadow"`` (``cycle_state.record_outcome``); risk and execution only
ever look at the main decision.

A shadow can never change the cycle: one that raises, times out or answers
nonsense is recorded as a held ``ai_unavailable`` / ``ai_invalid`` shadow
decision, and the main decisions are the same as without it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from tradecycle.models import AnalysisInput, Deadline, Decision
from tradecycle.infra.parallel import NotDone, gather
from tradecycle.ports import Analyst


class ShadowedAnalyst:
    """The main ``Analyst`` with shadows asked beside it (see the module docstring)."""

    def __init__(self, main: Analyst, shadows: Sequence[Analyst]):
        self.main = main
        self.shadows = tuple(shadows)
        self.model = main.model
        self.prompt_hash = getattr(main, "prompt_hash", None)

    def __repr__(self) -> str:
        return f"ShadowedAnalyst({self.main!r}, shadows={list(self.shadows)!r})"

    def analyse(self, inputs: Sequence[AnalysisInput], timeout_seconds: float) -> list[Decision]:
        if not inputs:
            return []
        deadline = Deadline(timeout_seconds)
        answers: dict[str, object] = {}
        tasks = {str(i): (lambda s=s: s.analyse(inputs, timeout_seconds)) for i, s in enumerate(self.shadows)}
        asking = threading.Thread(
            target=lambda: answers.update(gather(tasks, timeout=timeout_seconds)), daemon=True, name="tradecycle-shadows"
        )
        asking.start()
        main = self.main.analyse(inputs, timeout_seconds)
        asking.join(deadline.remaining())
        by_symbol = [self._per_symbol(shadow, answers.get(str(i)), inputs, timeout_seconds) for i, shadow in enumerate(self.shadows)]
        return [dataclasses.replace(d, shadows=tuple(found[d.symbol] for found in by_symbol if d.symbol in found)) for d in main]

    @staticmethod
    def _per_symbol(shadow: Analyst, answer: object, inputs: Sequence[AnalysisInput], timeout_seconds: float) -> dict[str, Decision]:
        """symbol -> the shadow's decision; a shadow that failed or ran out of time holds."""
        model = getattr(shadow, "model", "shadow")
        found: dict[str, Decision] = {}
        if isinstance(answer, list):
            found = {d.symbol: d for d in answer if isinstance(d, Decision)}
            reason = "the shadow returned no decision"
        elif answer is None or isinstance(answer, NotDone):
            reason = f"shadow analysis did not finish within {timeout_seconds:g}s"
        else:
            reason = f"shadow failed: {answer!r}"
        return {
            inp.symbol: found.get(inp.symbol)
            or Decision.held(inp.symbol, "ai_unavailable", reason, model, prompt_hash=getattr(shadow, "prompt_hash", None))
            for inp in inputs
        }
