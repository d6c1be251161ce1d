"""A local fake of every service tradecycle talks to, in one process.

Alpaca paper trading, Alpaca market data, Finnhub, CoinGecko and an
OpenAI-compatible chat server behind one ``ThreadingHTTPServer`` on 127.0.0.1, standard library only, so that
end-to-end tests can run the real ``tradecycle`` CLI in a subprocess against it
and benchmarks can add latency.  Response shapes follow the contract's notes
on the real services (API_NOTES.md in the shared design folder): string numbers
for Alpaca, the all-zero Finnhub quote for an unknown symbol, ``{}`` from
CoinGecko for unknown ids, ...

    with FakeServices() as fake:
        fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
        fake.fail("alpaca", "status", times=1, status=429, headers={"Retry-After": "1"})
        config = fake.config_toml(tmp_path, universe={"stocks": ["AAPL"]})
        subprocess.run(["tradecycle", "run", "--config", str(config)], env={**os.environ, **fake.env()})
        assert fake.count("alpaca", "POST", "/v2/orders") == 1

The OpenAI-compatible part imitates the servers people point it at
(``llm_flavor``: OpenAI, Ollama, vLLM, llama.cpp, DeepSeek: reply envelope,
``/models`` listing, error bodies, unknown-model behaviour), how models dress
their answer (``llm_wrap``, ``llm_reasoning``, ``llm_content_parts``) and what
they refuse (``llm_refuse_params`` for reasoning models' temperature,
``llm_json_schema``, ``llm_quota_exhausted``).

State lives in plain attributes (``account``, ``clock``, ``positions``,
``orders``, ``assets``, ``prices``, ``quotes``, ``news``, ``coins``,
``daily_bars``, ``day_volumes``, ...): set
or inspect them from the test; hold ``fake.lock`` while mutating them in place
when requests may be in flight.

The package holds one module per faked service, each a mixin of ``FakeServices``
(``core``): ``alpaca``/``alpaca_orders`` (paper trading), ``alpaca_data`` (market
data), ``finnhub``, ``coingecko``, ``llm`` (OpenAI-compatible servers), ``alerts``
(the webhook receiver), ``heartbeat`` (a cron monitor's ping receiver), ``config`` (config.toml at the fake), ``server`` (the HTTP
plumbing) and ``common`` (request records, replies, faults, number formats).

Run it standalone with ``python -m tests.fakeserver --port 8765 --latency 0.3``.
"""

from .cli import main
from .common import (
    DEFAULT_COIN_IDS, DEFAULT_CRYPTO, DEFAULT_PRICES, DEFAULT_STOCKS, FAULT_KINDS, PREFIXES, SERVICES, Fault, Headers,
    RecordedRequest, Reply, position_symbol,
)
from .config import to_toml
from .core import FakeServices
from .llm import LLAMACPP_MODEL_ID, LLM_FLAVORS, LLM_WRAPS, OPENAI_INSUFFICIENT_QUOTA

__all__ = [
    "DEFAULT_COIN_IDS", "DEFAULT_CRYPTO", "DEFAULT_PRICES", "DEFAULT_STOCKS", "FAULT_KINDS", "LLAMACPP_MODEL_ID",
    "LLM_FLAVORS", "LLM_WRAPS", "OPENAI_INSUFFICIENT_QUOTA", "PREFIXES", "SERVICES", "Fault", "FakeServices",
    "Headers", "RecordedRequest", "Reply", "main", "position_symbol", "to_toml",
]
