"""``tradecycle check``: validate the config and the environment; with
``--online``, reach each configured service once (``probe.py``)."""

from __future__ import annotations

from typing import Any

from tradecycle.infra import paths


def check(config_option: str | None) -> dict[str, Any]:
    """Validate the config and report which environment variables are set (names only)."""
    from tradecycle.config import Secrets, load_config, required_environment, shadow_key_names

    path = paths.config_path(config_option)
    config = load_config(path)
    extra = shadow_key_names(config)
    secrets = Secrets(extra_names=extra)
    return {
        "config": str(path),
        "database": str(config.database_path),
        "providers": {
            "broker": config.broker.provider,
            "market_data": config.market_data.provider,
            "news": config.news.provider,
            "ai": config.ai.provider,
        },
        "environment": {name: secrets.is_set(name) for name in (*Secrets.NAMES, *extra)},  # extra: the shadows' keys
        "required": sorted(needed := required_environment(config)),
        "needed_by": {name: needed[name] for name in sorted(needed)},  # each required variable: the setting that needs it
        # Nothing leaves the machine: no provider needs a key, or reads one.
        "offline": (config.broker.provider, config.market_data.provider, config.news.provider in ("sim", "none"),
                    config.ai.provider) == ("sim", "sim", True, "rules"),
    }


def check_online(config_option: str | None) -> dict[str, Any]:
    """``check``, then reach each configured service once (``probe.py``).

    Adds ``services``: one dict per service (``service``, ``provider``, ``ok``,
    ``detail``, ``elapsed_ms``). Nothing is sent while a required environment
    variable is missing: ``services`` is then empty and the CLI exits 2.
    """
    from tradecycle.config import Secrets, load_config
    from tradecycle.commands.probe import probe_services

    result = check(config_option)
    result["services"] = []
    if any(not result["environment"][name] for name in result["required"]):
        return result
    config = load_config(paths.config_path(config_option))
    result["services"] = [probe.as_dict() for probe in probe_services(config, Secrets())]
    return result
