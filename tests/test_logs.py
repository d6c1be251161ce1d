"""The JSON-lines log: one event a line, the cycle id on every event of a
cycle, the level respected, secrets redacted, rotation by size."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from tradecycle.cli import cli
from tradecycle.infra.logs import JsonLog

from .test_cli_foundation import REPO


def test_every_event_of_a_run_carries_its_cycle_id(tmp_path):
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    result = CliRunner().invoke(cli, ["run", "--config", str(tmp_path / "config.toml")])
    cycle_id = result.output.split()[1]
    events = [json.loads(line) for line in (tmp_path / "tradecycle.jsonl").read_text().splitlines()]
    assert len(events) >= 7  # started, fetched, 5 decisions, completed
    assert {e["cycle_id"] for e in events} == {cycle_id}
    assert all(e["time"].endswith("Z") and e["level"] and e["event"] for e in events)
    names = [e["event"] for e in events]
    assert names[0] == "cycle.started" and names[-1] == "cycle.completed"
    decision = next(e for e in events if e["event"] == "decision")
    assert {"symbol", "action", "outcome", "price"} <= set(decision)
    assert "duration_ms" in events[-1]


def test_log_level_is_respected(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text((REPO / "config.toml").read_text().replace('level = "INFO"', 'level = "WARNING"'))
    runner = CliRunner()
    assert runner.invoke(cli, ["killswitch", "on", "--config", str(config)]).exit_code == 0
    result = runner.invoke(cli, ["run", "--config", str(config)])  # skipped: a warning, and info events
    assert result.exit_code == 0 and "skipped" in result.output
    events = [json.loads(line) for line in (tmp_path / "tradecycle.jsonl").read_text().splitlines()]
    # The kill switch change (a warning) and the skip; cycle.started (info) was left out.
    assert [e["event"] for e in events] == ["killswitch.changed", "cycle.skipped"]
    assert events[0]["level"] == "warning"


def test_secrets_are_redacted_and_the_file_rotates(tmp_path):
    log = JsonLog(tmp_path / "t.jsonl", "INFO", secrets=["PKSECRET123456"], max_bytes=300)
    log.bind(cycle_id="c1")
    for i in range(10):
        log("service.error", "warning", message=f"401 for key PKSECRET123456 attempt {i}", header="Bearer abcdefghijk")
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "t.jsonl" and "t.jsonl.1" in files
    text = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "PKSECRET123456" not in text and "abcdefghijk" not in text and "***" in text
    assert all(json.loads(line)["cycle_id"] == "c1" for line in (tmp_path / "t.jsonl").read_text().splitlines())
