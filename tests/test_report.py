"""`tradecycle report`: one self-contained HTML file, checked as written and as a
real browser draws it.

The database is a week of real cycles (every 2 hours, 84 cycles) of the shipped
offline config with a rules shadow, run in this process on a simulated clock
(tests/simulated.py): the simulated market moves with that clock, the
simulated broker fills, the rules analyst and its shadow decide.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tradecycle.render import report, verdict_html

from .e2e_helpers import clean_env, describe, run_cli
from .simulated import OfflineCycles

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
EVERY_SECONDS, CYCLES = 2 * 3600, 84  # a week
SHADOW = '\n[[ai.shadow]]\nprovider = "rules"\n'
SECTION_IDS = list(report.SECTIONS)
CHART_IDS = ("equity-chart", "drawdown-chart", "daily-pnl-chart")


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> OfflineCycles:
    cycles = OfflineCycles(tmp_path_factory.mktemp("week"), START, SHADOW)
    reports = cycles.run_every(EVERY_SECONDS, CYCLES)
    assert {r.status for r in reports} == {"completed"}
    return cycles


def rows(cycles: OfflineCycles, sql: str, params=()) -> list[dict]:
    with sqlite3.connect(cycles.config.database_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def cli(cycles: OfflineCycles, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli([*args, "--config", str(cycles.config_path)], clean_env({}), cwd=cwd)


@pytest.fixture(scope="module")
def written(week, tmp_path_factory) -> tuple[Path, str, subprocess.CompletedProcess]:
    """``tradecycle report --out x.html`` run in an empty folder: (the file, its text, the run)."""
    folder = tmp_path_factory.mktemp("out")
    result = cli(week, "report", "--out", "x.html", cwd=folder)
    assert result.returncode == 0, describe(result)
    path = folder / "x.html"
    return path, path.read_text(encoding="utf-8"), result


class Markup(HTMLParser):
    """Every tag with its attributes, the text of each <style>, and the scripts' own attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background", "xlink:href", "manifest"}


def network_references(text: str) -> list[str]:
    """Whatever in the markup would make a browser fetch something: an attribute that
    names a resource, a CSS url() or @import that is not inline data."""
    markup = Markup()
    markup.feed(text)
    found = [f"<{tag} {name}={value!r}>" for tag, attrs in markup.tags for name, value in attrs.items()
             if name in URL_ATTRIBUTES and value and not value.startswith(("#", "data:"))]
    css = markup.styles + [attrs.get("style") or "" for _, attrs in markup.tags]
    for block in css:
        found += [f"url({u})" for u in re.findall(r"url\(\s*['\"]?([^'\")]*)", block) if not u.startswith(("#", "data:"))]
        found += re.findall(r"@import[^;]*", block)
    return found


def test_report_of_a_week_has_every_section_and_needs_no_network(week, written):
    path, text, result = written
    # One file, where --out said, and the command says so.
    assert [p.name for p in path.parent.iterdir()] == ["x.html"]
    first, last = rows(week, "SELECT MIN(started_at) AS a, MAX(started_at) AS b FROM cycles")[0].values()
    assert result.stdout.strip() == f"wrote {path} ({CYCLES} cycles, {first} to {last})"

    for key, title in report.SECTIONS.items():
        assert f'<section id="{key}">' in text and f"<h2>{title.replace('&', '&amp;')}</h2>" in text
    for chart in CHART_IDS:
        assert f'id="{chart}"' in text

    # Nothing fetched from anywhere: no resource named in the markup, plotly.js inline, and a
    # policy that forbids the page any request at all.
    assert network_references(text) == []
    assert "<script src" not in text and "Plotly.newPlot" in text and "plotly.js v" in text.lower()
    assert "default-src 'none'" in text


def test_the_report_shows_what_score_and_status_say(week, written):
    _, text, _ = written
    card = json.loads(cli(week, "score", "--json").stdout)
    status = json.loads(cli(week, "status", "--json").stdout)
    perf = card["performance"]
    for figure in ("strategy_return_percent", "benchmark_return_percent", "vs_benchmark_percent"):
        assert f"{Decimal(perf[figure]):+,.2f}</span>%" in text or perf[figure] == "0.00"
    assert f"<dt>max drawdown</dt><dd>{perf['max_drawdown_percent']}%</dd>" in text
    # The scorecard per analyst: main and its shadow, with their decision counts.
    for analyst in card["analysts"]:
        counts = analyst["symbols"]["all"]["decisions"]
        cells = "".join(f'<td class="num">{counts[a]}</td>' for a in ("buy", "sell", "hold", "failed"))
        assert f"<td>{analyst['analyst']}</td><td>{analyst['role']}</td><td>all</td>{cells}" in text
    assert [a["role"] for a in card["analysts"]] == ["main", "shadow"]
    # Positions with the protective exit levels that status shows.
    assert status["positions"], "the week should end holding something"
    for position in status["positions"]:
        stop = f"{position['stop_loss_price']} ({position['stop_loss_distance_percent']:+.1f}%)"
        assert f"<td>{position['symbol']}</td>" in text and stop in text


