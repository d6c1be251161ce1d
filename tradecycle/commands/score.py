"""``tradecycle score``: is the analyst any good? The scorecard of the stored
decisions, and each analyst's verdict: baselines, costs, significance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradecycle.commands.common import database_path, reading, since_utc


def score(config_option: str | None, db_option: str | None, since: str | None = None, model: str | None = None,
          symbol: str | None = None, paths: bool = False, include_contaminated: bool = False) -> dict[str, Any]:
    """The scorecard (``rules/scorecard.py``) of the decisions at or after ``since``,
    narrowed to one model and/or symbol, with each analyst's verdict
    (``rules/verdict.py``; ``paths``: with the baselines' paths, for the report's
    chart). Before the first run: an empty scorecard. Decisions marked
    contaminated (about a moment on or before the model's training cutoff) count
    only with ``include_contaminated``; ``filters.contaminated`` says how many there are."""
    import gc

    # Without a pause the cyclic garbage collector walks every object there is (scipy's, pandas'
    # and some 46,000 rows of a quarter's decisions) several times while they are made: a tenth
    # of the command's CPU, for rows and figures that hold no reference cycles to collect. After
    # it, what exists is frozen (gc.freeze: never collected again): the process ends soon after,
    # and its last collection at exit then skips the statistics libraries (a fifth of a second).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _score(config_option, db_option, since, model, symbol, paths, include_contaminated)
    finally:
        if collecting:
            gc.freeze()
            gc.enable()


def _score(config_option: str | None, db_option: str | None, since: str | None, model: str | None,
           symbol: str | None, paths: bool, include_contaminated: bool) -> dict[str, Any]:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tradecycle.rules import baselines, scorecard, significance, verdict
    from tradecycle.store import scores

    # The statistics libraries load (about a second) while the database is read: the long reads run
    # in one SQLite step each, outside the GIL (Database.query_in_one_step), so the two overlap, and
    # the account's equity curve is read on a connection of its own beside the decisions.
    loading = threading.Thread(target=significance.preload, daemon=True, name="tradecycle-preload")
    loading.start()
    since = since_utc(since) if since else None
    symbol = symbol.upper() if symbol else None
    token_prices = _token_prices(config_option)
    path = database_path(config_option, db_option)

    def account_curve() -> tuple[dict[str, Any], list, dict, list]:
        """The equity curve's figures, its sampled cycles, the prices at them and the account's fills."""
        with reading(path) as db:
            if db is None:
                return {"cycles": 0}, [], {}, []
            equity = scores.equity_summary(db, since)
            # One symbol's decisions are judged on their own returns: the account's equity is every symbol's.
            sampled = [] if symbol else scores.equity_at(db, since, baselines.sample_points(equity["cycles"]))
            prices = scores.prices_at(db, [r["finished_at"] or r["started_at"] for r in sampled]) if sampled else {}
            return equity, sampled, prices, scores.verdict_fills(db) if sampled else []

    with ThreadPoolExecutor(1, thread_name_prefix="tradecycle-curve") as pool, reading(path) as db:
        curve = pool.submit(account_curve)
        if db is None:
            rows, fills, positions, benchmark, contaminated = [], [], [], ({}, {}), 0
        else:
            rows = scores.scored_decisions(db, scorecard.HORIZONS, since, model, symbol, include_contaminated,
                                          every_action=scorecard.CALIBRATION_HORIZON)
            contaminated = scores.contaminated_count(db, since)
            fills = scores.fills(db, symbol)
            positions = scores.position_rows(db, symbol)
            benchmark = scores.benchmark_prices(db, since, None)
        equity, sampled, prices, account = curve.result()  # its error (a database unusable) is raised here
    card = scorecard.scorecard(rows, fills, positions, equity, benchmark, since)
    loading.join()
    pnl = card["pnl"]
    judged = verdict.verdicts(rows, sampled, prices, account, token_prices,
                              Decimal(pnl["realized_usd"]) + Decimal(pnl["unrealized_usd"]), since, paths=paths)
    for analyst in card["analysts"]:
        analyst.update(judged["analysts"].get((analyst["analyst"], analyst["role"]), {}))
    card["multiple_models"] = judged["multiple_models"]
    filters = {"since": since, "model": model, "symbol": symbol, "include_contaminated": include_contaminated,
               "contaminated": contaminated}
    return {"filters": filters, **card}


def _token_prices(config_option: str | None) -> dict[str, tuple[Decimal, Decimal]]:
    """Model -> (input, output) USD per million tokens: ``ai.price_*_per_million_usd`` and each
    ``[[ai.shadow]]``'s (0 when not set; none without a config file). Only these keys are
    read, as ``database.path`` is: like before, ``score`` reads a config that is invalid
    elsewhere. A price that is not a number >= 0: ConfigError (exit 2) naming its key."""
    from tradecycle.infra import paths
    from tradecycle.infra.errors import ConfigError

    path = paths.config_path(config_option)
    if not path.exists():
        return {}
    ai = paths.read_toml(path).get("ai", {})
    if not isinstance(ai, dict):
        return {}

    def price(table: dict, key: str, name: str) -> Decimal:
        value = table.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"invalid configuration: {key}.{name}: must be a number >= 0 (USD per million tokens)")
        return Decimal(str(value))

    def both(table: dict, key: str) -> tuple[Decimal, Decimal]:
        return price(table, key, "price_input_per_million_usd"), price(table, key, "price_output_per_million_usd")

    prices = {}
    for i, shadow in enumerate(ai.get("shadow") or []):
        if isinstance(shadow, dict):
            prices[str(shadow.get("model") or shadow.get("provider") or "openai")] = both(shadow, f"ai.shadow.{i}")
    prices[str(ai.get("model", "gpt-4o-mini"))] = both(ai, "ai")
    return prices
