#!/usr/bin/env python3
"""A year on one small disk: the database after a simulated year at 15 symbols.

    /root/venv-bench/bin/python benchmarks/year.py            # seeds (or reuses) /tmp/tradecycle-year-v5.db
    /root/venv-bench/bin/python benchmarks/year.py --runs 7 --reseed

How the year is simulated: one real cycle (15 symbols, the LLM analyst, 0 ms fake)
gives the shape of every row; the seeder then writes a year of them in bulk, as the
cycles of a year would have written them with this version (store/spans.py):

- a ``cycles`` row every minute (525,600), its summary as long as the real one;
- stocks (12): outside market hours (14:30-21:00 UTC, weekdays) one ``market_closed``
  decision and one quote per closed stretch, extended minute by minute; in market hours
  a fresh LLM ``hold`` every 15 minutes (``ai.max_decision_age_minutes``) and one
  ``unchanged`` row extended over the 14 minutes in between; a new quote every minute;
- crypto (3): the same as a stock in market hours, all day;
- 10 filled trades and 120 headlines a day;
- one link of the record's hash chain per write (store/chain.py): every decision inserted
  (its content as inserted) or extended (the span's end; a minute's extensions packed in
  one row, a run), every trade. The seeder writes a day at once, so a trade is linked with
  its content at the end of that day: the same links, the same sizes, and ``tradecycle
  verify`` passes on the result.

The year is seeded once into /tmp (about 2 minutes on 2 cores) and reused by later
runs (``--reseed`` to rebuild). Then, on copies of it:

1. size with ``keep_days = 0`` (the seeded file);
2. the first prune with the default ``keep_days = 90``, cycle budget after cycle budget,
   as the cycles after the upgrade would run it: how many cycles, the longest write
   transaction; then the size of the file;
3. on that pruned year (the steady state of the defaults) against a fresh database:
   a 15-symbol cycle, ``decisions --since`` one day and ``trades --since`` one day,
   each a CLI subprocess, medians of ``--runs`` alternating runs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import common as bench  # noqa: E402  (the CLI runner, fake set-up and helpers the benchmarks share)

from tradecycle.store import chain  # noqa: E402

YEAR_DB = Path(tempfile.gettempdir()) / "tradecycle-year-v5.db"  # v5: the chain's extensions packed in runs
DAYS = 365
KEEP_DAYS = 90
DECISION_EVERY_MINUTES = 15
OPEN_MINUTE, CLOSE_MINUTE = 14 * 60 + 30, 21 * 60  # UTC


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def is_open(moment: datetime) -> bool:
    minute = moment.hour * 60 + moment.minute
    return moment.weekday() < 5 and OPEN_MINUTE <= minute < CLOSE_MINUTE


def template_rows(db_path: Path) -> dict:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return {
            "cycle": dict(conn.execute("SELECT * FROM cycles LIMIT 1").fetchone()),
            "decisions": {r["symbol"]: dict(r) for r in conn.execute("SELECT * FROM ai_decisions")},
        }
    finally:
        conn.close()


class Seeder:
    """Writes the rows of one minute after another, extending rows as spans.py would."""

    def __init__(self, conn: sqlite3.Connection, template: dict, rng: random.Random):
        self.conn, self.template, self.rng = conn, template, rng
        self.symbols = bench.STOCKS + bench.CRYPTO
        self.price = {s: float(bench.PRICES[s]) for s in self.symbols}
        self.open_decision: dict[str, list] = {}  # symbol -> [id, outcome, first minute, repeats, last cycle, last at]
        self.open_quote: dict[str, list] = {}
        self.next_decision_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM ai_decisions").fetchone()[0]
        self.next_quote_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM quotes").fetchone()[0]
        self.next_trade_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM trades").fetchone()[0]
        self.link_seq, self.link_prev = chain.head_of(conn)
        self.batch = {"cycles": [], "ai_decisions": [], "quotes": [], "trades": [], "news": [], "extend_d": [], "extend_q": [],
                      "writes": []}

    def minute(self, at: datetime, index: int) -> None:
        cycle_id = f"{at:%Y-%m-%dT%H:%M}Z-{index & 0xFFFF:04x}"
        stamp = iso(at)
        outcomes = {}
        for symbol in self.symbols:
            trading = "/" in symbol or is_open(at)
            if trading:
                self.price[symbol] *= 1 + self.rng.gauss(0, 0.0004)
                minute_of_day = at.hour * 60 + at.minute
                fresh = minute_of_day % DECISION_EVERY_MINUTES == 0 or symbol not in self.open_decision
                outcome = "hold" if fresh else "unchanged"
                self.quote(symbol, cycle_id, stamp, new=True)
            else:
                outcome = "market_closed"
                self.quote(symbol, cycle_id, stamp, new=False)
            outcomes[symbol] = outcome
            self.decision(symbol, outcome, cycle_id, stamp)
        summary = json.dumps({"symbols": 15, "orders": 0, "errors": 0, "outcomes": outcomes, "notes": []})
        self.batch["cycles"].append((cycle_id, stamp, stamp, "completed", 0, None, 1200, 15, 0, 0, summary))
        if index % 144 == 0:  # 10 trades a day
            self.batch["writes"].append((2, self.next_trade_id, int(at.timestamp())))
            self.next_trade_id += 1
            self.batch["trades"].append((self.next_trade_id - 1, cycle_id, "AAPL", "buy", "1.5", "190.00", "filled", f"tc-{cycle_id}-AAPL", f"ord-{index}",
                                         stamp, None, stamp, stamp, "285.00", 0, "1.5", "190.00"))
        if index % 12 == 0:  # 120 headlines a day
            symbol = bench.STOCKS[index // 12 % len(bench.STOCKS)]
            self.batch["news"].append((symbol, f"y{index}", f"{symbol} shares edge higher ahead of earnings",
                                       "Shares rose in early trading as investors looked ahead to the quarter.", "Reuters",
                                       f"https://news.example.com/{symbol.lower()}/y{index}", stamp, stamp))

    def decision(self, symbol: str, outcome: str, cycle_id: str, stamp: str) -> None:
        current = self.open_decision.get(symbol)
        if outcome != "hold" and current and current[1] == outcome:
            self.batch["extend_d"].append((stamp, cycle_id, current[0]))
            self.batch["writes"].append((chain.EXTENDED, current[0], _seconds(stamp),
                                         chain.span_hash({"last_seen_at": stamp, "last_cycle_id": cycle_id})))
            return
        row = dict(self.template["decisions"][symbol])
        reused = current[0] if outcome == "unchanged" and current else None
        row.update(id=self.next_decision_id, cycle_id=cycle_id, outcome=outcome, created_at=stamp,
                   price=f"{self.price[symbol]:.2f}", reused_decision_id=reused, repeats=0, last_seen_at=None, last_cycle_id=None)
        if outcome != "hold":
            row.update(raw_reply=None, latency_ms=None, prompt_tokens=None, completion_tokens=None,
                       detail="market closed; next open 2026-11-26T14:30:00Z" if outcome == "market_closed"
                       else f"hold #{reused} still stands: price moved 0.12%, no new headline, same position")
        self.batch["ai_decisions"].append(row)
        self.batch["writes"].append((1, self.next_decision_id, _seconds(stamp)))
        self.open_decision[symbol] = [self.next_decision_id, outcome]
        self.next_decision_id += 1

    def link(self, writes: list[tuple]) -> None:
        """One chain link per write of the day, in order, as store/chain.py writes them: an insert or a
        trade with its row's content (a decision as inserted, a trade at the end of the day), an extension
        with the span's end (kind 3), the extensions of one minute packed in one row (a run)."""
        content = {}
        for kind, table in ((1, "ai_decisions"), (2, "trades")):
            ids = sorted({w[1] for w in writes if w[0] == kind})
            defaults = chain.column_defaults(self.conn, table)
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                cursor = self.conn.execute(f"SELECT * FROM {table} WHERE id IN ({', '.join('?' for _ in part)})", part)
                names = [d[0] for d in cursor.description]
                for values in cursor:
                    row = dict(zip(names, values))
                    if kind == 1:  # the insert's link: the row as inserted
                        row.update(repeats=0, last_seen_at=None, last_cycle_id=None)
                    content[(kind, row["id"])] = chain.content_hash(row, defaults)
        links: list[list] = []
        for write in writes:
            kind, row_id, linked_at = write[:3]
            self.link_seq += 1
            linked = write[3] if kind == chain.EXTENDED else content[(kind, row_id)]
            self.link_prev = chain.link_hash(self.link_prev, self.link_seq, kind, row_id, linked_at, linked)
            last = links[-1] if links else None
            if (kind == chain.EXTENDED and last and last[1] == kind and last[3] == linked_at and last[4] == linked
                    and len(last[6]) < chain.MAX_RUN):
                last[6].append(row_id)
                if self.link_seq % chain.HASH_STRIDE == 0 or last[5] is not None:
                    last[5] = bytes.fromhex(self.link_prev)
                continue
            stored = bytes.fromhex(self.link_prev) if chain.stores_hash(self.link_seq, kind) else None
            links.append([self.link_seq, kind, row_id, linked_at, linked, stored, [row_id]])
        rows = []
        for seq, kind, row_id, linked_at, linked, stored, ids in links:
            detail = ",".join(str(b - a) for a, b in zip(ids, ids[1:])) or None
            rows.append((seq, kind, row_id, linked_at, linked, stored, detail))
        self.conn.executemany("INSERT INTO chain_links (seq, kind, row_id, linked_at, content, hash, detail)"
                              " VALUES (?,?,?,?,?,?,?)", rows)

    def quote(self, symbol: str, cycle_id: str, stamp: str, new: bool) -> None:
        if not new and symbol in self.open_quote:
            self.batch["extend_q"].append((stamp, cycle_id, self.open_quote[symbol]))
            return
        source = "coingecko" if "/" in symbol else "finnhub"
        self.batch["quotes"].append((self.next_quote_id, cycle_id, symbol, f"{self.price[symbol]:.2f}", stamp, source, "0.4210",
                                     f"{self.price[symbol]:.2f}", stamp))
        self.open_quote[symbol] = self.next_quote_id
        self.next_quote_id += 1

    def flush(self) -> None:
        b, c = self.batch, self.conn
        c.executemany("INSERT INTO cycles (cycle_id, started_at, finished_at, status, dry_run, error, duration_ms, symbols_count,"
                      " orders_count, errors_count, summary) VALUES (?,?,?,?,?,?,?,?,?,?,?)", b["cycles"])
        if b["ai_decisions"]:
            columns = list(b["ai_decisions"][0])
            c.executemany(f"INSERT INTO ai_decisions ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                          [tuple(r[k] for k in columns) for r in b["ai_decisions"]])
        c.executemany("INSERT INTO quotes (id, cycle_id, symbol, price, as_of, source, change_percent, previous_close, fetched_at)"
                      " VALUES (?,?,?,?,?,?,?,?,?)", b["quotes"])
        c.executemany("INSERT INTO trades (id, cycle_id, symbol, side, quantity, price, status, client_order_id, broker_order_id,"
                      " executed_at, notes, created_at, updated_at, notional_usd, dry_run, filled_qty, filled_avg_price)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", b["trades"])
        c.executemany("INSERT OR IGNORE INTO news (symbol, news_id, headline, summary, source, url, published_at, fetched_at)"
                      " VALUES (?,?,?,?,?,?,?,?)", b["news"])
        c.executemany("UPDATE ai_decisions SET repeats = repeats + 1, last_seen_at = ?, last_cycle_id = ? WHERE id = ?", b["extend_d"])
        c.executemany("UPDATE quotes SET repeats = repeats + 1, last_seen_at = ?, last_cycle_id = ? WHERE id = ?", b["extend_q"])
        self.link(b["writes"])
        for rows in b.values():
            rows.clear()


def _seconds(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def seed_year(db_path: Path, template: dict, now: datetime) -> float:
    started = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    seeder = Seeder(conn, template, random.Random(2026))
    start = (now - timedelta(days=DAYS)).replace(second=0, microsecond=0)
    minutes = DAYS * 24 * 60
    seed_days(conn, seeder, start, DAYS, "seeding the year", every=30)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert minutes == DAYS * 1440
    return time.perf_counter() - started


def one_real_cycle(fake, base: Path, keep_days: int) -> dict[str, str]:
    """The fake's 15-symbol market (the LLM holds), a config in ``base`` and one real
    cycle run there by the CLI: the schema and the shape of every seeded row. Returns the CLI's environment."""
    bench.setup_market(fake)
    fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in bench.STOCKS + bench.CRYPTO}
    env = bench.cli_env(fake)
    bench.write_config(fake, base, bench.STOCKS, bench.CRYPTO, database={"keep_days": keep_days})
    bench.run_cycle(fake, base, env)
    return env


def seed_days(conn, seeder: "Seeder", start: datetime, days: int, label: str, every: int) -> None:
    """``days`` days of one-minute cycles from ``start``, a transaction a day, progress every ``every`` days."""
    for day in range(days):
        conn.execute("BEGIN")
        for m in range(day * 1440, (day + 1) * 1440):
            seeder.minute(start + timedelta(minutes=m), m)
        seeder.flush()
        conn.execute("COMMIT")
        if day % every == 0:
            bench.progress(f"{label}: day {day}/{days}")


def counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("cycles", "ai_decisions", "quotes", "trades", "news", "chain_links")}
    finally:
        conn.close()


