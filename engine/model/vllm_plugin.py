"""vLLM general plugin: registers ``model_type="mimo"`` with transformers in every vLLM process.

vLLM runs its engine core in a separate process, which would not see a registration made in ours; the
``vllm.general_plugins`` entry point (pyproject.toml) runs this in each of them.
"""


def register() -> None:
    from transformers import AutoConfig

    from .configuration_mimo import MiMoConfig

    try:
        AutoConfig.register("mimo", MiMoConfig)
    except ValueError:
        pass
