#!/usr/bin/env python3
"""End-to-end benchmarks of the real ``tradecycle`` CLI against the local fake services.

    /root/venv-bench/bin/python benchmarks/run.py            # 5 runs each, full history
    /root/venv-bench/bin/python benchmarks/run.py --quick    # 3 runs each, smaller history
    /root/venv-bench/bin/python benchmarks/run.py --only 1,3 --runs 7

Every figure comes from ``[sys.executable, "-m", "tradecycle.cli", ...]`` run in a
subprocess against ``tests.fakeserver.FakeServices`` running in this process, with
a fresh temporary folder (database + config) per benchmark. Each benchmark catches
its own failure and reports it; the run goes on. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakeserver import FakeServices  # noqa: E402  (needs the repo on sys.path)
from tests.simulated import SimulatedCycles  # noqa: E402

LATENCY = 0.300  # seconds the fake adds to every reply (benchmarks 1 and 2)
CLI_TIMEOUT = 120  # seconds; a cycle that takes longer is a failure, not a figure
KEY_VARIABLES = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FINNHUB_API_KEY", "COINGECKO_API_KEY", "OPENAI_API_KEY",
                 "TRADECYCLE_CONFIG", "TRADECYCLE_DEBUG")

ONE_STOCK = ["AAPL"]
STOCKS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "NFLX", "JPM", "V", "KO"]
CRYPTO = ["BTC/USD", "ETH/USD", "SOL/USD"]
COIN_IDS = {"BTC/USD": "bitcoin", "ETH/USD": "ethereum", "SOL/USD": "solana"}
PRICES = {
    "AAPL": "187.21", "MSFT": "415.50", "NVDA": "135.40", "AMZN": "182.15", "GOOGL": "171.30", "META": "505.60",
    "TSLA": "242.80", "AMD": "158.90", "NFLX": "680.25", "JPM": "204.10", "V": "276.45", "KO": "62.35",
    "BTC/USD": "67000.10", "ETH/USD": "3500.25", "SOL/USD": "150.50",
}
# Small enough that every one of 15 buys passes the risk check (15 x 5% <= 100%).
RISK_ALL_BUYS = {"max_position_size_percent": 5, "max_total_exposure_percent": 100, "max_positions_count": 15}

FULL_HISTORY = {"ai_decisions": 250_000, "cycles": 60_000, "trades": 20_000, "quotes": 250_000, "news": 7_200}
QUICK_HISTORY = {k: v // 5 for k, v in FULL_HISTORY.items()}
HISTORY_DAYS = 120


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A benchmark cannot produce a meaningful figure (a cycle failed, a check did not hold)."""


# ----------------------------------------------------------------------------- results


