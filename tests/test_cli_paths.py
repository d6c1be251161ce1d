"""Named errors for a user's own paths, never "unexpected error": the log, the
report file and the database where the user cannot write, and the read
commands on a database the user may only read.

The tests run as root in CI, and root may write where a user may not. Three
ways around it, each said where it is used: a folder the kernel refuses to
everyone (``/sys``: sysfs creates no file for anyone), a database opened
read-only through SQLite's ``mode=ro`` URI (what the read commands do for a
user who may only read it), and, only where no other way exists, ``chmod``
with a skip when running as root.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tradecycle.infra.errors import DatabaseUnusable
from tradecycle.store import Database, LATEST_VERSION, migrate, open_read_only

from .test_cli_commands import as_json, invoke, run_cycles, sim_config

AS_ROOT = os.geteuid() == 0


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this user cannot create a file in: /sys as root (sysfs refuses everyone),
    else a folder of our own made read-only."""
    if AS_ROOT:
        try:
            (Path("/sys") / "tradecycle-probe").open("w").close()
        except OSError:
            return Path("/sys")
        pytest.skip("no folder refuses root here")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return folder


def with_log_path(config: Path, value: str) -> Path:
    text = config.read_text().replace('path = "tradecycle.jsonl"', f'path = "{value}"')
    assert value in text
    config.write_text(text)
    return config


def one_line_naming(result, *words: str) -> None:
    assert result.stderr.count("\n") == 1, result.stderr
    assert "unexpected error" not in result.stderr and "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, (word, result.stderr)


# -- log.path -----------------------------------------------------------------------------------


def test_a_log_path_that_is_a_folder_is_named_and_nothing_runs(tmp_path):
    (tmp_path / "logs").mkdir()
    config = with_log_path(sim_config(tmp_path), "logs")

    result = invoke("run", "--config", config)

    assert result.exit_code == 2
    one_line_naming(result, f"log.path {tmp_path / 'logs'}: is a directory")
    assert not (tmp_path / "tradecycle.db").exists()  # refused before the database was touched


def test_a_log_path_where_the_user_cannot_write_is_named(tmp_path):
    folder = unwritable_folder(tmp_path)
    config = with_log_path(sim_config(tmp_path), str(folder / "tradecycle.jsonl"))

    result = invoke("run", "--config", config)

    assert result.exit_code == 2
    one_line_naming(result, f"log.path {folder / 'tradecycle.jsonl'}: permission denied")


# -- report --out -------------------------------------------------------------------------------


def test_report_out_a_folder_or_not_writable_is_named(tmp_path):
    config = sim_config(tmp_path)
    run_cycles(config, 1)
    (tmp_path / "out").mkdir()

    folder = invoke("report", "--out", tmp_path / "out", "--config", config)
    assert folder.exit_code == 2
    one_line_naming(folder, f"--out {tmp_path / 'out'}: is a folder", "report.html")

    locked = unwritable_folder(tmp_path)
    denied = invoke("report", "--out", locked / "report.html", "--config", config)
    assert denied.exit_code == 2
    one_line_naming(denied, f"--out {locked / 'report.html'}: cannot write it: permission denied")


# -- the database -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["run"], ["killswitch", "on"]])
def test_a_database_in_a_folder_the_user_cannot_write_says_permission_denied_and_the_folder(tmp_path, command):
    folder = unwritable_folder(tmp_path)

    result = invoke(*command, "--db", folder / "tradecycle.db", "--config", sim_config(tmp_path))

    assert result.exit_code == 1
    one_line_naming(result, "permission denied", f"the folder {folder}", "database.path (or --db)")


def test_killswitch_shown_for_a_database_that_does_not_exist_says_so(tmp_path):
    config = sim_config(tmp_path)

    result = invoke("killswitch", "--config", config)

    assert result.exit_code == 0
    said = " ".join(result.stdout.split())
    assert f"there is no database at {tmp_path / 'tradecycle.db'} yet" in said and "off" not in said
    assert not (tmp_path / "tradecycle.db").exists()  # showing never creates it


# -- read-only --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    config = sim_config(tmp_path_factory.mktemp("readonly"))
    run_cycles(config, 2)
    return config


def test_a_read_only_connection_reads_what_cycles_wrote_and_never_writes(made):
    """What a read command opens for a user who may only read the file (SQLite's mode=ro URI)."""
    db = open_read_only(made.parent / "tradecycle.db")
    try:
        assert db.read_only and db.one("SELECT COUNT(*) AS n FROM cycles")["n"] == 2
        with pytest.raises(DatabaseUnusable, match="read-only"):
            db.execute("UPDATE agent_status SET kill_switch_active = 1")
    finally:
        db.close()
    assert as_json(invoke("status", "--json", "--config", made))["kill_switch"]["active"] is False


def test_a_read_only_database_of_an_older_schema_says_who_can_upgrade_it(tmp_path):
    old = Database(tmp_path / "old.db")
    migrate(old, up_to=LATEST_VERSION - 1)
    old.close()
    with pytest.raises(DatabaseUnusable, match="read-only for you and has schema version .* run `tradecycle run` once"):
        open_read_only(tmp_path / "old.db")


READ_COMMANDS = [["status"], ["cycles"], ["trades"], ["decisions"], ["explain", "last"], ["score"], ["killswitch"]]


@pytest.mark.skipif(AS_ROOT, reason="root may write a file whatever its mode: chmod cannot make it read-only")
@pytest.mark.parametrize("command", READ_COMMANDS + [["report", "--out", "{out}"]])
def test_read_commands_work_on_a_database_the_user_may_only_read(tmp_path, command):
    config = sim_config(tmp_path / "data")
    run_cycles(config, 2)
    folder = config.parent
    before = sorted(p.name for p in folder.iterdir())
    for path in folder.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        args = [a.replace("{out}", str(tmp_path / "report.html")) for a in command]
        result = invoke(*args, "--config", config)
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in folder.iterdir()) == before  # nothing written beside it
    finally:
        folder.chmod(stat.S_IRWXU)
