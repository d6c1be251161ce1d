"""The ``tradecycle`` command line: parse, call one function of a module in
``commands/``, render it with the module of the same name in ``render/``.
Each command imports only its own modules, so ``killswitch`` stays lean.

Exit codes: 0 the cycle completed (or was skipped by the kill switch, or
another cycle held the lock); 1 aborted (broker unreachable, database
unusable, unexpected error); 2 bad usage or invalid configuration.
Errors are one line on stderr; ``--traceback`` or ``TRADECYCLE_DEBUG=1``
shows the full traceback.
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Optional

import typer

from tradecycle.cli_support import command_module, debug, error, guard, is_terminal, note, print_json, say, show
from tradecycle.infra.errors import ExitCode

cli = typer.Typer(
    name="tradecycle",
    help="One AI paper-trading cycle per run. Safe first: paper only, kill switch, risk limits.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    Optional[str], typer.Option("--config", "-c", help="config file (default ./config.toml or $TRADECYCLE_CONFIG)")
]
DbOption = Annotated[Optional[str], typer.Option("--db", help="database file (default: database.path from the config)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
TracebackOption = Annotated[bool, typer.Option("--traceback", help="show the full traceback on errors")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="how many rows, newest first")]
SinceOption = Annotated[
    Optional[str],
    typer.Option("--since", help="only rows at or after this ISO 8601 time; UTC unless it carries an offset"
                                 " (2026-11-25T14:00 is 14:00 UTC; 2026-11-25T15:00+01:00 is the same moment)"),
]
SymbolOption = Annotated[Optional[str], typer.Option("--symbol", help="only this symbol")]


def _print_version(asked: bool) -> None:
    if asked:
        from tradecycle import __version__

        print(f"tradecycle {__version__}")
        raise typer.Exit()


@cli.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version, help="print the version and exit")] = False,
) -> None:
    """One AI paper-trading cycle per run. Safe first: paper only, kill switch, risk limits."""


@cli.command()
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="do everything but send orders; record would-be orders")] = False,
    config: ConfigOption = None,
    db: DbOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Run one trading cycle."""
    with guard(show_traceback, config=config):
        if is_terminal():
            from tradecycle.render.run import live_steps

            with live_steps() as watch:
                report = command_module("run").run(config, db, dry_run, watch)
        else:
            report = command_module("run").run(config, db, dry_run)
    if report.halt_reason:
        error(f"kill switch turned on: {report.halt_reason}. Only a person turns it off (tradecycle killswitch off).")
    if report.status == "aborted":
        if report.exception is not None and debug(show_traceback):
            traceback.print_exception(report.exception)
        error(report.summary_line())
        raise typer.Exit(int(ExitCode.ABORTED))
    if report.status == "locked":
        error(report.summary_line())
        return
    if is_terminal():
        from tradecycle.render.run import cycle_report

        cycle_report(report)
    else:
        say(report.summary_line())


SWITCH_STATES = {"on": True, "off": False}


