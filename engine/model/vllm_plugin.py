"""vLLM general plugin: registers ``model_type="mimo"`` with transformers in every vLLM process.

vLLM runs its engine core in a separate process, which would not see a registration made in ours; the
``vllm.general_plugins`` entry point (pyproject.toml) runs this in each of them.
"""


def register() -> None:
    from transformers import AutoConfig

    from engine.vllm_logging import in_vllm_process

    in_vllm_process()  # a vLLM process that dies says why in one line (engine.vllm_logging)

    from .configuration_mimo import MiMoConfig

    try:
        AutoConfig.register("mimo", MiMoConfig)
    except ValueError:
        pass
