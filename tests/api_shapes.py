"""Reply bodies shaped exactly like the real services' (see the contract's API_NOTES.md).

Plain data, no behaviour, so any test (connectors, fake server, end-to-end)
can reuse them. Copy before mutating: ``dict(ALPACA_ACCOUNT, equity="1")``.
Alpaca sends numbers as strings; Finnhub and CoinGecko send JSON numbers.
"""

# -- Alpaca paper -------------------------------------------------------------

ALPACA_ACCOUNT = {
    "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98",
    "account_number": "PA3BUTEST",
    "status": "ACTIVE",
    "currency": "USD",
    "cash": "100000",
    "portfolio_value": "100000",
    "equity": "100523.17",
    "last_equity": "100000",
    "buying_power": "200000",
    "trading_blocked": False,
    "transfers_blocked": False,
    "account_blocked": False,
    "shorting_enabled": True,
    "multiplier": "2",
    "created_at": "2024-11-01T14:02:11.371826Z",
}

ALPACA_CLOCK_OPEN = {
    "timestamp": "2025-01-15T10:30:00.123456-05:00",
    "is_open": True,
    "next_open": "2025-01-16T09:30:00-05:00",
    "next_close": "2025-01-15T16:00:00-05:00",
}

ALPACA_CLOCK_CLOSED = dict(
    ALPACA_CLOCK_OPEN,
    timestamp="2025-01-15T20:00:00.123456-05:00",
    is_open=False,
)

ALPACA_POSITION_STOCK = {
    "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
    "symbol": "AAPL",
    "exchange": "NASDAQ",
    "asset_class": "us_equity",
    "qty": "3",
    "qty_available": "3",
    "side": "long",
    "avg_entry_price": "187.21",
    "market_value": "575.13",
    "cost_basis": "561.63",
    "current_price": "191.71",
    "unrealized_pl": "13.5",
    "unrealized_plpc": "0.0240371774300518",
    "lastday_price": "190.04",
    "change_today": "0.0087876236581772",
}

ALPACA_POSITION_CRYPTO = {
    "asset_id": "276e2673-764b-4ab6-a611-caf665ca6340",
    "symbol": "BTCUSD",  # positions drop the slash that orders use
    "exchange": "CRYPTO",
    "asset_class": "crypto",
    "qty": "0.004987",
    "qty_available": "0.004987",
    "side": "long",
    "avg_entry_price": "67012.5",
    "market_value": "335.87",
    "cost_basis": "334.19",
    "current_price": "67349",
    "unrealized_pl": "1.68",
    "unrealized_plpc": "0.005027",
    "lastday_price": "66100",
    "change_today": "0.018895",
}

ALPACA_ORDER_NEW = {
    "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
    "client_order_id": "c1-AAPL",
    "created_at": "2025-01-15T15:30:01.541Z",
    "updated_at": "2025-01-15T15:30:01.544Z",
    "submitted_at": "2025-01-15T15:30:01.538Z",
    "filled_at": None,
    "expired_at": None,
    "canceled_at": None,
    "failed_at": None,
    "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
    "symbol": "AAPL",
    "asset_class": "us_equity",
    "notional": "500",
    "qty": None,
    "filled_qty": "0",
    "filled_avg_price": None,
    "order_class": "",  # often "" rather than "simple"
    "order_type": "market",
    "type": "market",
    "side": "buy",
    "time_in_force": "day",
    "limit_price": None,
    "stop_price": None,
    "status": "accepted",
    "extended_hours": False,
}

ALPACA_ORDER_FILLED = dict(
    ALPACA_ORDER_NEW,
    status="filled",
    filled_qty="2.670798",
    filled_avg_price="187.21",
    filled_at="2025-01-15T15:30:01.912Z",
)

ALPACA_ORDER_CRYPTO_NEW = dict(
    ALPACA_ORDER_NEW,
    id="9a1c2e55-0c3c-4c2b-9e71-5f0c8b0f0e11",
    client_order_id="c1-BTC-USD",
    symbol="BTC/USD",  # orders keep the slash
    asset_class="crypto",
    notional="250",
    time_in_force="gtc",
    status="pending_new",
)

ALPACA_ASSET_BTC = {
    "id": "276e2673-764b-4ab6-a611-caf665ca6340",
    "class": "crypto",
    "exchange": "CRYPTO",
    "symbol": "BTC/USD",
    "name": "Bitcoin  / US Dollar",
    "status": "active",
    "tradable": True,
    "marginable": False,
    "shortable": False,
    "easy_to_borrow": False,
    "fractionable": True,
    "min_order_size": "0.0001",
    "min_trade_increment": "0.0001",
    "price_increment": "1",
}

