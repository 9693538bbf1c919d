"""MiMo configuration: a Qwen2 configuration plus the number of MTP layers.

This file is also copied beside every checkpoint we save (with ``auto_map`` in ``config.json``), so plain
transformers and vLLM can read our checkpoints with ``trust_remote_code=True`` without mimo-code installed.
It must therefore import nothing from this project.
"""

from transformers import Qwen2Config


class MiMoConfig(Qwen2Config):
    model_type = "mimo"

    def __init__(self, num_nextn_predict_layers: int = 0, **kwargs):
        self.num_nextn_predict_layers = num_nextn_predict_layers
        super().__init__(**kwargs)