@cli.command()
def killswitch(
    state: Annotated[Optional[str], typer.Argument(metavar="on|off", help="on or off; omit to show", show_default=False)] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", "-r", help="why (recorded with the flag)")] = None,
    flatten: Annotated[bool, typer.Option("--flatten", help="with on: the next cycle also cancels every open order and sells every position")] = False,
    config: ConfigOption = None,
    db: DbOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Turn the persisted kill switch on or off, or show it. Reads only database.path.

    On, the next cycle cancels open buy orders (nothing fills after you said
    stop); with --flatten it cancels every open order and closes every position."""
    if state is not None and state.lower() not in SWITCH_STATES:
        error(f"killswitch {state!r}: say on or off (or nothing, to show it)")
        raise typer.Exit(int(ExitCode.USAGE))
    active = None if state is None else SWITCH_STATES[state.lower()]
    if flatten and not active:
        error("--flatten goes with `killswitch on`")
        raise typer.Exit(int(ExitCode.USAGE))
    prefix = "could not record the kill switch: " if active is not None else "could not read the kill switch: "
    # Whatever kept the flag from being recorded (even a broken config), the answer is exit 1.
    with guard(show_traceback, prefix, ExitCode.ABORTED, config):
        existed = command_module("common").database_path(config, db).exists()
        view = command_module("killswitch").kill_switch(config, db, active, reason, flatten)
    switch, database = view.switch, view.database
    if active is not None and not existed:
        note(f"{database} did not exist; it was created to hold the flag (is this the database your cycles use?)")
    if not view.exists:
        say(f"kill switch: there is no database at {database} yet, so the switch was never set there"
             " (a first cycle would create it). Is this the database your cycles use?")
    elif switch.active:
        if view.already_on:
            say(f"kill switch already ON since {switch.changed_at}: {switch.reason}. It keeps that time and reason;"
                 " yours is added to its history. No order will be sent.")
        else:
            say(f"kill switch ON since {switch.changed_at}: {switch.reason}. No order will be sent.")
        if switch.cleanup_due:
            say("The next cycle cancels every open order and sells every position (--flatten)." if switch.flatten
                 else "The next cycle cancels open buy orders, so nothing is bought after this.")
        say(f"database: {database}")
    else:
        since = f" since {switch.changed_at}" if switch.changed_at else ""
        say(f"kill switch off{since}. Cycles trade normally.")
        say(f"database: {database}")
    if view.note:
        note(view.note)
    if view.changes:
        from tradecycle.render.status import kill_switch_changes

        kill_switch_changes(view.changes)
    if active is not None:
        _announce(config, db, switch)


def _announce(config: str | None, db: str | None, switch) -> None:
    """The alert of a person's change, once the flag is recorded and said: best
    effort, a few seconds at most; whatever becomes of it, the flag stands and
    the exit code is 0."""
    sys.stdout.flush()  # the confirmation is on screen before any wait
    try:
        outcome = command_module("killswitch").announce_kill_switch(config, db, switch)
    except KeyboardInterrupt:
        outcome = "failed: interrupted"
    if outcome == "sent":
        print("Alert sent.")
    elif outcome == "held back":
        error("note: no alert sent: one of this kind went out less than 10 minutes ago (at most one per kind per 10 minutes)")
    elif outcome:
        error(f"note: the alert was not sent ({outcome.removeprefix('failed: ')}); the kill switch is {'on' if switch.active else 'off'} all the same")


@cli.command()
def status(config: ConfigOption = None, db: DbOption = None, as_json: JsonOption = False, show_traceback: TracebackOption = False) -> None:
    """Kill switch, last cycle, account, positions, today's P&L and risk-limit use."""
    with guard(show_traceback, config=config):
        data = command_module("status").status(config, db)
    show(data, as_json, "status", lambda render: render.status(data))


def _history(kind: str) -> Callable[..., None]:
    def command(
        limit: LimitOption = 20,
        since: SinceOption = None,
        symbol: SymbolOption = None,
        as_json: JsonOption = False,
        config: ConfigOption = None,
        db: DbOption = None,
        show_traceback: TracebackOption = False,
    ) -> None:
        with guard(show_traceback, config=config):
            rows = command_module("history").history(kind, config, db, limit, since, symbol)
        filters = {"--since": since, "--symbol": symbol}
        show(rows, as_json, "history", lambda render: render.history(kind, rows, filters))

    command.__doc__ = f"Recent {kind}, newest first."
    if kind == "cycles":  # a cycle has no symbol: its help does not offer --symbol
        signature = inspect.signature(command, eval_str=True)
        command.__signature__ = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "symbol"])
    return command


cli.command("cycles")(_history("cycles"))
cli.command("trades")(_history("trades"))
cli.command("decisions")(_history("decisions"))