def test_each_of_the_last_trades_shows_the_reasoning_that_led_to_it(week, written):
    _, text, _ = written
    trades = rows(week, """SELECT t.cycle_id, t.symbol, t.side, d.reasoning FROM trades t JOIN ai_decisions d
                           ON d.cycle_id = t.cycle_id AND d.symbol = t.symbol AND d.role = 'main'
                           ORDER BY t.created_at DESC, t.id DESC LIMIT ?""", (report.LAST_TRADES,))
    assert len(trades) >= 3, "a week of cycles should have traded (carefully: a calibrated market, no buy back after a stop)"
    section = text[text.index('<section id="trades">'):]
    for trade in trades:
        from html import escape

        assert f'<td class="id">{trade["cycle_id"]}</td><td>{trade["symbol"]}</td><td>{trade["side"]}</td>' in section
        assert escape(trade["reasoning"]) in section
    assert section.count("<tr>") == 1 + min(report.LAST_TRADES, rows(week, "SELECT COUNT(*) AS n FROM trades")[0]["n"])


def test_the_footer_carries_the_chain_head_that_verify_prints(week, written):
    _, text, _ = written
    verified = cli(week, "verify", "--json")
    assert verified.returncode == 0, describe(verified)  # a week of real cycles: every row as written
    head = json.loads(verified.stdout)["head"]
    footer = text[text.index("<footer>"):]
    assert f"Record: chain head <code>{head['hash']}</code> (link {head['seq']}, {head['linked_at']})" in footer


def test_since_takes_an_offset_like_the_history_commands(week, tmp_path):
    # 2026-11-05T13:00+01:00 is 12:00Z: the cycles from then on.
    result = cli(week, "report", "--out", str(tmp_path / "r.html"), "--since", "2026-11-05T13:00+01:00")
    later = rows(week, "SELECT started_at FROM cycles WHERE started_at >= '2026-11-05T12:00:00Z' ORDER BY started_at")
    assert result.returncode == 0, describe(result)
    assert f"({len(later)} cycles, {later[0]['started_at']} to {later[-1]['started_at']})" in result.stdout
    assert later[0]["started_at"] == "2026-11-05T12:00:00Z"
    assert "since 2026-11-05T12:00:00Z" in (tmp_path / "r.html").read_text(encoding="utf-8")

    bad = cli(week, "report", "--out", str(tmp_path / "bad.html"), "--since", "last tuesday")
    assert bad.returncode == 2 and "--since 'last tuesday': not an ISO time" in bad.stderr
    assert not (tmp_path / "bad.html").exists()


