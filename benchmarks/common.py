"""What the benchmarks share: the fake's market, the CLI runner, results and timelines.

Each benchmark is a module ``bN_<name>.py`` of this folder with one function
``bench_<name>(opts, root) -> Result``; ``run.py`` runs them (all, or ``--only``) and
prints the report. ``year.py`` uses these helpers too. See benchmarks/README.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakeserver import FakeServices  # noqa: E402  (needs the repo on sys.path)

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

    def compare(self, a: float, b: float, limit: float) -> None:
        """The figure is the ratio ``a / b``, its target ``<= limit``: the verdict and its line."""
        ratio = a / b
        self.figure, self.passed = f"{ratio:.2f}", ratio <= limit
        self.add(f"  ratio {a:.3f} / {b:.3f} = {ratio:.2f} (target <= {limit}): {self.verdict}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def median_walls(runs: dict[str, list[Run]]) -> dict[str, float]:
    """The median wall time of each variant's runs."""
    return {name: median([r.wall for r in rs]) for name, rs in runs.items()}


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
    """An empty, migrated database, as the first cycle leaves it for the next (`killswitch`
    warms the CLI up; it reads the switch and never creates a database, so the one made
    here is opened and migrated by this version's store: the cycles timed never migrate)."""
    from tradecycle.store import open_database

    write_config(fake, folder, ONE_STOCK, [])
    run_cli(["killswitch", "--config", str(folder / "config.toml")], folder, env)
    path = folder / "tradecycle.db"
    open_database(path).close()
    return path


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



# ----------------------------------------------------------------------------- shared by several benchmarks

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


def run_alone(number: int) -> None:
    """``python benchmarks/bN_<name>.py [options]``: the same as ``run.py --only N [options]``."""
    import run  # here, not above: run.py imports every benchmark, and every benchmark imports this module

    sys.exit(run.main([*sys.argv[1:], "--only", str(number)]))


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
