"""OpenAI-compatible chat servers (API_NOTES.md, "OpenAI-compatible chat
completions"): OpenAI, Ollama, vLLM, llama.cpp and DeepSeek reply envelopes,
``/models`` listings, error bodies and unknown-model behaviour, how models dress
their answer, what reasoning models refuse, and OpenAI's insufficient_quota 429."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from .common import RecordedRequest, Reply, _now_epoch

# OpenAI's 429 when the account has no credit left: not a rate limit, waiting does not help.
OPENAI_INSUFFICIENT_QUOTA = {"error": {
    "message": "You exceeded your current quota, please check your plan and billing details. For more information "
               "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
# What each OpenAI-compatible server sends (reply envelope, /models listing, errors, unknown model):
#   openai    usage with *_tokens_details, service_tier, refusal/annotations; unknown model 404 model_not_found
#   ollama    system_fingerprint "fp_ollama", plain usage, thinking in message.reasoning; "x" finds "x:latest"
#   vllm      reasoning_content (null unless a reasoning parser runs), tool_calls [], stop_reason, prompt_logprobs,
#             kv_transfer_params; errors carry an integer code; /models rows have root, max_model_len, permission
#   llamacpp  timings, integer error code; /models lists its one model by file name (or --alias) with meta,
#             plus an Ollama-style "models" list, and the completion is served whatever model is asked for
#   deepseek  reasoning_content (deepseek-reasoner), prompt_cache_hit/miss_tokens; unknown model 400 "Model Not Exist"
# OpenAI answers an alias with the dated snapshot that served it (the reply's "model").
OPENAI_SNAPSHOTS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06",
                    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14", "o3-mini": "o3-mini-2025-01-31"}
_RUN = re.compile(r"[A-Za-z0-9/]+")  # what a symbol must not be part of to count as mentioned
LLM_FLAVORS = ("openai", "ollama", "vllm", "llamacpp", "deepseek")
LLAMACPP_MODEL_ID = "models/Qwen3-8B-Q4_K_M.gguf"  # llama-server -m models/Qwen3-8B-Q4_K_M.gguf, no --alias
# How models dress the answer text: None (bare), "fence" (```json ... ```), "prose" (sentences around it),
# "prose_fence" (a fence inside prose), "think" (<think>...</think> first: R1 distills on older Ollama),
# "think_close_only" (thinking, then only </think>: the chat template opened the block, llama.cpp
# with --reasoning-format none).
LLM_WRAPS = (None, "fence", "prose", "prose_fence", "think", "think_close_only")
DEFAULT_THINKING = "Okay, the user wants one decision per symbol. Let me weigh the price move against the headlines."

_OPENAI_ERRORS = {
    400: ("invalid_request_error", "invalid_request", "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", "unsupported_country_region_territory", "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class LLMMixin:
    """The OpenAI-compatible chat server of ``FakeServices``."""

    def _openai(self, req: RecordedRequest) -> Reply:
        if self.openai_api_key is not None:
            auth = req.headers.get("Authorization", "")
            if auth != f"Bearer {self.openai_api_key}":
                return Reply(401, self._error_body("openai", 401))
        if req.subpath == "/models" and req.method == "GET":
            return Reply(200, self._llm_listing())
        if req.subpath != "/chat/completions":
            return Reply(404, self._error_body("openai", 404, f"Unknown request URL: {req.method} {req.subpath}"))
        if req.method != "POST":
            return Reply(405, self._error_body("openai", 405, "Method not allowed"))
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return Reply(400, self._error_body("openai", 400, "'messages' is a required property"))
        if not body.get("model"):
            return Reply(400, self._error_body("openai", 400, "you must provide a model parameter"))
        refusal = self._llm_refusal(body)
        if refusal is not None:
            return refusal

        reply = self.llm_reply
        if reply is None:
            reply = self.default_llm_reply
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, dict):  # a full response override
            status = int(reply.get("status", 200))
            payload = reply["body"] if "body" in reply else {k: v for k, v in reply.items()
                                                            if k not in ("status", "headers")}
            if not payload and "body" not in reply and status >= 400:
                payload = self._error_body("openai", status)
            return Reply(status, payload, dict(reply.get("headers") or {}))
        return Reply(200, self._llm_completion(body, self._llm_dress(str(reply))))

    # The shapes below follow each server's documentation and recorded replies (openai-python's
    # tests, llama.cpp's server README, vLLM's protocol, DeepSeek's and Ollama's API docs).

    def _llm_listing(self) -> dict[str, Any]:
        """GET /models as the imitated server lists its models."""
        flavor, created = self.llm_flavor, 1735142223
        rows: list[dict[str, Any]] = []
        for model in self._llm_listed():
            row: dict[str, Any] = {"id": model, "object": "model", "created": created,
                                   "owned_by": {"openai": "system", "ollama": "library", "vllm": "vllm",
                                                "llamacpp": "llamacpp", "deepseek": "deepseek"}[flavor]}
            if flavor == "vllm":
                row.update(root=model, parent=None, max_model_len=32768, permission=[{
                    "id": "modelperm-" + uuid.uuid4().hex, "object": "model_permission", "created": created,
                    "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                    "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                    "organization": "*", "group": None, "is_blocking": False}])
            elif flavor == "llamacpp":
                row.update(aliases=[model], tags=[], architecture={"input_modalities": ["text"], "output_modalities": ["text"]},
                           meta={"vocab_type": 2, "n_vocab": 151936, "n_ctx_train": 40960, "n_embd": 4096,
                                 "n_params": 8190735360, "size": 5027783488})
            elif flavor == "deepseek":
                del row["created"]
            rows.append(row)
        listing: dict[str, Any] = {"object": "list", "data": rows}
        if flavor == "llamacpp":  # llama.cpp also answers Ollama's /api/tags shape in the same body
            listing["models"] = [{"name": m, "model": m, "modified_at": "", "size": "", "digest": "", "type": "model",
                                  "description": "", "tags": [""], "capabilities": ["completion"], "parameters": "",
                                  "details": {"parent_model": "", "format": "gguf", "family": "", "families": [""],
                                              "parameter_size": "", "quantization_level": ""}}
                                 for m in self._llm_listed()]
        return listing

    def _llm_listed(self) -> list[str]:
        if self.llm_models is not None:
            return list(self.llm_models)
        return [LLAMACPP_MODEL_ID] if self.llm_flavor == "llamacpp" else [self.llm_model]

    def _llm_error(self, status: int, message: str, kind: str = "invalid_request_error",
                   code: Any = None, param: str | None = None) -> Reply:
        """An error in the imitated server's shape (llama.cpp and vLLM: an integer code)."""
        if self.llm_flavor == "llamacpp":
            return Reply(status, {"error": {"code": status, "message": message, "type": kind}})
        if self.llm_flavor == "vllm":
            return Reply(status, {"error": {"message": message, "type": kind, "param": param, "code": status}})
        return Reply(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})

    def _llm_refusal(self, body: dict[str, Any]) -> Reply | None:
        """What the imitated server refuses before generating anything, or None."""
        if self.llm_quota_exhausted:
            return Reply(429, json.loads(json.dumps(OPENAI_INSUFFICIENT_QUOTA)))
        model, flavor = str(body["model"]), self.llm_flavor
        listed = self._llm_listed()
        if flavor != "llamacpp" and model not in listed and not (flavor == "ollama" and f"{model}:latest" in listed):
            if flavor == "ollama":
                return self._llm_error(404, f'model "{model}" not found, try pulling it first', "api_error")
            if flavor == "vllm":
                return self._llm_error(404, f"The model `{model}` does not exist.", "NotFoundError", param="model")
            if flavor == "deepseek":
                return self._llm_error(400, "Model Not Exist", code="invalid_request_error")
            return self._llm_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                                   code="model_not_found")
        for name, kind in self.llm_refuse_params.items():
            if name not in body:
                continue
            if kind == "unsupported_parameter":
                return self._llm_error(400, f"Unsupported parameter: '{name}' is not supported with this model.",
                                       code=kind, param=name)
            if body[name] != 1:
                return self._llm_error(400, f"Unsupported value: '{name}' does not support {body[name]} with this model. "
                                            "Only the default (1) value is supported.", code=kind, param=name)
        response_format = body.get("response_format")
        if not self.llm_json_schema and isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            return self._llm_error(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                                        "with this model.", param="response_format")
        return None

    def _llm_dress(self, answer: str) -> str:
        """The answer text as the model writes it around (``llm_wrap``)."""
        thinking = self.llm_reasoning or DEFAULT_THINKING
        return {
            None: answer,
            "fence": f"```json\n{answer}\n```",
            "prose": f"Here is my analysis of the market data you provided.\n\n{answer}\n\nThis is not financial advice.",
            "prose_fence": f"Sure! Here is the JSON you asked for:\n\n```json\n{answer}\n```\n\nLet me know if you need more.",
            "think": f"<think>\n{thinking}\n</think>\n\n{answer}",
            "think_close_only": f"{thinking}\n</think>\n\n{answer}",
        }[self.llm_wrap]

    def _llm_served(self, asked: str) -> str:
        """The model a reply says answered ``asked``."""
        if self.llm_served_model is not None:
            return self.llm_served_model.get(asked, asked)
        return OPENAI_SNAPSHOTS.get(asked, asked) if self.llm_flavor == "openai" else asked

    def _llm_completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        """A 200 chat completion in the imitated server's shape."""
        flavor, model, created = self.llm_flavor, self._llm_served(body["model"]), _now_epoch()
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict))
        prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(content) // 4)
        reasoning = self.llm_reasoning if self.llm_wrap not in ("think", "think_close_only") else None
        reasoning_tokens = len(reasoning) // 4 if reasoning else 0
        completion_tokens += reasoning_tokens
        message: dict[str, Any] = {"role": "assistant",
                                   "content": [{"type": "text", "text": content}] if self.llm_content_parts else content}
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.llm_finish_reason}
        reply: dict[str, Any] = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
                                 "created": created, "model": model, "choices": [choice], "usage": usage}
        if flavor == "openai":  # OpenAI keeps a reasoning model's thinking to itself: only its token count shows
            message.update(refusal=None, annotations=[])
            usage.update(prompt_tokens_details={"cached_tokens": 0, "audio_tokens": 0},
                         completion_tokens_details={"reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0})
            reply.update(service_tier="default", system_fingerprint=None if reasoning else "fp_fake")
        elif flavor == "ollama":
            del choice["logprobs"]
            if reasoning:
                message["reasoning"] = reasoning
            reply.update(id=f"chatcmpl-{uuid.uuid4().int % 1000}", system_fingerprint="fp_ollama")
        elif flavor == "vllm":
            message.update(reasoning_content=reasoning, tool_calls=[])
            choice["stop_reason"] = None
            usage["prompt_tokens_details"] = None
            reply.update(id="chatcmpl-" + uuid.uuid4().hex, prompt_logprobs=None, kv_transfer_params=None)
        elif flavor == "llamacpp":
            del choice["logprobs"]
            if reasoning:
                message["reasoning_content"] = reasoning
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
            reply.update(system_fingerprint="b6490-fake", timings={
                "cache_n": 0, "prompt_n": prompt_tokens, "prompt_ms": 30.9, "prompt_per_token_ms": 0.5,
                "prompt_per_second": 2000.0, "predicted_n": completion_tokens, "predicted_ms": 661.0,
                "predicted_per_token_ms": 18.9, "predicted_per_second": 52.9})
        elif flavor == "deepseek":
            if reasoning:
                message["reasoning_content"] = reasoning
                usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
            usage.update(prompt_tokens_details={"cached_tokens": 0}, prompt_cache_hit_tokens=0,
                         prompt_cache_miss_tokens=prompt_tokens)
            reply.update(id=str(uuid.uuid4()), system_fingerprint="fp_fake_prod0820")
        else:
            raise ValueError(f"unknown llm_flavor {flavor!r}; one of {LLM_FLAVORS}")
        return reply

    def default_llm_reply(self, request_json: dict) -> str:
        """``{"decisions": [...]}`` from ``llm_decide`` (symbol -> (action, confidence, reasoning)
        or a dict). Only the symbols that the user messages mention are answered, so that
        per-symbol requests get their own symbol; when none is mentioned, all of them."""
        with self.lock:
            decide = dict(self.llm_decide_by_model.get(str(request_json.get("model")), self.llm_decide))
        text = " ".join(
            m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
            for m in request_json.get("messages", [])
            if isinstance(m, dict) and m.get("role") == "user"
        )
        # A symbol is mentioned where it stands alone: not inside a longer run of letters, digits
        # and "/". The runs are found once (a regex per known symbol, 100 symbols on 100
        # requests, cost benchmark 8 a fifth of a second of this process's CPU); a symbol
        # with another character in it ("BRK.B") is looked for on its own.
        runs = set(_RUN.findall(text))
        mentioned = [s for s in decide if ((s in runs) if _RUN.fullmatch(s) else
                                           re.search(rf"(?<![A-Za-z0-9/]){re.escape(s)}(?![A-Za-z0-9/])", text))]
        decisions = []
        for symbol in mentioned or list(decide):
            value = decide[symbol]
            if isinstance(value, dict):
                decisions.append({"symbol": symbol, **value})
                continue
            action, confidence, reasoning = (list(value) + [0.9, "fake analyst"])[:3] if isinstance(
                value, (tuple, list)) else (value, 0.9, "fake analyst")
            decisions.append({"symbol": symbol, "action": action, "confidence": confidence, "reasoning": reasoning})
        return json.dumps({"decisions": decisions})
