"""NativeEngine: the torch backend (CPU and CUDA) with MTP self-speculative decoding.

Loads any ``MiMoForCausalLM`` checkpoint (ours or the official MiMo-7B) and plain Hugging Face causal LMs
(those decode without MTP). Requests are rendered (raw prompt, FIM with the detected template, or ChatML),
tokenized on the caller's side, and decoded by a ``RoundRobinScheduler`` worker thread; chunks come back
through an asyncio queue. Closing the stream marks the job cancelled, and the worker drops it before its next
step.

Timings on the final chunks: ``time_to_first_token_s`` from submission to the first token; ``tokens_per_s``
is the decode rate after the first token (tokens after each sample's first / time after the first token), so
prefill does not blur the comparison of plain and MTP decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from engine.api import (
    DEFAULT_DRAFT_TOKENS,
    MAX_DRAFT_TOKENS,
    BadRequest,
    Chunk,
    EngineError,
    EngineInfo,
    FinishReason,
    GenerationRequest,
    Timings,
    Usage,
)
from engine.causal_model import CausalModel, drive, run_together
from engine.formats import control_tokens, detect_fim_template, fim_sentinel_ids, render_request
from engine.grammar import Grammar, JsonGrammars
from engine.model_card import trained_languages
from engine.native_decode import DecodeSettings, SequenceDecoder, SharedPrompt
from engine.prompt_cache import PromptCache
from engine.prompt_tokens import PromptTokenizer
from engine.sampling import check_sampling, sample_seed
from engine.scheduler import RoundRobinScheduler
from engine.text_stream import TextStream


class NativeEngine:
    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "auto",
        dtype: str | None = None,
        fim_template: str | None = None,
        max_requests: int = 64,
        model_name: str | None = None,
        threads: int | None = None,
        kernel: str = "auto",
        draft_tokens: int = DEFAULT_DRAFT_TOKENS,
        draft_vocab: int | None = None,
        prompt_cache: bool = False,
        batching: bool = True,
    ):
        """``kernel`` is how MiMo models multiply by their weights (``linear_kernels``): "auto" picks
        "fp16-weights" on a CPU for float32 decoding of a checkpoint stored in 16 bits, "transposed" (exact fp32)
        for other CPU cases and "device" elsewhere; ``threads`` caps torch's intra-op threads for the decode
        thread; ``draft_tokens`` is k, the MTP drafts per step; ``draft_vocab`` is how many of the first token
        ids MTP drafts choose from (``CausalModel.restrict_drafts``); ``prompt_cache`` reuses the trunk's work
        on the beginnings prompts share (``engine.prompt_cache``); ``batching`` runs the steps of all running
        requests and samples as one batch (``causal_model.run_together``) instead of one after another."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import engine.model  # noqa: F401  (registers MiMo with the Auto classes)

        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = _torch_dtype(dtype, device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch_dtype, attn_implementation="sdpa")
        model = model.to(device).eval()
        if not 0 <= draft_tokens <= MAX_DRAFT_TOKENS:
            raise BadRequest(f"draft_tokens must be between 0 and {MAX_DRAFT_TOKENS}, got {draft_tokens}")
        self.draft_tokens = draft_tokens
        self.lm = CausalModel(model, _kernel(kernel, device, torch_dtype, self.model_path))
        if self.lm.mtp_layers:
            self.lm.restrict_drafts(draft_vocab)
        self.fim_template = detect_fim_template(self.tokenizer, fim_template)
        self.stop_ids = frozenset(control_tokens(self.tokenizer, self.fim_template).values())
        self.fim_sentinel_ids = fim_sentinel_ids(self.tokenizer, self.fim_template)
        self.prompt_cache = PromptCache() if prompt_cache else None
        self.context_length = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
        self.prompt_tokenizer = PromptTokenizer(self.tokenizer, self.context_length)
        self.grammars = JsonGrammars(self.tokenizer, self.lm.vocab_size, self.stop_ids)
        self.scheduler = RoundRobinScheduler(
            max_jobs=max_requests,
            setup=lambda: _worker_context(threads, device),
            step_all=self._step_together if batching else None,
        )

    def _step_together(self, jobs: list[_RequestJob]) -> list[bool]:
        """One step of every unfinished sample of every job, batched; which jobs are done (or failed)."""
        work = [(job, index, sample) for job in jobs for index, sample in job.unfinished()]
        outcomes = run_together(self.lm, [sample.decoder.advance() for _, _, sample in work])
        failed = set()
        for (job, index, sample), outcome in zip(work, outcomes):
            if job in failed:
                continue
            if isinstance(outcome, Exception):
                job.fail(outcome)
                failed.add(job)
            else:
                job.take(index, sample, outcome)
        return [job in failed or job.cancelled or job.finished for job in jobs]

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.model_name,
            backend="native",
            context_length=self.context_length,
            fim_template=self.fim_template.name if self.fim_template else None,
            mtp_layers=self.lm.mtp_layers,
            device=str(self.lm.device),
            draft_tokens=self.draft_tokens if self.lm.mtp_layers else 0,
            languages=trained_languages(self.model_path),
        )

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        check_sampling(request.sampling, self.lm.vocab_size)
        prompt_ids = await self.prompt_tokenizer.off_loop(self.prompt_ids, request)
        schema = request.sampling.json_schema
        # Compiled in the tokenizer's thread: it reads the vocabulary (first time) and may take a while.
        grammar = None if schema is None else await self.prompt_tokenizer.off_loop(self.grammars.compile, schema)
        job = _RequestJob(self, request, prompt_ids, asyncio.get_running_loop(), grammar)
        self.scheduler.submit(job)
        try:
            remaining = request.sampling.n
            while remaining:
                item = await job.chunks.get()
                if isinstance(item, BaseException):
                    raise item
                remaining -= item.finish_reason is not None
                yield item
        finally:
            job.cancelled = True  # the worker drops the job before its next step

    async def aclose(self) -> None:
        self.prompt_tokenizer.close()
        await asyncio.to_thread(self.scheduler.close)

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        text = render_request(request, self.tokenizer, self.fim_template, self.model_name)
        return self.prompt_tokenizer.ids(text)


