"""Exact and near duplicate removal; secret and personal-data scrubbing."""

from __future__ import annotations

import random

from training.data.dedup import Deduplicator, shingle_jaccard
from training.data.scrub import EMAIL, KEY, PASSWORD, scrub


def _program(seed: int, lines: int = 120) -> str:
    rng = random.Random(seed)
    names = [f"v{rng.randrange(10_000)}" for _ in range(lines)]
    return "".join(f"def f{i}({n}):\n    return {n} * {rng.randrange(1000)} + {i}\n" for i, n in enumerate(names))


def _edit(text: str, fraction: float, seed: int = 0) -> str:
    """Changes `fraction` of the lines."""
    rng = random.Random(seed)
    lines = text.splitlines()
    for index in rng.sample(range(len(lines)), int(len(lines) * fraction)):
        lines[index] = f"    changed_{index} = {rng.random()}"
    return "\n".join(lines) + "\n"


def test_exact_duplicate_is_dropped():
    dedup = Deduplicator()
    original = _program(1)
    assert dedup.check(original) is None
    assert dedup.check(original) == "duplicate"


def test_near_duplicate_is_dropped_and_a_different_file_kept():
    dedup = Deduplicator(threshold=0.8)
    original = _program(1)
    near = _edit(original, 0.01)
    far = _edit(original, 0.5)
    assert shingle_jaccard(original, near) > 0.85 and shingle_jaccard(original, far) < 0.5
    assert dedup.check(original) is None
    assert dedup.check(near) == "near-duplicate"
    assert dedup.check(far) is None
    assert dedup.check(_program(2)) is None


def test_scrub_replaces_keys_tokens_passwords_and_emails():
    text = (
        'AWS = "AKIAIOSFODNN7EXAMPLE"\n'
        'GH = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"\n'
        'db_password = "hunter2isgood"\n'
        "# maintainer: jane.doe@example.com\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
    )
    result = scrub(text)
    for secret in ("AKIAIOSFODNN7EXAMPLE", "ghp_abc", "hunter2isgood", "jane.doe", "MIIEpAIBAAKCAQEA"):
        assert secret not in result.text
    assert result.text.count(KEY) == 3 and PASSWORD in result.text and EMAIL in result.text
    assert result.counts == {"key": 3, "password": 1, "email": 1}


def test_scrub_leaves_ordinary_code_alone():
    code = (
        'password = os.environ["PASSWORD"]\n'
        'api_key = "{api_key}"\n'
        "y = a @ b.T\n"
        "z = x@self.weight\n"
        "long_name_for_a_function_in_python_code = compute_everything_at_once(arguments)\n"
    )
    result = scrub(code)
    assert result.text == code and not result.counts