def chain_bytes(db_path: Path) -> int:
    """Bytes of the chain's table and indexes (the dbstat table; 0 where SQLite lacks it)."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE '%chain_links%'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def first_prune(db_path: Path, now: datetime) -> dict:
    """The prune the cycles after turning keep_days = 90 on would run, one cycle budget at a time."""
    from contextlib import contextmanager

    from tradecycle.store import Database, retention

    durations: list[float] = []

    class Timed(Database):
        @contextmanager
        def transaction(self):
            t = time.perf_counter()
            with super().transaction():
                yield
            durations.append(time.perf_counter() - t)

        def run_to_completion(self, sql):
            t = time.perf_counter()
            super().run_to_completion(sql)
            durations.append(time.perf_counter() - t)

    db = Timed(db_path)
    before = iso(now - timedelta(days=KEEP_DAYS))
    calls, walls, rows, pages = 0, [], 0, 0
    while True:
        t = time.perf_counter()
        report = retention.prune(db, before)
        walls.append(time.perf_counter() - t)
        calls += 1
        rows += report.rows
        pages += report.pages_freed
        if report.done:
            break
        if calls % 500 == 0:
            bench.progress(f"first prune: {calls} cycle budgets, {rows:,} rows")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    durations.sort()
    return {"cycles": calls, "rows": rows, "pages": pages, "transactions": len(durations), "longest_transaction": durations[-1],
            "p99_transaction": durations[int(len(durations) * 0.99)], "median_transaction": durations[len(durations) // 2],
            "longest_call": max(walls)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="a year's database at 15 symbols")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reseed", action="store_true", help=f"rebuild {YEAR_DB}")
    opts = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="tradecycle-year-"))
    now = datetime.now(UTC)
    try:
        with bench.FakeServices(latency_seconds=0.0) as fake:
            base = root / "base"
            env = one_real_cycle(fake, base, KEEP_DAYS)  # the schema and one real cycle: the shape of every row
            fresh = root / "fresh.db"
            shutil.copyfile(base / "tradecycle.db", fresh)
            if opts.reseed or not YEAR_DB.exists():
                shutil.copyfile(base / "tradecycle.db", YEAR_DB)
                took = seed_year(YEAR_DB, template_rows(base / "tradecycle.db"), now)
                print(f"seeded {YEAR_DB} in {took:.0f} s")
            else:
                print(f"reusing {YEAR_DB} (seeded earlier; --reseed rebuilds it)")
            year_counts = counts(YEAR_DB)
            print(f"a year, keep_days = 0: {YEAR_DB.stat().st_size / 1e6:.0f} MB: "
                  + ", ".join(f"{n:,} {t}" for t, n in year_counts.items()))
            pruned = root / "pruned.db"
            shutil.copyfile(YEAR_DB, pruned)
            bench.progress("first prune (keep_days = 90)")
            t = time.perf_counter()
            stats = first_prune(pruned, now)
            print(f"first prune: {stats['rows']:,} rows and {stats['pages']:,} pages over {stats['cycles']} cycles"
                  f" ({time.perf_counter() - t:.0f} s in all); {stats['transactions']:,} write transactions: median"
                  f" {stats['median_transaction'] * 1000:.1f} ms, 99th percentile {stats['p99_transaction'] * 1000:.0f} ms,"
                  f" longest {stats['longest_transaction'] * 1000:.0f} ms; longest cycle's share {stats['longest_call'] * 1000:.0f} ms")
            size = pruned.stat().st_size
            print(f"a year, keep_days = 90 (default): {size / 1e6:.0f} MB: "
                  + ", ".join(f"{n:,} {t}" for t, n in counts(pruned).items()) + f"  (target <= 500 MB: {'ok' if size <= 500e6 else 'MISS'})")
            print(f"  of which the chain: {chain_bytes(pruned) / 1e6:.0f} MB")
            t = time.perf_counter()
            verified = subprocess.run([sys.executable, "-m", "tradecycle.cli", "verify", "--db", str(pruned), "--json"],
                                      capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - t
            verdict = json.loads(verified.stdout) if verified.stdout.strip().startswith("{") else {}
            print(f"verify on it: exit {verified.returncode}, {verdict.get('links', 0):,} links in {seconds:.1f} s"
                  f" ({'intact' if verdict.get('ok') else 'NOT intact: ' + verified.stderr.strip()[:200]})")

            def in_folder(template: Path, name: str) -> Path:
                folder = root / name
                bench.write_config(fake, folder, bench.STOCKS, bench.CRYPTO,
                                   database={"keep_days": KEEP_DAYS}, ai={"max_decision_age_minutes": 0.001})
                bench.copy_db(template, folder)
                return folder

            folders = {"year": in_folder(pruned, "year"), "fresh": in_folder(fresh, "freshrun")}
            day_ago = iso(now - timedelta(days=1))
            commands = {
                "cycle": None,
                "decisions --since": ["decisions", "--since", day_ago, "--limit", "50"],
                "trades --since": ["trades", "--since", day_ago, "--limit", "50"],
            }
            walls = {(c, d): [] for c in commands for d in folders}
            for i in range(opts.runs + 1):  # the first round warms up
                bench.progress(f"run {i}/{opts.runs}")
                for command, args in commands.items():
                    for which, folder in folders.items():
                        config = str(folder / "config.toml")
                        if args is None:
                            bench.reset_fake(fake)
                            run = bench.run_cycle(fake, folder, env)
                        else:
                            run = bench.run_cli([*args, "--config", config, "--json"], folder, env)
                        if i:
                            walls[(command, which)].append(run.wall)
        targets = {"cycle": 1.1, "decisions --since": 1.5, "trades --since": 1.5}
        failed = False
        for command, target in targets.items():
            a, b = bench.median(walls[(command, "year")]), bench.median(walls[(command, "fresh")])
            ok = a / b <= target
            failed |= not ok
            print(f"{command:<18} year {a:.3f} s / fresh {b:.3f} s = {a / b:.2f} (target <= {target}): {'ok' if ok else 'MISS'}"
                  f"   runs: {bench.fmt_runs(walls[(command, 'year')])} | {bench.fmt_runs(walls[(command, 'fresh')])}")
        failed |= size > 500e6
        return 1 if failed else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
