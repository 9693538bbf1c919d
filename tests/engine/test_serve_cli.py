"""`mimo serve` given flags a user can get wrong: one line on stderr naming the flag, exit status 2, no
traceback; and before anything loads where the flag alone shows the mistake."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from server_helpers import free_port


def serve(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mimo.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--port", "-1"], ["--port", "greater than or equal to 0"]),
        (["--port", "70000"], ["--port", "less than or equal to 65535"]),
        (["--device", "cuda"], ["mimo serve: --device cuda: no CUDA GPU is usable here", "use --device cpu"]),
        (["--device", "cuda:3"], ["no CUDA GPU is usable here"]),
        (["--device", "tpu"], ["unknown --device 'tpu'; use auto, cpu, cuda or cuda:N"]),
        (["--backend", "native", "-tp", "2"], ["--tensor-parallel-size needs --backend vllm"]),
        (["--vllm-arg", "max_num_seqs"], ["write KEY=VALUE"]),
        (["--draft-tokens", "9"], ["--draft-tokens"]),
        (["--prompt-mode", "infill"], ["unknown --prompt-mode 'infill'"]),
    ],
)
def test_bad_flags_fail_before_loading(args, fragments):
    result = serve(*args, "--port", str(free_port())) if "--port" not in args else serve(*args)
    assert_usage_error(result, *fragments)
    assert "loading" not in result.stderr


def test_a_fim_template_the_tokenizer_lacks_is_refused_at_start(tiny_model_dir):
    result = serve("--model", str(tiny_model_dir), "--fim-template", "starcoder", "--port", str(free_port()))
    assert_usage_error(
        result, "FIM template 'starcoder' does not fit this model", "<fim_prefix>", "detected (mimo-code)"
    )


def test_prompt_mode_fim_on_a_model_without_fim_tokens_is_refused(tmp_path, tiny_model_dir):
    import shutil

    from transformers import AutoTokenizer

    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    tokenizer = AutoTokenizer.from_pretrained(plain)
    # The same weights with a tokenizer whose FIM tokens are renamed: a model that has no FIM template.
    for name in ("tokenizer.json", "tokenizer_config.json"):
        text = (plain / name).read_text().replace("<|fim_", "<|fx_")
        (plain / name).write_text(text)
    assert "<|fim_prefix|>" in tokenizer.get_vocab()
    result = serve("--model", str(plain), "--prompt-mode", "fim", "--port", str(free_port()), "--backend", "native")
    assert_usage_error(result, "--prompt-mode fim: plain has no fill-in-the-middle tokens")


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_that_cannot_start_is_one_line_and_exit_2(tiny_model_dir):
    """vLLM's engine core (its own process, as on a GPU server) cannot get the KV cache asked for: before,
    180 lines of tracebacks from three processes; now vLLM's log lines and one line that says why."""
    result = serve(
        "--model", str(tiny_model_dir), "--backend", "vllm", "--port", str(free_port()),
        env={"VLLM_CPU_KVCACHE_SPACE": "100000", "VLLM_ENABLE_V1_MULTIPROCESSING": "1", "OMP_NUM_THREADS": "1"},
        timeout=400,
    )  # fmt: skip
    assert_usage_error(result, "mimo serve: vLLM could not start", "less than requested memory for kv")
    assert 'File "' not in result.stderr  # no stack frame from any process
