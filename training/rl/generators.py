"""Where rollouts come from, and how they are scored: the parts ``CodeRollouts`` is built from.

- ``NativeGenerator``: our engine's decoder over the policy's current weights (``rollout.sample_groups``): MTP
  speculative sampling (lossless), continuous batching of every sequence of the step.
- ``TrlGenerator``: TRL's own generation path, as configured on the trainer: transformers ``generate`` by
  default, vLLM colocated or a ``trl vllm-serve`` server with ``use_vllm`` (TRL syncs the weights each step).
  It calls ``GRPOTrainer._generate_single_turn``, a private method of trl 1.16 (pinned exactly), so the recipe's
  problem choice and filtering work with every backend TRL has.
- ``VerifierScorer``: rewards of many completions of one task through a ``VerifierPool``.
"""

from __future__ import annotations

import os
import time

from training.rl.rewards import Reward, Scheme, reward_from_repo_check, reward_from_result
from training.rl.rollout import Completion, RolloutStats, SamplingSettings, sample_groups
from training.tasks.format import Task
from training.tasks.repo import check_repo_completion


class NativeGenerator:
    def __init__(self, settings: SamplingSettings):
        self.settings = settings

    def generate(self, trainer, prompts: list[list[int]], n: int, seed: int):
        model = trainer.accelerator.unwrap_model(trainer.model) if trainer is not None else self.model
        was_training = model.training
        model.eval()
        try:
            return sample_groups(model, prompts, n, self.settings, seed)
        finally:
            model.train(was_training)


class TrlGenerator:
    def __init__(self, eos_ids: tuple[int, ...]):
        self.eos_ids = eos_ids

    def generate(self, trainer, prompts: list[list[int]], n: int, seed: int):
        import torch

        started = time.perf_counter()
        repeated = [ids for ids in prompts for _ in range(n)]
        torch.manual_seed(seed)  # transformers' sampling draws from the global generator
        completion_ids, _ = trainer._generate_single_turn(repeated, None, {}, n)
        completions = [Completion(tuple(ids), bool(ids) and ids[-1] in self.eos_ids) for ids in completion_ids]
        groups = [completions[i * n : (i + 1) * n] for i in range(len(prompts))]
        tokens = sum(len(c.token_ids) for c in completions)
        return groups, RolloutStats(len(completions), tokens, time.perf_counter() - started)


class VerifierScorer:
    """Scores completions in the sandbox; the pool starts on first use and lives as long as the scorer."""

    def __init__(self, scheme: Scheme, verifier_config=None, workers: int = 0):
        self.scheme = scheme
        self.verifier_config = verifier_config
        self.workers = workers
        self._pool = None

    @property
    def pool(self):
        if self._pool is None:
            from training.verify import VerifierPool

            self._pool = VerifierPool(self.verifier_config, workers=self.workers)
        return self._pool

    def score(self, task: Task, texts: list[str]) -> list[Reward]:
        """One reward per completion of ``task``, the group verified as one batch against the task's tests (a repo
        task: its repository's pytest run per completion, ``workers`` at a time, each a sandboxed process)."""
        if task.format == "repo":
            return self._score_repo(task, texts)
        results = self.pool.verify_batch(task.suite, [task.program(text) for text in texts])
        return [reward_from_result(result, task, self.scheme) for result in results]

    def _score_repo(self, task: Task, texts: list[str]) -> list[Reward]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers or min(4, os.cpu_count() or 1)) as threads:
            checks = list(threads.map(lambda text: check_repo_completion(task, text), texts))
        return [reward_from_repo_check(check, task, self.scheme) for check in checks]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __getstate__(self) -> dict:  # picklable (TRL may copy reward functions): the pool is not carried
        return {**self.__dict__, "_pool": None}
