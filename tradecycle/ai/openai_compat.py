"""An ``Analyst`` backed by any OpenAI-compatible chat completions server
(OpenAI, Ollama, LM Studio, vLLM, llama.cpp server, gateways).

One request per symbol, all at once in a bounded thread pool: a slow or
broken answer for one symbol holds only that symbol, a 15-symbol universe
takes about as long as one symbol, and a reply can only speak for the symbol
it was asked about. Everything ends inside ``timeout_seconds``: requests and
their retries share one ``Deadline``, and ``analyse`` stops waiting at it.

``analyse`` never raises for a service or reply problem. A symbol that could
not be analysed holds with ``failure`` set:

- ``ai_unavailable``: timeout, connection failure, 429/5xx after retries, a
  used-up quota (429 ``insufficient_quota``: never retried), or a request the
  server refused (400/401/404...: wrong key, model or URL);
- ``ai_invalid``: the server answered but the reply was truncated, empty, not
  JSON or failed validation.

Two refusals are repaired, each at most once per request, and logged: a
parameter the model refuses by name (reasoning models refuse ``temperature``:
400 ``unsupported_value`` or ``unsupported_parameter``) is dropped, and a
``json_schema`` response format the server refuses becomes ``json_object``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from tradecycle.infra.parallel import MAX_WORKERS, gather
from tradecycle.connectors.http import HttpClient, HttpSettings, ServiceRefused
from tradecycle.infra.errors import BadResponse, QuotaExhausted, RateLimited, ServiceError
from tradecycle.models import AnalysisInput, Deadline, Decision
from tradecycle.infra.redact import redact
from tradecycle.ai.parse import parse_reply
from tradecycle.ai.prompt import build_messages, decision_schema, prompt_hash

MAX_RAW_REPLY_CHARS = 4000
SCHEMA_NAME = "trading_decisions"
# A server that does not understand a request answers 400 (422 on FastAPI-based servers).
# A refusal that names a parameter we may leave out (OpenAI: "param" with code
# unsupported_value/unsupported_parameter, or "Unsupported value: 'temperature'..." in the
# message) earns one retry without it. Any other such refusal is taken for json_schema, whose
# wording differs per server: one retry with json_object; a refusal for another reason fails
# again and is reported.
_FALLBACK_STATUSES = frozenset({400, 422})
_REQUIRED_PARAMETERS = frozenset({"model", "messages", "response_format"})
_UNSUPPORTED_CODES = frozenset({"unsupported_value", "unsupported_parameter"})
_UNSUPPORTED_IN_MESSAGE = re.compile(r"Unsupported (?:value|parameter):\s*'([A-Za-z_][A-Za-z0-9_]*)'")
_HINTS = {401: " (check OPENAI_API_KEY)", 403: " (check OPENAI_API_KEY)", 404: " (check ai.model and ai.base_url)"}

Logger = Callable[[str, dict], None]
_Event = tuple[str, dict]


class OpenAICompatAnalyst:
    """Asks an OpenAI-compatible server for one decision per symbol.

    ``temperature`` None is not sent (the model's default; reasoning models accept no
    other), nor is ``seed`` None. Every decision records its provenance: the model the
    server says answered, its ``system_fingerprint``, the temperature and seed the
    request finally carried (a refused one is left out, and recorded as None) and
    ``training_cutoff``. ``api_key`` may be empty (local servers); then no Authorization header is
    sent. The key never appears in a reasoning, a log field or an error.
    ``logger(event, fields)`` is called from the calling thread only.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        temperature: float | None,
        api_key: str,
        http: HttpSettings,
        max_workers: int = MAX_WORKERS,
        logger: Logger | None = None,
        replies=None,
        seed: int | None = None,
        training_cutoff: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.temperature = temperature
        self.seed = seed
        self.training_cutoff = training_cutoff
        self._api_key = api_key
        self._http = http
        self._max_workers = max(1, max_workers)
        self._logger = logger
        # A backtest's cache of replies by exact request (backtest/llm.py): ``answer(base_url,
        # payload, send)`` returns the stored reply or calls ``send()`` and stores it. None: always send.
        self._replies = replies
        self.prompt_hash = prompt_hash()

    def __repr__(self) -> str:
        return f"OpenAICompatAnalyst(base_url={self.base_url!r}, model={self.model!r})"

    def analyse(self, inputs: Sequence[AnalysisInput], timeout_seconds: float) -> list[Decision]:
        """One decision per input, in input order, returned within ``timeout_seconds``.

        A symbol whose analysis is not done by then holds with ``ai_unavailable``
        ("analysis did not finish within Ns"); its request runs on in the
        background only until the shared deadline ends it.
        """
        if not inputs:
            return []
        started = time.monotonic()
        deadline = Deadline(timeout_seconds)
        client = self._client(deadline)
        requests = [build_messages([inp]) for inp in inputs]
        tasks = {str(i): (lambda i=i: self._ask(client, inputs[i].symbol, requests[i])) for i in range(len(inputs))}
        # Daemon workers: a request still running at the deadline is abandoned, never waited for.
        answers = gather(tasks, timeout=deadline.remaining(), max_workers=self._max_workers)

        decisions = []
        for i, inp in enumerate(inputs):
            answer = answers[str(i)]
            if isinstance(answer, tuple):
                decision, events = answer
                for event, fields in events:
                    self._log(event, fields)
            else:
                decision = Decision.held(
                    inp.symbol,
                    "ai_unavailable",
                    f"analysis did not finish within {timeout_seconds:g}s",
                    self.model,
                    latency_ms=_elapsed_ms(started),
                    training_cutoff=self.training_cutoff,
                )
            decisions.append(dataclasses.replace(decision, prompt_hash=self.prompt_hash, messages=tuple(requests[i])))
        return decisions

    def ask(self, symbol: str, messages: Sequence[dict], timeout_seconds: float) -> Decision:
        """The decision for ``symbol`` on exactly these ``messages`` (a replay of a
        recorded request), within ``timeout_seconds``. Never raises: a failure holds."""
        deadline = Deadline(timeout_seconds)
        answer = gather({"ask": lambda: self._ask(self._client(deadline), symbol, list(messages))}, timeout=timeout_seconds)["ask"]
        if not isinstance(answer, tuple):
            return Decision.held(symbol, "ai_unavailable", f"analysis did not finish within {timeout_seconds:g}s", self.model,
                                 training_cutoff=self.training_cutoff)
        decision, events = answer
        for event, fields in events:
            self._log(event, fields)
        return dataclasses.replace(decision, messages=tuple(messages))

    # -- one symbol (runs in a worker thread) ---------------------------------

    def _ask(self, client: HttpClient, symbol: str, messages: list[dict]) -> tuple[Decision, list[_Event]]:
        """The decision for one symbol on ``messages`` and the events to log. Never raises."""
        started = time.monotonic()
        events: list[_Event] = []
        sent: dict[str, Any] = {}
        decision = self._answer(client, symbol, messages, started, events, sent)
        return dataclasses.replace(decision, temperature=sent.get("temperature"), seed=sent.get("seed"),
                                   training_cutoff=self.training_cutoff), events

    def _answer(self, client: HttpClient, symbol: str, messages: list[dict], started: float, events: list[_Event],
                sent: dict[str, Any]) -> Decision:
        """The decision for one symbol; ``sent`` ends up holding the last payload posted. Never raises."""
        try:
            body = self._complete(client, messages, symbol, events, sent)
        except BadResponse as exc:
            return self._held(symbol, "ai_unavailable", self._refused(exc), started)
        except QuotaExhausted as exc:
            reason = f"model server quota exhausted (not retried): {exc.message} (check the plan and billing of the account)"
            return self._held(symbol, "ai_unavailable", reason, started)
        except RateLimited as exc:
            return self._held(symbol, "ai_unavailable", f"model server rate limited: {exc.message}", started)
        except ServiceError as exc:
            return self._held(symbol, "ai_unavailable", f"model server unavailable: {exc.message}", started)
        except Exception as exc:  # a bug must hold this symbol, not abort the cycle
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            events.append(("ai_unexpected_error", {"symbol": symbol, "error": self._redact(reason)}))
            return self._held(symbol, "ai_unavailable", reason, started)
        decision = self._decide(symbol, body, started, events)
        served = body.get("model") if isinstance(body, dict) else None
        fingerprint = body.get("system_fingerprint") if isinstance(body, dict) else None
        return dataclasses.replace(decision, served_model=served if isinstance(served, str) and served else None,
                                   system_fingerprint=fingerprint if isinstance(fingerprint, str) and fingerprint else None)

    def _complete(self, client: HttpClient, messages: list[dict], symbol: str, events: list[_Event],
                  sent: dict[str, Any]) -> Any:
        """POST the chat completion, repairing a 400/422 refusal at most once each way:
        a parameter refused by name is dropped; any other refusal turns json_schema into
        json_object. A third refusal, or one of another kind, is raised."""
        payload = self._payload(messages)
        sent.update(payload)  # a reply served from the cache answered this payload
        if self._replies is not None:
            return self._replies.answer(self.base_url, payload, lambda: self._send(client, payload, symbol, events, sent))
        return self._send(client, payload, symbol, events, sent)

    def _send(self, client: HttpClient, payload: dict, symbol: str, events: list[_Event], sent: dict[str, Any]) -> Any:
        dropped = schema_refused = False
        while True:
            sent.clear()
            sent.update(payload)
            try:
                return client.post("chat/completions", payload)
            except ServiceRefused as exc:
                if exc.status_code not in _FALLBACK_STATUSES:
                    raise
                parameter = _refused_parameter(exc, payload)
                if parameter is not None and not dropped:
                    dropped = True
                    payload = {key: value for key, value in payload.items() if key != parameter}
                    events.append(
                        ("ai_parameter_dropped", {"symbol": symbol, "parameter": parameter, "error": self._redact(exc.detail)})
                    )
                elif payload["response_format"]["type"] == "json_schema" and not schema_refused:
                    schema_refused = True
                    payload = {**payload, "response_format": {"type": "json_object"}}
                    events.append(("ai_json_schema_refused", {"symbol": symbol, "error": self._redact(exc.message)}))
                else:
                    raise

    def _payload(self, messages: list[dict]) -> dict:
        payload: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.seed is not None:
            payload["seed"] = self.seed
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": decision_schema(), "strict": True},
        }
        return payload

    def _decide(self, symbol: str, body: Any, started: float, events: list[_Event]) -> Decision:
        """Turn a chat completion body into the symbol's decision (or hold)."""
        usage = body.get("usage") if isinstance(body, dict) else None
        audit = {
            "latency_ms": _elapsed_ms(started),
            "prompt_tokens": _token_count(usage, "prompt_tokens"),
            "completion_tokens": _token_count(usage, "completion_tokens"),
        }
        choice = _first_choice(body)
        if choice is None:
            reason = "model server reply has no choices[0].message"
            error = _error_text(body)
            if error:  # some gateways answer 200 with an error object
                reason = f"model server error: {error}"
            return Decision.held(symbol, "ai_unavailable", self._redact(reason), self.model, **audit)
        message = choice["message"]
        content = _content_text(message.get("content"))
        audit["raw_reply"] = content[:MAX_RAW_REPLY_CHARS] if content is not None else None

        if choice.get("finish_reason") == "length":
            return Decision.held(symbol, "ai_invalid", "reply truncated (finish_reason=length)", self.model, **audit)
        refusal = message.get("refusal")
        if not content and isinstance(refusal, str) and refusal:
            return Decision.held(symbol, "ai_invalid", f"model refused: {refusal[:200]}", self.model, **audit)

        if not (content or "").strip() and _reasoning_text(message):
            # DeepSeek, vLLM, llama.cpp and Ollama put a reasoning model's thinking beside the
            # answer; thinking alone is no answer (often the token limit ended it first).
            reason = f"reply is empty: the model only reasoned ({len(_reasoning_text(message))} characters of reasoning)"
            return Decision.held(symbol, "ai_invalid", reason, self.model, **audit)

        parsed = parse_reply(content, [symbol])
        for other in parsed.dropped:
            events.append(
                ("ai_decision_dropped", {"symbol": symbol, "reply_symbol": other, "reason": "symbol outside the request"})
            )
        if symbol in parsed.invalid:
            return Decision.held(symbol, "ai_invalid", parsed.invalid[symbol], self.model, **audit)
        valid = parsed.decisions[symbol]
        return Decision(symbol, valid.action, valid.confidence, valid.reasoning, self.model, **audit)

    # -- reachability (for ``check --online``) ----------------------------------

    def list_models(self, timeout_seconds: float) -> list[str] | None:
        """GET {base_url}/models, sent once: the model ids the server offers,
        or None when it has no such endpoint (404). Raises ``ServiceError``."""
        client = self._client(Deadline(timeout_seconds))
        body = client.request("GET", "models", retry=False, missing_ok=True)
        if body is None:
            return None
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise BadResponse("ai", "models reply has no 'data' list")
        return [str(row["id"]) for row in rows if isinstance(row, dict) and row.get("id")]

    def check(self, inp: AnalysisInput, timeout_seconds: float) -> tuple[Decision, list[str]]:
        """One real decision for ``inp``, asked exactly as a cycle asks (same messages,
        parameters and repairs), within ``timeout_seconds``. Returns the decision (its
        ``failure`` says why it holds) and one note per repair the server needed. Never raises."""
        decision, events = self._ask(self._client(Deadline(timeout_seconds)), inp.symbol, build_messages([inp]))
        notes = []
        for event, fields in events:
            if event == "ai_parameter_dropped":
                name = fields["parameter"]
                notes.append(f"the server refused {name} ({fields['error']}): it is left out, one extra request a symbol; unset ai.{name} to save it")
            elif event == "ai_json_schema_refused":
                notes.append("the server refused response_format json_schema: json_object is used, one extra request a symbol")
        return decision, notes

    # -- helpers ---------------------------------------------------------------

    def _client(self, deadline: Deadline) -> HttpClient:
        """A client for this analysis: its requests and retries end at ``deadline``."""
        secrets = self._http.secrets + ((self._api_key,) if self._api_key else ())
        settings = dataclasses.replace(self._http, deadline=deadline, secrets=secrets)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        return HttpClient("ai", self.base_url, settings, headers=headers)

    def _refused(self, exc: BadResponse) -> str:
        if exc.status_code is not None and 200 <= exc.status_code < 300:
            return f"model server sent an unusable answer: {exc.message}"
        return f"model server refused the request: {exc.message}{_HINTS.get(exc.status_code, '')}"

    def _held(self, symbol: str, failure: str, reasoning: str, started: float) -> Decision:
        return Decision.held(symbol, failure, self._redact(reasoning), self.model, latency_ms=_elapsed_ms(started))

    def _redact(self, text: str) -> str:
        return redact(text, (*self._http.secrets, self._api_key))

    def _log(self, event: str, fields: dict) -> None:
        if self._logger is not None:
            self._logger(event, {"model": self.model, **fields})