ALPACA_ERROR_BUYING_POWER = {"code": 40310000, "message": "insufficient buying power"}
ALPACA_ERROR_DUPLICATE_CLIENT_ID = {"code": 40010001, "message": "client_order_id must be unique"}
ALPACA_ERROR_INVALID_TIF = {"code": 42210000, "message": "invalid crypto time_in_force"}
ALPACA_ERROR_NOT_FOUND = {"code": 40410000, "message": "order not found"}

# -- Finnhub --------------------------------------------------------------------

FINNHUB_QUOTE_AAPL = {
    "c": 191.71,
    "d": 1.67,
    "dp": 0.8788,
    "h": 192.5,
    "l": 189.88,
    "o": 190.3,
    "pc": 190.04,
    "t": 1736955000,
}

# An unknown symbol answers 200 with zeros and nulls: "no quote", never a price of 0.
FINNHUB_QUOTE_UNKNOWN = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}

FINNHUB_RATE_LIMITED = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}

FINNHUB_NEWS_AAPL = [  # Finnhub returns newest first, but do not rely on it
    {
        "category": "company",
        "datetime": 1736953200,  # 2025-01-15T15:00:00Z
        "headline": "Apple shares climb as iPhone demand steadies",
        "id": 132100001,
        "image": "https://example.com/a.jpg",
        "related": "AAPL",
        "source": "Reuters",
        "summary": "Apple's stock rose on Wednesday ...",
        "url": "https://finnhub.io/api/news?id=aaa",
    },
    {
        "category": "company",
        "datetime": 1736938800,  # 2025-01-15T11:00:00Z
        "headline": "Analysts split on Apple's services growth",
        "id": 132100002,
        "image": "",
        "related": "AAPL",
        "source": "MarketWatch",
        "summary": "",
        "url": "https://finnhub.io/api/news?id=bbb",
    },
    {
        "category": "company",
        "datetime": 1736852400,  # 2025-01-14T11:00:00Z
        "headline": "Apple supplier outlook",
        "id": 132100003,
        "image": "",
        "related": "AAPL",
        "source": "Yahoo",
        "summary": "Suppliers expect ...",
        "url": "https://finnhub.io/api/news?id=ccc",
    },
]

# -- CoinGecko ------------------------------------------------------------------

COINGECKO_SIMPLE_PRICE = {
    "bitcoin": {"usd": 67000.1, "usd_24h_change": -1.2, "last_updated_at": 1732500000},
    "ethereum": {"usd": 3412.55, "usd_24h_change": 2.0485, "last_updated_at": 1732499990},
}

COINGECKO_UNKNOWN_ID: dict = {}  # an unknown id is silently missing

COINGECKO_RATE_LIMITED = {
    "status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit. Please visit ..."}
}


# -- Alpaca market data (https://data.alpaca.markets): JSON numbers, nanosecond times ---

# GET /v2/stocks/snapshots?symbols=AAPL,MSFT&feed=iex: keyed by symbol at the top level;
# an unknown symbol is simply missing.
ALPACA_STOCK_SNAPSHOTS = {
    "AAPL": {
        "latestTrade": {"t": "2022-03-18T14:33:58.448432206Z", "x": "V", "p": 161.1998, "s": 200, "c": ["@"],
                        "i": 39884, "z": "C"},
        "latestQuote": {"t": "2022-03-18T14:33:58.547942Z", "ax": "V", "ap": 161.2, "as": 2, "bx": "V", "bp": 161.19,
                        "bs": 5, "c": ["R"], "z": "C"},
        "minuteBar": {"t": "2022-03-18T14:32:00Z", "o": 161.595, "h": 161.63, "l": 161.31, "c": 161.365, "v": 195503,
                      "n": 1880, "vw": 161.448073},
        "dailyBar": {"t": "2022-03-18T04:00:00Z", "o": 160.59, "h": 161.92, "l": 159.76, "c": 161.365, "v": 31749988,
                     "n": 186143, "vw": 160.683364},
        "prevDailyBar": {"t": "2022-03-17T04:00:00Z", "o": 158.6, "h": 161, "l": 157.63, "c": 160.62, "v": 73839892,
                         "n": 609067, "vw": 159.425082},
    },
}

