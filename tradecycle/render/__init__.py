"""What people see: rich tables for each command (``run``, ``status``,
``history``, ``check``, ``score``, ``backtest``; shared machinery in ``console``) and the
self-contained HTML file of ``tradecycle report`` (``report``).

May import: rich, plotly (only ``report``), ``tradecycle.rules`` for figures
it formats; never the store, a connector or the cycle. Imported only when
something is rendered (``--json`` loads none of it).
"""
