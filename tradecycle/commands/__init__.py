"""What each command does, without any rendering: ``cli.py`` parses the
options, calls one function of the command's module here and hands what it
returns to the module of the same name in ``tradecycle.render``.

``common`` (config, database, ``--since``), one module per command or family
(``run``, ``killswitch``, ``status``, ``history``, ``check`` with ``probe``,
``score``, ``replay``, ``report``, ``vacuum``, ``backtest``), ``wiring`` (the one place that
turns a config into real services) and ``alerts`` (which events deserve a
message, sent after a cycle or a kill-switch change).

May import anything below it (cycle, rules, ai, connectors, store, infra);
imports stay inside functions where a command does not need them, so that
``killswitch`` starts fast. Never imported by the layers below.
"""
