"""Nothing leaves the machine unless the user asks: the switches that turn off libraries' reports home.

- vLLM sends usage statistics (hardware, model architecture, engine settings) to its project's server when an
  engine's worker starts, and every 10 minutes after, unless ``VLLM_NO_USAGE_STATS``, ``VLLM_DO_NOT_TRACK`` or
  ``DO_NOT_TRACK`` is 1 (``vllm.usage.usage_lib.is_usage_stats_enabled``). Every vLLM engine of mimo-code sets
  them first, unless the user opted in (``mimo serve --vllm-usage-stats``); the engine core and workers vLLM
  starts inherit the environment.
- Hugging Face libraries send telemetry on some calls unless ``HF_HUB_DISABLE_TELEMETRY`` (or ``DO_NOT_TRACK``)
  is set; `mimo` sets it for every command. Loading from a local directory makes no hub calls at all, and
  model names are resolved in the local cache only (engine.registry), so only `mimo pull` talks to the hub.

docs/privacy.md lists what can leave the machine and when.
"""

from __future__ import annotations

import os

VLLM_USAGE_STATS_OFF = {"VLLM_NO_USAGE_STATS": "1", "VLLM_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1"}
HF_TELEMETRY_OFF = {"HF_HUB_DISABLE_TELEMETRY": "1"}


def disable_vllm_usage_stats(opt_in: bool = False) -> None:
    """Turns vLLM's usage reports off for this process and those it starts, unless ``opt_in``. Call it before
    the engine starts: vLLM reads the variables once, when its first worker decides whether to report."""
    if not opt_in:
        os.environ.update(VLLM_USAGE_STATS_OFF)


def disable_library_telemetry() -> None:
    """Hugging Face telemetry off, unless the user's environment says otherwise."""
    for name, value in HF_TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
