"""Pretraining: MiMo (trunk + MTP layers) on the staged data mixture, resumable, on one or many processes.

This module builds the run (model, optimiser, sampler; DDP or FSDP2 through training/distributed.py) and
exports the result; the loop itself is training/pretrain_loop.py. One optimiser step: draw the global batch for
the current stage (its own sequence length), set the learning rate and the MTP loss weight λ from the run's
progress in tokens, forward with labels (loss = main + λ·MTP), backward, clip, AdamW. Checkpoints every
`checkpoint_every` steps hold everything needed to continue exactly; the end of the run exports a Hugging Face
checkpoint (safetensors + tokenizer + mimo-card.json, the languages of the data) to `OUT/model`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from training.checkpoint import TrainState, load_checkpoint, load_model_weights, load_sharded
from training.config import ModelDims, OptimConfig, PretrainConfig
from training.distributed import init_distributed, shutdown_distributed, wrap_model
from training.errors import UserError
from training.model_card import pretrain_card, write_card
from training.pretrain_loop import RunOptions, Trainer, autocast_dtype, train_step  # noqa: F401 (public here too)

MODEL_SUBDIR = "model"
SUMMARY_NAME = "summary.json"


@dataclass
class PretrainResult:
    state: TrainState
    finished: bool  # all of total_tokens trained; the model was exported
    model_dir: Path | None


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    if not (Path(path) / "tokenizer.json").is_file():
        raise UserError(f"no tokenizer in {path}; build one with `mimo train tokenizer SOURCES --out {path}`")
    return AutoTokenizer.from_pretrained(str(path))


def build_model(dims: ModelDims, tokenizer, seed: int):
    """A freshly initialised MiMoForCausalLM; the seed makes every process start from the same weights."""
    from engine.model import MiMoConfig, MiMoForCausalLM

    torch.manual_seed(seed)
    config = MiMoConfig(
        vocab_size=len(tokenizer),
        hidden_size=dims.hidden_size,
        intermediate_size=dims.intermediate_size,
        num_hidden_layers=dims.num_hidden_layers,
        num_attention_heads=dims.num_attention_heads,
        num_key_value_heads=dims.num_key_value_heads,
        num_nextn_predict_layers=dims.num_nextn_predict_layers,
        max_position_embeddings=dims.max_position_embeddings,
        rope_theta=dims.rope_theta,
        rms_norm_eps=dims.rms_norm_eps,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return MiMoForCausalLM(config)


def load_initial_weights(model: torch.nn.Module, name: str, tokenizer=None) -> None:
    """Continued pretraining: copies the weights of checkpoint `name` ("nano" or a directory) into `model`,
    which must have the same architecture (names, shapes, norm epsilon, RoPE base) and, when the checkpoint
    carries a tokenizer, the same vocabulary as `tokenizer`."""
    from safetensors.torch import load_file

    from engine.api import EngineError
    from engine.registry import resolve_model

    try:
        directory = resolve_model(name)
    except EngineError as error:
        raise UserError(f"init_from: {error}") from None
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise UserError(f"init_from: no *.safetensors weights in {directory}")
    weights = {key: value for path in files for key, value in load_file(path).items()}
    expected = model.state_dict()
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    resized = sorted(k for k in expected.keys() & weights.keys() if expected[k].shape != weights[k].shape)
    if missing or unexpected or resized:
        problems = [f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                    for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", resized))
                    if keys]  # fmt: skip
        raise UserError(
            f"init_from: {directory} does not match the config's [model] and tokenizer ({'; '.join(problems)})"
        )
    _check_same_config(model.config, directory)
    if tokenizer is not None and (directory / "tokenizer.json").is_file():
        _check_same_vocabulary(tokenizer, directory)
    model.load_state_dict({key: value.to(expected[key].dtype) for key, value in weights.items()})


def _check_same_config(config, directory: Path) -> None:
    """Weights of the right shapes can still belong to another model: compare what shapes don't show."""
    saved = json.loads((directory / "config.json").read_text(encoding="utf-8"))

    def rope_theta(values: dict):
        return values.get("rope_theta", (values.get("rope_parameters") or {}).get("rope_theta"))

    ours = {"rms_norm_eps": config.rms_norm_eps, "rope_theta": rope_theta(config.to_dict())}
    theirs = {"rms_norm_eps": saved.get("rms_norm_eps"), "rope_theta": rope_theta(saved)}
    different = [f"{key} {theirs[key]} vs {ours[key]}" for key in ours if None not in (theirs[key], ours[key])
                 and float(theirs[key]) != float(ours[key])]  # fmt: skip
    if different:
        raise UserError(f"init_from: {directory} was trained with other [model] settings ({'; '.join(different)})")


def _check_same_vocabulary(tokenizer, directory: Path) -> None:
    from transformers import AutoTokenizer

    if AutoTokenizer.from_pretrained(str(directory)).get_vocab() != tokenizer.get_vocab():
        raise UserError(
            f"init_from: {directory} has another tokenizer than the config's; continue with the one "
            f"it was trained with (copy {directory}/tokenizer.json into the data's tokenizer folder)"
        )


