"""vLLM's default mode: the engine core in a spawned process, which never imported mimo-code. Our checkpoints
(``model_type: "mimo"``) load there only through the ``mimo_config`` vLLM plugin, so this runs the backend as
``mimo serve`` would, in a fresh interpreter, and checks the MiMo model with MTP decodes as in-process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.api import GenerationRequest, SamplingParams, collect

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
]

PROMPT = "def add(a, b):\n    return"
REPO_ROOT = Path(__file__).resolve().parents[2]

# vLLM spawns its core process, which re-imports the main module: hence the __main__ guard.
SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from engine.api import GenerationRequest, SamplingParams, collect
    from engine.vllm_engine import VllmEngine

    async def main(model_dir, prompt):
        engine = VllmEngine(model_dir, dtype="float32", max_model_len=256)
        try:
            request = GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=16))
            result = await collect(engine, request)
            core = type(engine._loop._engine.engine_core).__name__
        finally:
            await engine.aclose()
        print(json.dumps({"text": result.texts[0], "proposed": result.timings.mtp_drafts_proposed,
                          "mtp_layers": engine.info().mtp_layers, "core": core}))

    if __name__ == "__main__":
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_a_mimo_checkpoint_decodes_with_mtp_in_vllms_own_process(tiny_model_dir, tmp_path):
    script = tmp_path / "run_vllm.py"
    script.write_text(SCRIPT)
    env = os.environ | {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_LOGGING_STREAM": "ext://sys.stderr",
    }
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), str(tiny_model_dir), PROMPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    reported = json.loads(run.stdout.strip().splitlines()[-1])
    assert reported["core"] == "SyncMPClient"
    assert reported["mtp_layers"] == 1 and reported["proposed"] > 0
    assert reported["text"] == await native_greedy_text(tiny_model_dir)


async def native_greedy_text(model_dir: Path) -> str:
    from engine.native import NativeEngine

    engine = NativeEngine(model_dir, device="cpu", dtype="float32", threads=1)
    try:
        request = GenerationRequest(prompt=PROMPT, sampling=SamplingParams(max_tokens=16), use_mtp=False)
        return (await collect(engine, request)).texts[0]
    finally:
        await engine.aclose()
