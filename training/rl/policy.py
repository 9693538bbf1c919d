"""The policy model for SFT and RL: loaded in float32 from 'nano' or a checkpoint, MTP layers frozen, exported in
the MiMo layout (safetensors + config + tokenizer + the model's own code) that every `--model PATH` loads."""

from __future__ import annotations

from pathlib import Path

import torch

from training.errors import UserError

MODEL_SUBDIR = "model"


def load_policy(name: str):
    """(model, tokenizer) for training: float32 weights, left padding as TRL's batched generation needs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    import engine.model  # noqa: F401  (registers MiMo with the Auto classes)

    transformers_logging.disable_progress_bar()  # its load/save bars would interleave with the run's own
    from engine.api import EngineError
    from engine.registry import resolve_model

    try:
        path = resolve_model(name)
    except EngineError as error:
        raise UserError(f"--model: {error}") from None
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return model, tokenizer


def freeze_mtp(model: torch.nn.Module) -> list[str]:
    """Stops gradients into the MTP layers (MiMo keeps them frozen during RL); the names of what was frozen."""
    frozen = []
    for name, parameter in model.named_parameters():
        if ".mtp_layers." in name:
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen


def mtp_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the MTP layers' weights (to check they stayed bit for bit the same)."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items() if ".mtp_layers." in name}


def export_policy(model: torch.nn.Module, tokenizer, out_dir: Path, dtype: str, base_model: str, command: str) -> Path:
    """A Hugging Face checkpoint in the MiMo layout, loadable by `mimo serve/complete/lsp --model OUT` and vLLM,
    with its model card (mimo-card.json, ``policy_card``): ``base_model`` is the ``--model`` it was tuned from,
    ``command`` the tuning command (`mimo train rl`...)."""
    from training.pretrain import export_model

    out_dir = Path(out_dir)
    run_name = (out_dir.resolve().parent if out_dir.name == MODEL_SUBDIR else out_dir.resolve()).name
    tokenizer.padding_side = "right"  # the engine's default; training set it to left for batched generation
    return export_model(model, tokenizer, out_dir, dtype, policy_card(run_name, base_model, command))


def policy_card(model: str, base_model: str, command: str) -> dict:
    """The card of a tuned policy: the base model's languages with python added (every task is a Python program
    run by the verifier); a base whose card lists none (any language) stays so."""
    from engine.registry import resolve_model
    from training.model_card import card, read_card

    base_dir = resolve_model(base_model)
    base = read_card(base_dir) or {}
    languages = base.get("languages")
    name = str(base.get("model") or base_dir.name)
    if not (isinstance(languages, list) and all(isinstance(item, str) for item in languages)):
        return card(model, None, f"{name} (its card lists no languages) tuned with `{command}` on Python tasks.",
                    base=name)  # fmt: skip
    return card(model, [*languages, "python"], f"{name} tuned with `{command}` on Python coding tasks.", base=name)


def device_arguments() -> dict:
    """TrainingArguments for the device at hand: float32 on CPU (TRL's bf16 default needs a GPU)."""
    if torch.cuda.is_available():
        return {"bf16": True}
    return {"use_cpu": True, "bf16": False, "fp16": False}
