"""Shared fixtures: a tiny random MiMo-layout checkpoint with a locally trained tokenizer (no downloads); and which
tests count as `slow` (those that start processes: see the end)."""

from __future__ import annotations

import functools
import inspect
import re
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest


def _stdlib_sample(limit_bytes: int = 400_000) -> list[str]:
    """A few hundred KB of real Python from the standard library, to train a test tokenizer on."""
    texts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        texts.append(text)
        total += len(text)
        if total > limit_bytes:
            break
    return texts


def build_tiny_mimo(out_dir: Path, *, vocab_size: int = 512, mtp_layers: int = 1, seed: int = 0) -> Path:
    """Saves a random MiMo checkpoint (head_dim 32, as vLLM's CPU attention needs) plus tokenizer to out_dir."""
    import torch
    from transformers import AutoTokenizer

    from engine.model import MiMoConfig, MiMoForCausalLM
    from training.tokenizer import save_hf, train_bpe

    save_hf(train_bpe(_stdlib_sample(), vocab_size=vocab_size), out_dir)  # the same code as `mimo train tokenizer`
    tokenizer = AutoTokenizer.from_pretrained(out_dir)

    torch.manual_seed(seed)
    config = MiMoConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_nextn_predict_layers=mtp_layers,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    MiMoForCausalLM(config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random MiMo checkpoint with one MTP layer and a 512-token BPE tokenizer, built once per session."""
    return build_tiny_mimo(tmp_path_factory.mktemp("tiny-mimo"))


# -- which tests are `slow` ---------------------------------------------------------------------------------------
# A test that starts a process (a language server, `mimo serve`, vLLM, an editor, a sandboxed run, a CLI in a
# subprocess, npm) is `slow`, and `make test-fast` leaves it out. Marked here by what the test uses, so a new test
# is marked without anyone remembering to: its fixtures, its own code and the test helpers it calls are read for
# a process start. git commands are quick and do not count.
_STARTS_A_PROCESS = re.compile(
    r"subprocess\.(run|Popen|check_output|check_call)|create_subprocess_exec|\.start_io\(|pynvim\.attach\("
)
_SANDBOXED = {"verifier_config"}  # every test built on it runs candidates in bubblewrap sandboxes
_TESTS_DIR = Path(__file__).resolve().parent


@functools.cache
def _starts_a_process(function: Callable) -> bool:
    """Whether a test, fixture or test helper starts a process itself or through a test helper it calls."""
    function = inspect.unwrap(function)
    if function.__name__.startswith("git"):  # git_bytes, git_repository...: milliseconds
        return False
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if _STARTS_A_PROCESS.search(source):
        return True
    for name in set(re.findall(r"\b([A-Za-z_]\w*)\(", source)) - {function.__name__}:
        helper = function.__globals__.get(name)
        if inspect.isclass(helper):  # a helper class: its methods
            methods = [m for m in vars(helper).values() if inspect.isfunction(m)]
            if methods and _is_test_code(methods[0]) and any(_starts_a_process(m) for m in methods):
                return True
        elif inspect.isfunction(helper):
            helper = inspect.unwrap(helper)  # context managers too
            if _is_test_code(helper) and _starts_a_process(helper):
                return True
    return False


def _is_test_code(function: Callable) -> bool:
    try:
        return Path(inspect.getfile(function)).resolve().is_relative_to(_TESTS_DIR)
    except TypeError:
        return False


def _uses_a_process(item: pytest.Item) -> bool:
    if _SANDBOXED & set(getattr(item, "fixturenames", ())):
        return True
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    fixtures = [defs[-1].func for defs in definitions.values() if defs]
    return any(_starts_a_process(f) for f in (getattr(item, "function", None), *fixtures) if f is not None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") is None and _uses_a_process(item):
            item.add_marker(pytest.mark.slow)
