"""Pretraining config loading, schedules and optimiser groups: fast, no training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.config import MtpConfig, OptimConfig, load_pretrain_config, preset_path, resolve_init_from
from training.errors import ConfigError
from training.schedule import learning_rate, mtp_distill_weight, mtp_loss_weight

MINIMAL = """
tokenizer = "tokenizer"
batch_size = 2
total_tokens = 100
{extra}
[mixture.sources]
code = "shards"
[[mixture.stages]]
name = "only"
fraction = 1.0
seq_len = 16
weights = {{ code = 1.0 }}
"""


def write_config(tmp_path, extra: str = ""):
    path = tmp_path / "run.toml"
    path.write_text(MINIMAL.format(extra=extra), encoding="utf-8")
    return path


def test_minimal_config_resolves_paths_against_the_data_dir(tmp_path):
    config = load_pretrain_config(write_config(tmp_path), data_dir=tmp_path / "data")
    assert config.tokenizer == tmp_path / "data" / "tokenizer"
    assert config.mixture.sources["code"] == tmp_path / "data" / "shards"
    assert config.optim.beta2 == 0.95 and config.optim.weight_decay == 0.1 and config.optim.grad_clip == 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("learning_rate = 0.1", "unknown key learning_rate; allowed: mixture, tokenizer, batch_size,"),
        (
            "[optim]\nlr = 1e-3\nbeta3 = 0.9",
            "unknown key optim.beta3 (did you mean optim.beta2?); allowed: lr, min_lr,",
        ),
        ("[model]\nhidden = 64", "unknown key model.hidden (did you mean model.hidden_size?)"),
        ("[mtp]\nweight = 0.2", "unknown key mtp.weight (did you mean mtp.loss_weight?)"),
    ],
)
def test_unknown_keys_are_named_with_a_close_match(tmp_path, extra, message):
    with pytest.raises(ConfigError) as raised:
        load_pretrain_config(write_config(tmp_path, extra))
    assert str(raised.value).startswith(f"{tmp_path / 'run.toml'}: {message}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[optim]\nlr = "fast"', 'optim.lr = "fast": must be a number'),
        ("[optim]\nbeta2 = 1.0", "optim.beta2 = 1.0: must be less than 1"),
        ("checkpoint_every = true", "checkpoint_every = true: must be an integer"),  # a bool is no number
        ("seed = -1", "seed = -1: must be at least 0"),
        ("[model]\nmax_position_embeddings = 8", "model.max_position_embeddings 8 < longest stage 16 + 1"),
        (
            "[model]\nnum_attention_heads = 3",
            "model: hidden_size (256) must be a multiple of num_attention_heads (3), and that of num_key_value_heads (2)",
        ),
        ('precision = "fp8"', "precision = \"fp8\": must be one of 'auto', 'float32' or 'bfloat16'"),
        ("[mtp]\ndistill_weight = 1.5", "mtp.distill_weight = 1.5: must be at most 1"),
        ("[mtp]\ndistill_temperature = 0.0", "mtp.distill_temperature = 0.0: must be greater than 0"),
        ("[optim]\nwarmup_fraction = 0.8", "optim: warmup_fraction + decay_fraction must be at most 1"),
        ("init_from = 3", "init_from = 3: must be a string"),
        ('strategy = "zero3"', "strategy = \"zero3\": must be one of 'ddp' or 'fsdp'"),
        ("activation_checkpointing = 1", "activation_checkpointing = 1: must be true or false"),
        ("micro_batch_size = 3", "batch_size 2 must be a multiple of micro_batch_size 3"),
    ],
)
def test_wrong_types_and_sizes_name_the_key_the_value_and_what_is_allowed(tmp_path, extra, message):
    with pytest.raises(ConfigError) as raised:
        load_pretrain_config(write_config(tmp_path, extra))
    assert str(raised.value) == f"{tmp_path / 'run.toml'}: {message}"


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('tokenizr = "t"\nbatch_size = 0\ntotal_tokens = 1\nmixture = "missing.toml"\n')
    with pytest.raises(ConfigError) as raised:
        load_pretrain_config(path)
    message = str(raised.value)
    for part in (
        f'mixture = "missing.toml": mixture file {tmp_path / "missing.toml"} does not exist',
        "batch_size = 0: must be greater than 0",
        "tokenizer is missing (required)",
        "unknown key tokenizr (did you mean tokenizer?)",
    ):
        assert part in message


def test_a_changed_config_is_checked_like_a_loaded_one(tmp_path):
    import dataclasses

    from pydantic import ValidationError

    from training.config import with_changes

    config = load_pretrain_config(write_config(tmp_path))
    assert with_changes(config, seed=3).seed == 3
    with pytest.raises(ConfigError, match="log_every = 0: must be greater than 0"):
        with_changes(config, log_every=0)
    with pytest.raises(ValidationError):
        dataclasses.replace(config.model, num_key_value_heads=3)


def test_init_from_is_a_name_or_a_path_read_from_the_data_dir(tmp_path):
    assert load_pretrain_config(write_config(tmp_path)).init_from is None
    assert load_pretrain_config(write_config(tmp_path, 'init_from = "nano"')).init_from == "nano"
    relative = load_pretrain_config(write_config(tmp_path, 'init_from = "base/model"'), data_dir=tmp_path / "d")
    assert relative.init_from == str(tmp_path / "d" / "base" / "model")
    home = load_pretrain_config(write_config(tmp_path, 'init_from = "~/base"'), data_dir=tmp_path / "d")
    assert home.init_from == str(Path("~/base").expanduser())
    with pytest.raises(ConfigError, match="init_from must be 'nano' or a checkpoint directory"):
        resolve_init_from("", tmp_path)


def test_presets_load(tmp_path):
    for name in ("smoke", "nano", "nano-continue"):
        config = load_pretrain_config(preset_path(name), data_dir=tmp_path)
        assert config.model.num_nextn_predict_layers == 1
        assert config.model.hidden_size // config.model.num_attention_heads >= 32
    with pytest.raises(ConfigError, match="smoke"):
        preset_path("enormous")


def test_cli_reports_config_errors_in_one_line(tmp_path):
    from mimo.cli import app

    result = CliRunner().invoke(app, ["train", "pretrain", "--config", str(write_config(tmp_path, "colour = 1"))])
    assert result.exit_code == 2
    assert "colour" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["train", "pretrain"])
    assert result.exit_code == 2 and "--config" in result.output


def test_learning_rate_warms_up_holds_then_decays_by_cosine():
    optim = OptimConfig(lr=1.0, min_lr=0.1, warmup_fraction=0.1, decay_fraction=0.4)
    assert learning_rate(0.0, optim) == 0.0
    assert learning_rate(0.05, optim) == pytest.approx(0.5)
    assert learning_rate(0.1, optim) == 1.0 and learning_rate(0.6, optim) == 1.0
    assert learning_rate(0.8, optim) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert learning_rate(1.0, optim) == pytest.approx(0.1)
    samples = [learning_rate(p / 100, optim) for p in range(60, 101)]
    assert all(a >= b for a, b in zip(samples, samples[1:]))


def test_mtp_weight_switches_at_the_configured_fraction():
    mtp = MtpConfig(loss_weight=0.3, late_loss_weight=0.1, switch_fraction=0.25)
    assert [mtp_loss_weight(p, mtp) for p in (0.0, 0.24, 0.25, 0.9)] == [0.3, 0.3, 0.1, 0.1]


def test_draft_head_distillation_starts_at_its_fraction_and_is_off_by_default():
    mtp = MtpConfig(distill_weight=0.8, distill_from=0.5)
    assert [mtp_distill_weight(p, mtp) for p in (0.0, 0.49, 0.5, 1.0)] == [0.0, 0.0, 0.8, 0.8]
    assert mtp_distill_weight(1.0, MtpConfig()) == 0.0  # MiMo's recipe: the data's tokens only


def test_precision_autocasts_to_bf16_on_cuda_only_unless_named():
    import torch

    from training.pretrain import autocast_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("auto", cuda) is torch.bfloat16
    assert autocast_dtype("bfloat16", cpu) is torch.bfloat16 and autocast_dtype("float32", cuda) is None


def test_total_tokens_override_keeps_the_schedules_relative_and_is_validated(tmp_path):
    from training.pretrain_cli import with_total_tokens

    config = with_total_tokens(load_pretrain_config(preset_path("nano"), data_dir=tmp_path), 2_000_000)
    assert config.total_tokens == 2_000_000 and config.mtp.distill_from == 0.5
    with pytest.raises(ConfigError, match="total_tokens = 0: must be greater than 0"):
        with_total_tokens(config, 0)


def test_nano_recipe_tokenizes_on_the_first_sources_and_trains_on_more(tmp_path):
    from training.nano_recipe import DATA_ONLY_PACKAGES, nano_commands

    tokenizer_step, data_step, *pretrain_steps = nano_commands(tmp_path, threads=2, total_tokens=1000)
    tokenizer_sources = [a for a in tokenizer_step if a.startswith("installed:")]
    data_sources = [a for a in data_step if a.startswith("installed:")]
    assert data_sources[: len(tokenizer_sources)] == tokenizer_sources  # first copies win near-dedup
    assert data_sources[len(tokenizer_sources) :] == [f"installed:{name}" for name in DATA_ONLY_PACKAGES]


def test_nano_recipe_continues_each_run_from_the_one_before_scaled_to_the_first(tmp_path):
    from training.nano_recipe import CONTINUE_TOKENS, PHASE1_TOKENS, nano_commands

    _, _, first, second, third = nano_commands(tmp_path, threads=2, total_tokens=PHASE1_TOKENS // 100)

    def option(step, name):
        return step[step.index(name) + 1] if name in step else None

    assert [option(s, "--preset") for s in (first, second, third)] == ["nano", "nano-continue", "nano-continue"]
    assert option(first, "--init-from") is None
    assert option(second, "--init-from") == str(tmp_path / "run" / "model")
    assert option(third, "--init-from") == str(tmp_path / "continue-1" / "model")
    scale = (PHASE1_TOKENS // 100) / PHASE1_TOKENS
    assert [int(option(s, "--total-tokens")) for s in (second, third)] == [round(t * scale) for t in CONTINUE_TOKENS]
    assert "--resume" not in first
    (tmp_path / "continue-1").mkdir()
    (tmp_path / "continue-1" / "checkpoint.pt").touch()  # a started run resumes; the others start
    resumed = [("--resume" in step) for step in nano_commands(tmp_path, threads=2, resume=True)[2:]]
    assert resumed == [False, True, False]


def test_nano_recipe_skips_finished_runs_resumes_started_ones_and_copies_the_last(tmp_path, monkeypatch):
    """A run counts as finished once its summary.json (written after the whole export) exists; a run killed
    during its export still has checkpoint.pt, so it resumes, which only exports again."""
    from training import nano_recipe

    work, out = tmp_path / "work", tmp_path / "out"
    for path in ("tokenizer/tokenizer.json", "shards/manifest.json", "run/summary.json", "continue-1/checkpoint.pt",
                 "continue-1/model/config.json"):  # fmt: skip
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).touch()
    calls = []

    def fake_mimo(arguments):  # the boundary: `mimo` subprocesses
        calls.append(arguments)
        run_dir = Path(arguments[arguments.index("--out") + 1])
        (run_dir / "model").mkdir(parents=True, exist_ok=True)
        (run_dir / "model" / "model.safetensors").write_text(run_dir.name)
        (run_dir / "summary.json").touch()

    monkeypatch.setattr(nano_recipe, "_mimo", fake_mimo)
    nano_recipe.run_recipe(work, out, threads=2)
    assert [(Path(c[c.index("--out") + 1]).name, "--resume" in c) for c in calls] == [
        ("continue-1", True),
        ("continue-2", False),
    ]
    assert (out / "model.safetensors").read_text() == "continue-2"


def test_every_corpus_package_is_a_dependency_or_in_the_nano_corpus_extra():
    import re

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from training.nano_recipe import CORPUS_EXTRA, DATA_ONLY_PACKAGES, NANO_PACKAGES

    def name(requirement: str) -> str:  # PEP 503 normalised project name
        return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    runtime = {name(r) for r in project["dependencies"]}
    extra = {name(r) for r in project["optional-dependencies"][CORPUS_EXTRA]}
    corpus = {name(n) for n in (*NANO_PACKAGES, *DATA_ONLY_PACKAGES)} - {"pip"}  # pip comes with every venv
    assert corpus - runtime == extra  # nothing missing, and the extra holds nothing the corpus does not read
    assert not extra & runtime


def test_nano_recipe_names_the_extra_when_a_corpus_package_is_missing(tmp_path, monkeypatch):
    from mimo.cli import app
    from training import nano_recipe

    assert "pydantic" not in nano_recipe.missing_corpus_packages()  # a runtime dependency: always there
    monkeypatch.setattr(nano_recipe, "NANO_PACKAGES", (*nano_recipe.NANO_PACKAGES, "no-such-distribution"))
    assert "no-such-distribution" in nano_recipe.missing_corpus_packages()
    result = CliRunner().invoke(app, ["train", "nano", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no-such-distribution" in result.output and "pip install -e '.[nano-corpus]'" in result.output
    assert not (tmp_path / "w" / "tokenizer").exists()  # stopped before any step ran


def test_mimo_7b_preset_has_mimo_7b_shape(tmp_path):
    """The preset docs/scale.md sizes: 7.83 B parameters with MiMo's 151,680-token vocabulary (built on the meta
    device, nothing allocated), FSDP2, micro-batches of one row and activation checkpointing."""
    import torch

    from training.pretrain import build_model

    config = load_pretrain_config(preset_path("mimo-7b"), data_dir=tmp_path)
    assert (config.strategy, config.micro_batch_size, config.activation_checkpointing) == ("fsdp", 1, True)
    assert [stage.seq_len + 1 for stage in config.mixture.stages] == [8193, 8193, 32768]

    class MiMoVocabulary:
        eos_token_id, pad_token_id = 151645, 151643

        def __len__(self) -> int:
            return 151680

    with torch.device("meta"):
        model = build_model(config.model, MiMoVocabulary(), seed=0)
    counts = {"total": sum(p.numel() for p in model.parameters()),
              "layer": sum(p.numel() for p in model.model.layers[0].parameters()),
              "mtp": sum(p.numel() for p in model.model.mtp_layers.parameters())}  # fmt: skip
    assert counts == {"total": 7_833_409_536, "layer": 177_223_680, "mtp": 210_790_400}


def test_nano_recipe_names_the_copied_model_card_after_the_model_not_the_last_run(tmp_path):
    """The last run's card says `continue-2` (runs are named after their folders); the copy says mimo-nano and
    keeps everything else the card says."""
    from training import nano_recipe
    from training.model_card import card, read_card, write_card

    work, out = tmp_path / "work", tmp_path / "out"
    for path in ("tokenizer/tokenizer.json", "shards/manifest.json", "run/summary.json", "continue-1/summary.json",
                 "continue-2/summary.json", "continue-2/model/model.safetensors"):  # fmt: skip
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).touch()
    write_card(work / "continue-2" / "model", card("continue-2", ["python"], "Pretrained.", sources=["stdlib"]))
    nano_recipe.run_recipe(work, out, threads=1)  # every step finished: only the copy runs
    assert read_card(out) == {"model": "mimo-nano", "languages": ["python"], "about": "Pretrained.",
                              "sources": ["stdlib"]}  # fmt: skip
    assert read_card(work / "continue-2" / "model")["model"] == "continue-2"  # the run's own card is left as it was
