"""vLLM backend: an in-process vLLM engine behind the ``Engine`` interface, with MTP speculative decoding.

MiMo checkpoints (``MiMoForCausalLM`` with ``num_nextn_predict_layers`` > 0) decode with
``speculative_config={"method": "mtp", "num_speculative_tokens": k}``, k = 1 by default: for k > 1 vLLM runs
MiMo's one MTP layer again on its own draft (its forward always takes step 0), which lowers acceptance; the
native backend chains its layer the same way. Plain models decode without MTP.

Nothing is reported home: every engine turns vLLM's usage statistics off first (engine.privacy) unless the
caller opts in. A failure while vLLM starts becomes one ``EngineUnavailable`` line (the traceback is logged at
debug level), so `mimo serve` can say what went wrong without 180 lines of vLLM internals.

Why ``LLMEngine`` driven by one thread and not ``AsyncLLM``: ``AsyncLLM`` always puts the engine core in a
separate, spawned process (vLLM raises ``NotImplementedError`` for an in-process asyncio core). On CPU that costs
15–30 s of start-up per engine and needs ``if __name__ == "__main__"`` guards in every caller. ``LLMEngine`` runs
its core in-process or in its own process, and one loop thread that owns it gives the same
behaviour: requests stream as ``Chunk``s, and closing a stream aborts its vLLM request before the next step.

vLLM is imported lazily, so ``engine`` imports without it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.api import (
    BadRequest,
    Chunk,
    EngineInfo,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    Timings,
    Usage,
)
from engine.formats import control_tokens, detect_fim_template, render_request
from engine.grammar import JSON_LAYOUT, JsonGrammars, SchemaRejected
from engine.model_card import trained_languages
from engine.privacy import disable_vllm_usage_stats
from engine.prompt_tokens import PromptTokenizer
from engine.sampling import check_sampling, is_greedy, sample_seed
from engine.vllm_logging import cut_vllm_tracebacks
from engine.vllm_setup import (  # noqa: F401  (the argument builders are part of this module's interface)
    MAX_SPECULATIVE_TOKENS,
    MTP_ARCHITECTURE,
    checkpoint_mtp_layers,
    engine_arguments,
    engine_config,
    import_vllm,
    start_loop,
    visible_gpus,
)


def vllm_sampling_params(sampling: SamplingParams, stop_token_ids: list[int], banned: tuple[str, ...] = ()):
    """Our sampling parameters as vLLM's, streaming deltas. ``stop_token_ids`` end a sample (control tokens);
    ``banned`` tokens are never sampled (vLLM's bad words, which it applies to drafts too); a JSON schema becomes
    vLLM's structured decoding with llguidance, in the native backend's layout (``guidance_schema``; its grammar
    masks every token, drafts included). Presence and frequency penalties are vLLM's own, which count the drafts
    under verification as generated, so MTP output stays exact; its logit bias is dropped with speculative
    decoding (``VllmEngine.generate`` refuses it there).

    Temperatures below ``GREEDY_BELOW`` decode greedily, as on the native backend. The seed becomes a 63-bit
    one drawn from it (``sample_seed``): vLLM seeds sample i with ``seed + i``, which would share streams
    between requests whose seeds differ by less than n (and overflow 64 bits at the top of the range)."""
    from vllm import SamplingParams as VllmSamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    schema = sampling.json_schema
    return VllmSamplingParams(
        n=sampling.n,
        temperature=0.0 if is_greedy(sampling.temperature) else sampling.temperature,
        top_p=sampling.top_p,
        seed=None if sampling.seed is None else sample_seed(sampling.seed, 0),
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        logit_bias=dict(sampling.logit_bias) if sampling.logit_bias else None,
        max_tokens=sampling.max_tokens,
        stop=[text for text in sampling.stop if text] or None,  # vLLM refuses "", which stops nothing
        stop_token_ids=stop_token_ids,
        skip_special_tokens=True,
        output_kind=RequestOutputKind.DELTA,
        structured_outputs=StructuredOutputsParams(json=guidance_schema(schema)) if schema is not None else None,
        bad_words=list(banned) or None,
    )


def guidance_schema(schema: dict) -> dict:
    """``schema`` with the native backend's JSON layout (", " and ": " between items, no free whitespace) as its
    llguidance options, unless it sets its own: llguidance reads them from the schema's ``x-guidance`` key, as
    the native backend's ``defaults`` become that key, so both backends compile the same grammar. vLLM itself
    passes only ``whitespace_flexible``, which would leave "," and ":" without spaces."""
    return schema if "x-guidance" in schema else {**schema, "x-guidance": dict(JSON_LAYOUT)}


@dataclass
class _SampleProgress:
    """What one request has produced so far, to build usage and timings for its final chunks."""

    prompt_tokens: int
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    completion_tokens: int = 0
    drafts_proposed: int = 0
    drafts_accepted: int = 0

    def add(self, token_count: int, spec_metrics) -> None:
        if token_count and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.completion_tokens += token_count
        if spec_metrics is not None:
            summary = spec_metrics.to_dict()
            self.drafts_proposed += summary["num_draft_tokens"]
            self.drafts_accepted += summary["num_accepted_draft_tokens"]

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)

    def timings(self) -> Timings:
        """``tokens_per_s`` is the decode rate after the first token, as the native engine reports it."""
        now = time.perf_counter()
        first = self.first_token_at or now
        return Timings(
            time_to_first_token_s=first - self.started,
            total_s=now - self.started,
            tokens_per_s=max(self.completion_tokens - 1, 0) / (now - first) if now > first else 0.0,
            mtp_drafts_proposed=self.drafts_proposed,
            mtp_drafts_accepted=self.drafts_accepted,
        )


class VllmEngine:
    """The ``Engine`` interface over vLLM. One instance owns one vLLM engine and its loop thread."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        num_speculative_tokens: int = 1,
        enforce_eager: bool | None = None,
        fim_template: str | None = None,
        model_name: str | None = None,
        usage_stats: bool = False,
        gpus: str | None = None,
        **options: Any,
    ):
        """``enforce_eager`` defaults to True on CPU (torch.compile warm-up costs half a minute and gains little
        there) and to vLLM's default elsewhere. ``fim_template`` overrides the template detected from the
        tokenizer; ``model_name`` is the name ``info()`` reports (default: the checkpoint folder's);
        ``usage_stats`` lets vLLM report usage statistics to its project (off otherwise); ``gpus`` is the
        ``CUDA_VISIBLE_DEVICES`` of the engine core's process (data-parallel replicas, ``open_replicas``);
        ``options`` go to ``vllm.EngineArgs`` unchanged (an unknown name is a BadRequest). vLLM reads its own
        environment variables (docs/vllm.md): ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` keeps its core in this
        process (seconds to start on CPU instead of half a minute), ``VLLM_CPU_KVCACHE_SPACE`` sizes the CPU KV
        cache in GiB.
        """
        disable_vllm_usage_stats(opt_in=usage_stats)  # before vLLM is imported or any of its processes start
        cut_vllm_tracebacks()
        import_vllm()
        from transformers import AutoTokenizer
        from vllm.exceptions import VLLMClientError
        from vllm.platforms import current_platform

        import engine.model  # noqa: F401  (registers model_type "mimo", so the tokenizer loads without remote code)

        self._client_error = VLLMClientError  # what vLLM raises for a request it refuses
        self._model_path = Path(model_path)
        self._model_name = model_name or self._model_path.name
        on_cpu = current_platform.is_cpu()
        self._mtp_layers = checkpoint_mtp_layers(self._model_path)
        arguments = engine_arguments(
            self._model_path,
            dtype=dtype,
            max_model_len=max_model_len,
            num_speculative_tokens=num_speculative_tokens,
            mtp_layers=self._mtp_layers,
            enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
            options=options,
        )
        self._speculative = "speculative_config" in arguments
        self._arguments_draft_tokens = (
            arguments["speculative_config"]["num_speculative_tokens"] if self._speculative else 0
        )
        # vllm-cpu 0.32's MTP speculative *sampling* emits tokens the model gives ~0 probability (docs/vllm.md).
        self._refuse_sampling = self._speculative and on_cpu
        # Our own tokenizer instance: the loop thread uses vLLM's, and fast tokenizers are not shared across threads.
        self._tokenizer = AutoTokenizer.from_pretrained(self._model_path)
        self._fim = detect_fim_template(self._tokenizer, fim_template)
        self._stop_token_ids = sorted(set(control_tokens(self._tokenizer, self._fim).values()))
        self._fim_sentinels = self._fim.sentinel_tokens() if self._fim else ()
        self._loop = start_loop(arguments, gpus, self._model_path.name)
        self._context_length = self._loop.max_model_len
        self._prompt_tokenizer = PromptTokenizer(self._tokenizer, self._context_length)
        # The native backend's schema check, so a schema llguidance cannot enforce is refused with the same 400
        # before vLLM sees it: vLLM's own check only compiles the grammar, and a grammar that fails at its first
        # mask (no value satisfies it) would end the sample at once with finish_reason "stop" and no text.
        vocab_size = self._loop.vllm_config.model_config.get_vocab_size()
        self._grammars = JsonGrammars(self._tokenizer, vocab_size, self._stop_token_ids)
        self._ids = itertools.count()

    @property
    def vllm_config(self):
        """The ``VllmConfig`` vLLM built for this engine (parallel sizes, cache, scheduler, speculative decoding)."""
        return self._loop.vllm_config

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self._model_name,
            backend="vllm",
            context_length=self._context_length,
            fim_template=self._fim.name if self._fim else None,
            mtp_layers=self._mtp_layers if self._speculative else 0,
            device=self._loop.device,
            draft_tokens=self._arguments_draft_tokens,
            languages=trained_languages(self._model_path),
        )

    @property
    def stop_token_ids(self) -> list[int]:
        """The control tokens that end every sample (formats.control_tokens): they never reach the caller."""
        return list(self._stop_token_ids)

    def unfinished_requests(self) -> int:
        """How many requests vLLM itself still holds (aborted ones leave within one step)."""
        return self._loop.unfinished_requests()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Streams the request's chunks. Closing the stream (or cancelling its task) aborts the vLLM request.

        MTP is fixed per vLLM engine, so ``request.use_mtp`` cannot turn it off for one request; open the engine
        with ``num_speculative_tokens=0`` for plain decoding.
        """
        check_sampling(request.sampling, self._loop.vllm_config.model_config.get_vocab_size())
        if self._refuse_sampling and not is_greedy(request.sampling.temperature):
            raise BadRequest(
                "vllm-cpu samples wrongly with MTP speculative decoding: use temperature 0, "
                "or open the vLLM engine with num_speculative_tokens=0 (docs/vllm.md)"
            )
        if request.sampling.n > 1 and is_greedy(request.sampling.temperature):
            raise BadRequest(
                f"n={request.sampling.n} with temperature {request.sampling.temperature}: temperatures below 1e-5 "
                "decode greedily, and vLLM refuses several greedy samples (they would all be the same); send n=1"
            )
        if self._speculative and request.sampling.logit_bias:  # vLLM would drop it (docs/vllm.md)
            raise BadRequest(
                "logit_bias: vLLM ignores it with MTP speculative decoding; leave it out, or serve without MTP "
                "(num_speculative_tokens=0, docs/vllm.md)"
            )
        prompt_ids = await self._prompt_tokenizer.off_loop(self._prompt_ids, request)
        schema = request.sampling.json_schema
        if schema is not None:  # in the tokenizer's thread, as natively: it reads the vocabulary the first time
            await self._prompt_tokenizer.off_loop(self._grammars.compile, schema)
        # At most the room left in the context, as on the native backend (vLLM refuses more).
        room = max(self._context_length - len(prompt_ids), 1)
        sampling = replace(request.sampling, max_tokens=min(request.sampling.max_tokens, room))
        try:
            banned = self._fim_sentinels  # never sampled, in any request (see engine.native._settings)
            params = vllm_sampling_params(sampling, self._stop_token_ids, banned)
        except (ValueError, self._client_error) as error:  # vLLM's validation: "top_p must be in (0, 1]..."
            raise BadRequest(str(error)) from None
        request_id = f"{request.request_id}-{next(self._ids)}"
        progress = _SampleProgress(prompt_tokens=len(prompt_ids))
        outputs = self._loop.submit(request_id, {"prompt_token_ids": prompt_ids}, params)
        finished = False
        try:
            async for output in outputs:
                for sample in output.outputs:
                    token_ids = _without_stop_token(sample)
                    progress.add(len(token_ids), sample.spec_decode_metrics)
                    yield self._chunk(sample, token_ids, progress)
                finished = output.finished
        except BadRequest as refused:
            raise schema_refusal(refused) if schema is not None else refused from None
        finally:
            if not finished:
                self._loop.abort(request_id)

    def _chunk(self, sample, token_ids: list[int], progress: _SampleProgress) -> Chunk:
        reason = _finish_reason(sample.finish_reason)
        return Chunk(
            text=sample.text,
            index=sample.index,
            token_ids=tuple(token_ids),
            finish_reason=reason,
            usage=progress.usage() if reason else None,
            timings=progress.timings() if reason else None,
        )

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        text = render_request(request, self._tokenizer, self._fim, self._model_path.name)
        return self._prompt_tokenizer.ids(text)

    async def aclose(self) -> None:
        """Aborts every running request and shuts vLLM down (off the event loop: it joins a thread)."""
        self._prompt_tokenizer.close()
        await asyncio.to_thread(self._loop.stop)


def open_replicas(model_path: str | Path, replicas: int, **options: Any):
    """``replicas`` VllmEngines of one model behind a least-busy dispatcher (engine.composite), each on its own
    tensor x pipeline parallel group of the visible GPUs. On a CPU build they share the machine (for tests)."""
    from engine.composite import ReplicatedEngine, gpu_slices

    import_vllm()
    from vllm import envs
    from vllm.platforms import current_platform

    if not envs.VLLM_ENABLE_V1_MULTIPROCESSING:  # in-process engines share vLLM's global forward context
        raise BadRequest(
            "data-parallel replicas need each vLLM engine core in its own process: "
            "unset VLLM_ENABLE_V1_MULTIPROCESSING (or set it to 1)"
        )
    slices: list[str | None] = [None] * replicas
    if current_platform.is_cuda_alike():
        per_replica = options.get("tensor_parallel_size", 1) * options.get("pipeline_parallel_size", 1)
        try:
            slices = list(gpu_slices(visible_gpus(), replicas, per_replica))
        except ValueError as error:
            raise BadRequest(str(error)) from None
    engines: list[VllmEngine] = []
    try:
        for gpus in slices:
            engines.append(VllmEngine(model_path, gpus=gpus, **options))
    except BaseException:
        for engine in engines:
            engine._loop.stop()  # synchronously: the caller may be inside an event loop
        raise
    return ReplicatedEngine(engines)


def schema_refusal(refused: BadRequest) -> BadRequest:
    """vLLM's refusal of a request with a schema (its llguidance check, its nesting limit) as the 400 naming
    response_format; our own check comes first, so this is for what the two might judge differently."""
    if isinstance(refused, SchemaRejected) or not any(
        word in str(refused) for word in ("grammar", "Grammar", "JSON schema")
    ):
        return refused
    return SchemaRejected(f"response_format: vLLM refused the JSON schema: {refused}")


def _without_stop_token(sample) -> list[int]:
    """The sample's new token ids without the control token that ended it (vLLM keeps it; the text does not,
    and the native backend counts neither)."""
    token_ids = list(sample.token_ids)
    if isinstance(sample.stop_reason, int) and token_ids and token_ids[-1] == sample.stop_reason:
        token_ids.pop()
    return token_ids


def _finish_reason(vllm_reason: str | None) -> FinishReason | None:
    if vllm_reason is None:
        return None
    return {"stop": "stop", "length": "length", "abort": "cancelled"}.get(vllm_reason, "error")
