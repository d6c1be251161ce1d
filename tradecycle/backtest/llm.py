"""Language models in a backtest, honestly.

- **Training cutoff.** A model may remember the market up to its training
  cutoff (``ai.training_cutoff``, and each ``[[ai.shadow]]``'s): asked about a
  day it has seen, it can "predict" what it remembers. ``contamination`` lists
  every model that would be asked about a day on or before its cutoff (or whose
  cutoff is not set): the backtest stops before its first cycle unless
  ``--allow-contaminated``, which marks the run.
- **Replies by exact request.** ``ReplyCache.answer`` returns the stored reply of
  a request (server and body, byte for byte) or sends it once and stores it:
  running the same backtest again asks the servers nothing.
- **Budget.** ``--max-llm-calls``: the cache counts the requests really sent;
  past the budget it sends none (the symbol holds, ``ai_unavailable``), and the
  runner stops before a cycle that could go past it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tradecycle.infra.errors import ServiceError
from tradecycle.infra.times import iso


@dataclass(frozen=True)
class ModelUse:
    key: str  # the config key of its cutoff
    model: str
    cutoff: date | None


def models_asked(config) -> list[ModelUse]:
    """Every language model the configured analysts would ask (the rules analyst asks none)."""
    uses = []
    if config.ai.provider == "openai":
        uses.append(ModelUse("ai.training_cutoff", config.ai.model, config.ai.training_cutoff))
    for i, shadow in enumerate(config.ai.shadow):
        if shadow.provider == "openai":
            uses.append(ModelUse(f"ai.shadow.{i}.training_cutoff", shadow.model, shadow.training_cutoff))
    return uses


def contamination(uses: list[ModelUse], first_day: date) -> list[str]:
    """Why asking these models about days from ``first_day`` on is not honest (empty: it is)."""
    problems = []
    for use in uses:
        if use.cutoff is None:
            problems.append(f"{use.key}: not set for model {use.model}; a backtest must know up to which day the model"
                            " may remember the market (set it, or pass --allow-contaminated)")
        elif first_day <= use.cutoff:
            problems.append(f"{use.key} = {use.cutoff}: model {use.model} would be asked about {first_day}, on or before"
                            f" its training cutoff (start at {use.cutoff + timedelta(days=1)} or later, or pass --allow-contaminated)")
    return problems


class BudgetReached(ServiceError):
    """The run's ``--max-llm-calls`` are spent: this request was not sent."""


class ReplyCache:
    """Replies by exact request; thread-safe (the analyst asks from worker threads)."""

    def __init__(self, stored: dict[str, str], budget: int | None = None, spent: int = 0):
        self.stored = stored
        self.budget = budget
        self.calls = spent  # requests really sent by this run (a resumed run starts from what it had spent)
        self.hits = 0
        self.new: list[tuple[str, str, str, str, str]] = []
        self._lock = threading.Lock()

    @staticmethod
    def key(base_url: str, payload: dict[str, Any]) -> str:
        exact = json.dumps({"base_url": base_url, "payload": payload}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(exact.encode()).hexdigest()

    def answer(self, base_url: str, payload: dict[str, Any], send: Callable[[], Any]) -> Any:
        key = self.key(base_url, payload)
        with self._lock:
            if key in self.stored:
                self.hits += 1
                return json.loads(self.stored[key])
            if self.budget is not None and self.calls >= self.budget:
                raise BudgetReached("backtest", f"--max-llm-calls {self.budget} reached: not asked")
            self.calls += 1
        body = send()
        text = json.dumps(body)
        with self._lock:
            self.stored[key] = text
            self.new.append((key, base_url, str(payload.get("model", "")), text, iso(datetime.now(UTC))))
        return body

    def take_new(self) -> list[tuple[str, str, str, str, str]]:
        with self._lock:
            new, self.new = self.new, []
        return new
