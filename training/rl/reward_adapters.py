"""The code reward in the two shapes RL frameworks call: TRL's ``reward_funcs`` and verl's ``compute_score``.

Both wrap the same plain function (``rewards.reward_from_result`` over the sandboxed verifier), so a run on a
cluster with verl (MiMo's own framework) scores exactly as `mimo train rl` does. See docs/training.md for verl.
"""

from __future__ import annotations

import json
import os

from training.rl.generators import VerifierScorer
from training.rl.rewards import SCHEMES, Reward, Scheme, code_reward
from training.tasks.format import Task, parse_task


class TrlCodeReward:
    """``GRPOTrainer(reward_funcs=[TrlCodeReward(...)])``: one score per completion, from its ``task_id`` column.

    Completions the rollout function already scored (``ledger``) are not run again; anything else (TRL's own
    generation without our rollout function, evaluation) is verified here. The ledger's step metrics are
    logged through TRL's ``log_metric``.
    """

    def __init__(self, tasks: dict[str, Task], scorer: VerifierScorer, ledger=None):
        self.tasks = tasks
        self.scorer = scorer
        self.ledger = ledger
        self.__name__ = f"code_tests_{scorer.scheme}"  # TRL's metric name: rewards/<name>/mean

    def __call__(self, prompts, completions, task_id, log_metric=None, **kwargs) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        known = self.ledger.scores if self.ledger is not None else {}
        rewards: list[Reward | None] = [known.pop((t, text), None) for t, text in zip(task_id, texts)]
        for index, reward in enumerate(rewards):
            if reward is None:
                rewards[index] = self.scorer.score(self.tasks[task_id[index]], [texts[index]])[0]
        if self.ledger is not None and log_metric is not None:
            for name, value in self.ledger.take_metrics().items():
                log_metric(name, value)
        return [reward.score for reward in rewards]


# ---- verl ----


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None) -> dict:
    """verl's custom reward entry point (``custom_reward_function.path`` = this file, ``name`` = compute_score).

    ``ground_truth`` is the task as JSON (``verl_records`` writes it); the scheme comes from
    ``extra_info["reward_scheme"]`` or the ``MIMO_REWARD_SCHEME`` environment variable (default strict).
    verl logs every key of the returned dict; ``score`` is the reward.
    """
    task = parse_task(json.loads(ground_truth), where=f"{data_source} ground_truth")
    scheme = (extra_info or {}).get("reward_scheme") or os.environ.get("MIMO_REWARD_SCHEME", "strict")
    if scheme not in SCHEMES:
        raise ValueError(f"reward_scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
    reward = code_reward(solution_str, task, scheme)
    return {"score": reward.score, "solved": float(reward.solved), "tests_passed": float(sum(reward.passed))}


def verl_records(tasks: list[Task], scheme: Scheme = "strict", data_source: str = "mimo-code") -> list[dict]:
    """Rows of a verl RL dataset (write them to parquet): the prompt, and the task as the rule reward's ground truth.

    The prompt is the raw completion prompt (``data.apply_chat_template=False`` style for base models); for a
    chat model, wrap ``Task.prompt`` in a user message instead.
    """
    return [
        {
            "data_source": data_source,
            "prompt": [{"role": "user", "content": task.model_prompt}],
            "raw_prompt": task.model_prompt,
            "ability": "code",
            "reward_model": {"style": "rule", "ground_truth": json.dumps(task.to_json())},
            "extra_info": {"task_id": task.id, "reward_scheme": scheme},
        }
        for task in tasks
    ]
