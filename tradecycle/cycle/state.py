"""The state one cycle carries through its steps, its settings, its report,
and the rows it writes for the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tradecycle.rules import risk
from tradecycle.rules.protections import Pause, Protections
from tradecycle.ai.prompt import prompt_inputs_summary
from tradecycle.infra.errors import TradecycleError
from tradecycle.models import AnalysisInput, Decision, ExitRules, FetchResult, OrderIntent, Quote, RiskLimits, analyst_identity, is_contaminated, to_qty
from tradecycle.ports import EventLog, Services
from tradecycle.infra.times import iso

if TYPE_CHECKING:
    from tradecycle.cycle.pauses import BuyPauses
    from tradecycle.store import KillSwitch, Store


@dataclass(frozen=True)
class CycleSettings:
    stocks: tuple[str, ...]
    crypto: tuple[str, ...]
    limits: RiskLimits
    analysis_timeout_seconds: float = 30
    max_quote_age_seconds: float = 300
    news_refresh_minutes: float = 15
    dry_run: bool = False
    # An earlier hold stands without a new analysis while nothing changed (see reuse.py).
    # Off for the free offline rules analyst, which always decides afresh.
    reuse_holds: bool = False
    reanalyze_move_percent: Decimal = Decimal("0.5")
    max_decision_age_minutes: float = 15
    keep_days: int = 0  # prune history older than this; 0 keeps everything
    exits: ExitRules = ExitRules()  # protective exits the analyst cannot override (exits.py)
    protections: Protections = Protections()  # no buy back after a stop, no buying into a run of stops
    broker_held_stops: bool = False  # a sell stop at the broker for each held position (stops.py)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.stocks + self.crypto


class CycleAborted(TradecycleError):
    """The cycle cannot go on safely (broker unreachable, dead cycle unresolved)."""


@dataclass
class Outcome:
    """What became of one symbol: the row written to ``ai_decisions``."""

    symbol: str
    outcome: str
    decision: Decision | None = None
    quote: Quote | None = None
    detail: str = ""
    verdict: risk.Verdict | None = None
    reused_decision_id: int | None = None


@dataclass
class Cycle:
    """The state of one cycle as it moves through the steps."""

    services: Services
    store: "Store"
    settings: CycleSettings
    log: EventLog
    cycle_id: str
    started_at: datetime
    status: str = "running"
    error: str | None = None
    critical: bool = False  # an abort that counts towards the kill switch (see complete)
    halt_reason: str | None = None  # the kill switch tripped during this cycle
    stop_guard: Pause | None = None  # the stop-loss guard tripped during this cycle (cycle/pauses.py)
    pauses: "BuyPauses | None" = None  # made by the analysis step
    switch: "KillSwitch | None" = None  # as read at the start of the cycle
    market: FetchResult | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    inputs: dict[str, AnalysisInput] = field(default_factory=dict)  # what the analyst was shown
    open_orders: list[dict] = field(default_factory=list)  # earlier orders that may still fill
    portfolio: risk.Portfolio | None = None  # as risk saw it, open buys included
    orders_sent: int = 0
    submitted: int = 0  # orders that went to the broker, whatever it answered
    notes: list[str] = field(default_factory=list)
    exception: BaseException | None = None
    # (outcome, why) when no symbol may be bought this cycle (the broker's state is in doubt); sells go on
    buy_block: tuple[str, str] | None = None
    adopted: list[str] = field(default_factory=list)  # orders of this tool the database had lost, found this cycle
    inherited: str | None = None  # a new database met a broker account with positions or orders of ours
    stops_at_fetch: list[dict] = field(default_factory=list)  # our stops open at the broker as the fetch began
    stop_fills: set[str] = field(default_factory=set)  # stops whose fill this cycle recorded (client order ids)

    def block_buys(self, outcome: str, why: str) -> None:
        """No buy this cycle (the first reason stands); sells and protective exits go on."""
        if self.buy_block is None:
            self.buy_block = (outcome, why)
        self.note(f"no buy this cycle: {why}")

    def note(self, text: str, **fields) -> None:
        self.notes.append(text)
        self.log("cycle.note", "warning", message=text, **fields)

    def settle(self, outcome: Outcome) -> None:
        """Write one ai_decisions row as soon as its outcome is known."""
        self.outcomes[outcome.symbol] = outcome
        record_outcome(self, outcome)


@dataclass(frozen=True)
class CycleReport:
    cycle_id: str | None
    status: str  # completed | skipped | aborted | locked
    dry_run: bool
    error: str | None = None
    symbols: int = 0
    orders: int = 0
    errors: int = 0
    duration_ms: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    exception: BaseException | None = None
    decisions: tuple[dict, ...] = ()  # per symbol: action, confidence, outcome, detail
    halt_reason: str | None = None  # why this cycle turned the kill switch on
    stop_guard: Pause | None = None  # the stop-loss guard this cycle tripped: every buy paused until its ``until``
    adopted: tuple[str, ...] = ()  # orders of this tool the database had lost, adopted by this cycle
    inherited: str | None = None  # this cycle's new database met broker state from before it

    def summary_line(self) -> str:
        if self.status == "locked":
            return "another cycle is running (lock taken): nothing done"
        what = f"cycle {self.cycle_id} {self.status}"
        if self.status == "skipped":
            closing = f"; {self.orders} closing order{'s' if self.orders != 1 else ''} sent" if self.orders else ""
            return f"{what}: {self.error}{closing}"
        order_word = "would-be order" if self.dry_run else "order"
        line = f"{what}: {self.symbols} symbols, {self.orders} {order_word}{'s' if self.orders != 1 else ''}, {self.errors} errors"
        if self.dry_run:
            line += " (dry run)"
        if self.error:
            line += f": {self.error}"
        return line


def trade_row(cycle: Cycle, intent: OrderIntent, status: str) -> dict:
    """The trades row written before an order is sent (or, in a dry run, instead)."""
    now = iso(cycle.services.clock.now())
    return {
        "cycle_id": cycle.cycle_id,
        "symbol": intent.symbol,
        "side": intent.side,
        # A notional buy's quantity is an estimate at the quoted price until the fill says.
        "quantity": str(intent.qty if intent.qty is not None else to_qty(intent.notional_usd / intent.price)),
        "notional_usd": str(intent.notional_usd) if intent.notional_usd is not None else None,
        "price": str(intent.price),
        "status": status,
        "client_order_id": intent.client_order_id,
        "order_type": intent.order_type,
        "stop_price": str(intent.stop_price) if intent.stop_price is not None else None,
        "limit_price": str(intent.limit_price) if intent.limit_price is not None else None,
        "time_in_force": intent.time_in_force,
        "dry_run": int(status == "dry_run"),
        "created_at": now,
        "updated_at": now,
    }


def record_outcome(cycle: Cycle, item: Outcome) -> None:
    decision, quote = item.decision, item.quote
    now = cycle.services.clock.now()
    row = {
        "cycle_id": cycle.cycle_id,
        "symbol": item.symbol,
        "action": decision.action if decision else "hold",
        "confidence": decision.confidence if decision else None,
        "reasoning": decision.reasoning if decision else item.detail,
        "model": decision.model if decision else None,
        "outcome": item.outcome,
        "detail": item.detail,
        "created_at": iso(now),
        "price": str(quote.price) if quote else None,
        "quote_age_seconds": round(quote.age_seconds(now), 1) if quote else None,
        "quote_source": quote.source if quote else None,
        "reused_decision_id": item.reused_decision_id,
    }
    # A decision reused from an earlier row (a hold or a refusal that still stands) was not asked for:
    # it keeps the model and prompt hash of the decision it reuses, and adds no analyst, tokens or request.
    asked = decision is not None and decision.exit is None and item.reused_decision_id is None
    if decision:
        row.update(_analyst_columns(cycle, decision, asked),
                   contaminated=int(is_contaminated(row["created_at"], decision.training_cutoff)))
        if decision.prompt_hash:
            row["prompt_hash"] = decision.prompt_hash
        if item.symbol in cycle.inputs:
            row["inputs"] = prompt_inputs_summary(cycle.inputs[item.symbol])
            if item.verdict and item.verdict.room:
                row["inputs"] = {**row["inputs"], "room": item.verdict.room}  # what a reuse compares against
    cycle.store.record_decision(row)
    cycle.log("decision", symbol=item.symbol, action=row["action"], confidence=row["confidence"],
              outcome=item.outcome, price=row["price"], detail=item.detail)
    for shadow in decision.shadows if asked else ():
        shadow_row = {key: row[key] for key in ("cycle_id", "symbol", "created_at", "price", "quote_age_seconds", "quote_source")}
        shadow_row.update(
            action=shadow.action, confidence=shadow.confidence, reasoning=shadow.reasoning, model=shadow.model,
            outcome=shadow.failure or "shadow", detail="shadow analyst: recorded, never traded",
            **_analyst_columns(cycle, shadow, True), role="shadow",
            contaminated=int(is_contaminated(row["created_at"], shadow.training_cutoff)),
        )
        cycle.store.record_decision(shadow_row)
        cycle.log("decision.shadow", symbol=item.symbol, model=shadow.model, action=shadow.action,
                  confidence=shadow.confidence, outcome=shadow_row["outcome"])


def _analyst_columns(cycle: Cycle, decision: Decision, asked: bool) -> dict:
    """The audit of an analyst's answer; where it was asked, who it was and the request it got."""
    columns = {
        "raw_reply": decision.raw_reply,
        "latency_ms": decision.latency_ms,
        "prompt_tokens": decision.prompt_tokens,
        "completion_tokens": decision.completion_tokens,
        # Provenance (see models.Decision): who answered, under what terms.
        "served_model": decision.served_model,
        "system_fingerprint": decision.system_fingerprint,
        "temperature": decision.temperature,
        "seed": decision.seed,
        "training_cutoff": decision.training_cutoff,
    }
    if asked:
        columns.update(analyst=analyst_identity(decision.model, decision.prompt_hash), prompt_hash=decision.prompt_hash)
        if decision.messages:
            columns["request_id"] = cycle.store.save_request(decision.messages, cycle.services.clock.now())
    return columns
