"""n-gram decontamination: training tasks that share a long word n-gram with an evaluation set are dropped.

MiMo-7B decontaminates its SFT data with 16-grams and its RL problems with n-gram dedup; the default here is 13
word tokens (the GPT-3 / Llama choice), configurable. A task's text is its prompt, solution and tests, lower-cased
and split into words and numbers (punctuation ignored), so whitespace and formatting changes do not hide a copy.
Written here because it is a set intersection over a tokenizer's regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from training.tasks.format import Task

# Words and numbers only: punctuation would make every typed signature (`: list[int]) -> bool: """`) a long match.
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


def task_text(task: Task, with_solution: bool = True) -> str:
    tests = [t if isinstance(t, str) else f"{t.input} {t.output}" for t in task.tests]
    return "\n".join([task.prompt, (task.solution or "") if with_solution else "", *tests])


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    tokens = TOKEN.findall(text.lower())
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class Decontamination:
    kept: list[Task]
    dropped: dict[str, str]  # task id -> the id of an evaluation task it overlaps


def decontaminate(train: Iterable[Task], evaluation: Iterable[Task], n: int = 13) -> Decontamination:
    """``train`` without the tasks sharing any word n-gram with an ``evaluation`` task."""
    owner: dict[tuple[str, ...], str] = {}
    for task in evaluation:
        for gram in ngrams(task_text(task), n):
            owner.setdefault(gram, task.id)
    kept, dropped = [], {}
    for task in train:
        hit = next((owner[g] for g in ngrams(task_text(task), n) if g in owner), None)
        if hit is None:
            kept.append(task)
        else:
            dropped[task.id] = hit
    return Decontamination(kept, dropped)
