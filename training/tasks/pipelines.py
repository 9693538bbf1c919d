"""Generated pipeline tasks: a docstring lists two or three steps, and the solution applies them in order.

"Start from xs: keep the items greater than 4, then multiply each by 3, then return their sum." The reference
solution writes one line per step, so a model has to map each clause to its line and keep the order; a slip in
one clause fails the tests that exercise it. The steps and their parameters combine into thousands of distinct
problems, so a training set cannot cover the held-out ones, and a small model fine-tuned on some of them solves
others only part of the time: room for RL to improve.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import partial

from training.tasks.families import (
    FUNCTIONAL_FAMILIES,
    NAMES,
    STDIO_FAMILIES,
    Family,
    _lists,
    _strings,
    functional_task,
    stdio_task,
)
from training.tasks.format import Task


@dataclass(frozen=True)
class Step:
    phrase: str  # the clause in the docstring
    code: str  # the statement (it reads and rewrites the variable)


def int_step(rng: random.Random) -> Step:
    k = rng.randint(2, 19)
    return rng.choice(
        [
            Step(f"add {k}", f"x = x + {k}"),
            Step(f"subtract {k}", f"x = x - {k}"),
            Step(f"multiply by {k}", f"x = x * {k}"),
            Step(f"take the remainder modulo {k}", f"x = x % {k}"),
            Step(f"divide by {k} rounding down", f"x = x // {k}"),
            Step("square it", "x = x * x"),
            Step("take the absolute value", "x = abs(x)"),
            Step("negate it", "x = -x"),
        ]
    )


def list_step(rng: random.Random) -> Step:
    k = rng.randint(2, 9)
    return rng.choice(
        [
            Step(f"keep the items greater than {k}", f"xs = [v for v in xs if v > {k}]"),
            Step(f"keep the items less than {k}", f"xs = [v for v in xs if v < {k}]"),
            Step(f"keep the items divisible by {k}", f"xs = [v for v in xs if v % {k} == 0]"),
            Step("keep the even items", "xs = [v for v in xs if v % 2 == 0]"),
            Step("keep the odd items", "xs = [v for v in xs if v % 2 == 1]"),
            Step(f"add {k} to each item", f"xs = [v + {k} for v in xs]"),
            Step(f"multiply each item by {k}", f"xs = [v * {k} for v in xs]"),
            Step("sort them", "xs = sorted(xs)"),
            Step("reverse their order", "xs = xs[::-1]"),
        ]
    )


LIST_ENDS = (
    ("return them", "return xs", "list[int]"),
    ("return their sum", "return sum(xs)", "int"),
    ("return how many there are", "return len(xs)", "int"),
    ("return the largest, or 0 if there are none", "return max(xs) if xs else 0", "int"),
    ("return the first, or -1 if there are none", "return xs[0] if xs else -1", "int"),
)


def str_step(rng: random.Random) -> Step:
    a, b = rng.sample("abcdeklmnorst", 2)
    word = rng.choice(("ab", "xy", "ok", "zz", "!"))
    k = rng.randint(2, 3)
    return rng.choice(
        [
            Step(f"replace every '{a}' with '{b}'", f"s = s.replace('{a}', '{b}')"),
            Step(f"remove every '{a}'", f"s = s.replace('{a}', '')"),
            Step("make it upper case", "s = s.upper()"),
            Step("reverse it", "s = s[::-1]"),
            Step(f"add '{word}' at the end", f"s = s + '{word}'"),
            Step(f"add '{word}' at the start", f"s = '{word}' + s"),
            Step(f"repeat it {k} times", f"s = s * {k}"),
            Step("strip the spaces at both ends", "s = s.strip()"),
        ]
    )


STR_ENDS = (
    ("return it", "return s", "str"),
    ("return its length", "return len(s)", "int"),
)


def _int_inputs(rng: random.Random) -> list[tuple]:
    return [(rng.randint(-30, 60),) for _ in range(3)] + [(0,), (-9,)]


def _pipeline(rng: random.Random, kind: str, steps: int) -> tuple[str, list[str], str, str, object]:
    """(docstring, body lines, args, returns, inputs) of one random pipeline with ``steps`` steps."""
    if kind == "int":
        chosen = [int_step(rng) for _ in range(steps)]
        clauses = [step.phrase for step in chosen] + ["return the result"]
        return _doc("x", clauses), [s.code for s in chosen] + ["return x"], "x: int", "int", _int_inputs
    make, ends, arg, inputs = (
        (list_step, LIST_ENDS, "xs", _lists) if kind == "list" else (str_step, STR_ENDS, "s", _strings)
    )
    chosen = [make(rng) for _ in range(steps)]
    end_phrase, end_code, returns = rng.choice(ends)
    args = "xs: list[int]" if kind == "list" else "s: str"
    return (
        _doc(arg, [s.phrase for s in chosen] + [end_phrase]),
        [s.code for s in chosen] + [end_code],
        args,
        returns,
        inputs,
    )


def _doc(variable: str, clauses: list[str]) -> str:
    return f"Start from {variable}: " + ", then ".join(clauses) + "."


def pipeline_task(rng: random.Random, kind: str, steps: int) -> Task:
    """One random pipeline problem; its id comes from its docstring, so two draws of the same steps collide."""
    docstring, lines, args, returns, inputs = _pipeline(rng, kind, steps)
    body = "\n    ".join(lines)
    family = Family(f"{kind}_pipeline{steps}", args, returns, lambda _: {}, lambda _: (docstring, body), inputs,
                    "medium" if steps == 2 else "hard")  # fmt: skip
    task = functional_task(family, {}, rng, rng.choice(NAMES), body_is_block=True)
    digest = hashlib.sha1(docstring.encode()).hexdigest()[:10]
    return task.model_copy(update={"id": f"{family.name}-{digest}"})


PIPELINE_KINDS = (("int", 2), ("int", 3), ("list", 2), ("list", 3), ("str", 2), ("str", 3))


def generate_sets(seed: int = 0, simple_per_family: int = 14, pipelines_per_kind: int = 140,
                  sft_share: float = 0.4, heldout_share: float = 0.2) -> dict[str, list[Task]]:  # fmt: skip
    """The RL proof's task sets, disjoint: ``sft`` (reference solutions for the warm start), ``train`` (RL) and
    ``heldout`` (evaluation). Each family's and each pipeline kind's distinct problems are dealt to the three."""
    rng = random.Random(seed)
    sets: dict[str, list[Task]] = {"sft": [], "train": [], "heldout": []}
    for family in (*FUNCTIONAL_FAMILIES, *STDIO_FAMILIES):
        _deal(sets, _distinct(partial(_simple, family, rng), simple_per_family), sft_share, heldout_share)
    for kind, steps in PIPELINE_KINDS:
        make = partial(pipeline_task, rng, kind, steps)
        _deal(sets, _distinct(make, pipelines_per_kind), sft_share, heldout_share)
    return sets


def _simple(family, rng: random.Random) -> Task:
    params = family.params(rng)
    if isinstance(family, Family):
        return functional_task(family, params, rng, rng.choice(NAMES))
    return stdio_task(family, params, rng)


def _distinct(make, count: int) -> list[Task]:
    found: dict[str, Task] = {}
    for _ in range(count * 20):  # draws repeat where a family has few parameter values
        if len(found) == count:
            break
        task = make()
        found.setdefault(task.id, task)
    return list(found.values())


def _deal(sets: dict[str, list[Task]], tasks: list[Task], sft_share: float, heldout_share: float) -> None:
    heldout = max(1, round(len(tasks) * heldout_share))
    sft = round(len(tasks) * sft_share)
    sets["heldout"] += tasks[:heldout]
    sets["sft"] += tasks[heldout : heldout + sft]
    sets["train"] += tasks[heldout + sft :]
