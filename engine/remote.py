"""RemoteEngine: the Engine interface over any OpenAI-compatible server (`mimo serve`, `vllm serve`, others).

Always streams (SSE), so a caller sees tokens as they come and cancels by closing its iterator: that closes the
HTTP stream, and a server that watches for disconnects (ours, vLLM) stops generating. Connection failures are
retried with exponential backoff; nothing else is (a request the server saw might have run). Failures become
engine.api errors with a sentence a person can act on. No torch import: this is what a thin client loads.

FIM: with `fim_template` set, the prompt is rendered here with that template (for servers that don't render
`suffix`, such as vLLM's) and its control tokens become stop sequences; otherwise the header and prefix go in
`prompt` and the suffix in OpenAI's `suffix` field, which `mimo serve` renders with the model's own template.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx

from engine.api import (
    BadRequest,
    Chunk,
    EngineError,
    EngineInfo,
    EngineUnavailable,
    FinishReason,
    GenerationRequest,
    ModelNotFound,
    Overloaded,
    PromptTooLong,
    Timings,
    Usage,
)
from engine.formats import PROMPT_MODES, fim_template_named

SERVER_STOP_LIMIT = 4  # the most stop sequences OpenAI (and vLLM) accept in one request
API_KEY_ENV = "MIMO_API_KEY"  # read by `mimo serve`, `mimo complete`, `mimo review` and the language server


@dataclass(frozen=True)
class RemoteConfig:
    base_url: str  # "http://host:8000" (then /v1 is added) or the API root itself, e.g. "http://host/openai/v1"
    model: str | None = None  # None: the first model the server lists
    api_key: str | None = field(default=None, repr=False)  # sent as a bearer token; never in a repr or a message
    fim_template: str | None = None  # render FIM here with this template; None: send OpenAI's `suffix`
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 60.0  # the longest wait for the next bytes of a response
    connect_retries: int = 2
    backoff_s: float = 0.25  # doubles on each retry

    @property
    def api_root(self) -> str:
        url = self.base_url.rstrip("/")
        return url + "/v1" if urlsplit(url).path in ("", "/") else url


class RemoteEngine:
    def __init__(self, base_url: str, **options):
        self.config = RemoteConfig(base_url=base_url, **options)
        if self.config.fim_template:
            fim_template_named(self.config.fim_template)  # an unknown name fails here, not on first use
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        timeout = httpx.Timeout(self.config.read_timeout_s, connect=self.config.connect_timeout_s)
        self._client = httpx.AsyncClient(base_url=self.config.api_root, headers=headers, timeout=timeout)
        self._model = self.config.model
        self._context_length = 0  # unknown until check() reads /v1/models
        self._prompt_mode: str | None = None  # the deployment's, from `mimo serve`'s model card

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self._model or "unknown",
            backend="remote",
            context_length=self._context_length,
            fim_template=self.config.fim_template,
            device=self.config.api_root,
            prompt_mode=self._prompt_mode,
        )

    async def check(self) -> EngineInfo:
        """Asks the server which models it serves: raises EngineUnavailable if it can't be reached or isn't
        OpenAI-compatible, ModelNotFound if the configured model isn't among them."""
        response = await self._send(self._client.build_request("GET", "/models"))
        try:
            if response.status_code != 200:
                raise await self._error_from(response, "/models")
            cards = _json_or_none(await response.aread()) or {}
            models = {card.get("id"): card for card in cards.get("data", []) if isinstance(card, dict)}
        finally:
            await response.aclose()
        if not models:
            raise EngineUnavailable(f"{self.config.api_root}/models lists no models")
        if self.config.model is not None and self.config.model not in models:
            raise ModelNotFound(
                f"{self.config.api_root} does not serve model {self.config.model!r}; "
                f"it serves: {', '.join(map(str, models))}"
            )
        self._model = self.config.model or next(iter(models))
        self._context_length = int(models[self._model].get("max_model_len") or 0)
        mode = models[self._model].get("prompt_mode")
        self._prompt_mode = mode if mode in PROMPT_MODES else None
        return self.info()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if self._model is None:
            await self.check()
        path, body, stops = self._request_body(request)
        response = await self._send(self._client.build_request("POST", path, json=body))
        try:
            if response.status_code != 200:
                raise _with_hint(await self._error_from(response, path), body)
            chat = path == "/chat/completions"
            async for chunk in _read_stream(response, chat, self.config, stops, request.sampling.n):
                yield chunk
        finally:
            await response.aclose()  # on cancel: drops the connection, and the server stops generating

    async def aclose(self) -> None:
        await self._client.aclose()

    def _request_body(self, request: GenerationRequest) -> tuple[str, dict, tuple[str, ...]]:
        """The endpoint, the JSON body, and every stop sequence (the server gets the first few; all are
        enforced here as well)."""
        sampling = request.sampling
        body: dict = {
            "model": self._model,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "n": sampling.n,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stop = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.logit_bias:  # OpenAI's JSON keys are strings
            body["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias.items()}
        for penalty in ("presence_penalty", "frequency_penalty"):
            if getattr(sampling, penalty):
                body[penalty] = getattr(sampling, penalty)
        if sampling.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": sampling.json_schema},
            }
        if not request.use_mtp:
            body["use_mtp"] = False  # our server's extension; others ignore unknown fields
        if request.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
            path = "/chat/completions"
        elif request.fim is not None and self.config.fim_template:
            template = fim_template_named(self.config.fim_template)
            body["prompt"] = template.render(request.fim)
            stop += [token for token in template.control_tokens if token not in stop]
            body["skip_special_tokens"] = False  # vLLM's option: control tokens show in the text, so they stop it
            path = "/completions"
        elif request.fim is not None:
            body["prompt"], body["suffix"] = request.fim.header + request.fim.prefix, request.fim.suffix
            path = "/completions"
        else:
            body["prompt"], path = request.prompt, "/completions"
        if stop:
            body["stop"] = stop[:SERVER_STOP_LIMIT]
        return path, body, tuple(stop)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Sends with retries for connection failures only, then gives up with EngineUnavailable."""
        attempts = self.config.connect_retries + 1
        for attempt in range(attempts):
            try:
                return await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt + 1 == attempts:
                    raise EngineUnavailable(
                        f"cannot reach {self.config.api_root} ({_reason(exc)}) after {attempts} attempts; "
                        "is the server running, and is the URL right?"
                    ) from None
                await asyncio.sleep(self.config.backoff_s * 2**attempt)
            except httpx.TimeoutException:
                raise EngineUnavailable(
                    f"{self.config.api_root} did not answer within {self.config.read_timeout_s:g} s"
                ) from None
            except httpx.TransportError as exc:
                raise EngineUnavailable(f"lost the connection to {self.config.api_root} ({_reason(exc)})") from None
        raise AssertionError("unreachable")

    async def _error_from(self, response: httpx.Response, path: str) -> EngineError:
        payload = _json_or_none(await response.aread())
        return error_from_status(
            response.status_code,
            _error_message(payload, response),
            _error_code(payload),
            f"{self.config.api_root}{path}",
            response.headers.get("retry-after"),
        )


# ---- errors -----------------------------------------------------------------------------------------------

_OUR_TOO_LONG = re.compile(r"prompt has (\d+) tokens but the model's context is (\d+) tokens")
_VLLM_TOO_LONG = re.compile(
    r"maximum context length is (\d+) tokens.*?(?:requested|messages resulted in|prompt contains(?: at least)?) (\d+)",
    re.S,
)


def error_from_status(
    status: int, message: str, code: str | None, url: str, retry_after: str | None = None
) -> EngineError:
    """The engine.api error for an HTTP error answer from an OpenAI-compatible server."""
    if status == 400:
        return _too_long(message) or BadRequest(message)
    if status == 404 and (
        code == "model_not_found"
        or re.search(
            r"model\b.*(does not exist|not found|not "
            r"served)",
            message,
            re.I,
        )
    ):
        return ModelNotFound(message)
    if status in (404, 405):
        return EngineUnavailable(
            f"{url} does not exist on this server (HTTP {status}); is it an OpenAI-compatible "
            "server, and does the base URL stop where /v1 begins?"
        )
    if status in (401, 403):
        return EngineUnavailable(f"{url} refused the request (HTTP {status}: {message}); check the API key")
    if status in (429, 503):
        return Overloaded(f"{url} is busy (HTTP {status}): {message}", _seconds(retry_after))
    return EngineError(f"{url} failed (HTTP {status}): {message}")


def _in_band_error(error: object, url: str) -> EngineError:
    """An error reported inside a stream that had started (its HTTP status was 200). vLLM puts the status it
    would have used in `code`; ours puts a string code there."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    code, message = error.get("code"), str(error.get("message"))
    status = code if isinstance(code, int) else 500
    return _too_long(message) or error_from_status(status, message, code if isinstance(code, str) else None, url)


def _with_hint(error: EngineError, body: dict) -> EngineError:
    if isinstance(error, BadRequest) and "suffix" in body and "suffix" in str(error).lower():
        return BadRequest(
            f"{error} (this server does not render `suffix`: configure the client with a FIM "
            "template name, e.g. fim_template='qwen')"
        )
    return error


def _too_long(message: str) -> PromptTooLong | None:
    if match := _OUR_TOO_LONG.search(message):
        return PromptTooLong(int(match[1]), int(match[2]))
    if match := _VLLM_TOO_LONG.search(message):
        return PromptTooLong(int(match[2]), int(match[1]))
    return None


def _error_message(payload: dict | None, response: httpx.Response) -> str:
    error = (payload or {}).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
        return payload["detail"]  # FastAPI's default error body
    return response.reason_phrase or "no message"


def _error_code(payload: dict | None) -> str | None:
    error = (payload or {}).get("error")
    return error.get("code") if isinstance(error, dict) else None


def _seconds(retry_after: str | None) -> float:
    try:
        return max(float(retry_after or 1.0), 0.0)
    except ValueError:
        return 1.0  # an HTTP date: not worth parsing for a hint


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _json_or_none(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ---- the SSE stream -----------------------------------------------------------------------------------------


async def _read_stream(
    response: httpx.Response, chat: bool, config: RemoteConfig, stops: tuple[str, ...], n: int
) -> AsyncIterator[Chunk]:
    """Text chunks as they arrive; each sample's finishing chunk comes at the end, once usage is known
    (OpenAI servers send usage in a last chunk of its own, after the finish reasons). A sample that reaches a
    stop sequence here is finished here; once all are, the stream is closed, which stops the server."""
    started, first_token_at = time.perf_counter(), None
    cutters = [_StopCutter(stops) for _ in range(n)]
    finished: dict[int, FinishReason] = {}
    usage, server_timings, cut_here = Usage(), None, False
    try:
        async for payload in _sse_payloads(response):
            if "error" in payload:
                raise _in_band_error(payload["error"], config.api_root)
            usage = _usage(payload.get("usage")) or usage
            server_timings = payload.get("timings") or server_timings
            for choice in payload.get("choices") or ():
                index = int(choice.get("index", 0))
                if index in finished or index >= n:
                    continue
                text, stopped = cutters[index].feed(
                    (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                )
                if choice.get("finish_reason") and not stopped:
                    text += cutters[index].flush()
                if text:
                    first_token_at = first_token_at or time.perf_counter()
                    yield Chunk(text=text, index=index)
                if stopped or choice.get("finish_reason"):
                    finished[index] = "stop" if stopped else _finish_reason(choice["finish_reason"])
                    cut_here = cut_here or stopped
            if cut_here and len(finished) == n:
                break  # the server may still be generating; closing the stream stops it
    except httpx.TimeoutException:
        raise EngineUnavailable(f"{config.api_root} sent nothing for {config.read_timeout_s:g} s") from None
    except httpx.TransportError as exc:
        raise EngineUnavailable(f"lost the connection to {config.api_root} mid-response ({_reason(exc)})") from None
    timings = _timings(started, first_token_at, usage, server_timings)
    for index in sorted(finished):
        yield Chunk(text="", index=index, finish_reason=finished[index], usage=usage, timings=timings)


class _StopCutter:
    """Cuts one sample's text at its first stop sequence. Text that could be the start of one is held back
    until the next piece shows whether it is."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops, self.held = stops, ""

    def feed(self, text: str | None) -> tuple[str, bool]:
        """(text that can be shown, whether a stop sequence was reached)."""
        buffer = self.held + (text or "")
        cuts = [buffer.find(stop) for stop in self.stops if stop in buffer]
        if cuts:
            self.held = ""
            return buffer[: min(cuts)], True
        keep = max((k for stop in self.stops for k in range(1, len(stop)) if buffer.endswith(stop[:k])), default=0)
        self.held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held


async def _sse_payloads(response: httpx.Response) -> AsyncIterator[dict]:
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments (": keep-alive"), event names
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        payload = _json_or_none(data.encode())
        if payload is not None:
            yield payload


def _usage(raw: dict | None) -> Usage | None:
    if not raw:
        return None
    return Usage(prompt_tokens=int(raw.get("prompt_tokens", 0)), completion_tokens=int(raw.get("completion_tokens", 0)))


def _finish_reason(raw: str) -> FinishReason:
    return raw if raw in ("stop", "length") else ("cancelled" if raw == "abort" else "stop")


def _timings(started: float, first_token_at: float | None, usage: Usage, server: dict | None) -> Timings:
    """Latency as this client saw it (time to first token, total); decode rate and MTP counts from the
    server's `timings` when it reports them (ours does), else the rate over the whole request."""
    total = time.perf_counter() - started
    measured = Timings(
        time_to_first_token_s=(first_token_at or time.perf_counter()) - started,
        total_s=total,
        tokens_per_s=usage.completion_tokens / total if total > 0 else 0.0,
    )
    if not server:
        return measured
    return replace(
        measured,
        tokens_per_s=float(server.get("tokens_per_s", measured.tokens_per_s)),
        mtp_drafts_proposed=int(server.get("mtp_drafts_proposed", 0)),
        mtp_drafts_accepted=int(server.get("mtp_drafts_accepted", 0)),
        mtp_steps=int(server.get("mtp_steps", 0)),
        mtp_accepted_per_position=tuple(map(int, server.get("mtp_accepted_per_position", ()))),
    )
