"""End to end, a CoinGecko key on the wrong host: a Pro key left on the default
(public) host is refused with 400 ``error_code`` 10010 on every call. The cycle
and ``check --online`` say once, plainly, which setting to change and to what."""

from __future__ import annotations

import json

from .e2e_helpers import E2E, describe, e2e, fake  # noqa: F401  (fixtures)

PRO_KEY = "CG-PROKEY0123456789abcdef"
FIX = 'set market_data.coingecko.base_url = "https://pro-api.coingecko.com/api/v3"'


def pro_key_on_public_host(e2e: E2E) -> None:
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": ["BTC/USD", "ETH/USD"]})
    e2e.env["COINGECKO_API_KEY"] = PRO_KEY
    with e2e.fake.lock:
        e2e.fake.coingecko_pro_keys.add(PRO_KEY)  # what CoinGecko knows of the key; its header follows our host


def test_a_cycle_notes_once_which_setting_to_change(e2e):
    pro_key_on_public_host(e2e)

    e2e.run()

    [request] = e2e.fake.calls("coingecko")
    assert request.headers["x-cg-demo-api-key"] == PRO_KEY  # the public host: the demo header
    [summary] = [json.loads(c["summary"]) for c in e2e.cycles()]
    notes = [json.loads(line)["message"] for line in e2e.log_path.read_text().splitlines() if '"cycle.note"' in line]
    assert notes == summary["notes"] and len(notes) == 1  # one note for both coins
    assert notes[0].startswith("BTC/USD, ETH/USD: no quote (coingecko: COINGECKO_API_KEY is a Pro key") and FIX in notes[0]
    assert "HTTP 400" not in notes[0] and PRO_KEY not in e2e.log_path.read_text()


def test_check_online_names_the_setting_and_the_host(e2e):
    pro_key_on_public_host(e2e)

    result = e2e.cli("check", "--online")

    assert result.returncode == 1, describe(result)
    assert result.stderr.count("\n") == 1 and result.stderr.count(FIX) == 1, describe(result)
    assert "market data (crypto) [coingecko]: COINGECKO_API_KEY is a Pro key" in result.stderr
    assert "HTTP 400" not in result.stderr and PRO_KEY not in result.stdout + result.stderr
