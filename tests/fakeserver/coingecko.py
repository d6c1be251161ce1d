"""CoinGecko's public host (API_NOTES.md, "CoinGecko"): /ping, /simple/price
(unknown ids left out: ``{}`` when none is known; 24h change and update time),
a Pro key refused with the 400 naming the pro host (in either header, for the keys
in ``coingecko_pro_keys``), and its error bodies."""

from __future__ import annotations

from typing import Any

from .common import RecordedRequest, Reply

_COINGECKO_ERRORS = {
    401: "Unauthorized",
    403: "Forbidden",
    429: (
        "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
        "to subscribe to our API plans for higher rate limits."
    ),
    500: "Internal Server Error",
    503: "Service Unavailable",
}
PRO_KEY_HEADER = "x-cg-pro-api-key"
DEMO_KEY_HEADER = "x-cg-demo-api-key"
COINGECKO_PRO_KEY_ON_PUBLIC_HOST = {"status": {
    "error_code": 10010,
    "error_message": "If you are using Pro API key, please change your root URL from api.coingecko.com to pro-api.coingecko.com",
}}


class CoinGeckoMixin:
    """The CoinGecko simple-price endpoint of ``FakeServices``."""

    def _coingecko(self, req: RecordedRequest) -> Reply:
        if req.method != "GET":
            return Reply(405, self._error_body("coingecko", 405, "Method not allowed"))
        # The public host answers a Pro key (in the Pro header, or a key it knows as Pro in the demo
        # header) with a 400 naming the right root URL.
        if PRO_KEY_HEADER in req.headers or req.headers.get(DEMO_KEY_HEADER) in self.coingecko_pro_keys:
            return Reply(400, COINGECKO_PRO_KEY_ON_PUBLIC_HOST)
        if req.subpath == "/ping":
            return Reply(200, {"gecko_says": "(V3) To the Moon!"})
        if req.subpath != "/simple/price":
            return Reply(404, self._error_body("coingecko", 404, "Not found"))
        ids = [i.strip() for i in req.query.get("ids", "").split(",") if i.strip()]
        currencies = [c.strip().lower() for c in req.query.get("vs_currencies", "").split(",") if c.strip()]
        if not ids:
            return Reply(400, {"error": "Missing parameter ids"})
        if not currencies:
            return Reply(400, {"error": "Missing parameter vs_currencies"})
        with_change = req.query.get("include_24hr_change", "").lower() == "true"
        with_time = req.query.get("include_last_updated_at", "").lower() == "true"
        result: dict[str, Any] = {}
        with self.lock:
            for coin_id in ids:
                coin = self.coins.get(coin_id)
                if coin is None:
                    continue
                entry: dict[str, Any] = {}
                for cur in currencies:
                    if cur in coin:
                        entry[cur] = coin[cur]
                        if with_change and f"{cur}_24h_change" in coin:
                            entry[f"{cur}_24h_change"] = coin[f"{cur}_24h_change"]
                if with_time:
                    entry["last_updated_at"] = coin.get("last_updated_at") or int(self.time_source())
                result[coin_id] = entry
        return Reply(200, result)
