"""`mimo serve`'s flags as settings: what each backend gets, what cannot go together, and the pass-through of
further vLLM engine arguments. Pure functions; test_serve_cli.py runs the command itself."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from server_helpers import ScriptedEngine

from engine.api import GenerationRequest, SamplingParams, collect
from engine.composite import PromptModeEngine, ReplicatedEngine, gpu_slices
from engine.server.options import ServeSettings, UsageError, check, choose_backend, engine_options, parse_vllm_args


def never_auto() -> str:
    raise AssertionError("auto should not have been resolved")


def test_vllm_args_are_read_as_json_when_they_parse_else_as_strings():
    parsed = parse_vllm_args(
        ["max_num_seqs=32", "enforce-eager=true", "--kv-cache-dtype=fp8", 'compilation_config={"level": 0}']
    )
    assert parsed == {
        "max_num_seqs": 32,
        "enforce_eager": True,
        "kv_cache_dtype": "fp8",
        "compilation_config": {"level": 0},
    }


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["max_num_seqs"], "write KEY=VALUE"),
        (["=3"], "write KEY=VALUE"),
        (["tensor_parallel_size=2"], "use --tensor-parallel-size instead"),
        (["model=/x"], "use --model instead"),
        (["a=1", "a=2"], "given twice"),
        (["max num=1"], "write KEY=VALUE"),
    ],
)
def test_bad_vllm_args_name_the_problem(items, message):
    with pytest.raises(UsageError, match=message):
        parse_vllm_args(items)


def test_vllm_flags_reach_the_vllm_engine_options():
    settings = ServeSettings(
        backend="vllm",
        dtype="bfloat16",
        draft_tokens=2,
        max_model_len=8192,
        tensor_parallel_size=2,
        pipeline_parallel_size=2,
        gpu_memory_utilization=0.85,
        vllm_args={"max_num_seqs": 16},
        served_model_name="mimo-7b",
    )
    options = engine_options(settings, "vllm")
    assert options == {
        "fim_template": None,
        "model_name": "mimo-7b",
        "dtype": "bfloat16",
        "num_speculative_tokens": 2,
        "usage_stats": False,
        "max_model_len": 8192,
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "gpu_memory_utilization": 0.85,
        "max_num_seqs": 16,
    }


def test_draft_tokens_default_per_backend():
    assert engine_options(ServeSettings(), "vllm")["num_speculative_tokens"] == 1
    assert engine_options(ServeSettings(), "native")["draft_tokens"] == 3
    assert engine_options(ServeSettings(draft_tokens=0), "native")["draft_tokens"] == 0


@pytest.mark.parametrize(
    ("settings", "backend"),
    [
        (ServeSettings(backend="auto", device="cpu"), "native"),
        (ServeSettings(backend="auto", tensor_parallel_size=2), "vllm"),
        (ServeSettings(backend="auto", vllm_usage_stats=True), "vllm"),
        (ServeSettings(backend="native"), "native"),
    ],
)
def test_auto_follows_the_flags_given(settings, backend):
    assert choose_backend(settings, never_auto) == backend


def test_auto_without_hints_asks_the_machine():
    assert choose_backend(ServeSettings(), lambda: "native") == "native"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ServeSettings(backend="native", max_model_len=4096), "--max-model-len needs --backend vllm"),
        (ServeSettings(backend="native", data_parallel_size=2), "--data-parallel-size needs --backend vllm"),
        (ServeSettings(backend="vllm", device="cuda"), "--device is for the native backend"),
        (ServeSettings(device="cpu", gpu_memory_utilization=0.5), "pass one of them"),
        (ServeSettings(backend="tpu"), "unknown --backend 'tpu'"),
    ],
)
def test_flags_of_the_other_backend_are_refused(settings, message):
    with pytest.raises(UsageError, match=message):
        choose_backend(settings, lambda: "native")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ServeSettings(dtype="int4"), "unknown --dtype 'int4'"),
        (ServeSettings(prompt_mode="infill"), "unknown --prompt-mode 'infill'"),
        (ServeSettings(draft_tokens=9), "--draft-tokens 9"),
        (ServeSettings(tensor_parallel_size=0), "--tensor-parallel-size 0: it must be at least 1"),
        (ServeSettings(gpu_memory_utilization=0.0), r"in \(0, 1\]"),
        (ServeSettings(gpu_memory_utilization=float("nan")), r"in \(0, 1\]"),
        (ServeSettings(api_key="  "), "is empty"),
        (ServeSettings(device="tpu"), "unknown --device 'tpu'"),
        (ServeSettings(device="cuda"), "no CUDA GPU is usable here"),
        (ServeSettings(device="cuda:1"), "no CUDA GPU is usable here"),
    ],
)
def test_bad_values_are_usage_errors(settings, message):
    with pytest.raises(UsageError, match=message):
        check(settings)


def test_the_api_key_is_not_in_the_settings_repr():
    assert "s3cret" not in repr(ServeSettings(api_key="s3cret"))


def test_gpu_slices_give_each_replica_its_own_gpus():
    assert gpu_slices(["0", "1", "2", "3"], 2, 2) == ["0,1", "2,3"]
    assert gpu_slices(["4", "6"], 2, 1) == ["4", "6"]
    with pytest.raises(ValueError, match="need 4 GPUs; 3 visible"):
        gpu_slices(["0", "1", "2"], 2, 2)


def test_replicas_take_requests_by_how_busy_they_are():
    async def run() -> list[int]:
        replicas = [ScriptedEngine(("a",) * 3, stall_after=1) for _ in range(2)] + [ScriptedEngine(("b",))]
        engine = ReplicatedEngine(replicas)
        held = [engine.generate(GenerationRequest(prompt="x")) for _ in range(2)]
        for stream in held:  # two requests in flight, on replicas 0 and 1
            await anext(stream)
        result = await collect(engine, GenerationRequest(prompt="x", sampling=SamplingParams(max_tokens=4)))
        for stream in held:
            await stream.aclose()
        counts = engine.in_flight
        await engine.aclose()
        assert result.texts == ["b"] and counts == [0, 0, 0] and all(r.closed for r in replicas)
        return [len(r.requests) for r in replicas]

    assert asyncio.run(run()) == [1, 1, 1]


def test_the_prompt_mode_label_changes_only_the_info():
    async def run():
        engine = PromptModeEngine(ScriptedEngine(("ok",)), "prefix")
        result = await collect(engine, GenerationRequest(prompt="x"))
        return engine.info(), result.texts

    info, texts = asyncio.run(run())
    assert info.prompt_mode == "prefix" and info.model == "scripted" and texts == ["ok"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=5))
def test_any_vllm_arg_text_parses_or_is_a_usage_error(items):
    try:
        parsed = parse_vllm_args(items)
    except UsageError as error:
        assert str(error).startswith("--vllm-arg")
    else:
        assert all(key.isidentifier() and "-" not in key for key in parsed)
