"""Many candidates against one problem's tests: the verifier's interface for RL rewards.

Contract of ``verify_batch(suite, codes)``:
- input: one problem's tests (a ``TestSuite``; ``job.suite`` gives one from any ``Job``) and a sequence of
  candidate programs (the code of each sample of a group);
- output: a list with one ``VerifyResult`` per candidate, in input order, each with one ``TestResult`` per test
  (``outcome``, ``time_s``, ``detail``) and ``passed`` / ``pass_fraction`` for the reward. Result ``i`` is named
  ``"<suite name>#<i>"``;
- every candidate is judged on its own: its verdict never depends on what another candidate of the batch did;
- the call raises ``SandboxUnavailable`` when no sandbox can run (and unsafe mode is off); a candidate's own
  failure (a crash, a timeout, a syntax error) is a result, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence

from training.verify.formats import TestSuite
from training.verify.pool import VerifierPool
from training.verify.results import VerifyResult
from training.verify.verifier import VerifierConfig


def verify_batch(
    suite: TestSuite,
    codes: Sequence[str],
    config: VerifierConfig | None = None,
    pool: VerifierPool | None = None,
    workers: int = 0,
) -> list[VerifyResult]:
    """Runs every candidate in ``codes`` against ``suite``; see the module docstring for the contract.

    Pass a long-lived ``pool`` to keep its sandboxes warm across batches (an RL run calls this once per prompt).
    """
    if pool is not None:
        return pool.verify_batch(suite, codes)
    with VerifierPool(config, workers=workers) as own:
        return own.verify_batch(suite, codes)
