"""Shared by the connector tests: HTTP settings with tiny retry delays."""

from __future__ import annotations

from tradecycle.connectors.http import HttpSettings


def fast_settings(**overrides) -> HttpSettings:
    values = dict(timeout_seconds=1.0, max_retries=2, retry_base_delay_seconds=0.001, retry_max_delay_seconds=0.01)
    return HttpSettings(**(values | overrides))
