"""A cycle finishes inside its minute, even against a server that never stops answering."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time

from .e2e_helpers import copy_shipped_config
from .test_cli_foundation import REPO


def header_trickler(stop: threading.Event) -> int:
    """A server that sends its status line, then one header byte every 0.2 s, for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()
        listener.close()

    def drip(conn):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"X")
            except OSError:
                return
            time.sleep(0.2)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_a_server_that_never_finishes_its_headers_cannot_hold_the_cycle(tmp_path):
    stop = threading.Event()
    port = header_trickler(stop)
    copy_shipped_config(tmp_path)
    text = (tmp_path / "config.toml").read_text()
    hung = text.replace("max_cycle_seconds = 50", "max_cycle_seconds = 3").replace(
        "analysis_timeout_seconds = 30", "analysis_timeout_seconds = 1").replace(
        "order_timeout_seconds = 10", "order_timeout_seconds = 1").replace(
        'provider = "sim"                  # "sim" | "live"', 'provider = "live"                  # "sim" | "live"').replace(
        'base_url = "https://finnhub.io/api/v1"', f'base_url = "http://127.0.0.1:{port}"').replace(
        'crypto = ["BTC/USD", "ETH/USD"]', "crypto = []")
    (tmp_path / "hung.toml").write_text(hung)
    env = {**os.environ, "FINNHUB_API_KEY": "test-key-123456"}
    try:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "tradecycle.cli", "run", "--config", str(tmp_path / "hung.toml")],
                                capture_output=True, text=True, env=env, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout
    assert elapsed < 3 + 6  # the budget, plus start-up slack on a busy machine: it did not wait for the stuck reads (30 s)
    with sqlite3.connect(tmp_path / "tradecycle.db") as conn:
        outcomes = {row[0] for row in conn.execute("SELECT outcome FROM ai_decisions")}
    assert outcomes == {"no_quote"}


def test_the_watchdog_ends_a_process_that_overruns_its_budget():
    """The last resort, on its own: whatever holds the process, it ends at the budget plus grace."""
    code = (
        "import time; from tradecycle.commands.run import _watchdog; from tradecycle.infra.logs import MemoryLog; "
        "_watchdog(1.0, MemoryLog()); time.sleep(20)"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "overran its budget" in result.stderr
    assert time.monotonic() - started < 1.0 + 0.1 + 3
