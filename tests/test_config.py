"""config.toml: defaults, path resolution, paper-only URLs, errors that name the key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradecycle.config import Secrets, check_environment, load_config
from tradecycle.infra.errors import ConfigError
from tradecycle.infra.paths import load_database_path


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_empty_file_gives_the_contract_defaults_and_paths_beside_it(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert (config.broker.provider, config.market_data.provider, config.ai.provider) == ("sim", "sim", "rules")
    assert config.risk.max_position_size_percent == 10 and config.cycle.max_cycle_seconds == 50
    assert config.database_path == tmp_path / "tradecycle.db"
    assert config.log_path == tmp_path / "tradecycle.jsonl"


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://paper-api.alpaca.markets", True),
        ("https://paper-api.alpaca.markets/", True),
        ("http://127.0.0.1:8080/alpaca", True),
        ("http://localhost:9000", True),
        ("http://[::1]:9000", True),
        ("https://api.alpaca.markets", False),
        ("https://paper-api.alpaca.markets.evil.example", False),
        ("http://10.0.0.5:8080", False),
        ("ftp://127.0.0.1", False),
    ],
)
def test_only_the_paper_api_or_loopback_is_accepted(tmp_path, url, allowed):
    path = write(tmp_path, f'[broker.alpaca]\nbase_url = "{url}"\n')
    if allowed:
        assert load_config(path).broker.alpaca.base_url == url.rstrip("/")
    else:
        with pytest.raises(ConfigError, match="broker.alpaca.base_url"):
            load_config(path)


def test_several_errors_are_all_named(tmp_path):
    path = write(tmp_path, "[risk]\nmax_positions_count = 0\nmin_confidence = 2\n[cycle]\nbogus = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for key in ("risk.max_positions_count: must be >= 1", "risk.min_confidence: must be <= 1", "cycle.bogus: unknown key"):
        assert key in message


def test_invalid_toml_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[risk\n"))


def test_live_providers_need_their_keys_from_the_environment(tmp_path):
    config = load_config(write(tmp_path, '[broker]\nprovider = "alpaca"\n[market_data]\nprovider = "live"\n'))
    with pytest.raises(ConfigError) as info:
        check_environment(config, Secrets({}))
    assert "APCA_API_KEY_ID, APCA_API_SECRET_KEY, FINNHUB_API_KEY" in str(info.value)
    check_environment(config, Secrets({"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s", "FINNHUB_API_KEY": "f"}))


def test_secrets_never_show_in_repr():
    secrets = Secrets({"OPENAI_API_KEY": "sk-very-secret-value"})
    assert "sk-very-secret-value" not in repr(secrets) and "OPENAI_API_KEY" in repr(secrets)


def test_killswitch_reads_only_the_database_path(tmp_path):
    path = write(tmp_path, '[database]\npath = "data/x.db"\n[risk]\nnonsense = true\n')
    assert load_database_path(path) == tmp_path / "data" / "x.db"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[cycle]\nmax_cycle_seconds = 500\n", "cycle.max_cycle_seconds: must be <= 55"),
        ("[cycle]\nanalysis_timeout_seconds = 40\nmax_cycle_seconds = 30\n",
         "cycle.analysis_timeout_seconds (40) must not exceed cycle.max_cycle_seconds (30)"),
        ('[market_data]\nprovider = "live"\n[universe]\ncrypto = ["SOL/USD"]\n', "market_data.coingecko.ids: no CoinGecko id for SOL/USD"),
        ('[log]\npath = "missing/tradecycle.jsonl"\n', "log.path: folder does not exist"),
        ('[database]\npath = "missing/tradecycle.db"\n', "database.path: folder does not exist"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_load(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize("key, section", [("max_quote_age_seconds", "cycle"), ("max_position_size_percent", "risk"),
                                          ("refresh_minutes", "news")])
def test_infinity_cannot_switch_a_limit_off(tmp_path, key, section):
    with pytest.raises(ConfigError, match=f"{section}.{key}: must be a finite number"):
        load_config(write(tmp_path, f"[{section}]\n{key} = inf\n"))


@pytest.mark.parametrize("text, expected", [
    ('[database]\npath = "a.db"\n[risk]\nmax_positions_count = 15x\n', "a.db"),
    ('database.path = "b.db"\n[risk]\nmax_positions_count = 15x\n', "b.db"),
    ("database = {path = 'c.db'}\n[risk]\nmax_positions_count = 15x\n", "c.db"),
    ('[risk]\npath = "not-this.db"\nmax_positions_count = 15x\n', "tradecycle.db"),
])
def test_killswitch_finds_the_database_in_a_file_that_is_not_valid_toml(tmp_path, text, expected):
    assert load_database_path(write(tmp_path, text)) == tmp_path / expected


@pytest.mark.parametrize("text, temperature", [("", None), ("[ai]\ntemperature = 0.0\n", 0.0), ("[ai]\ntemperature = 1\n", 1.0)])
def test_ai_temperature_is_optional(tmp_path, text, temperature):
    assert load_config(write(tmp_path, text)).ai.temperature == temperature


def test_ai_temperature_out_of_range_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="ai.temperature"):
        load_config(write(tmp_path, "[ai]\ntemperature = 3\n"))


# -- issue 23: no whipsaw, volatility sizing, the simulator's hours -----------------------


@pytest.mark.parametrize("text, message", [
    ('[risk]\nsizing = "kelly"\n', "risk.sizing: "),
    ("[risk]\nrisk_per_trade_percent = 0\n", "risk.risk_per_trade_percent: "),
    ("[risk]\nreentry_cooldown_minutes = -5\n", "risk.reentry_cooldown_minutes: "),
    ("[risk]\nstop_loss_guard_count = 2.5\n", "risk.stop_loss_guard_count: "),
    ("[risk]\nstop_loss_guard_minutes = true\n", "risk.stop_loss_guard_minutes: must be a number or text, not true/false"),
    ('[risk]\nscale_by_confidence = "yes"\n', "risk.scale_by_confidence: "),
    ('[market_data.sim]\nmarket_hours = "24/7"\n', "market_data.sim.market_hours: "),
])
def test_the_new_keys_refuse_bad_values_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, text))


def test_the_new_keys_reach_the_cycle(tmp_path):
    from tradecycle.commands.wiring import cycle_settings

    config = load_config(write(tmp_path, '[risk]\nreentry_cooldown_minutes = 30\nstop_loss_guard_count = 0\n'
                                         'sizing = "volatility"\nrisk_per_trade_percent = 0.5\nscale_by_confidence = true\n'))
    settings = cycle_settings(config, dry_run=False)
    assert (settings.protections.reentry_cooldown_minutes, settings.protections.stop_loss_guard_count) == (30, 0)
    assert (settings.limits.sizing, settings.limits.risk_per_trade_percent, settings.limits.scale_by_confidence) == (
        "volatility", Decimal("0.5"), True)
    defaults = cycle_settings(load_config(write(tmp_path, "")), dry_run=False)
    assert (defaults.protections.reentry_cooldown_minutes, defaults.protections.stop_loss_guard_count,
            defaults.protections.stop_loss_guard_minutes, defaults.limits.sizing) == (240, 3, 1440, "fixed")
@pytest.mark.parametrize("text, held", [
    ("", False),  # the simulator: its prices move only when a cycle asks
    ('[broker]\nprovider = "alpaca"\n', True),
    ('[broker]\nprovider = "alpaca"\n[risk]\nbroker_held_stops = false\n', False),
    ("[risk]\nbroker_held_stops = true\n", True),
])
def test_broker_held_stops_default_on_at_alpaca_and_off_in_the_simulator(tmp_path, text, held):
    assert load_config(write(tmp_path, text)).broker_held_stops is held


def test_broker_held_stops_takes_true_or_false_only(tmp_path):
    with pytest.raises(ConfigError, match="risk.broker_held_stops"):
        load_config(write(tmp_path, "[risk]\nbroker_held_stops = 1\n"))
