"""What is trained and how it is saved: LoRA adapters through PEFT or full fine-tuning, the MTP layer tuned or
frozen, and the exports (a merged model every command loads; for LoRA the adapter too).

LoRA targets the trunk's attention and MLP projections by default (`q_proj, k_proj, v_proj, o_proj, gate_proj,
up_proj, down_proj`; names are matched in the trunk only, `model.layers.N.`). With `mtp="tune"` the MTP layer
itself (0.9 M of nano's 9.8 M parameters) is trained in full beside the adapters, at a third of their learning
rate: the draft head has to follow what the adapted trunk now predicts, and low-rank adapters on its
projections alone (its input projection and norms frozen) kept held-out acceptance no better than where it was.
The merged export carries the tuned MTP layer; the adapter holds the trunk's LoRA weights only. With "freeze"
the draft head stays bit-identical.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from training.errors import UserError

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
METHODS = ("lora", "full")
MTP_MODES = ("tune", "freeze")
FULL_WEIGHTS_BESIDE_LORA = 1 / 3  # LoRA's 3e-3 -> 1e-3, the full fine-tuning rate


@dataclass(frozen=True)
class TuneSpec:
    method: str = "full"
    mtp: str = "tune"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.mtp not in MTP_MODES:
            raise UserError(f"--mtp must be one of {', '.join(MTP_MODES)}, got {self.mtp!r}")
        if self.lora_rank < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise UserError("--lora-rank must be >= 1, --lora-alpha > 0 and --lora-dropout in [0, 1)")
        if not self.lora_targets or any(not re.fullmatch(r"[A-Za-z_][\w.]*", t) for t in self.lora_targets):
            raise UserError(f"--lora-targets must name modules like q_proj,v_proj; got {','.join(self.lora_targets)}")


def load_base(path: Path) -> torch.nn.Module:
    """The base checkpoint in float32 (training and the CPU kernels both want it)."""
    from transformers import AutoModelForCausalLM

    import engine.model  # noqa: F401  (registers MiMo with the Auto classes)

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)


def prepare_model(base: torch.nn.Module, spec: TuneSpec) -> torch.nn.Module:
    """The module the optimiser trains: a PEFT model (LoRA) or the base itself (full), MTP frozen or not."""
    has_mtp = bool(getattr(base, "num_mtp_layers", 0))
    if spec.method == "full":
        for name, parameter in base.named_parameters():
            parameter.requires_grad_(not (spec.mtp == "freeze" and ".mtp_layers." in name))
        return base
    from peft import LoraConfig, get_peft_model

    names = "|".join(re.escape(target) for target in spec.lora_targets)
    config = LoraConfig(
        r=spec.lora_rank,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=rf".*model\.layers\.\d+\.(.*\.)?({names})",
        bias="none",
    )
    try:
        model = get_peft_model(base, config)
    except ValueError as error:  # PEFT's "Target modules ... not found in the base model"
        raise UserError(f"--lora-targets: {error}".splitlines()[0]) from None
    if spec.mtp == "tune" and has_mtp:
        for name, parameter in model.named_parameters():
            if ".mtp_layers." in name:
                parameter.requires_grad_(True)
    return model


def learning_rate_scale(name: str, model: torch.nn.Module) -> float:
    """Full weights trained beside LoRA adapters (the MTP layer) learn at a third of the adapters' rate."""
    return FULL_WEIGHTS_BESIDE_LORA if hasattr(model, "get_base_model") and "lora_" not in name else 1.0


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The MiMoForCausalLM inside (with LoRA layers injected, for a PEFT model)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the trained tensors only: what a checkpoint and the best-so-far snapshot need."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            parameters[name].copy_(value)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    return {"total": total, "trained": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def export(model: torch.nn.Module, tokenizer, spec: TuneSpec, base_dir: Path, out: Path, dtype: str) -> dict:
    """Writes OUT/model (what `--model` takes: merged for LoRA) and, for LoRA, OUT/adapter. Returns the paths."""
    import copy

    paths = {}
    if spec.method == "lora":
        adapter_dir = out / "adapter"
        model.save_pretrained(str(adapter_dir))  # adapter_config.json + adapter_model.safetensors
        _point_adapter_at(adapter_dir, base_dir)
        tokenizer.save_pretrained(str(adapter_dir))  # vLLM's LoRA loader looks for a tokenizer beside it
        merged = copy.deepcopy(model).merge_and_unload()
        paths["adapter"] = str(adapter_dir)
    else:
        merged = copy.deepcopy(model)
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    merged = merged.to("cpu", dtype=getattr(torch, dtype))
    merged.config.dtype = dtype
    merged.config.use_cache = True
    merged.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    paths["model"] = str(model_dir)
    return paths


def _point_adapter_at(adapter_dir: Path, base_dir: Path) -> None:
    """The adapter names the base it was trained on by its directory, so vLLM and PEFT find it offline."""
    import json

    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(base_dir)
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
