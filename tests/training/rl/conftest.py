"""Fixtures for the RL tests: a real sandbox with short limits (skipped without bubblewrap or root)."""

from __future__ import annotations

import os
import shutil

import pytest

from training.verify import Limits, SandboxConfig, VerifierConfig


@pytest.fixture
def verifier_config() -> VerifierConfig:
    assert shutil.which("bwrap"), "bubblewrap is not installed: run `make setup`"
    if os.geteuid() != 0:
        pytest.skip("the sandbox switches each run to its own uid, which needs root")
    return VerifierConfig(sandbox=SandboxConfig(), limits=Limits(test_timeout_s=3.0))
