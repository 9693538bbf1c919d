"""The pretraining loop on real shards with a real tokenizer: it learns, follows its stages and schedules,
exports a loadable checkpoint, and resumes exactly."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.model_card import CARD_FILE, trained_languages
from tests.training.pretrain_helpers import make_data_dir
from training.config import load_pretrain_config, preset_path
from training.pretrain import RunOptions, build_model, build_optimizer, export_checkpoint, pretrain


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_model_dir) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("pretrain-data"), tiny_model_dir)


@pytest.fixture(scope="module")
def short_config(data_dir):
    """The smoke preset cut to 6 steps: 4 at 32 tokens, then 2 at 64, checkpoints every 2."""
    config = load_pretrain_config(preset_path("smoke"), data_dir=data_dir)
    return dataclasses.replace(config, total_tokens=1024, checkpoint_every=2)


def run(config, out_dir: Path, **options):
    return pretrain(config, RunOptions(out_dir, show_progress=False, **options))


@pytest.fixture(scope="module")
def straight_run(short_config, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("straight")
    return run(short_config, out_dir), out_dir


def final_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_weight_decay_skips_norms_and_biases(short_config):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(short_config.tokenizer))
    model = build_model(short_config.model, tokenizer, seed=0)
    decayed, undecayed = build_optimizer(model, short_config.optim).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decayed["weight_decay"] == 0.1 and undecayed["weight_decay"] == 0.0
    assert all("norm" in names[id(p)] or names[id(p)].endswith("bias") for p in undecayed["params"])
    assert any("mtp_layers.0.input_proj" in names[id(p)] for p in decayed["params"])
    assert len(decayed["params"]) + len(undecayed["params"]) == len(list(model.parameters()))


def test_run_follows_stages_and_schedules(straight_run, short_config):
    result, _ = straight_run
    history = result.state.history
    assert result.finished and result.state.tokens_seen == short_config.total_tokens
    assert [(h["stage"], h["seq_len"]) for h in history] == [("short", 32)] * 4 + [("long", 64)] * 2
    assert [h["mtp_loss_weight"] for h in history] == [0.3] * 4 + [0.1] * 2  # smoke switches at half the tokens
    assert history[0]["lr"] == 0.0 and history[-1]["lr"] < max(h["lr"] for h in history)
    assert all(h["mtp_loss"] > 0 for h in history)
    assert history[-1]["loss"] == pytest.approx(history[-1]["main_loss"] + 0.1 * history[-1]["mtp_loss"], rel=1e-5)


def test_every_parameter_changes_and_the_export_loads(straight_run, short_config):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import engine.model  # noqa: F401

    result, out_dir = straight_run
    tokenizer = AutoTokenizer.from_pretrained(str(short_config.tokenizer))
    initial = build_model(short_config.model, tokenizer, seed=short_config.seed).state_dict()
    trained = final_weights(result.model_dir)
    unchanged = [name for name, tensor in trained.items() if torch.equal(tensor, initial[name])]
    assert unchanged == []
    assert any(name.startswith("model.mtp_layers.0.") for name in trained)
    loaded = AutoModelForCausalLM.from_pretrained(str(result.model_dir))
    assert type(loaded).__name__ == "MiMoForCausalLM" and loaded.num_mtp_layers == 1
    assert AutoTokenizer.from_pretrained(str(result.model_dir)).convert_tokens_to_ids("<|fim_middle|>") == 2
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["tokens_seen"] == 1024 and summary["parameters"]["mtp_layers"] > 0
    # The model card: the languages of the data manifest (stdlib Python), read as the engines read it.
    assert trained_languages(result.model_dir) == ("python",)
    card = json.loads((result.model_dir / CARD_FILE).read_text())
    assert card["model"] == out_dir.name and card["sources"] == sorted(short_config.mixture.sources)
    assert list((out_dir / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_stop_and_resume_matches_an_uninterrupted_run(straight_run, short_config, tmp_path):
    straight, _ = straight_run
    stopped = run(short_config, tmp_path, stop_at_step=3)  # mid-stage, between two checkpoints
    assert not stopped.finished and stopped.state.step == 3 and stopped.model_dir is None
    early = final_weights(export_checkpoint(short_config, tmp_path, tmp_path / "early"))
    assert trained_languages(tmp_path / "early") == ("python",)  # an early export carries the card too
    resumed = run(short_config, tmp_path, resume=True)
    assert resumed.state.history == straight.state.history
    expected, actual = final_weights(straight.model_dir), final_weights(resumed.model_dir)
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert not all(torch.equal(early[name], actual[name]) for name in early)  # the export was of step 3


@pytest.mark.slow
def test_resume_after_a_kill_matches_an_uninterrupted_run(straight_run, short_config, data_dir, tmp_path):
    """A real SIGKILL wherever the run happens to be; the resumed run must still end bit for bit the same."""
    config_path = tmp_path / "short.toml"
    text = preset_path("smoke").read_text().replace("total_tokens = 3072", "total_tokens = 1024")
    config_path.write_text(text.replace("checkpoint_every = 4", "checkpoint_every = 2"))
    out_dir = tmp_path / "run"
    command = [str(Path(sys.executable).parent / "mimo"), "train", "pretrain", "--config", str(config_path)]
    command += ["--data", str(data_dir), "--out", str(out_dir), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out_dir / "checkpoint.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out_dir / "model").exists()
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight, _ = straight_run
    expected, actual = final_weights(straight.model_dir), final_weights(out_dir / "model")
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


@pytest.fixture(scope="module")
def bf16_checkpoint(short_config, tmp_path_factory) -> Path:
    """A short run exported in bfloat16, as the shipped nano is."""
    config = dataclasses.replace(short_config, save_dtype="bfloat16", total_tokens=256)
    return run(config, tmp_path_factory.mktemp("bf16")).model_dir


def test_continued_pretraining_starts_from_the_given_weights(bf16_checkpoint, short_config, tmp_path):
    """`init_from` loads a bf16 checkpoint's weights; the first step has lr 0 (warmup), so after it the model
    still holds exactly those weights. `after_step` sees every step, with that step's record."""
    config = dataclasses.replace(short_config, init_from=str(bf16_checkpoint), total_tokens=256)
    start = final_weights(bf16_checkpoint)
    assert {tensor.dtype for tensor in start.values()} == {torch.bfloat16}
    seen = []

    def after_step(model, state):
        if state.step == 1:
            current = model.state_dict()
            seen.append(all(torch.equal(start[name].float(), current[name]) for name in start))
        seen.append((state.step, state.history[-1]["step"]))

    result = run(config, tmp_path, after_step=after_step)
    assert result.state.history[0]["lr"] == 0.0
    assert seen == [True, *((step, step) for step in range(1, result.state.step + 1))]