class _Sample:
    """One of a request's n samples: its decoder, its text stream and how far it got."""

    def __init__(self, decoder: SequenceDecoder, text: TextStream):
        self.decoder = decoder
        self.text = text
        self.started = False
        self.tokens = 0
        self.finish_reason: FinishReason | None = None


class _RequestJob:
    """A request as the scheduler sees it: each ``step`` advances every unfinished sample by one step."""

    def __init__(
        self,
        engine: NativeEngine,
        request: GenerationRequest,
        prompt_ids: list[int],
        loop,
        grammar: Grammar | None = None,
    ):
        sampling = request.sampling
        self.engine = engine
        self.loop = loop
        self.chunks: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()
        self.cancelled = False
        self.prompt_tokens = len(prompt_ids)
        self.max_tokens = min(sampling.max_tokens, engine.context_length - len(prompt_ids))
        capacity = len(prompt_ids) + self.max_tokens + 1  # the decoder adds room for its drafts
        shared = SharedPrompt() if sampling.n > 1 else None
        self.samples = [
            _Sample(
                SequenceDecoder(
                    engine.lm,
                    prompt_ids,
                    _settings(request, index, engine.fim_sentinel_ids, engine.draft_tokens, grammar),
                    capacity,
                    engine.prompt_cache,
                    shared,
                ),
                TextStream(engine.tokenizer, sampling.stop),
            )
            for index in range(sampling.n)
        ]
        self.submitted = time.perf_counter()
        self.first_token_at: float | None = None

    def step(self) -> bool:
        """One step of every unfinished sample, this request alone (the scheduler's unbatched path)."""
        for index, sample in self.unfinished():
            self.take(index, sample, drive(self.engine.lm, sample.decoder.advance()))
        return self.finished

    def unfinished(self) -> list[tuple[int, _Sample]]:
        """The samples to step now: the first alone until it has read the prompt, which the others then copy."""
        if self.cancelled:
            return []
        if len(self.samples) > 1 and not self.samples[0].started:
            return [(0, self.samples[0])]
        return [(index, sample) for index, sample in enumerate(self.samples) if sample.finish_reason is None]

    @property
    def finished(self) -> bool:
        return all(s.finish_reason is not None for s in self.samples)

    def fail(self, error: BaseException) -> None:
        if not isinstance(error, EngineError):
            error = EngineError(f"generation failed: {error}")
        self._emit(error)

    def take(self, index: int, sample: _Sample, new_ids: list[int]) -> None:
        """Streams a step's new tokens for sample ``index``, up to a stop token, stop string or the length."""
        sample.started = True
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        kept = []
        for token in new_ids:
            if token in self.engine.stop_ids:
                sample.finish_reason = "stop"
                break
            kept.append(token)
            if sample.tokens + len(kept) >= self.max_tokens:
                sample.finish_reason = "length"
                break
        sample.tokens += len(kept)
        text = sample.text.add(kept)
        if sample.text.stopped:
            sample.finish_reason = "stop"
        elif sample.finish_reason is not None:
            text += sample.text.flush()
        if text or kept or sample.finish_reason:
            self._emit(self._chunk(index, sample, text, kept))

    def _chunk(self, index: int, sample: _Sample, text: str, kept: list[int]) -> Chunk:
        if sample.finish_reason is None:
            return Chunk(text=text, index=index, token_ids=tuple(kept))
        return Chunk(
            text=text,
            index=index,
            token_ids=tuple(kept),
            finish_reason=sample.finish_reason,
            usage=Usage(self.prompt_tokens, sum(s.tokens for s in self.samples)),
            timings=self._timings(),
        )

    def _timings(self) -> Timings:
        now = time.perf_counter()
        first = self.first_token_at or now
        decoded = sum(max(s.tokens - 1, 0) for s in self.samples)
        decoders = [s.decoder for s in self.samples]
        return Timings(
            time_to_first_token_s=first - self.submitted,
            total_s=now - self.submitted,
            tokens_per_s=decoded / (now - first) if now > first else 0.0,
            mtp_drafts_proposed=sum(d.drafts_proposed for d in decoders),
            mtp_drafts_accepted=sum(d.drafts_accepted for d in decoders),
            mtp_accepted_per_position=tuple(map(sum, zip(*(d.accepted_at for d in decoders)))),
            mtp_steps=sum(d.mtp_steps for d in decoders),
        )

    def _emit(self, item: Chunk | BaseException) -> None:
        with contextlib.suppress(RuntimeError):  # the consumer's loop has closed: nobody is listening
            self.loop.call_soon_threadsafe(self.chunks.put_nowait, item)


