"""What a newcomer tripped over, as they saw it: the status of a skipped cycle,
`killswitch on` said twice, lines that wrap at 80 columns, trailing spaces in
piped output, and which environment variables a config needs."""

from __future__ import annotations

import io
import json
import sqlite3

from rich.console import Console

from tradecycle.render.console import Col, print_table

from .test_cli_commands import as_json, invoke, run_cycles, sim_config

REASON = "maintenance window tonight: the broker moves every paper account to new servers"
PIPED = {"COLUMNS": None}  # CliRunner's stdout is a pipe; no COLUMNS: what cron and `| less` get


def lines_over(text: str, width: int = 80) -> list[str]:
    """Lines longer than ``width`` that could have wrapped (a lone path longer than that cannot)."""
    return [line for line in text.splitlines() if len(line) > width and " " in line.strip()]


def test_status_after_a_skipped_cycle_says_why_once(tmp_path):
    config = sim_config(tmp_path)
    assert invoke("killswitch", "on", "--reason", "drill", "--config", config).exit_code == 0
    run_cycles(config, 1)

    out = invoke("status", "--config", config).stdout

    last = out[out.index("last cycle"):out.index("account")]
    assert " ".join(last.split()).count("skipped: kill switch is on (drill)") == 1
    assert "error" not in last  # not "0 error(s)" and then an error line


def test_killswitch_on_while_on_keeps_its_time_and_reason_and_says_so(tmp_path):
    config = sim_config(tmp_path)
    first = invoke("killswitch", "on", "--reason", "drill", "--config", config)
    assert first.exit_code == 0
    since = as_json(invoke("status", "--json", "--config", config))["kill_switch"]["changed_at"]

    again = invoke("killswitch", "on", "--reason", "still a drill", "--config", config)

    assert again.exit_code == 0
    said = " ".join(again.stdout.split())
    assert f"kill switch already ON since {since}: drill." in said and "yours is added to its history" in said
    switch = as_json(invoke("status", "--json", "--config", config))["kill_switch"]
    assert (switch["active"], switch["changed_at"], switch["reason"]) == (True, since, "drill")
    with sqlite3.connect(tmp_path / "tradecycle.db") as conn:
        history = conn.execute("SELECT active, reason FROM kill_switch_changes ORDER BY id").fetchall()
    assert history == [(1, "drill"), (1, "still a drill")]


def test_killswitch_on_and_the_run_summaries_fit_80_columns(tmp_path):
    config = sim_config(tmp_path)
    run_cycles(config, 1)  # buys AAPL: something for --flatten to sell

    dry = invoke("run", "--dry-run", "--config", config, env=PIPED)
    on = invoke("killswitch", "on", "--flatten", "--reason", REASON, "--config", config, env=PIPED)
    flatten = invoke("run", "--config", config, env=PIPED)

    assert "(dry run)" in dry.stdout and "kill switch ON since" in on.stdout
    assert "1 closing order sent" in " ".join(flatten.stdout.split())
    for result in (dry, on, flatten):
        assert result.exit_code == 0, result.output
        assert lines_over(result.stdout) == [], result.stdout
    assert REASON in " ".join(on.stdout.split())  # wrapped, not cut


def test_the_hint_of_hidden_columns_wraps_at_80_on_a_wide_console():
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=False)
    columns = [Col("symbol", "symbol")] + [Col(f"indicator number {i}", f"i{i}", hide=1) for i in range(20)]
    print_table(console, "wide", columns, [{"symbol": "AAPL", **{f"i{i}": "1234567.89" for i in range(20)}}])

    hint = out.getvalue()[out.getvalue().index("(not shown"):]
    assert "indicator number 19" in hint and len(hint.splitlines()) > 1
    assert lines_over(hint) == []


def test_piped_output_has_no_trailing_spaces(tmp_path):
    config = sim_config(tmp_path)
    run_cycles(config, 2)
    for args in (["status"], ["cycles"], ["trades"], ["decisions"], ["explain", "last"], ["score"], ["killswitch"]):
        result = invoke(*args, "--config", config, env=PIPED)
        assert result.exit_code == 0, result.output
        padded = [line for line in result.stdout.splitlines() if line != line.rstrip()]
        assert padded == [], (args, padded)


def test_check_says_which_variables_this_config_needs(tmp_path):
    config = sim_config(tmp_path)
    config.write_text(config.read_text().replace('provider = "sim"                  # "sim" (offline', 'provider = "alpaca" # "sim" (offline', 1))

    result = invoke("check", "--config", config)

    assert result.exit_code == 2  # the keys are not set
    assert 'this config needs: APCA_API_KEY_ID, APCA_API_SECRET_KEY (for broker.provider = "alpaca")' in " ".join(result.stdout.split())
    data = json.loads(invoke("check", "--json", "--config", config).stdout)
    assert data["needed_by"] == {"APCA_API_KEY_ID": 'broker.provider = "alpaca"', "APCA_API_SECRET_KEY": 'broker.provider = "alpaca"'}