def build_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: norms and biases (1-D parameters) are not decayed."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    undecayed = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [
        {"params": decayed, "weight_decay": optim.weight_decay},
        {"params": undecayed, "weight_decay": 0.0},
    ]
    # The fused kernel (CPU and CUDA) is several times faster than the per-tensor loop: ~30 vs ~170 ms a step
    # for nano on two CPU cores, which is the gap to a Hugging Face Trainer (fused by default).
    return torch.optim.AdamW(groups, lr=optim.lr, betas=(optim.beta1, optim.beta2), fused=True)


def pretrain(config: PretrainConfig, options: RunOptions) -> PretrainResult:
    from training.data.mixture import MixtureSampler

    context = init_distributed()
    if context.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # the float32 parts (optimiser, norms) on tensor cores
    try:
        tokenizer = load_tokenizer(config.tokenizer)
        model = build_model(config.model, tokenizer, config.seed)
        if config.init_from and not options.resume:
            load_initial_weights(model, config.init_from, tokenizer)
        if config.activation_checkpointing:  # recompute each layer's activations in backward: memory for time
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = model.to(context.device)
        param_dtype = autocast_dtype(config.precision, context.device)
        trained = wrap_model(model, context, config.strategy, param_dtype)
        optimizer = build_optimizer(model, config.optim)
        sampler = MixtureSampler(
            config.mixture, batch_size=config.batch_size, total_tokens=config.total_tokens, seed=config.seed
        )
        out_dir = Path(options.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        state = _resume(config, out_dir, model, optimizer, sampler) if options.resume else TrainState()
        trainer = Trainer(config, options, context, model, trained, optimizer, sampler, state)
        state = trainer.run()
        finished = state.tokens_seen >= config.total_tokens
        model_dir = None
        if finished:
            whole = _unsharded(trainer, tokenizer)  # collective under FSDP2: every process takes part
            if context.is_main:
                card = run_card(config, out_dir)
                model_dir = export_model(whole, tokenizer, out_dir / MODEL_SUBDIR, config.save_dtype, card)
                _write_summary(out_dir, config, whole, state)
        context.barrier()
        return PretrainResult(state=state, finished=finished, model_dir=model_dir)
    finally:
        shutdown_distributed(context)


def _resume(config: PretrainConfig, out_dir: Path, model, optimizer, sampler) -> TrainState:
    if config.strategy == "fsdp":
        return load_sharded(out_dir, model, optimizer, sampler)
    return load_checkpoint(out_dir, model, optimizer, sampler)


def _unsharded(trainer, tokenizer):
    """The whole model on rank 0 (None elsewhere) for export: under FSDP2 the shards are gathered to the CPU
    into a fresh model, else the trained model itself."""
    if not (trainer.sharded and trainer.context.enabled):
        return trainer.model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not trainer.context.is_main:
        return None
    whole = build_model(trainer.config.model, tokenizer, trainer.config.seed)
    whole.load_state_dict(full)
    return whole


def export_model(model, tokenizer, out_dir: Path, dtype: str, card: dict | None = None) -> Path:
    """Saves a Hugging Face checkpoint (safetensors in `dtype`, config, tokenizer) that `from_pretrained` loads,
    with its model card (mimo-card.json: the languages it was trained on) when one is given."""
    exported = copy.deepcopy(model).to("cpu", dtype=getattr(torch, dtype))
    exported.config.dtype = dtype
    exported.config.use_cache = True
    exported.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if card is not None:
        write_card(out_dir, card)
    return out_dir


def run_card(config: PretrainConfig, run_dir: Path) -> dict:
    """The model card of a run's checkpoint: named after the run's folder, languages from the data manifests."""
    weights = [stage.weights for stage in config.mixture.stages]
    return pretrain_card(Path(run_dir).resolve().name, config.mixture.sources, weights)


def export_checkpoint(config: PretrainConfig, run_dir: Path, out_dir: Path) -> Path:
    """Exports the model weights of a run's last checkpoint, replicated or sharded (e.g. an early look at a run
    still in progress)."""
    tokenizer = load_tokenizer(config.tokenizer)
    model = build_model(config.model, tokenizer, config.seed)
    load_model_weights(run_dir, model)
    return export_model(model, tokenizer, Path(out_dir), config.save_dtype, run_card(config, run_dir))


def parameter_count(model: torch.nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    mtp = sum(p.numel() for name, p in model.named_parameters() if ".mtp_layers." in name)
    return {"total": total, "mtp_layers": mtp, "main": total - mtp}


def _write_summary(out_dir: Path, config: PretrainConfig, model, state: TrainState) -> None:
    last = state.history[-1] if state.history else {}
    summary = {
        "steps": state.step,
        "tokens_seen": state.tokens_seen,
        "train_seconds": round(state.seconds, 1),
        "parameters": parameter_count(model),
        "final_main_loss": last.get("main_loss"),
        "final_mtp_loss": last.get("mtp_loss"),
        "stages": [stage.name for stage in config.mixture.stages],
    }
    (out_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
