"""The RL step's rollouts for TRL's ``GRPOTrainer(rollout_func=...)``: choose problems, sample, score, filter.

TRL calls the rollout function with its slice of the generation batch (each dataset row repeated G times) and
trains on what it returns. ``CodeRollouts`` uses only the slice's size: the curriculum (``curriculum.py``) picks
the problems, so Easy Data Re-Sampling and dynamic sampling decide what the optimiser sees. Per round it draws the
problems still needed, samples G completions of each (``generators.py``: our engine or TRL's own generation),
scores them in the sandbox once (the TRL reward reads the scores from the shared ``RolloutLedger``), records which
problems every rollout solved, and keeps the groups whose rewards differ. Places still empty when the draw budget
is spent are filled with dropped groups whose tokens are masked out of the loss (``env_mask`` 0), so a group of
equal rewards never reaches the loss and never dilutes the token-level normaliser.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from engine.sampling import sample_seed
from training.rl.curriculum import Curriculum, informative
from training.rl.rewards import Reward
from training.rl.rollout import Completion, RolloutStats
from training.tasks.format import Task


@dataclass
class Group:
    task_id: str
    prompt_ids: list[int]
    completions: list[Completion]
    texts: list[str]
    rewards: list[Reward]

    @property
    def scores(self) -> list[float]:
        return [reward.score for reward in self.rewards]


@dataclass
class RolloutLedger:
    """What the rollout function hands the reward function: the scores it computed, and metrics to log."""

    scores: dict[tuple[str, str], Reward] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def take_metrics(self) -> dict[str, float]:
        metrics, self.metrics = self.metrics, {}
        return metrics


@dataclass(frozen=True)
class GroupSampling:
    num_generations: int
    dynamic_sampling: bool = True
    max_draw_factor: float = 3.0
    seed: int = 0


class CodeRollouts:
    def __init__(self, tasks: dict[str, Task], curriculum: Curriculum, generator, scorer, tokenizer,
                 settings: GroupSampling, ledger: RolloutLedger | None = None):  # fmt: skip
        self.tasks = tasks
        self.curriculum = curriculum
        self.generator = generator  # generate(trainer, prompt_ids, n, seed) -> (completions, RolloutStats)
        self.scorer = scorer  # score(task, texts) -> list[Reward]
        self.tokenizer = tokenizer
        self.settings = settings
        self.ledger = ledger or RolloutLedger()
        self.keep_rate = 1.0  # running share of informative groups, sizes the next over-sample
        self.__name__ = "code_rollouts"

    def __call__(self, prompts: list, trainer) -> dict:
        g = self.settings.num_generations
        if len(prompts) % g:
            raise ValueError(f"the rollout slice ({len(prompts)}) must hold whole groups of {g}")
        step = trainer.state.global_step if trainer is not None else 0
        self.ledger.scores.clear()  # the last step's reward call took what it needed; dropped groups' go too
        kept, dropped, totals = self.collect(len(prompts) // g, trainer, step)
        return self._output(kept, dropped, len(prompts) // g, totals)

    def collect(self, needed: int, trainer, step: int) -> tuple[list[Group], list[Group], dict]:
        """Rounds of draw, sample and score until ``needed`` informative groups (or the budget is spent)."""
        budget = needed if not self.settings.dynamic_sampling else math.ceil(needed * self.settings.max_draw_factor)
        kept: list[Group] = []
        dropped: list[Group] = []
        totals = {"drawn": 0, "generation_s": 0.0, "rewards_s": 0.0, "stats": RolloutStats(), "rounds": 0}
        while len(kept) < needed and totals["drawn"] < budget:
            missing = needed - len(kept)
            size = min(
                budget - totals["drawn"], math.ceil(missing / max(self.keep_rate, 1 / self.settings.max_draw_factor))
            )
            groups = self._round([self.curriculum.draw() for _ in range(size)], trainer, step, totals)
            for group in groups:
                self.curriculum.record(group.task_id, [reward.solved for reward in group.rewards])
                wanted = not self.settings.dynamic_sampling or informative(group.scores)
                (kept if wanted else dropped).append(group)
            share = sum(informative(group.scores) for group in groups) / len(groups)
            self.keep_rate = 0.5 * self.keep_rate + 0.5 * share
        return kept, dropped, totals

    def _round(self, task_ids: list[str], trainer, step: int, totals: dict) -> list[Group]:
        prompts = [self.tokenizer(self.tasks[t].model_prompt)["input_ids"] for t in task_ids]
        seed = sample_seed(sample_seed(self.settings.seed, step), totals["rounds"])  # one stream per round
        started = time.perf_counter()
        sampled, stats = self.generator.generate(trainer, prompts, self.settings.num_generations, seed)
        scoring = time.perf_counter()
        groups = []
        for task_id, ids, completions in zip(task_ids, prompts, sampled):
            texts = self.tokenizer.batch_decode([list(c.token_ids) for c in completions], skip_special_tokens=True)
            rewards = self.scorer.score(self.tasks[task_id], texts)
            for text, reward in zip(texts, rewards):
                self.ledger.scores[(task_id, text)] = reward
            groups.append(Group(task_id, ids, completions, texts, rewards))
        totals["generation_s"] += scoring - started
        totals["rewards_s"] += time.perf_counter() - scoring
        totals["drawn"] += len(task_ids)
        totals["rounds"] += 1
        _add_stats(totals["stats"], stats)
        return groups

    def _output(self, kept: list[Group], dropped: list[Group], needed: int, totals: dict) -> dict:
        """TRL's rollout dict: the informative groups first, masked filler after them; logs the step's figures."""
        chosen = kept[:needed]
        filler = dropped[: needed - len(chosen)]
        out = {"prompt_ids": [], "completion_ids": [], "logprobs": None, "env_mask": [], "task_id": []}
        for group, live in [(g, 1) for g in chosen] + [(g, 0) for g in filler]:
            for completion in group.completions:
                out["prompt_ids"].append(list(group.prompt_ids))
                out["completion_ids"].append(list(completion.token_ids))
                out["env_mask"].append([live] * len(completion.token_ids))
                out["task_id"].append(group.task_id)
        self._log(kept + dropped, len(filler), needed, totals)
        return out

    def _log(self, groups: list[Group], unfilled: int, needed: int, totals: dict) -> None:
        rewards = [reward for group in groups for reward in group.rewards]
        completions = [c for group in groups for c in group.completions]
        stats: RolloutStats = totals["stats"]
        sizes = self.curriculum.sizes
        metrics = {
            "rollout/pass_rate": sum(r.solved for r in rewards) / len(rewards),
            "rollout/score_mean": sum(r.score for r in rewards) / len(rewards),
            "rollout/truncated_share": sum(not c.finished for c in completions) / len(completions),
            "rollout/tokens_per_s": stats.tokens_per_s,
            "dynamic/groups_drawn": float(totals["drawn"]),
            "dynamic/dropped_share": sum(not informative(g.scores) for g in groups) / len(groups),
            "dynamic/unfilled_share": unfilled / needed,
            "curriculum/easy_pool": float(sizes["easy"]),
            "curriculum/main_pool": float(sizes["main"]),
            "curriculum/deleted": float(sizes["deleted"]),
            "time/generation_s": totals["generation_s"],
            "time/rewards_s": totals["rewards_s"],
        }
        if stats.acceptance is not None:
            metrics["rollout/mtp_acceptance"] = stats.acceptance
        self.ledger.metrics.update(metrics)


def _add_stats(total: RolloutStats, more: RolloutStats) -> None:
    total.sequences += more.sequences
    total.tokens += more.tokens
    total.seconds += more.seconds
    total.drafts_proposed += more.drafts_proposed
    total.drafts_accepted += more.drafts_accepted
