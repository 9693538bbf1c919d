"""The MiMo model family: configuration, model, and their registration with transformers' Auto classes."""

from transformers import AutoConfig, AutoModelForCausalLM

from .configuration_mimo import MiMoConfig
from .modeling_mimo import MiMoCausalLMOutput, MiMoForCausalLM, MiMoModel, MiMoModelOutput, shifted_cross_entropy


def register() -> None:
    """Makes ``AutoConfig`` / ``AutoModelForCausalLM`` resolve ``model_type="mimo"`` (idempotent)."""
    try:
        AutoConfig.register("mimo", MiMoConfig)
    except ValueError:  # already registered in this process
        pass
    try:
        AutoModelForCausalLM.register(MiMoConfig, MiMoForCausalLM)
    except ValueError:
        pass


register()
# Saved checkpoints carry these two files and an `auto_map`, so they load with plain transformers
# (trust_remote_code=True) and in vLLM processes that never imported mimo-code.
MiMoConfig.register_for_auto_class()
MiMoForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "MiMoCausalLMOutput",
    "MiMoConfig",
    "MiMoForCausalLM",
    "MiMoModel",
    "MiMoModelOutput",
    "register",
    "shifted_cross_entropy",
]
