"""``tradecycle replay``: the exact recorded messages sent to another model, both
decisions side by side, recorded as ``role = "replay"`` and never traded."""

from __future__ import annotations

from typing import Any

from tradecycle.commands.common import database_path, iso_now, reading, since_utc
from tradecycle.infra import paths


def replay(config_option: str | None, db_option: str | None, cycle_id: str | None, since: str | None,
           model: str | None = None, base_url: str | None = None, key_env: str | None = None,
           training_cutoff: str | None = None) -> dict[str, Any]:
    """Send the exact recorded messages of a cycle's analysed decisions (``cycle_id``,
    or ``last``), or of every analysed decision since ``since``, to ``model`` at
    ``base_url`` (default: ``ai.model`` at ``ai.base_url``), and record each answer
    with ``role = "replay"`` (never traded). A decision about a moment on or before
    the model's training cutoff (``training_cutoff``, else the configured one of
    the analyst with that model) is marked ``contaminated``. Returns both decisions side by side,
    and with ``since`` the scorecard of the main analyst and the replayed model.

    UsageError (exit 2) for a bad option; NotFound (exit 1) for a cycle that is
    not there or has no recorded request."""
    from pydantic import ValidationError

    from tradecycle.rules import scorecard
    from tradecycle.config import Secrets, ShadowConfig, describe_errors, load_config
    from tradecycle.infra.errors import ConfigError, NotFound, UsageError
    from tradecycle.models import analyst_identity
    from tradecycle.infra.parallel import gather
    from tradecycle.store import scores
    from tradecycle.commands.wiring import replay_analyst

    if (cycle_id is None) == (since is None):
        raise UsageError("replay: give a CYCLE_ID (or 'last') or --since ISO, not both")
    since = since_utc(since) if since else None
    config = load_config(paths.config_path(config_option))
    try:
        target = ShadowConfig(base_url=base_url, model=model or config.ai.model, temperature=config.ai.temperature,
                              api_key_env=key_env, seed=config.ai.seed,
                              training_cutoff=training_cutoff or _configured_cutoff(config, model or config.ai.model))
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc).replace("invalid configuration: ", "replay: --")) from None
    secrets = Secrets(extra_names=(key_env,) if key_env else ())
    path = database_path(config_option, db_option)
    with reading(path, write=True) as db:
        if db is None:
            raise NotFound(f"there is no database at {path} yet: nothing to replay")
        originals = scores.replayable(db, cycle_id, since)
        if not originals:
            if cycle_id not in (None, "last") and not scores.cycle_exists(db, cycle_id):
                raise NotFound(f"no cycle {cycle_id!r} in the database (see `tradecycle cycles`)")
            where = f"cycle {cycle_id}" if cycle_id else f"the decisions since {since}"
            raise NotFound(f"{where}: no recorded analyst request to replay (only decisions an LLM was asked for, "
                           "since this version, carry their messages; holds that stood, exits and the rules analyst send none)")
        messages = {o["request_id"]: scores.request_messages(db, o["request_id"]) for o in originals}
        analyst = replay_analyst(config, secrets, target)
        timeout = config.cycle.analysis_timeout_seconds
        answers = gather({str(o["id"]): (lambda o=o: analyst.ask(o["symbol"], messages[o["request_id"]], timeout))
                          for o in originals}, max_workers=8)
        now = iso_now()
        pairs = []
        for original in originals:
            answer = answers[str(original["id"])]
            analyst_id = analyst_identity(target.model, original["prompt_hash"])
            row = _replay_row(original, answer, analyst_id, now)
            scores.record_replay(db, original, row)
            pairs.append({
                "cycle_id": original["cycle_id"], "symbol": original["symbol"], "decided_at": original["created_at"],
                "price": original["price"], "request_id": original["request_id"],
                "recorded": {k: original[k] for k in ("analyst", "action", "confidence", "reasoning", "outcome")},
                "replayed": {k: row[k] for k in ("analyst", "action", "confidence", "reasoning", "outcome")},
                "agree": row["outcome"] not in scorecard.FAILURES and original["outcome"] not in scorecard.FAILURES
                and row["action"] == original["action"],
            })
        card = None
        if since is not None:
            rows = [r for r in scores.scored_decisions(db, scorecard.HORIZONS, since, None, None)
                    if r["role"] == "main" or (r["role"] == "replay" and r["model"] == target.model)]
            card = {"analysts": scorecard.analysts(rows), "agreement": scorecard.agreement(rows),
                    "min_count": scorecard.MIN_COUNT, "horizons": list(scorecard.HORIZONS),
                    "calibration_horizon": scorecard.CALIBRATION_HORIZON}
    resolved = originals[0]["cycle_id"] if cycle_id == "last" else cycle_id  # `last`, named
    return {"model": target.model, "base_url": target.base_url or config.ai.base_url, "since": since, "cycle_id": resolved,
            "asked_for": cycle_id, "replayed": pairs, "score": card}


def _replay_row(original: dict[str, Any], answer, analyst_id: str, now: str) -> dict[str, Any]:
    """The ai_decisions row of a replayed decision: the original's time and price (the
    horizons are measured from the moment it re-asks), the new model's answer."""
    from tradecycle.models import Decision, is_contaminated

    if not isinstance(answer, Decision):  # a bug in the analyst: it never raises otherwise
        answer = Decision.held(original["symbol"], "ai_unavailable", f"replay failed: {answer!r}", analyst_id)
    return {
        "cycle_id": original["cycle_id"], "symbol": original["symbol"], "created_at": original["created_at"],
        "price": original["price"], "quote_age_seconds": original["quote_age_seconds"], "quote_source": original["quote_source"],
        "action": answer.action, "confidence": answer.confidence, "reasoning": answer.reasoning, "model": answer.model,
        "outcome": answer.failure or "replay", "detail": f"replay of decision {original['id']}, asked {now}; never traded",
        "role": "replay", "analyst": analyst_id, "prompt_hash": original["prompt_hash"], "request_id": original["request_id"],
        "replay_of": original["id"], "raw_reply": answer.raw_reply, "latency_ms": answer.latency_ms,
        "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
        "served_model": answer.served_model, "system_fingerprint": answer.system_fingerprint,
        "temperature": answer.temperature, "seed": answer.seed, "training_cutoff": answer.training_cutoff,
        "contaminated": int(is_contaminated(original["created_at"], answer.training_cutoff)),
    }


def _configured_cutoff(config, model: str):
    """The training cutoff declared for ``model``: ``ai.training_cutoff`` for the main
    analyst's model, else that of the ``[[ai.shadow]]`` asking it; None if undeclared."""
    if model == config.ai.model:
        return config.ai.training_cutoff
    return next((s.training_cutoff for s in config.ai.shadow if s.model == model), None)
