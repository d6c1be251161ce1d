"""``python -m tests.fakeserver``: the fake on a port until Ctrl-C, printing its
URLs, the environment it accepts and optionally a config.toml."""

from __future__ import annotations

import argparse
import time

from .core import FakeServices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeserver",
                                     description="Fake Alpaca paper + Finnhub + CoinGecko + OpenAI on one port.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every reply")
    parser.add_argument("--fill-orders", action="store_true", help="fill market orders at once")
    parser.add_argument("--no-auth", action="store_true", help="do not require Alpaca/Finnhub credentials")
    parser.add_argument("--market-closed", action="store_true", help="the Alpaca clock says closed")
    parser.add_argument("--decide", action="append", default=[], metavar="SYMBOL=ACTION[:CONFIDENCE]",
                        help="the fake LLM's decision for a symbol, e.g. AAPL=buy:0.9 (repeatable)")
    parser.add_argument("--config", metavar="PATH", help="also write a config.toml pointing at the fake")
    args = parser.parse_args(argv)

    fake = FakeServices(host=args.host, port=args.port, latency_seconds=args.latency,
                        fill_orders=args.fill_orders, require_auth=not args.no_auth)
    if args.market_closed:
        fake.set_market_open(False)
    for item in args.decide:
        symbol, _, rest = item.partition("=")
        action, _, confidence = rest.partition(":")
        fake.llm_decide[symbol.strip().upper()] = (action.strip() or "hold", float(confidence or 0.9), "fakeserver")
    with fake:
        for name, url in fake.urls().items():
            print(f"{name:<10} {url}")
        if args.config:
            print(f"config     {fake.config_toml(args.config)}")
        print("env        " + " ".join(f"{k}={v}" for k, v in fake.env().items()), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0
