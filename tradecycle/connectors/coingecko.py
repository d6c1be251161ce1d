"""CoinGecko crypto prices as a ``ports.QuoteSource``: one batched call per cycle.

CoinGecko names coins by id (``bitcoin``), not by pair; the map from Alpaca
symbols (``BTC/USD``) to ids is the config key ``market_data.coingecko.ids``.
How often it is called is not decided here: see ``throttle.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from tradecycle.config import COINGECKO_PRO_HOST, CoinGeckoConfig
from tradecycle.infra.errors import BadResponse, ServiceError
from tradecycle.models import Quote, normalize_symbol
from tradecycle.connectors.http import HttpClient, HttpSettings, ServiceRefused

SERVICE = "coingecko"
IDS_CONFIG_KEY = "market_data.coingecko.ids"
BASE_URL_CONFIG_KEY = "market_data.coingecko.base_url"
PRO_BASE_URL = f"https://{COINGECKO_PRO_HOST}/api/v3"
PUBLIC_BASE_URL = CoinGeckoConfig.model_fields["base_url"].default
# CoinGecko's 400 for a key sent to the other API: (the key it saw, the root URL it needs).
WRONG_HOST = {"10010": ("a Pro key", PRO_BASE_URL), "10011": ("a demo key", PUBLIC_BASE_URL)}
DEMO_KEY_HEADER = "x-cg-demo-api-key"
PRO_KEY_HEADER = "x-cg-pro-api-key"


def key_header(base_url: str) -> str:
    """The header that carries the key: the Pro API refuses a demo header and the
    public (demo) API a Pro one, each with a 400 that names the other root URL."""
    return PRO_KEY_HEADER if urlsplit(base_url).hostname == COINGECKO_PRO_HOST else DEMO_KEY_HEADER


class CoinGeckoQuotes:
    """USD prices from GET /simple/price for every configured coin in one request."""

    name = SERVICE

    def __init__(self, base_url: str, ids: dict[str, str], api_key: str, http: HttpSettings):
        headers = {key_header(base_url): api_key} if api_key else {}
        settings = replace(http, secrets=tuple(dict.fromkeys((*http.secrets, api_key)))) if api_key else http
        self._http = HttpClient(SERVICE, base_url, settings, headers)
        self._base_url = base_url
        self._ids = {normalize_symbol(symbol): coin_id.strip() for symbol, coin_id in ids.items()}

    @property
    def calls(self) -> int:
        return self._http.calls

    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | Exception]:
        """One entry per symbol: a ``Quote``, or the ``ServiceError`` that kept it from us.

        Sends at most one request, whatever the number of symbols. A symbol
        with no configured id maps to ``BadResponse`` naming the config key; an
        id missing from the reply (CoinGecko's way of saying "unknown") maps to
        ``BadResponse`` "no quote". When the call itself fails, every symbol
        maps to that same error. Never raises for a service problem.
        """
        results: dict[str, Quote | Exception] = {}
        wanted: dict[str, str] = {}  # symbol -> coin id
        for symbol in dict.fromkeys(symbols):
            coin_id = self._ids.get(normalize_symbol(symbol))
            if coin_id:
                wanted[symbol] = coin_id
            else:
                results[symbol] = BadResponse(SERVICE, f"no CoinGecko id for {symbol}: add it to {IDS_CONFIG_KEY}")
        if not wanted:
            return results

        params = {
            "ids": ",".join(dict.fromkeys(wanted.values())),
            "vs_currencies": "usd",
            "include_24hr_change": "true",
            "include_last_updated_at": "true",
        }
        try:
            reply = self._http.get("/simple/price", params=params)
            if not isinstance(reply, dict):
                raise BadResponse(SERVICE, "simple/price reply is not a JSON object")
        except ServiceRefused as exc:
            refused = wrong_host(exc, self._base_url) or exc
            return {symbol: results.get(symbol, refused) for symbol in dict.fromkeys(symbols)}
        except ServiceError as exc:
            return {symbol: results.get(symbol, exc) for symbol in dict.fromkeys(symbols)}

        for symbol, coin_id in wanted.items():
            try:
                results[symbol] = parse_price(symbol, coin_id, reply.get(coin_id))
            except BadResponse as exc:
                results[symbol] = exc
        return {symbol: results[symbol] for symbol in dict.fromkeys(symbols)}


def wrong_host(exc: ServiceRefused, base_url: str) -> BadResponse | None:
    """CoinGecko's 400 for a key on the wrong API (``error_code`` 10010: a Pro
    key at the public host; 10011: a demo key at the Pro host), as one plain
    line naming the config key and the root URL to set. None for any other refusal."""
    if exc.status_code != 400 or exc.error_code not in WRONG_HOST:
        return None
    key, root = WRONG_HOST[exc.error_code]
    host = urlsplit(base_url).hostname or base_url
    default = " (the default)" if root == PUBLIC_BASE_URL else ""
    return BadResponse(SERVICE, f"COINGECKO_API_KEY is {key}, which {host} refuses: set {BASE_URL_CONFIG_KEY} = "
                                f'"{root}"{default}', 400)


def parse_price(symbol: str, coin_id: str, entry: Any) -> Quote:
    """One coin's entry of a /simple/price reply as a ``Quote``.

    Raises ``BadResponse`` "no quote" when the entry is missing (unknown id),
    has no positive USD price, or has no ``last_updated_at`` (a price whose
    age is unknown must never drive a trade).
    """
    if not isinstance(entry, dict) or entry.get("usd") is None:
        raise BadResponse(SERVICE, f"no quote for {symbol} (CoinGecko id {coin_id!r} unknown?)")
    try:
        price = Decimal(str(entry["usd"]))
        updated_at = entry["last_updated_at"]
        if not price.is_finite() or price <= 0 or not updated_at:
            raise ValueError
        change = entry.get("usd_24h_change")
        return Quote(
            symbol=symbol,
            price=price,
            as_of=datetime.fromtimestamp(updated_at, UTC),
            source=SERVICE,
            change_percent=Decimal(str(change)) if change is not None else None,
        )
    except (KeyError, TypeError, ValueError, InvalidOperation, OverflowError, OSError):
        raise BadResponse(SERVICE, f"no quote for {symbol}: unreadable price for CoinGecko id {coin_id!r}") from None