def test_before_the_first_run_the_report_says_so(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(OfflineCycles.SHIPPED_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    result = run_cli(["report", "--config", str(config)], clean_env({}), cwd=tmp_path)

    assert result.returncode == 0, describe(result)
    database = tmp_path / "tradecycle.db"
    assert result.stdout.strip() == (f"wrote {tmp_path / 'report.html'}: empty, there is no database at {database} yet"
                                     " (run `tradecycle run` first)")
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"There is no database at {database} yet: run `tradecycle run` first." in text
    assert "No analysed decision yet." in text and "No open position." in text and "No trade yet." in text
    assert "<script" not in text  # no chart, so no plotly.js either
    assert not database.exists()  # reading never creates a database


def test_an_out_folder_that_does_not_exist_is_a_usage_error(tmp_path):
    result = run_cli(["report", "--out", str(tmp_path / "nowhere" / "r.html"), "--db", str(tmp_path / "x.db"),
                      "--config", str(OfflineCycles.SHIPPED_CONFIG)], clean_env({}))
    assert result.returncode == 2
    assert result.stderr.strip() == f"tradecycle: --out {tmp_path / 'nowhere' / 'r.html'}: the folder {tmp_path / 'nowhere'} does not exist"


# -- pure parts --------------------------------------------------------------------------


def test_daily_pnl_is_each_days_last_equity_less_the_day_before():
    equity = [("2026-11-02T09:00:00Z", "100000"), ("2026-11-02T20:00:00Z", "100500"), ("2026-11-03T10:00:00Z", "99000"),
              ("2026-11-05T10:00:00Z", "99250.50")]
    days = report.daily_pnl([{"started_at": t, "equity": e} for t, e in equity])
    assert days == [("2026-11-02", Decimal("500")), ("2026-11-03", Decimal("-1500")), ("2026-11-05", Decimal("250.50"))]
    assert sum(p for _, p in days) == Decimal("99250.50") - Decimal("100000")


def test_the_benchmark_line_ends_where_the_scorecards_benchmark_does():
    # The scorecard's hand computation (tests/test_scorecard.py): AAPL 100 -> 130, MSFT 400 -> 390: +13.75 %.
    start = {"AAPL": "100", "MSFT": "400"}
    assert report.benchmark_equity(Decimal(100000), start, {"AAPL": "130", "MSFT": "390"}) == Decimal("113750")
    assert report.benchmark_equity(Decimal(100000), start, {}) is None


def test_a_year_of_minute_cycles_is_thinned_keeping_the_ends():
    points = report.chart_points(range(525_600))
    assert len(points) == report.MAX_CHART_POINTS and points[0] == 0 and points[-1] == 525_599
    assert report.chart_points(range(10)) == list(range(10))


def test_an_analysts_reasoning_is_shown_as_text_never_run(tmp_path):
    """The reasoning comes from an LLM: untrusted. A reply holding markup shows as text."""
    from tradecycle.store import Store, open_database

    db = open_database(tmp_path / "tradecycle.db")
    store = Store(db)
    store.start_cycle("c1", START, False)
    store.record_decision({"cycle_id": "c1", "symbol": "AAPL", "created_at": "2026-11-02T00:00:00Z", "role": "main",
                           "model": "m", "action": "buy", "confidence": 0.9, "outcome": "ordered", "price": "100",
                           "reasoning": "<script>alert('pwned')</script><img src=http://evil.example/x.png>"})
    store.insert_trade({"cycle_id": "c1", "symbol": "AAPL", "side": "buy", "quantity": "1", "price": "100", "status": "filled",
                        "client_order_id": "o1", "dry_run": 0, "created_at": "2026-11-02T00:00:00Z"})
    db.close()
    out = tmp_path / "r.html"
    result = run_cli(["report", "--out", str(out), "--db", str(tmp_path / "tradecycle.db"), "--config",
                      str(OfflineCycles.SHIPPED_CONFIG)], clean_env({}))
    assert result.returncode == 0, describe(result)
    text = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;&lt;img src=http://evil.example/x.png&gt;" in text
    assert "<script>alert" not in text and network_references(text) == []


# -- in a real browser ---------------------------------------------------------------------


class CountingProxy:
    """An HTTP proxy on loopback that answers nothing and records the host of every request made to it."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.requests: list[str] = []  # request lines: "GET http://host/path HTTP/1.1", "CONNECT host:443 HTTP/1.1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.requests.append(conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def hosts(self) -> list[str]:
        return [urlsplit(target if "//" in target else f"//{target}").hostname for _, target, *_ in map(str.split, self.requests)]


# What Chromium asks of the network for itself whatever the page (update checks, network
# time, sign-in), with every switch that should stop it: Google's own hosts (measured on a
# blank page; which of them varies by version and run), never anything a report would load.
CHROMIUM_OWN_DOMAINS = ("google.com", "gvt1.com")
CHROMIUM_OWN_HOSTS = {"update.googleapis.com"}


def chromium_own(host: str) -> bool:
    return host in CHROMIUM_OWN_HOSTS or any(host == d or host.endswith("." + d) for d in CHROMIUM_OWN_DOMAINS)
# Skipped on a developer's machine without Chromium; in CI (CI=true, where .ci/run installs it) never.
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                                    reason="chromium is not on PATH (.ci/run installs it: apt-get install chromium)")


def browse(page: Path, folder: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """Open ``page`` in headless Chromium with no network: every request goes to a
    proxy that answers none (loopback included) and every host name resolves to
    nothing. The DOM after scripts ran, and the hosts the page asked for."""
    proxy = CountingProxy()
    shot = [f"--screenshot={screenshot}", "--window-size=1280,2400"] if screenshot else []
    try:
        browser = subprocess.run(
            ["chromium", "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run", f"--user-data-dir={folder / 'profile'}",
             f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=5000", *shot, "--dump-dom",
             page.as_uri()],
            capture_output=True, text=True, timeout=60, env=clean_env({"DBUS_SESSION_BUS_ADDRESS": "disabled:"}),
        )
    finally:
        proxy.server.close()
    assert browser.returncode == 0, browser.stderr[-2000:]
    return browser.stdout, [h for h in proxy.hosts() if not chromium_own(h)]


def chart_segment(dom: str, chart_id: str) -> str:
    start = dom.index(f'id="{chart_id}"')
    following = [dom.find(f'id="{other}"', start + 1) for other in CHART_IDS if other != chart_id]
    ends = [i for i in following if i > start] + [dom.find("</section>", start)]
    return dom[start:min(ends)]


def colours(png: Path) -> list[tuple[int, tuple[int, int, int]]]:
    from PIL import Image

    return Image.open(png).convert("RGB").getcolors(maxcolors=1 << 24)


def pixels_of(counts: list[tuple[int, tuple[int, int, int]]], colour: str, tolerance: int = 6) -> int:
    target = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return sum(n for n, rgb in counts if all(abs(a - b) <= tolerance for a, b in zip(rgb, target)))


@needs_chromium
def test_chromium_draws_the_charts_without_any_network(week, written, tmp_path):
    path, _, _ = written
    days = len(report.daily_pnl(rows(week, "SELECT started_at, equity FROM cycles WHERE equity IS NOT NULL ORDER BY started_at")))
    screenshot = tmp_path / "report.png"

    dom, asked = browse(path, tmp_path, screenshot)

    # plotly ran and drew each chart as SVG: the equity and buy-and-hold lines, the drawdown
    # area, one bar per day.
    equity, drawdown, daily = (chart_segment(dom, chart) for chart in CHART_IDS)
    for segment in (equity, drawdown, daily):
        assert 'class="main-svg"' in segment
    lines = [d for d in re.findall(r'<path class="js-line" d="(M[^"]+)"', equity) if d.count("L") >= 10]  # not the legend's
    assert len(lines) == 3  # equity, buy and hold, buy and hold at the strategy's exposure (cash is flat: two points)
    assert re.search(r'<path class="js-fill" d="M[^"]{200,}"', drawdown)
    assert len(re.findall(r'<g class="point"><path d="M[^"]+Z"', daily)) == days

    # The screenshot shows them: many pixels of each chart's own colours, on a page that is not blank.
    counts = colours(screenshot)
    assert pixels_of(counts, report.EQUITY_COLOR) > 500
    assert pixels_of(counts, report.BENCHMARK_COLOR) > 300
    assert pixels_of(counts, report.GAIN_COLOR) + pixels_of(counts, report.LOSS_COLOR) > 5000
    assert len(counts) > 200

    # And the page asked nothing of the network.
    assert asked == []


@needs_chromium
def test_the_browser_check_sees_a_page_that_fetches(tmp_path):
    """The control: the same check on a page with a CDN script, a web font and an image."""
    page = tmp_path / "leaky.html"
    page.write_text('<script src="https://cdn.plot.ly/plotly.min.js"></script><img src="http://example.com/x.png">'
                    '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">', encoding="utf-8")
    _, asked = browse(page, tmp_path)
    assert sorted(set(asked)) == ["cdn.plot.ly", "example.com", "fonts.googleapis.com"]


def test_the_markup_check_sees_remote_resources():
    """The control of ``network_references``: each way markup can name a remote resource."""
    page = ('<script src="https://cdn.plot.ly/plotly.min.js"></script><link rel="stylesheet" href="//fonts.example/css">'
            '<style>body { background: url("https://x.example/y.png") } @import "z.css";</style>'
            '<div style="background:url(data:image/png;base64,AAAA)"></div><a href="#top">top</a>')
    assert network_references(page) == ["<script src='https://cdn.plot.ly/plotly.min.js'>", "<link href='//fonts.example/css'>",
                                        "url(https://x.example/y.png)", '@import "z.css"']


def test_plotly_stays_off_the_cycle_and_kill_switch_path(tmp_path):
    """Only ``report`` loads plotly: ``killswitch`` (benchmarked start-up) and a cycle never do."""
    code = ("import sys; from tradecycle.cli import cli; import tradecycle.cycle.run, tradecycle.commands.wiring\n"
            f"cli(['killswitch', '--db', {str(tmp_path / 'x.db')!r}], standalone_mode=False)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'plotly', 'PIL', 'numpy'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=clean_env({}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# -- the verdict first; gaps; the page's width ------------------------------------------------


@pytest.fixture(scope="module")
def weekend(tmp_path_factory) -> tuple[OfflineCycles, Path]:
    """A Friday and a Monday of cycles every 2 hours, none over the weekend: the report of it."""
    cycles = OfflineCycles(tmp_path_factory.mktemp("weekend"), datetime(2026, 11, 6, 8, 0, tzinfo=UTC))
    cycles.run_every(EVERY_SECONDS, 8)
    cycles.clock.advance(3 * 24 * 3600 - 7 * EVERY_SECONDS)  # Monday 08:00
    cycles.run_every(EVERY_SECONDS, 8)
    folder = tmp_path_factory.mktemp("weekend-out")
    result = cli(cycles, "report", "--out", "w.html", cwd=folder)
    assert result.returncode == 0, describe(result)
    return cycles, folder / "w.html"


def test_the_report_leads_with_the_verdict_of_score(week, written):
    _, text, _ = written
    assert text.index('<section id="verdict">') < text.index('<section id="summary">') < text.index('<section id="equity">')
    card = json.loads(cli(week, "score", "--json").stdout)
    main = next(a for a in card["analysts"] if a["role"] == "main")
    verdict = text[text.index('<section id="verdict">'):text.index('<section id="summary">')]
    assert main["verdict"]["text"].replace("%", "%") in verdict.replace("&#x27;", "'")
    assert 'id="random-entry-chart"' in verdict
    for label in ("cash", "buy and hold (equal weights)", "buy and hold at the strategy&#x27;s exposure", "random entry"):
        assert label in verdict
    interval = main["baselines"]["exposure_matched_buy_and_hold"]["excess_ci95"]
    assert f"{interval[0]:+.2f} to {interval[1]:+.2f}" in verdict
    assert f"tokens {main['costs']['tokens_usd']}, slippage {main['costs']['slippage_usd']}" in verdict


def test_a_gap_in_the_cycles_breaks_the_line():
    times = ["2026-11-06 20:00:00", "2026-11-06 22:00:00", "2026-11-09 08:00:00", "2026-11-09 10:00:00"]
    assert report.with_gaps(times, [1, 2, 3, 4]) == (
        ["2026-11-06 20:00:00", "2026-11-06 22:00:00", "2026-11-06 22:00:00", "2026-11-09 08:00:00", "2026-11-09 10:00:00"],
        [1, 2, None, 3, 4])
    assert report.with_gaps(times[:2], [1, 2]) == (times[:2], [1, 2])


@needs_chromium
def test_chromium_shows_the_verdict_histogram_and_baselines_and_no_line_across_the_weekend(weekend, tmp_path):
    _, path = weekend
    # The page's own width after layout, written into the DOM by a script added to a copy (the report has none of its own).
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.body.setAttribute('data-overflow', String(document.documentElement.scrollWidth"
                   " - document.documentElement.clientWidth))</script></body>"), encoding="utf-8")
    screenshot = tmp_path / "weekend.png"
    dom, _ = browse(probe, tmp_path, screenshot)  # the network: test_chromium_draws_the_charts_without_any_network

    # The histogram of random entry, with the analyst's marker, drawn as bars and a line shape.
    start = dom.index('id="random-entry-chart"')
    histogram = dom[start:dom.index("</table>", start)]
    assert len(re.findall(r'<g class="point"><path d="M[^"]+Z"', histogram)) >= 5
    assert re.search(r'class="annotation-text[^>]*>[^<]*percentile \d+', histogram)  # the marker's label, drawn
    # The equity chart: the strategy, buy and hold, buy and hold at its exposure and cash; each
    # line stops on Friday night and starts again on Monday: two pieces, nothing drawn across.
    equity = chart_segment(dom, "equity-chart")
    lines = [[float(x) for x in re.findall(r"[ML]([-\d.]+),", d)]
             for d in re.findall(r'<path class="js-line" d="(M[^"]+)"', equity)]
    lines = [xs for xs in lines if len(xs) >= 2]  # not the legend's samples ("M5,0h30")
    assert len(lines) == 4 * 2  # four lines, each in two pieces
    middle = (min(min(xs) for xs in lines) + max(max(xs) for xs in lines)) / 2  # Saturday and Sunday lie around it
    assert all(max(xs) < middle or min(xs) > middle for xs in lines)
    # No toolbar over any chart, and nothing wider than the page (the reasoning wraps).
    assert 'modebar-btn' not in equity and 'modebar-btn' not in histogram
    assert 'data-overflow="0"' in dom
    counts = colours(screenshot)
    # (the matched line runs close to cash at a low exposure: fewer of its pixels show than of the others)
    assert pixels_of(counts, report.MATCHED_COLOR) > 40 and pixels_of(counts, verdict_html.MARKER_COLOR) > 100