def test_continued_pretraining_refuses_another_model(bf16_checkpoint, short_config, tmp_path):
    import json
    import shutil

    from training.errors import UserError

    wider = dataclasses.replace(short_config.model, hidden_size=2 * short_config.model.hidden_size)
    with pytest.raises(UserError, match="does not match the config's.*other shape: .*embed_tokens"):
        run(dataclasses.replace(short_config, model=wider, init_from=str(bf16_checkpoint)), tmp_path / "wider")
    with pytest.raises(UserError, match="init_from: .*no-such-model"):
        run(dataclasses.replace(short_config, init_from=str(tmp_path / "no-such-model")), tmp_path / "missing")

    other_eps = shutil.copytree(bf16_checkpoint, tmp_path / "other-eps")
    config_json = json.loads((other_eps / "config.json").read_text())
    config_json["rms_norm_eps"] = 1e-3
    (other_eps / "config.json").write_text(json.dumps(config_json))
    with pytest.raises(UserError, match="rms_norm_eps 0.001 vs"):
        run(dataclasses.replace(short_config, init_from=str(other_eps)), tmp_path / "eps")

    other_tokens = shutil.copytree(bf16_checkpoint, tmp_path / "other-tokens")  # same size, two ids swapped
    tokenizer_json = json.loads((other_tokens / "tokenizer.json").read_text())
    vocab = tokenizer_json["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[100:102]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (other_tokens / "tokenizer.json").write_text(json.dumps(tokenizer_json))
    with pytest.raises(UserError, match="another tokenizer"):
        run(dataclasses.replace(short_config, init_from=str(other_tokens)), tmp_path / "tokens")


def test_resume_without_a_checkpoint_is_a_clear_error(short_config, tmp_path):
    from training.errors import UserError

    with pytest.raises(UserError, match="no checkpoint.pt"):
        run(short_config, tmp_path, resume=True)


def test_micro_batches_and_activation_checkpointing_train_the_same_steps(straight_run, short_config, tmp_path):
    """Four rows a step as four micro-batches of one (gradients accumulated), and with each layer's activations
    recomputed in backward: the same losses and weights as one forward over the batch, to rounding."""
    straight, _ = straight_run
    expected = [record["loss"] for record in straight.state.history]
    for name, changes in (("micro", {"micro_batch_size": 1}), ("recompute", {"activation_checkpointing": True})):
        result = run(dataclasses.replace(short_config, **changes), tmp_path / name)
        assert [record["loss"] for record in result.state.history] == pytest.approx(expected, rel=1e-5), name
        actual, reference = final_weights(result.model_dir), final_weights(straight.model_dir)
        for key in reference:
            torch.testing.assert_close(actual[key], reference[key], atol=1e-5, rtol=1e-4, msg=f"{name}: {key}")


def test_sharded_checkpoint_format_resumes_exactly_in_one_process(straight_run, short_config, tmp_path):
    """strategy = "fsdp" on one process trains unsharded but checkpoints with torch.distributed.checkpoint; a stop
    and resume from it ends bit for bit where the uninterrupted run does, and an early export reads it."""
    straight, _ = straight_run
    config = dataclasses.replace(short_config, strategy="fsdp")
    stopped = run(config, tmp_path, stop_at_step=3)
    assert not stopped.finished and (tmp_path / "checkpoint" / "trainer.pt").is_file()
    assert not (tmp_path / "checkpoint.pt").exists()
    early = final_weights(export_checkpoint(config, tmp_path, tmp_path / "early"))
    resumed = run(config, tmp_path, resume=True)
    assert resumed.state.history == straight.state.history
    expected, actual = final_weights(straight.model_dir), final_weights(resumed.model_dir)
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert not all(torch.equal(early[name], actual[name]) for name in early)


def test_a_checkpoint_left_mid_rename_is_still_read(short_config, tmp_path):
    """A kill between the two renames of a sharded save leaves checkpoint.old/ and no checkpoint/."""
    config = dataclasses.replace(short_config, strategy="fsdp")
    run(config, tmp_path, stop_at_step=2)
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")
    resumed = run(config, tmp_path, resume=True)
    assert resumed.finished and resumed.state.history[1]["step"] == 2 and len(resumed.state.history) == 6


def test_sharded_resume_without_a_checkpoint_is_a_clear_error(short_config, tmp_path):
    from training.errors import UserError

    with pytest.raises(UserError, match="no checkpoint/ in"):
        run(dataclasses.replace(short_config, strategy="fsdp"), tmp_path, resume=True)
