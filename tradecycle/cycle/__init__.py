"""The cycle: the seven steps of one run, services injected.

``run.py`` is the table of contents (``run_cycle``); each step's details live
in a module of its own (``reconcile``, ``market``, ``context``, ``analysis``,
``portfolio``, ``orders``, ``protect``, ``pauses``, ``winddown``), and ``state.py`` holds
what one cycle carries through its steps and the rows it writes.

May import: ``tradecycle.models``, ``tradecycle.ports``, ``tradecycle.rules``,
``tradecycle.ai`` (the prompt's pure functions), ``tradecycle.infra``, and the
store only for type checking (the store is injected). Never a connector, a
command, ``requests``, ``sqlite_utils``, ``typer`` or ``rich``.
"""