def _kernel(name: str, device: str, dtype, model_path: Path) -> str:
    """The weight kernel for "auto" (see ``NativeEngine``), or the one named, checked."""
    import torch

    from engine.linear_kernels import KERNELS, fp16_weights_supported

    if name != "auto":
        if name not in KERNELS:
            raise BadRequest(f"unknown kernel {name!r}; use auto or one of {', '.join(KERNELS)}")
        if name != "device" and device != "cpu":
            raise BadRequest(f"kernel {name!r} is for CPUs; use auto or device on {device}")
        if name == "fp16-weights" and dtype != torch.float32:
            raise BadRequest(
                f"kernel 'fp16-weights' computes in float32, not {str(dtype).removeprefix('torch.')}; "
                "use dtype float32, or kernel auto"
            )
        if name == "fp16-weights" and not fp16_weights_supported():
            raise BadRequest("kernel 'fp16-weights' needs fbgemm (an x86 CPU with AVX2); use auto or transposed")
        return name
    if device != "cpu":
        return "device"
    if dtype == torch.float32 and _stored_dtype(model_path) in ("bfloat16", "float16") and fp16_weights_supported():
        return "fp16-weights"
    return "transposed"


def _stored_dtype(model_path: Path) -> str | None:
    """The dtype a checkpoint's config says its weights are stored in (``dtype``, formerly ``torch_dtype``)."""
    import json

    try:
        config = json.loads((model_path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("dtype") or config.get("torch_dtype")


def _torch_dtype(name: str | None, device: str):
    """float32 on CPU (exact greedy comparisons, no bf16 matmul emulation), bfloat16 on CUDA, unless named."""
    import torch

    if not name or name == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise BadRequest(f"unknown dtype {name!r}; use float32, bfloat16 or float16")
    return dtype


@contextlib.contextmanager
def _worker_context(threads: int | None, device: str = "cpu"):
    """The decode thread's torch settings. ``threads`` caps intra-op threads: on a shared CPU, spinning OpenMP
    threads that outnumber free cores make small-model decoding many times slower."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    with torch.inference_mode(), decode_attention_backends(device):
        yield


def decode_attention_backends(device: str):
    """On CUDA, scaled-dot-product attention without the cuDNN backend.

    cuDNN attention builds an execution plan per new key length, and decoding brings a new length every step:
    on an H200 (torch 2.11) each such call took 57 ms against 0.04–0.55 ms for the other backends, and bf16
    decoding ran 12× slower with it than without (docs/benchmarks.md). The setting is process-wide while the
    engine's decode thread runs.
    """
    if not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _settings(
    request: GenerationRequest,
    index: int,
    fim_sentinel_ids: tuple[int, ...],
    draft_tokens: int = DEFAULT_DRAFT_TOKENS,
    grammar: Grammar | None = None,
) -> DecodeSettings:
    sampling = request.sampling
    # Each sample draws its own stream: seed + index would share streams between requests whose seeds differ
    # by less than n.
    seed = None if sampling.seed is None else sample_seed(sampling.seed, index)
    # FIM sentinels are never sampled, in any request: inside a middle one would end it before it began, and
    # elsewhere they mean nothing, yet a model trained on FIM pieces puts weight on them at line ends.
    return DecodeSettings(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        seed=seed,
        use_mtp=request.use_mtp,
        draft_tokens=draft_tokens,
        banned_ids=fim_sentinel_ids,
        logit_bias=tuple(sorted((sampling.logit_bias or {}).items())),
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        grammar=grammar,
    )