@cli.command()
def explain(
    cycle_id: Annotated[str, typer.Argument(help="a cycle id, or 'last'")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Everything one cycle saw, decided and did."""
    with guard(show_traceback, config=config):
        story = command_module("history").explain(config, db, cycle_id)
    if story is None:
        where = command_module("common").database_path(config, db)
        missing = "" if where.exists() else f": there is no database at {where} yet"
        error(f"no cycle {cycle_id!r} in the database{missing} (see `tradecycle cycles`)")
        raise typer.Exit(int(ExitCode.ABORTED))
    show(story, as_json, "history", lambda render: render.explain(story))


ModelOption = Annotated[Optional[str], typer.Option("--model", help="only this model (ai_decisions.model)")]


@cli.command()
def score(
    since: SinceOption = None,
    model: ModelOption = None,
    symbol: SymbolOption = None,
    include_contaminated: Annotated[bool, typer.Option(
        "--include-contaminated", help="also count decisions about a moment on or before the model's training cutoff")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Is the analyst any good? Per analyst and symbol: decisions, hit rates at 15 min,
    1 h and 1 day, calibration; shadows side by side; P&L, buy-and-hold, drawdown."""
    with guard(show_traceback, config=config):
        card = command_module("score").score(config, db, since, model, symbol, include_contaminated=include_contaminated)
    show(card, as_json, "score", lambda render: render.score(card))


@cli.command()
def report(
    out: Annotated[str, typer.Option("--out", "-o", help="the HTML file to write (default: report.html in this folder)")] = "report.html",
    since: SinceOption = None,
    config: ConfigOption = None,
    db: DbOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Write one self-contained HTML file: equity against buy-and-hold, drawdown, P&L
    per day, the scorecard per analyst, positions with their exits, the last trades
    and their reasoning. Opens in any browser, with no network."""
    with guard(show_traceback, config=config):
        written = command_module("report").report(config, db, out, since)
    if written["cycles"]:
        print(f"wrote {written['path']} ({written['cycles']} cycles, {written['first']} to {written['last']})")
    elif not written["database_exists"]:
        print(f"wrote {written['path']}: empty, there is no database at {written['database']} yet (run `tradecycle run` first)")
    else:
        print(f"wrote {written['path']}: no cycle {'since ' + since + ' ' if since else ''}has recorded its equity yet")


@cli.command()
def replay(
    cycle_id: Annotated[Optional[str], typer.Argument(help="a cycle id, or 'last' (the newest cycle whose analyst was asked)")] = None,
    since: SinceOption = None,
    model: Annotated[Optional[str], typer.Option("--model", help="the model to ask (default: ai.model)")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="its OpenAI-compatible server (default: ai.base_url)")] = None,
    key_env: Annotated[Optional[str], typer.Option(
        "--key-env", help="environment variable holding that server's key (default: OPENAI_API_KEY for ai.base_url, none elsewhere)")] = None,
    training_cutoff: Annotated[Optional[str], typer.Option(
        "--training-cutoff", help="that model's training cutoff, a date (default: the configured one of the analyst with that model);"
                                  " decisions on or before it are marked contaminated")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Send the exact recorded messages of a cycle (or, with --since, of every analysed
    decision since then) to another model; print both decisions side by side and record
    the replayed ones (role "replay": scored, never traded). Exit 1 if none was answered."""
    with guard(show_traceback, config=config, as_json=as_json):
        result = command_module("replay").replay(config, db, cycle_id, since, model, base_url, key_env, training_cutoff)
    show(result, as_json, "score", lambda render: render.replay(result))
    if all(p["replayed"]["outcome"] in ("ai_unavailable", "ai_invalid") for p in result["replayed"]):
        error(f"no replayed request was answered by {result['model']} at {result['base_url']}")
        raise typer.Exit(int(ExitCode.ABORTED))


@cli.command()
def verify(
    head: Annotated[Optional[str], typer.Option(
        "--head", help="a head kept earlier (at least 12 hex digits): exit 1 unless it is a link of the chain")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Recompute the hash chain over decisions and trades: exit 0 and the chain head
    (keep it elsewhere) when every row is as written, exit 1 naming the first row that differs."""
    with guard(show_traceback, config=config, as_json=as_json):
        result = command_module("verify").verify(config, db, head)
    show(result, as_json, "verify", lambda render: render.verify(result))
    if result["problem_count"]:
        error(f"verify: {result['problems'][0]['message']}")
        raise typer.Exit(int(ExitCode.ABORTED))
    if not result["ok"]:
        error(f"verify: {result['kept_head_note']}")
        raise typer.Exit(int(ExitCode.ABORTED))


@cli.command()
def check(
    config: ConfigOption = None,
    online: Annotated[bool, typer.Option("--online", help="also reach each configured service once (about 5 s at most)")] = False,
    as_json: JsonOption = False,
    show_traceback: TracebackOption = False,
) -> None:
    """Validate the config and show which environment variables are set (names only).
    With --online, reach each configured service once: exit 1 if any fails."""
    with guard(show_traceback, config=config):
        result = command_module("check").check_online(config) if online else command_module("check").check(config)
    missing = [n for n in result["required"] if not result["environment"][n]]
    show(result, as_json, "check", lambda render: render.check(result))
    if missing:
        error(f"required environment variable(s) not set: {', '.join(missing)}")
        raise typer.Exit(int(ExitCode.USAGE))
    failed = [f"{s['service']} [{s['provider']}]: {s['detail']}" for s in result.get("services", []) if not s["ok"]]
    if failed:
        error(f"{len(failed)} service(s) failed: " + "; ".join(failed))
        raise typer.Exit(int(ExitCode.ABORTED))


@cli.command()
def vacuum(config: ConfigOption = None, db: DbOption = None, as_json: JsonOption = False,
           show_traceback: TracebackOption = False) -> None:
    """Rewrite the database once so that it shrinks as old history is pruned
    (only needed for a database made before tradecycle 0.1's schema 3)."""
    with guard(show_traceback):
        result = command_module("vacuum").vacuum(config, db)
    if as_json:
        print_json(result)
    else:
        print(f"{result['database']}: {result['bytes_before'] / 1e6:.1f} MB -> {result['bytes_after'] / 1e6:.1f} MB"
              f" in {result['seconds']} s; from now on it shrinks as history is pruned")


@cli.command()
def backtest(
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], metavar="DATE", help="first day (UTC), e.g. 2026-01-05")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], metavar="DATE", help="the day after the last (UTC): [from, to)")],
    interval: Annotated[str, typer.Option("--interval", help="one cycle at each bar's close: 1d, 1h, 15m or 1m")] = "1d",
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="the backtest's database (default: backtest.db beside the config; never the live one)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the unfinished backtest in --out")] = False,
    max_llm_calls: Annotated[Optional[int], typer.Option("--max-llm-calls", min=0, help="stop before a cycle that could send more model requests than this")] = None,
    allow_contaminated: Annotated[bool, typer.Option("--allow-contaminated", help="ask models about days on or before their training cutoff; the run is marked contaminated")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    show_traceback: TracebackOption = False,
) -> None:
    """Run the same cycle over history, in one process: the analyst, risk limits and exits
    at every bar's close from --from to --to, fills at the next bar's open. Writes its own
    database; report, score, trades, decisions and explain read it with --db."""
    from tradecycle.render import backtest as view

    bars: list = []

    def progress(total: int, done: int):
        if sys.stderr.isatty() and not as_json:
            bars.append(view.ProgressBar(total, done))
            return bars[-1]
        return view.log_lines(total, done)

    request = command_module("backtest").Request(start.date(), end.date(), interval, out, resume, max_llm_calls, allow_contaminated)
    try:
        with guard(show_traceback, config=config):
            result = command_module("backtest").backtest(config, request, view.announce, progress)
    finally:
        for bar in bars:
            bar.stop()
    if as_json:
        print_json(result)
    else:
        print(view.closing_line(result))
        print(view.next_step(result))
    if result["status"] != "completed":
        raise typer.Exit(int(ExitCode.ABORTED))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
