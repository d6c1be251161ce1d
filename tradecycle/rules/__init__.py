"""The rules: pure functions over the domain models, no I/O.

``risk`` (limits and sizing), ``exits`` (stop-loss, take-profit, trailing
stop), ``protections`` (no buy back after a stop, the stop-loss guard), ``indicators`` (TA-Lib on daily bars), ``reuse`` (when an earlier
decision may stand without a new LLM call), ``scorecard`` (is the analyst
any good?), ``verdict`` with ``baselines`` and ``significance`` (is it
better than chance and than buy-and-hold, after costs? scipy and arch, imported
only by ``score`` and ``report``).

May import: ``tradecycle.models`` and numeric libraries, nothing else of
tradecycle; never ``sqlite_utils``, ``requests``, ``typer`` or ``rich``.
"""