@dataclass
class Result:
    number: int
    name: str
    target: str  # "<= 1.25"
    figure: str = ""  # the one number that is compared with the target
    passed: bool | None = None  # None: no verdict (error)
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def add(self, text: str = "") -> None:
        self.lines.append(text)

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        return "meets target" if self.passed else "MISSES target"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_runs(values: Sequence[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


# ----------------------------------------------------------------------------- running the CLI


@dataclass
class Run:
    wall: float  # seconds, perf_counter around the subprocess
    t0: float  # time.time() just before the spawn (the fake records time.time())
    t1: float
    stdout: str
    stderr: str
    requests: list = field(default_factory=list)  # fake.requests seen during this run


def cli_env(fake: FakeServices | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    if fake is not None:
        env.update(fake.env())
    return env


def run_cli(args: Sequence[str], cwd: Path, env: dict[str, str], *, expect_rc: int = 0,
            command: Sequence[str] | None = None) -> Run:
    argv = list(command) if command is not None else [sys.executable, "-m", "tradecycle.cli", *args]
    t0 = time.time()
    p0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(argv[2:])}` did not finish within {CLI_TIMEOUT}s") from None
    wall = time.perf_counter() - p0
    t1 = time.time()
    if proc.returncode != expect_rc:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BenchError(f"`{' '.join(argv[2:])}` exited {proc.returncode}: {' | '.join(tail)}")
    return Run(wall, t0, t1, proc.stdout, proc.stderr)


def run_cycle(fake: FakeServices, folder: Path, env: dict[str, str]) -> Run:
    """One `tradecycle run` in ``folder`` (config.toml + tradecycle.db); the fake's requests attached."""
    fake.clear_requests()
    run = run_cli(["run", "--config", str(folder / "config.toml")], folder, env)
    if " completed" not in run.stdout:
        raise BenchError(f"the cycle did not complete: {run.stdout.strip() or run.stderr.strip()}")
    run.requests = fake.calls()
    if fake.errors:
        raise BenchError(f"the fake server hit a bug: {fake.errors[-1].strip().splitlines()[-1]}")
    return run


def reset_fake(fake: FakeServices) -> None:
    """Forget orders and positions, so that every run starts from the same broker state."""
    with fake.lock:
        fake.orders.clear()
        fake.positions.clear()
        fake.account = fake._default_account()
    fake.clear_requests()


def setup_market(fake: FakeServices) -> None:
    """The 15-symbol universe in the fake: prices, coin ids, a couple of headlines per stock; market open."""
    fake.set_market_open(True)
    with fake.lock:
        fake.coin_ids.update(COIN_IDS)
    for symbol, price in PRICES.items():
        fake.set_price(symbol, price)
    for symbol in PRICES:  # daily bars for market_data.provider = "alpaca" (the fake has some for the defaults)
        if symbol not in fake.daily_bars:
            base = float(PRICES[symbol])
            fake.set_daily_bars(symbol, [(base, base * 1.01, base * 0.99, base * (1 + (i % 5 - 2) / 200), 1_000_000)
                                         for i in range(80)])
    for symbol in STOCKS[3:]:  # the fake already has headlines for AAPL, MSFT, NVDA
        fake.add_news(symbol, f"{symbol} shares edge higher ahead of earnings", hours_ago=2)
        fake.add_news(symbol, f"Analysts weigh in on {symbol} outlook", hours_ago=20, source="MarketWatch")


def write_config(fake: FakeServices, folder: Path, stocks: Sequence[str], crypto: Sequence[str], **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ids = {s: COIN_IDS[s] for s in crypto} or {"BTC/USD": "bitcoin"}
    return fake.config_toml(
        folder,
        universe={"stocks": list(stocks), "crypto": list(crypto)},
        market_data={"coingecko": {"base_url": fake.coingecko_url, "ids": ids}},
        **overrides,
    )


def copy_db(template: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(template) + suffix)
        if source.exists():
            target = folder / ("tradecycle.db" + suffix)
            shutil.copyfile(source, target)
            # Flush the copy to disk now: otherwise the cycle's first WAL checkpoint (its fsync at
            # close) would pay for writing back the whole freshly copied file, which a real
            # database that has sat on disk never does.
            with open(target, "rb+") as handle:
                os.fsync(handle.fileno())


def make_template(fake: FakeServices, folder: Path, env: dict[str, str]) -> Path:
    """An empty, migrated database: what `tradecycle killswitch` leaves behind (also warms the CLI up)."""
    write_config(fake, folder, ONE_STOCK, [])
    run_cli(["killswitch", "--config", str(folder / "config.toml")], folder, env)
    return folder / "tradecycle.db"


def pick_median(runs: Sequence[Run]) -> Run:
    m = median([r.wall for r in runs])
    return min(runs, key=lambda r: abs(r.wall - m))


# ----------------------------------------------------------------------------- timelines


def label(request) -> str:
    service, path = request.service, request.subpath
    if service == "alpaca":
        if request.method == "POST" and path == "/v2/orders":
            return "order"
        if path.startswith("/v2/orders"):
            return "order-lookup"
        if path.startswith("/v2/assets"):
            return "asset"
        return path.rsplit("/", 1)[-1]  # account, clock, positions
    if service == "alpaca_data":
        return "bars" if path.endswith("/bars") else "snapshots"
    if service == "finnhub":
        return "news" if "company-news" in path else "quote"
    if service == "coingecko":
        return "coingecko"
    if service == "openai":
        return "llm"
    return f"?{path}"


def round_trips(requests: Sequence, latency: float) -> list[list]:
    """Requests grouped by arrival: a request that arrives more than half a latency after
    the first request of the current group starts a new group (a new serial round trip)."""
    waves: list[list] = []
    for request in sorted(requests, key=lambda r: r.time):
        if not waves or request.time - waves[-1][0].time > latency / 2:
            waves.append([request])
        else:
            waves[-1].append(request)
    return waves


def describe_wave(wave: Sequence) -> str:
    counts = Counter(label(r) for r in wave)
    return ",".join(name if n == 1 else f"{name}x{n}" for name, n in counts.items())


def timeline(run: Run, latency: float, indent: str = "    ") -> list[str]:
    """Where the wall time of one run went, from the fake's arrival times."""
    if not run.requests:
        return [f"{indent}no request reached the fake"]
    waves = round_trips(run.requests, latency)
    first = min(r.time for r in run.requests) - run.t0
    last_reply = max(r.time for r in run.requests) + latency - run.t0
    tail = run.wall - last_reply
    lines = [f"{indent}start-up to first request {first:.3f} s | {len(waves)} serial round trips "
             f"({len(run.requests)} requests) | last reply to exit {tail:.3f} s"]
    merged: list[tuple[str, float, int]] = []  # (description, first offset, repeats)
    for wave in waves:
        text, at = describe_wave(wave), wave[0].time - run.t0
        if merged and merged[-1][0] == text:
            merged[-1] = (text, merged[-1][1], merged[-1][2] + 1)
        else:
            merged.append((text, at, 1))
    steps = [f"+{at:.2f}s {'%d x ' % n if n > 1 else ''}[{text}]" for text, at, n in merged]
    lines += textwrap.wrap(" -> ".join(steps), width=110, initial_indent=indent, subsequent_indent=indent + "  ",
                           break_on_hyphens=False)
    return lines


# ----------------------------------------------------------------------------- 1. critical path


def bench_critical_path(opts, root: Path) -> Result:
    result = Result(1, "critical path: 1-symbol buy cycle / (start-up + 4 x 300 ms)", "<= 1.25")
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout above the 20-day high")}
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def fresh(name: str) -> Path:
            folder = root / name
            write_config(fake, folder, ONE_STOCK, [])
            copy_db(template, folder)
            reset_fake(fake)
            return folder

        progress("1: warm-up")
        warm = fresh("warmup")
        run_cli(["killswitch", "--config", str(warm / "config.toml")], warm, env)
        run_cycle(fake, warm, env)
        switch_runs, cycle_runs = [], []
        for i in range(opts.runs):
            progress(f"1: run {i + 1}/{opts.runs}")
            folder = fresh(f"run{i}")
            switch_runs.append(run_cli(["killswitch", "--config", str(folder / "config.toml")], folder, env))
            cycle = run_cycle(fake, folder, env)
            posted = fake.count("alpaca", "POST", "/v2/orders")
            if posted != 1:
                raise BenchError(f"expected 1 order, the fake received {posted}")
            cycle_runs.append(cycle)

    startup = median([r.wall for r in switch_runs])
    floor = startup + 4 * LATENCY
    cycle_median = median([r.wall for r in cycle_runs])
    ratio = cycle_median / floor
    result.add(f"  `killswitch` (start-up)       {startup:7.3f} s   runs: {fmt_runs([r.wall for r in switch_runs])}")
    result.add(f"  floor = {startup:.3f} + 4 x {LATENCY:.3f}   {floor:7.3f} s")
    result.add(f"  `run` 1 stock, 1 order        {cycle_median:7.3f} s   runs: {fmt_runs([r.wall for r in cycle_runs])}")
    result.add("  median run:")
    result.lines += timeline(pick_median(cycle_runs), LATENCY)
    result.figure, result.passed = f"{ratio:.2f}", ratio <= 1.25
    result.add(f"  ratio {cycle_median:.3f} / {floor:.3f} = {ratio:.2f} (target <= 1.25): {result.verdict}")
    return result


# ----------------------------------------------------------------------------- 2. fan-out


def bench_fan_out(opts, root: Path) -> Result:
    result = Result(2, "fan-out: 15-symbol hold cycle / 1-symbol hold cycle", "<= 1.15")
    variants = {
        "1 stock, hold": (ONE_STOCK, [], "hold"),
        "15 symbols, hold": (STOCKS, CRYPTO, "hold"),
        "1 stock, buy": (ONE_STOCK, [], "buy"),
        "15 symbols, buy": (STOCKS, CRYPTO, "buy"),
    }
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    orders: dict[str, list[int]] = {name: [] for name in variants}
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def once(name: str, folder: Path) -> Run:
            stocks, crypto, action = variants[name]
            write_config(fake, folder, stocks, crypto, risk=RISK_ALL_BUYS)
            copy_db(template, folder)
            reset_fake(fake)
            with fake.lock:
                fake.llm_decide = {s: (action, 0.9 if action == "buy" else 0.5, "benchmark") for s in [*stocks, *crypto]}
            run = run_cycle(fake, folder, env)
            posted = fake.count("alpaca", "POST", "/v2/orders")
            if action == "hold" and posted:
                raise BenchError(f"{name}: {posted} orders on a hold cycle")
            if action == "buy" and not posted:
                raise BenchError(f"{name}: no order placed")
            orders[name].append(posted)
            return run

        progress("2: warm-up")
        once("15 symbols, hold", root / "warmup")
        for i in range(opts.runs):  # the compared pair alternates, then the informational pair
            for name in variants:
                progress(f"2: run {i + 1}/{opts.runs}: {name}")
                runs[name].append(once(name, root / f"run{i}-{name.replace(' ', '').replace(',', '-')}"))

    medians = {name: median([r.wall for r in rs]) for name, rs in runs.items()}
    for name, rs in runs.items():
        extra = f" ({orders[name][-1]} orders)" if variants[name][2] == "buy" else ""
        result.add(f"  `run` {name + extra:<26} {medians[name]:7.3f} s   runs: {fmt_runs([r.wall for r in rs])}")
    for name in variants:
        result.add(f"  median run, {name}:")
        result.lines += timeline(pick_median(runs[name]), LATENCY)
    ratio = medians["15 symbols, hold"] / medians["1 stock, hold"]
    info = medians["15 symbols, buy"] / medians["1 stock, buy"]
    result.figure, result.passed = f"{ratio:.2f}", ratio <= 1.15
    result.add(f"  for information: 15 buys / 1 buy = {medians['15 symbols, buy']:.3f} / {medians['1 stock, buy']:.3f}"
               f" = {info:.2f}")
    result.add(f"  ratio {medians['15 symbols, hold']:.3f} / {medians['1 stock, hold']:.3f} = {ratio:.2f}"
               f" (target <= 1.15): {result.verdict}")
    return result


# ----------------------------------------------------------------------------- 3. start-up

FLOOR_APP = '''\
"""The floor for a typer CLI: parse, read the TOML config, write one SQLite row."""
import sqlite3
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False)


@app.command()
def killswitch(state: str, config: str = typer.Option(...), reason: Optional[str] = None) -> None:
    with open(config, "rb") as handle:
        settings = tomllib.load(handle)
    path = Path(config).resolve().parent / settings["database"]["path"]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS flag (id INTEGER PRIMARY KEY, active INTEGER, reason TEXT, changed_at TEXT)")
    conn.execute("INSERT OR REPLACE INTO flag VALUES (1, ?, ?, ?)",
                 (int(state == "on"), reason, datetime.now(UTC).isoformat()))
    conn.close()
    print(f"kill switch {state}")


if __name__ == "__main__":
    app()
'''


def bench_startup(opts, root: Path) -> Result:
    result = Result(3, "start-up: `killswitch on` / one-file typer+tomllib+sqlite3 app", "<= 1.2")
    count = opts.startup_runs
    fake = FakeServices()  # never started: only its config writer is used (killswitch sends no request)
    env = cli_env(None)
    config = write_config(fake, root / "tc", STOCKS, CRYPTO)
    floor_dir = root / "floor"
    floor_config = write_config(fake, floor_dir, STOCKS, CRYPTO, database={"path": "floor.db"})
    app = floor_dir / "floor_app.py"
    app.write_text(FLOOR_APP, encoding="utf-8")
    ours = ["killswitch", "on", "--config", str(config)]
    floor_cmd = [sys.executable, str(app), "on", "--config", str(floor_config)]
    progress("3: warm-up")
    for _ in range(2):  # creates both databases, fills the page cache, writes .pyc files
        run_cli(ours, config.parent, env)
        run_cli([], floor_dir, env, command=floor_cmd)
    ours_runs, floor_runs = [], []
    for i in range(count):
        progress(f"3: run {i + 1}/{count}")
        first_ours = i % 2 == 0  # alternate which goes first
        for which in ((0, 1) if first_ours else (1, 0)):
            if which == 0:
                ours_runs.append(run_cli(ours, config.parent, env).wall)
            else:
                floor_runs.append(run_cli([], floor_dir, env, command=floor_cmd).wall)
    a, b = median(ours_runs), median(floor_runs)
    ratio = a / b
    result.add(f"  `killswitch on`                {a:7.3f} s   runs: {fmt_runs(ours_runs)}")
    result.add(f"  floor app (typer+toml+sqlite)  {b:7.3f} s   runs: {fmt_runs(floor_runs)}")
    bare = [run_cli([], root, env, command=[sys.executable, "-c", "pass"]).wall for _ in range(3)]
    result.add(f"  (bare `python -c pass`         {median(bare):7.3f} s, for reference)")
    result.figure, result.passed = f"{ratio:.2f}", ratio <= 1.2
    result.add(f"  ratio {a:.3f} / {b:.3f} = {ratio:.2f} (target <= 1.2): {result.verdict}")
    return result


# ----------------------------------------------------------------------------- 4. history

REASONINGS = [
    "Price consolidating near support; no catalyst in the headlines",
    "Momentum fading after a strong week; waiting for confirmation",
    "Breakout above the 20-day high on rising volume",
    "Earnings ahead; risk/reward does not justify a new position",
    "Negative sentiment in recent headlines; trimming exposure",
    "Sideways range, low volatility: nothing to do",
]
DECISION_MIX = [  # (action, outcome, weight)
    ("hold", "hold", 60), ("hold", "unchanged", 12), ("hold", "market_closed", 8), ("buy", "low_confidence", 5),
    ("buy", "ordered", 5), ("sell", "ordered", 2), ("sell", "no_position", 2), ("hold", "ai_unavailable", 2),
    ("buy", "exposure_limit_exceeded", 2), ("hold", "stale_quote", 1), ("buy", "dry_run", 1),
]
TRADE_STATUSES = [("filled", 85), ("canceled", 5), ("rejected", 4), ("expired", 3), ("dry_run", 3)]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _price(symbol: str, rng: random.Random) -> str:
    return f"{float(PRICES[symbol]) * rng.uniform(0.85, 1.15):.2f}"


def build_history(db_path: Path, sizes: dict[str, int], now: datetime) -> None:
    """Bulk-insert synthetic history into a database that already has the schema (one transaction)."""
    from tradecycle.cycle import client_order_id  # the same id scheme as real trades

    rng = random.Random(20261125)
    symbols = STOCKS + CRYPTO
    start = now - timedelta(days=HISTORY_DAYS)
    step = (now - timedelta(minutes=5) - start) / sizes["cycles"]
    n_cycles = sizes["cycles"]
    cycles, starts = [], []
    for i in range(n_cycles):
        at = start + step * i
        cycle_id = f"{at:%Y-%m-%dT%H:%M}Z-{i & 0xFFFF:04x}"
        roll = rng.random()
        status = "completed" if roll < 0.93 or i > n_cycles - 10 else ("skipped" if roll < 0.98 else "aborted")
        error = {"skipped": "kill switch is on (daily loss limit)", "aborted": "broker unreachable (account): HTTP 503"}.get(status)
        duration = rng.randint(900, 2600)
        summary = '{"symbols": 15, "orders": 0, "errors": 0, "outcomes": {}, "notes": []}'
        cycles.append((cycle_id, _iso(at), _iso(at + timedelta(milliseconds=duration)), status, 0, error, duration,
                       15, 0, 1 if status == "aborted" else 0, summary))
        starts.append(at)

    decisions = []
    mix, weights = [m[:2] for m in DECISION_MIX], [m[2] for m in DECISION_MIX]
    for j in range(sizes["ai_decisions"]):
        c = j * n_cycles // sizes["ai_decisions"]
        symbol = symbols[j % len(symbols)]
        action, outcome = rng.choices(mix, weights)[0]
        price = _price(symbol, rng)
        reasoning = rng.choice(REASONINGS)
        confidence = round(rng.uniform(0.3, 0.95), 2)
        inputs = (f'{{"symbol": "{symbol}", "price": "{price}", "quote_age_seconds": 1, "quote_source": '
                  f'"{"coingecko" if "/" in symbol else "finnhub"}", "change_percent": "0.42", "position_qty": null, '
                  f'"recent_prices_count": 10, "headlines": [{{"id": "{7000000 + j}", "title": "{symbol} shares '
                  f'edge higher ahead of earnings"}}]}}')
        raw = (f'{{"decisions": [{{"symbol": "{symbol}", "action": "{action}", "confidence": {confidence}, '
               f'"reasoning": "{reasoning}"}}]}}')
        decisions.append((cycles[c][0], symbol, action, confidence, reasoning, "gpt-4o-mini", outcome,
                          _iso(starts[c] + timedelta(seconds=1)), price, 1.2, "finnhub" if "/" not in symbol else "coingecko",
                          inputs, raw, rng.randint(400, 2500), rng.randint(350, 600), rng.randint(20, 60), outcome))

    trades = []
    statuses, tweights = [s for s, _ in TRADE_STATUSES], [w for _, w in TRADE_STATUSES]
    for k in range(sizes["trades"]):
        c = k * n_cycles // sizes["trades"]
        symbol = symbols[rng.randrange(len(symbols))]
        status = rng.choices(statuses, tweights)[0]
        price = _price(symbol, rng)
        at = _iso(starts[c] + timedelta(seconds=2))
        notional = f"{rng.uniform(500, 5000):.2f}"
        filled = status == "filled"
        qty = f"{float(notional) / float(price):.6f}"
        trades.append((cycles[c][0], symbol, rng.choice(["buy", "buy", "sell"]), qty if filled else None, price, status,
                       client_order_id(cycles[c][0], symbol), None if status == "dry_run" else f"ord-{k:08d}",
                       at if filled else None, None if status != "rejected" else "insufficient buying power",
                       at, at, notional, int(status == "dry_run"), qty if filled else None, price if filled else None))

    quotes = []
    for q in range(sizes["quotes"]):
        c = q * n_cycles // sizes["quotes"]
        symbol = symbols[q % len(symbols)]
        at = _iso(starts[c])
        quotes.append((cycles[c][0], symbol, _price(symbol, rng), at, "coingecko" if "/" in symbol else "finnhub",
                       "0.42", None, at))

    news = []
    for n in range(sizes["news"]):
        symbol = STOCKS[n % len(STOCKS)]
        at = _iso(start + (now - start) * (n / sizes["news"]))
        news.append((symbol, f"hist-{n}", f"{symbol}: {rng.choice(REASONINGS)}", "More details inside.", "Reuters",
                     f"https://news.example.com/{symbol.lower()}/hist-{n}", at, at))

    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO cycles (cycle_id, started_at, finished_at, status, dry_run, error, duration_ms, symbols_count,"
            " orders_count, errors_count, summary) VALUES (?,?,?,?,?,?,?,?,?,?,?)", cycles)
        conn.executemany(
            "INSERT INTO ai_decisions (cycle_id, symbol, action, confidence, reasoning, model, outcome, created_at, price,"
            " quote_age_seconds, quote_source, inputs, raw_reply, latency_ms, prompt_tokens, completion_tokens, detail)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", decisions)
        conn.executemany(
            "INSERT INTO trades (cycle_id, symbol, side, quantity, price, status, client_order_id, broker_order_id,"
            " executed_at, notes, created_at, updated_at, notional_usd, dry_run, filled_qty, filled_avg_price)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", trades)
        conn.executemany(
            "INSERT INTO quotes (cycle_id, symbol, price, as_of, source, change_percent, previous_close, fetched_at)"
            " VALUES (?,?,?,?,?,?,?,?)", quotes)
        conn.executemany(
            "INSERT OR IGNORE INTO news (symbol, news_id, headline, summary, source, url, published_at, fetched_at)"
            " VALUES (?,?,?,?,?,?,?,?)", news)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def table_counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("ai_decisions", "cycles", "trades", "quotes", "news")}
    finally:
        conn.close()


def bench_history(opts, root: Path) -> Result:
    result = Result(4, "history: cycle on a big database / cycle on a fresh one (0 ms latency)", "<= 1.1")
    sizes = QUICK_HISTORY if opts.quick else FULL_HISTORY
    with FakeServices(latency_seconds=0.0) as fake:
        setup_market(fake)
        fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in STOCKS + CRYPTO}
        env = cli_env(fake)

        base = root / "base"
        write_config(fake, base, STOCKS, CRYPTO)
        progress("4: one real cycle for the schema")
        run_cycle(fake, base, env)  # schema + one real cycle (also fetches the news, for both databases)
        fresh_db, big_db = root / "fresh.db", root / "big.db"
        shutil.copyfile(base / "tradecycle.db", fresh_db)
        shutil.copyfile(base / "tradecycle.db", big_db)
        progress(f"4: building the big database ({sizes['ai_decisions']:,} decisions)")
        t = time.perf_counter()
        build_history(big_db, sizes, datetime.now(UTC))  # built once, copied for every run
        built = time.perf_counter() - t
        counts = table_counts(big_db)
        result.add(f"  big database: {big_db.stat().st_size / 1e6:.0f} MB, built in {built:.1f} s: "
                   + ", ".join(f"{n:,} {t}" for t, n in counts.items()))

        def once(template: Path, folder: Path) -> Run:
            # Both databases must take the same path through the cycle: the fresh one's last
            # decisions are holds that would stand unchanged (no LLM call), the big one's are
            # synthetic. A tiny decision age makes every symbol analysed in both.
            # keep_days = 0: this measures reading a big history; pruning one is year.py's business.
            write_config(fake, folder, STOCKS, CRYPTO, ai={"max_decision_age_minutes": 0.001}, database={"keep_days": 0})
            copy_db(template, folder)
            reset_fake(fake)
            return run_cycle(fake, folder, env)

        progress("4: warm-up")
        once(fresh_db, root / "warm-fresh")
        once(big_db, root / "warm-big")
        fresh_runs, big_runs = [], []
        count = 2 * opts.runs  # a 0-latency cycle is short and noisy: twice the runs, still cheap
        for i in range(count):
            progress(f"4: run {i + 1}/{count}")
            fresh_runs.append(once(fresh_db, root / f"run{i}-fresh"))
            big_runs.append(once(big_db, root / f"run{i}-big"))
            shutil.rmtree(root / f"run{i}-big")  # do not keep copies of the big file around

    a, b = median([r.wall for r in big_runs]), median([r.wall for r in fresh_runs])
    ratio = a / b
    result.add(f"  `run` 15 symbols, big database   {a:7.3f} s   runs: {fmt_runs([r.wall for r in big_runs])}")
    result.add(f"  `run` 15 symbols, fresh database {b:7.3f} s   runs: {fmt_runs([r.wall for r in fresh_runs])}")
    for name, rs in (("big", big_runs), ("fresh", fresh_runs)):
        pre = median([min(q.time for q in r.requests) - r.t0 for r in rs])
        post = median([r.t1 - max(q.time for q in r.requests) for r in rs])
        result.add(f"    {name:<5}: start-up to first request {pre:.3f} s, last request to exit {post:.3f} s")
    result.figure, result.passed = f"{ratio:.2f}", ratio <= 1.1
    result.add(f"  ratio {a:.3f} / {b:.3f} = {ratio:.2f} (target <= 1.1): {result.verdict}")
    return result


# ----------------------------------------------------------------------------- 5. calls

SERVICE_COLUMNS = ("alpaca", "finnhub quotes", "finnhub news", "coingecko", "openai")


def count_calls(requests: Sequence) -> dict[str, int]:
    counts = dict.fromkeys(SERVICE_COLUMNS, 0)
    for r in requests:
        if r.service == "finnhub":
            counts["finnhub news" if "company-news" in r.subpath else "finnhub quotes"] += 1
        elif r.service in counts:
            counts[r.service] += 1
    return counts


def holding_market(fake: FakeServices, root: Path) -> tuple[dict[str, str], Path, Path]:
    """The 15 symbols priced, an LLM that holds them all, the CLI's environment, a
    template database, and the folder the cycles run in: (env, template, folder)."""
    setup_market(fake)
    fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in STOCKS + CRYPTO}
    env = cli_env(fake)
    return env, make_template(fake, root / "template", env), root / "cycles"


def bench_calls(opts, root: Path) -> Result:
    result = Result(5, "calls: 3 cycles, unchanged market, 15 symbols, hold", "news <= 12, coingecko <= 1, LLM after 1st = 0")
    with FakeServices(latency_seconds=0.0) as fake:
        env, template, folder = holding_market(fake, root)
        write_config(fake, folder, STOCKS, CRYPTO)
        copy_db(template, folder)
        per_cycle = []
        for i in range(3):
            progress(f"5: cycle {i + 1}/3")
            per_cycle.append(count_calls(run_cycle(fake, folder, env).requests))
    header = "  " + "".join(f"{c:>16}" for c in ("",) + SERVICE_COLUMNS)
    result.add(header)
    for i, counts in enumerate(per_cycle, 1):
        result.add(f"  {'cycle ' + str(i):>16}" + "".join(f"{counts[c]:>16}" for c in SERVICE_COLUMNS))
    totals = {c: sum(p[c] for p in per_cycle) for c in SERVICE_COLUMNS}
    result.add(f"  {'total':>16}" + "".join(f"{totals[c]:>16}" for c in SERVICE_COLUMNS))
    news, gecko = totals["finnhub news"], totals["coingecko"]
    llm_later = per_cycle[1]["openai"] + per_cycle[2]["openai"]
    finnhub_peak = max(p["finnhub quotes"] + p["finnhub news"] for p in per_cycle)
    result.add(f"  Finnhub calls in the busiest cycle: {finnhub_peak} (free tier: 60 a minute)")
    # Three cycles a few seconds apart: CoinGecko once (market_data.coingecko.refresh_seconds), then stored prices.
    checks = [("news", news, 12), ("coingecko", gecko, 1), ("LLM in cycles 2-3", llm_later, 0)]
    result.passed = all(v <= limit for _, v, limit in checks)
    result.figure = f"news {news}, coingecko {gecko}, LLM later {llm_later}"
    result.add("  " + " | ".join(f"{name} {v} (<= {limit}): {'ok' if v <= limit else 'MISS'}" for name, v, limit in checks)
               + f": {result.verdict}")
    return result


# ----------------------------------------------------------------------------- 6. quotas

MINUTES_PER_30_DAYS = 30 * 24 * 60
# row -> (columns counted together, per-minute limit, per-30-days limit) of its free tier; None: none published.
# Finnhub's 60 a minute is one budget for quotes and news together (one key).
FREE_TIERS = {
    "Finnhub quotes": (("finnhub quotes",), None, None),
    "Finnhub news": (("finnhub news",), None, None),
    "Finnhub, both": (("finnhub quotes", "finnhub news"), 60, None),
    "CoinGecko": (("coingecko",), 30, 10_000),
    "Alpaca": (("alpaca",), 200, None),
    "LLM": (("openai",), None, None),
}
COINGECKO_MONTH_TARGET = 8_000  # the demo quota with room to spare


def bench_quota(opts, root: Path) -> Result:
    result = Result(6, "quota: calls per 30 days per service, default config, 15 symbols, cron every minute",
                    f"free tiers, CoinGecko <= {COINGECKO_MONTH_TARGET:,}")
    minutes = 60 if opts.quick else 120
    with FakeServices(latency_seconds=0.0) as fake:
        setup_market(fake)
        fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in STOCKS + CRYPTO}
        sim = SimulatedCycles(fake, root / "quota", universe={"stocks": STOCKS, "crypto": CRYPTO},
                              market_data={"coingecko": {"ids": COIN_IDS}})
        per_minute = []
        for minute in range(minutes):
            if minute % 20 == 0:
                progress(f"6: simulated minute {minute + 1}/{minutes}")
            if minute:
                sim.clock.advance(60)
            fake.clear_requests()
            report = sim.run()
            if report.status != "completed":
                raise BenchError(f"simulated minute {minute}: the cycle {report.status}: {report.error}")
            per_minute.append(count_calls(fake.calls()))
            if fake.errors:
                raise BenchError(f"the fake server hit a bug: {fake.errors[-1].strip().splitlines()[-1]}")

    scale = MINUTES_PER_30_DAYS / minutes
    result.add(f"  {minutes} one-minute cycles on a simulated clock: market open, prices unchanged, the LLM holds;")
    result.add("  default keys (news.refresh_minutes 15, market_data.coingecko.refresh_seconds 360,")
    result.add(f"  ai.max_decision_age_minutes 15). Per 30 days = calls x {scale:g}.")
    result.add(f"  {'service':<16}{'calls':>7}{'busiest minute':>16}{'per 30 days':>13}   free tier")
    verdicts, figure = [], {}
    for service, (columns, per_min_limit, month_limit) in FREE_TIERS.items():
        calls = sum(p[c] for p in per_minute for c in columns)
        busiest = max(sum(p[c] for c in columns) for p in per_minute)
        month = round(calls * scale)
        limit = month_limit if service != "CoinGecko" else COINGECKO_MONTH_TARGET
        ok = (per_min_limit is None or busiest <= per_min_limit) and (limit is None or month <= limit)
        tier = ", ".join(x for x in (f"{per_min_limit}/min" if per_min_limit else "",
                                     f"{month_limit:,}/month" if month_limit else "") if x)
        verdict = ("ok" if ok else "OVER") if tier else ""
        tier = tier or ("paid per call" if service == "LLM" else "see Finnhub, both")
        verdicts.append(ok)
        figure[service] = (busiest, month)
        result.add(f"  {service:<16}{calls:>7}{busiest:>16}{month:>13,}   {tier} {verdict}".rstrip())
    result.passed = all(verdicts)
    result.figure = (f"CoinGecko {figure['CoinGecko'][1]:,}/30 d, Finnhub {figure['Finnhub, both'][0]}/min, "
                     f"Alpaca {figure['Alpaca'][0]}/min")
    result.add(f"  within every free tier, CoinGecko <= {COINGECKO_MONTH_TARGET:,} in 30 days: {result.verdict}")
    return result


# ----------------------------------------------------------------------------- 7. market data calls


def bench_market_data(opts, root: Path) -> Result:
    result = Result(7, 'market data: 3 cycles, 15 symbols, market_data.provider = "alpaca"',
                    "2 snapshot calls a cycle, <= 1 bars call per class a day")
    with FakeServices(latency_seconds=0.0) as fake:
        env, template, folder = holding_market(fake, root)
        folder.mkdir(parents=True, exist_ok=True)
        fake.config_toml(folder, universe={"stocks": STOCKS, "crypto": CRYPTO},
                         market_data={"provider": "alpaca", "coingecko": {"base_url": fake.coingecko_url, "ids": COIN_IDS}})
        copy_db(template, folder)
        per_cycle = []
        for i in range(3):
            progress(f"7: cycle {i + 1}/3")
            run = run_cycle(fake, folder, env)
            per_cycle.append(Counter(label(r) for r in run.requests if r.service == "alpaca_data"))
            other = [r for r in run.requests if r.service == "coingecko" or (r.service == "finnhub" and label(r) == "quote")]
            if other:
                raise BenchError(f"{len(other)} Finnhub/CoinGecko quote calls with market_data.provider = alpaca")
    for i, counts in enumerate(per_cycle, 1):
        result.add(f"  cycle {i}: snapshots {counts['snapshots']}, bars {counts['bars']}")
    snapshots = [c["snapshots"] for c in per_cycle]
    bars = sum(c["bars"] for c in per_cycle)
    result.passed = all(n == 2 for n in snapshots) and bars <= 2
    result.figure = f"snapshots {'/'.join(map(str, snapshots))}, bars {bars} in 3 cycles"
    result.add(f"  snapshot calls per cycle {snapshots} (== 2 each), bars calls in all {bars} (<= 2: stocks + crypto, "
               f"once a day): {result.verdict}")
    return result


def alternate(number: int, opts, root: Path, once: Callable[[str, Path], Run], runs: dict[str, list[Run]],
              warm_up: str) -> None:
    """One warm-up run of ``warm_up`` (in ``root/warmup``), then ``opts.runs`` rounds
    in which every variant of ``runs`` runs once, in turn, so that both sides of a
    ratio see the same machine."""
    progress(f"{number}: warm-up")
    once(warm_up, root / "warmup")
    for i in range(opts.runs):
        for name in runs:
            progress(f"{number}: run {i + 1}/{opts.runs}: {name}")
            runs[name].append(once(name, root / f"run{i}-{name.replace(' ', '')}"))


# ----------------------------------------------------------------------------- 8. wide fan-out

WIDE_STOCKS = STOCKS + [f"T{i:02d}" for i in range(100 - len(STOCKS) - len(CRYPTO))]  # 97 stocks + 3 crypto


def bench_wide(opts, root: Path) -> Result:
    result = Result(8, "wide fan-out: 100-symbol hold cycle / 1-symbol hold cycle", "<= 1.5")
    variants = {"1 stock": (ONE_STOCK, []), "100 symbols": (WIDE_STOCKS, CRYPTO)}
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        for symbol in WIDE_STOCKS[len(STOCKS):]:
            fake.set_price(symbol, "100.00")
        with fake.lock:
            fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in [*WIDE_STOCKS, *CRYPTO]}
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def once(name: str, folder: Path) -> Run:
            stocks, crypto = variants[name]
            write_config(fake, folder, stocks, crypto)
            copy_db(template, folder)
            reset_fake(fake)
            run = run_cycle(fake, folder, env)
            if fake.count("alpaca", "POST", "/v2/orders"):
                raise BenchError(f"{name}: an order on a hold cycle")
            return run

        alternate(8, opts, root, once, runs, warm_up="100 symbols")
    medians = {name: median([r.wall for r in rs]) for name, rs in runs.items()}
    for name, rs in runs.items():
        result.add(f"  `run` {name:<26} {medians[name]:7.3f} s   runs: {fmt_runs([r.wall for r in rs])}")
        result.add(f"  median run, {name}:")
        result.lines += timeline(pick_median(rs), LATENCY)
    ratio = medians["100 symbols"] / medians["1 stock"]
    result.figure, result.passed = f"{ratio:.2f}", ratio <= 1.5
    result.add(f"  ratio {medians['100 symbols']:.3f} / {medians['1 stock']:.3f} = {ratio:.2f} (target <= 1.5): {result.verdict}")
    return result


# ----------------------------------------------------------------------------- 9. shadows


def bench_shadows(opts, root: Path) -> Result:
    """Two shadows on the same (300 ms) server: asked at the same time as the main
    analyst, they should cost the cycle no extra round trip; and what a stored request weighs."""
    result = Result(9, "shadows: 15-symbol cycle with 2 shadows / without", "<= 1.15")
    shadows = [{"model": "shadow-a"}, {"model": "shadow-b", "temperature": 0.3}]
    runs: dict[str, list[Run]] = {"no shadow": [], "2 shadows": []}
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        fake.llm_models = [fake.llm_model, "shadow-a", "shadow-b"]
        fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in [*STOCKS, *CRYPTO]}
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def once(name: str, folder: Path) -> Run:
            ai = {"shadow": shadows} if name == "2 shadows" else {}
            write_config(fake, folder, STOCKS, CRYPTO, ai=ai)
            copy_db(template, folder)
            reset_fake(fake)
            run = run_cycle(fake, folder, env)
            asked = Counter(r.json["model"] for r in run.requests if r.service == "openai" and r.json)
            expected = 15 if name == "no shadow" else 45
            if sum(asked.values()) != expected:
                raise BenchError(f"{name}: {dict(asked)} chat requests, expected {expected}")
            return run

        alternate(9, opts, root, once, runs, warm_up="2 shadows")
        sizes = sqlite3.connect(root / "warmup" / "tradecycle.db").execute(
            "SELECT COUNT(*), AVG(LENGTH(messages)) FROM ai_requests").fetchone()

    medians = {name: median([r.wall for r in rs]) for name, rs in runs.items()}
    for name, rs in runs.items():
        result.add(f"  `run` 15 symbols, {name:<10} {medians[name]:7.3f} s   runs: {fmt_runs([r.wall for r in rs])}")
    result.add(f"  stored requests after one cycle: {sizes[0]} (one per symbol, shared by the main and both shadows),"
               f" {sizes[1]:.0f} bytes each on average (zlib)")
    ratio = medians["2 shadows"] / medians["no shadow"]
    result.figure, result.passed = f"{ratio:.2f}", ratio <= 1.15
    result.add(f"  ratio {medians['2 shadows']:.3f} / {medians['no shadow']:.3f} = {ratio:.2f} (target <= 1.15): {result.verdict}")
    return result


# ----------------------------------------------------------------------------- main


BENCHMARKS: dict[int, Callable] = {
    1: bench_critical_path,
    2: bench_fan_out,
    3: bench_startup,
    4: bench_history,
    5: bench_calls,
    6: bench_quota,
    7: bench_market_data,
    8: bench_wide,
    9: bench_shadows,
}
SHORT_NAMES = {1: "critical path", 2: "fan-out", 3: "start-up", 4: "history", 5: "calls", 6: "quota", 7: "market data",
               8: "wide fan-out", 9: "shadows"}
TARGETS = {1: "<= 1.25", 2: "<= 1.15", 3: "<= 1.2", 4: "<= 1.1", 5: "<= 12, <= 1, 0", 6: "free tiers", 7: "2 a cycle, bars <= 2",
           8: "<= 1.5", 9: "<= 1.15"}


def environment_lines(opts) -> list[str]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "?"
    except Exception:
        commit = "?"
    try:
        from importlib.metadata import version

        tc_version = version("tradecycle")
    except Exception:
        tc_version = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"tradecycle benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"  python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, sqlite {sqlite3.sqlite_version}",
        f"  tradecycle {tc_version} at {REPO} (commit {commit}), load average {load}",
        f"  runs per figure: {opts.runs} (medians){', quick' if opts.quick else ''}; fake latency {LATENCY * 1000:.0f} ms "
        f"(benchmarks 1, 2), 0 ms (4, 5, 6)",
    ]


def check_cli(scratch: Path) -> None:
    """The CLI must be importable by ``sys.executable`` from outside the repo (pip install -e)."""
    proc = subprocess.run([sys.executable, "-c", "import tradecycle.cli"], cwd=scratch, capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        sys.exit(f"{sys.executable} cannot import tradecycle.cli: run with the venv where tradecycle is installed "
                 f"(pip install -e '.[test]')\n{proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3 runs and a 5x smaller history database")
    parser.add_argument("--only", default="", help="comma-separated benchmark numbers, e.g. 1,3")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (printed at the end)")
    opts = parser.parse_args(argv)
    opts.runs = opts.runs or (3 if opts.quick else 5)
    if opts.runs < 1:
        parser.error("--runs must be >= 1")
    opts.startup_runs = max(opts.runs, 6 if opts.quick else 10)
    selected = sorted({int(x) for x in opts.only.split(",") if x.strip()}) if opts.only else sorted(BENCHMARKS)
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {unknown}; choose from {sorted(BENCHMARKS)}")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="tradecycle-bench-"))
    try:
        # What an installed tradecycle runs: its modules compiled once. Without this, an
        # environment with PYTHONDONTWRITEBYTECODE=1 (this sandbox's) compiles every edited
        # module from source in every CLI process, and `run`, which loads more of them than
        # `killswitch`, pays it in the critical path.
        compileall.compile_dir(str(REPO / "tradecycle"), quiet=1)
        check_cli(root)
        for line in environment_lines(opts):
            print(line)
        print(flush=True)
        results: list[Result] = []
        for number in selected:
            folder = root / f"bench{number}"
            folder.mkdir()
            t = time.perf_counter()
            try:
                result = BENCHMARKS[number](opts, folder)
            except Exception as exc:  # one benchmark failing must not sink the others
                result = Result(number, SHORT_NAMES[number], TARGETS[number], error=f"{type(exc).__name__}: {exc}")
                if not isinstance(exc, BenchError):
                    result.lines += ["  " + line for line in traceback.format_exc(limit=4).rstrip().splitlines()]
            result.seconds = time.perf_counter() - t
            results.append(result)
            print(f"{result.number}. {result.name}  [{result.seconds:.0f} s]")
            for line in result.lines:
                print(line)
            if result.error:
                print(f"  ERROR: {result.error}")
            print(flush=True)

        print("summary")
        for r in results:
            figure = r.figure if not r.error else "-"
            print(f"  {r.number}. {SHORT_NAMES[r.number]:<14} {figure:<46} target {TARGETS[r.number]:<16} {r.verdict}")
        print(f"total {time.perf_counter() - started:.0f} s")
        if any(r.error for r in results):
            return 2
        return 0 if all(r.passed for r in results) else 1
    finally:
        if opts.keep:
            print(f"temporary folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
