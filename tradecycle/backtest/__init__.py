"""``tradecycle backtest``: the very same cycle (``tradecycle.cycle.run.run_cycle``)
run over history in one process, with these injected in place of the live services:

- ``sessions``: when the stock exchange is open (NYSE, from ``exchange-calendars``,
  imported only here and only with stocks in the universe);
- ``history``: bars with their open and close times, headlines with their
  publication times, as a source hands them over;
- ``sources``, ``source_sim``, ``source_csv``, ``source_alpaca``: the three sources
  of history (the simulator's, a folder of CSV files, Alpaca's bars and news kept
  in the output database);
- ``pit``: point in time, the ONE place that cuts history at the backtest's ``t``
  (bars closed at or before ``t``, headlines published before ``t``), with the
  historical clock and the cycle's quote, bar and news services built on it;
- ``broker``: fills at the next bar's open with slippage and fees; stop orders;
- ``llm``: training cutoffs, replies cached by exact request, the call budget;
- ``runner``: the loop, its progress saved after every cycle (``--resume``), the
  closing figures.

May import: the cycle, the models, the ports, the analysts' wiring-free parts,
``tradecycle.store`` (its ``backtests`` statements), ``tradecycle.infra`` and
``tradecycle.connectors.sim``'s constants. Never the commands, the CLI, the
rendering, or an HTTP library: the command (``tradecycle.commands.backtest``)
wires the services and ``tradecycle.render.backtest`` draws the progress.
"""