def _first_choice(body: Any) -> dict | None:
    """``choices[0]`` when it carries a ``message`` object, else None."""
    if not isinstance(body, dict):
        return None
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    return choices[0] if isinstance(choices[0].get("message"), dict) else None


def _refused_parameter(exc: ServiceRefused, payload: dict) -> str | None:
    """The optional parameter of ``payload`` that a refusal names as unsupported, if any."""
    found = _UNSUPPORTED_IN_MESSAGE.search(exc.detail)
    # Early o3-mini replies put "model" in param: the message names the culprit too.
    for named in (exc.error_param if exc.error_code in _UNSUPPORTED_CODES else None, found and found.group(1)):
        if named in payload and named not in _REQUIRED_PARAMETERS:
            return named
    return None


def _content_text(content: Any) -> str | None:
    """``message.content`` as text: a string, or the text parts of a list of content parts
    (``[{"type": "text", "text": ...}]``, as some servers send) joined; else None.
    Parts of other types (a model's thinking, images) are not the answer and are skipped."""
    if isinstance(content, str) or content is None:
        return content
    if not isinstance(content, list):
        return None
    texts = [
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type") in ("text", "output_text") and isinstance(part.get("text"), str)
    ]
    return "".join(texts) if texts else None


def _reasoning_text(message: dict) -> str:
    """A reasoning model's thinking, sent beside the answer (``reasoning_content``: DeepSeek,
    vLLM, llama.cpp; ``reasoning``: Ollama, newer vLLM), or ``""``."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _error_text(body: Any) -> str:
    """The message of an ``{"error": ...}`` body, on one line, or ``""``."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return " ".join(str(error).split())[:300] if error else ""


def _token_count(usage: Any, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