# GET /v1beta3/crypto/us/snapshots?symbols=BTC/USD: wrapped in "snapshots"; no key needed.
ALPACA_CRYPTO_SNAPSHOTS = {
    "snapshots": {
        "BTC/USD": {
            "latestTrade": {"t": "2022-03-28T17:27:57.794134Z", "p": 47458.69, "s": 0.00008231, "tks": "S", "i": 304771804},
            "latestQuote": {"t": "2022-03-28T17:27:42.591Z", "bp": 47466.1, "bs": 0.001, "ap": 47467.49, "as": 0.001197},
            "minuteBar": {"t": "2022-03-28T17:26:00Z", "o": 47431.48, "h": 47449.87, "l": 47418.34, "c": 47447.73,
                          "v": 3.28432365, "n": 472, "vw": 47436.1727214804},
            "dailyBar": {"t": "2022-03-28T05:00:00Z", "o": 47149.3, "h": 47900, "l": 46770.7, "c": 47447.73,
                         "v": 8720.15520728, "n": 345005, "vw": 47383.1123162664},
            "prevDailyBar": {"t": "2022-03-27T05:00:00Z", "o": 44598.44, "h": 47694, "l": 44437.22, "c": 47148.98,
                             "v": 12278.6017929, "n": 559695, "vw": 46041.2023793348},
        }
    }
}

# GET /v2/stocks/bars?symbols=AAPL,TSLA&timeframe=1Day&...: bars per symbol, sorted by symbol
# then time, paged across symbols with next_page_token (null on the last page).
ALPACA_STOCK_BARS_PAGE_1 = {
    "bars": {
        "AAPL": [
            {"t": "2022-02-01T05:00:00Z", "o": 174, "h": 174.84, "l": 172.31, "c": 174.61, "v": 85998033, "n": 732412,
             "vw": 173.703516},
            {"t": "2022-02-02T05:00:00Z", "o": 174.64, "h": 175.88, "l": 173.33, "c": 175.84, "v": 84817432, "n": 675034,
             "vw": 174.941288},
        ],
    },
    "next_page_token": "QUFQTHxEfDIwMjItMDItMDJUMDU6MDA6MDAuMDAwMDAwMDAwWg==",
}
ALPACA_STOCK_BARS_PAGE_2 = {
    "bars": {
        "TSLA": [
            {"t": "2022-03-09T05:00:00Z", "o": 839, "h": 860.56, "l": 832.01, "c": 858.97, "v": 19227323, "n": 528531,
             "vw": 850.616587},
        ],
    },
    "next_page_token": None,
}

# The free plan asking for recent SIP data (feed=sip, or bars without a feed up to now).
ALPACA_SIP_REFUSED = {"message": "subscription does not permit querying recent SIP data"}

# A sell stop protecting 10 AAPL (API_NOTES "Orders that protect a position"), as POST answers it.
ALPACA_ORDER_STOP_NEW = dict(
    ALPACA_ORDER_NEW,
    id="3f1e0a52-77a4-4b7f-9a0c-0f6d1c2b3a40",
    client_order_id="ts-20250115T1530Z1a2b-AAPL",
    notional=None,
    qty="10",
    order_type="stop",
    type="stop",
    side="sell",
    position_intent="sell_to_close",
    time_in_force="gtc",
    stop_price="180.5",
    status="new",
)

# PATCH /v2/orders/{id}: a new order (a new id) that replaces the old one.
ALPACA_ORDER_STOP_REPLACED = dict(
    ALPACA_ORDER_STOP_NEW,
    id="8d2b6c1e-5a3f-4e1b-b0a7-2c9e4f6a1d55",
    client_order_id="ts-20250115T1531Z9f8e-AAPL",
    stop_price="184.2",
    replaces="3f1e0a52-77a4-4b7f-9a0c-0f6d1c2b3a40",
    status="new",
)

# A crypto stop is a stop-limit.
ALPACA_ORDER_STOP_LIMIT_NEW = dict(
    ALPACA_ORDER_STOP_NEW,
    id="c0ffee00-1234-4abc-8def-00000000beef",
    client_order_id="ts-20250115T1530Z1a2b-BTCUSD",
    symbol="BTC/USD",
    asset_class="crypto",
    qty="0.05",
    order_type="stop_limit",
    type="stop_limit",
    stop_price="61640",
    limit_price="61023.6",
)

ALPACA_ERROR_INSUFFICIENT_QTY = {
    "code": 40310000,
    "message": "insufficient qty available for order (requested: 10, available: 0)",
    "existing_qty": "10",
    "held_for_orders": "10",
    "symbol": "AAPL",
}
ALPACA_ERROR_ALREADY_FILLED = {"code": 42210000, "message": "order is already in \"filled\" state"}
