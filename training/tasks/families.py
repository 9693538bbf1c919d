"""Generated task families for the CPU RL proof: many small problems with tests, from reference solutions.

A family is a problem template with parameters (a constant, a character, a separator...): "Return the items of xs
greater than 7, in order." Each instance draws its parameters, writes the prompt (a signature and a one-line
docstring that states the rule), the reference solution, and tests whose expected values come from running that
solution on a few typical and a few edge inputs (empty lists, zero, negatives). Functions get neutral names
(``transform``, ``solve``...) so a model has to read the docstring, not recall a name.

Instances differ in their parameters; ``pipelines.generate_sets`` deals each family's distinct instances to disjoint
SFT, RL-training and held-out sets, so no held-out problem (same prompt, same tests) is ever trained on. The problems are small enough
for a 10 M-parameter model to learn after a supervised warm start, and varied enough that it does not solve all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from training.tasks.format import StdioTest, Task

NAMES = ("transform", "solve", "compute", "process", "convert", "apply_rule")
WORDS = ("cat", "dog", "sun", "map", "key", "box", "red", "zip", "top", "ink")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


@dataclass(frozen=True)
class Family:
    """``rule`` maps the drawn parameters to (docstring, body); ``args`` is the signature's parameter list."""

    name: str
    args: str  # e.g. "x: int" or "xs: list[int]"
    returns: str
    params: Callable[[random.Random], dict]
    rule: Callable[[dict], tuple[str, str]]
    inputs: Callable[[random.Random], list[tuple]]  # typical then edge inputs, each a tuple of arguments
    difficulty: str = "easy"


def _ints(rng: random.Random, count: int = 3, low: int = -20, high: int = 50) -> list[tuple]:
    return [(rng.randint(low, high),) for _ in range(count)] + [(0,), (-7,)]


def _lists(rng: random.Random) -> list[tuple]:
    typical = [([rng.randint(-10, 30) for _ in range(rng.randint(4, 7))],) for _ in range(3)]
    return typical + [([],), ([5],)]


def _strings(rng: random.Random) -> list[tuple]:
    def word() -> str:
        return "".join(rng.choice("abcdeklmnorst ") for _ in range(rng.randint(5, 10))).strip() or "ab"

    return [(word(),) for _ in range(3)] + [("",), ("a",)]


def _k(low: int, high: int) -> Callable[[random.Random], dict]:
    return lambda rng: {"k": rng.randint(low, high)}


INT = "x: int"
LIST = "xs: list[int]"
STR = "s: str"

FUNCTIONAL_FAMILIES = (
    Family("add", INT, "int", _k(2, 99), lambda p: (f"Return x plus {p['k']}.", f"x + {p['k']}"), _ints),
    Family("subtract", INT, "int", _k(2, 99), lambda p: (f"Return x minus {p['k']}.", f"x - {p['k']}"), _ints),
    Family("multiply", INT, "int", _k(2, 40), lambda p: (f"Return x times {p['k']}.", f"x * {p['k']}"), _ints),
    Family("affine", INT, "int", lambda rng: {"a": rng.randint(2, 9), "b": rng.randint(1, 30)}, lambda p: (f"Return {p['a']} times x plus {p['b']}.", f"{p['a']} * x + {p['b']}"), _ints, "medium"),
    Family("modulo", INT, "int", _k(2, 40), lambda p: (f"Return x modulo {p['k']}.", f"x % {p['k']}"), _ints, "medium"),
    Family("floor_divide", INT, "int", _k(2, 40), lambda p: (f"Return x divided by {p['k']}, rounded down.", f"x // {p['k']}"), _ints, "medium"),
    Family("divisible", INT, "bool", _k(2, 40), lambda p: (f"Return True if x is divisible by {p['k']}.", f"x % {p['k']} == 0"), _ints),
    Family("greater", INT, "bool", _k(-9, 40), lambda p: (f"Return True if x is greater than {p['k']}.", f"x > {p['k']}"), _ints),
    Family("clamp", INT, "int", lambda rng: {"lo": rng.randint(-10, 5), "hi": rng.randint(10, 40)}, lambda p: (f"Return x limited to the range {p['lo']} to {p['hi']}.", f"min(max(x, {p['lo']}), {p['hi']})"), _ints, "hard"),
    Family("square_plus", INT, "int", _k(1, 50), lambda p: (f"Return x squared plus {p['k']}.", f"x * x + {p['k']}"), _ints, "medium"),
    Family("filter_greater", LIST, "list[int]", _k(-5, 20), lambda p: (f"Return the items of xs greater than {p['k']}, in order.", f"[v for v in xs if v > {p['k']}]"), _lists, "medium"),
    Family("filter_multiple", LIST, "list[int]", _k(2, 30), lambda p: (f"Return the items of xs divisible by {p['k']}.", f"[v for v in xs if v % {p['k']} == 0]"), _lists, "medium"),
    Family("map_add", LIST, "list[int]", _k(1, 40), lambda p: (f"Return a list of each item of xs plus {p['k']}.", f"[v + {p['k']} for v in xs]"), _lists),
    Family("map_multiply", LIST, "list[int]", _k(2, 30), lambda p: (f"Return a list of each item of xs times {p['k']}.", f"[v * {p['k']} for v in xs]"), _lists),
    Family("count_greater", LIST, "int", _k(-5, 20), lambda p: (f"Return how many items of xs are greater than {p['k']}.", f"sum(1 for v in xs if v > {p['k']})"), _lists, "medium"),
    Family("sum_greater", LIST, "int", _k(-5, 20), lambda p: (f"Return the sum of the items of xs greater than {p['k']}.", f"sum(v for v in xs if v > {p['k']})"), _lists, "hard"),
    Family("take", LIST, "list[int]", _k(1, 20), lambda p: (f"Return the first {p['k']} items of xs.", f"xs[:{p['k']}]"), _lists),
    Family("drop", LIST, "list[int]", _k(1, 20), lambda p: (f"Return xs without its first {p['k']} items.", f"xs[{p['k']}:]"), _lists),
    Family("max_or", LIST, "int", _k(-9, 9), lambda p: (f"Return the largest item of xs, or {p['k']} if xs is empty.", f"max(xs) if xs else {p['k']}"), _lists, "hard"),
    Family("count_char", STR, "int", lambda rng: {"c": rng.choice(LETTERS)}, lambda p: (f"Return how many times '{p['c']}' occurs in s.", f"s.count('{p['c']}')"), _strings),
    Family("replace_char", STR, "str", lambda rng: dict(zip("ab", rng.sample(LETTERS, 2))), lambda p: (f"Return s with every '{p['a']}' replaced by '{p['b']}'.", f"s.replace('{p['a']}', '{p['b']}')"), _strings, "medium"),
    Family("remove_char", STR, "str", lambda rng: {"c": rng.choice(LETTERS)}, lambda p: (f"Return s without any '{p['c']}'.", f"s.replace('{p['c']}', '')"), _strings),
    Family("repeat", STR, "str", _k(2, 30), lambda p: (f"Return s repeated {p['k']} times.", f"s * {p['k']}"), _strings),
    Family("wrap", STR, "str", lambda rng: {"w": rng.choice(WORDS) + rng.choice("!#*-+=")}, lambda p: (f"Return s with '{p['w']}' added before and after it.", f"'{p['w']}' + s + '{p['w']}'"), _strings, "medium"),
    Family("starts", STR, "bool", lambda rng: {"w": "".join(rng.sample("abcdeklmnorst", rng.randint(1, 2)))}, lambda p: (f"Return True if s starts with '{p['w']}'.", f"s.startswith('{p['w']}')"), _strings),
    Family("upper_if_long", STR, "str", _k(1, 30), lambda p: (f"Return s in upper case if it is longer than {p['k']} characters, else s unchanged.", f"s.upper() if len(s) > {p['k']} else s"), _strings, "hard"),
    Family("abs_plus", INT, "int", _k(1, 60), lambda p: (f"Return the absolute value of x plus {p['k']}.", f"abs(x) + {p['k']}"), _ints, "medium"),
    Family("between", INT, "bool", lambda rng: {"lo": rng.randint(-10, 10), "hi": rng.randint(12, 45)}, lambda p: (f"Return True if x is between {p['lo']} and {p['hi']}, inclusive.", f"{p['lo']} <= x <= {p['hi']}"), _ints, "hard"),
    Family("contains", LIST, "bool", _k(-5, 30), lambda p: (f"Return True if {p['k']} is an item of xs.", f"{p['k']} in xs"), _lists),
    Family("index_or", LIST, "int", _k(0, 12), lambda p: (f"Return the position of the first {p['k']} in xs, or -1 if there is none.", f"xs.index({p['k']}) if {p['k']} in xs else -1"), _lists, "hard"),
    Family("ends", STR, "bool", lambda rng: {"w": "".join(rng.sample("abcdeklmnorst", rng.randint(1, 2)))}, lambda p: (f"Return True if s ends with '{p['w']}'.", f"s.endswith('{p['w']}')"), _strings),
)  # fmt: skip


@dataclass(frozen=True)
class StdioFamily:
    name: str
    params: Callable[[random.Random], dict]
    rule: Callable[[dict], tuple[str, str]]  # (statement, program)
    inputs: Callable[[random.Random], list[str]]
    difficulty: str = "medium"


def _number_lines(rng: random.Random) -> list[str]:
    return [f"{rng.randint(-50, 99)}\n" for _ in range(3)] + ["0\n"]


def _list_lines(rng: random.Random) -> list[str]:
    lines = [" ".join(str(rng.randint(-9, 30)) for _ in range(rng.randint(3, 7))) + "\n" for _ in range(3)]
    return lines + ["5\n"]


STDIO_FAMILIES = (
    StdioFamily("read_add", _k(2, 99), lambda p: (f"Read an integer n and print n plus {p['k']}.", f"n = int(input())\nprint(n + {p['k']})\n"), _number_lines, "easy"),
    StdioFamily("read_multiply", _k(2, 40), lambda p: (f"Read an integer n and print n times {p['k']}.", f"n = int(input())\nprint(n * {p['k']})\n"), _number_lines, "easy"),
    StdioFamily("read_sum_greater", _k(-3, 15), lambda p: (f"Read integers on one line and print the sum of those greater than {p['k']}.", f"xs = list(map(int, input().split()))\nprint(sum(v for v in xs if v > {p['k']}))\n"), _list_lines),
    StdioFamily("read_count_greater", _k(-3, 15), lambda p: (f"Read integers on one line and print how many are greater than {p['k']}.", f"xs = list(map(int, input().split()))\nprint(sum(1 for v in xs if v > {p['k']}))\n"), _list_lines),
)  # fmt: skip


def functional_task(family: Family, params: dict, rng: random.Random, name: str, body_is_block: bool = False) -> Task:
    """One instance: prompt, solution and tests whose expected values the solution computes (trusted code).
    ``body_is_block``: the rule's body is whole statements, not the expression after ``return``."""
    docstring, body = family.rule(params)
    prompt = f'def {name}({family.args}) -> {family.returns}:\n    """{docstring}"""\n'
    solution = f"{prompt}    {body}\n" if body_is_block else f"{prompt}    return {body}\n"
    namespace: dict = {}
    exec(compile(solution, f"<family {family.name}>", "exec"), namespace)  # our own template, not model output
    function = namespace[name]
    tests = [f"assert {name}({', '.join(map(repr, args))}) == {function(*args)!r}" for args in family.inputs(rng)]
    return Task(
        id=f"{family.name}-{_slug(params)}",
        format="functional",
        prompt=prompt,
        tests=tuple(dict.fromkeys(tests)),  # an edge input may repeat a typical one
        entry_point=name,
        solution=solution,
        difficulty=family.difficulty,
        source=f"generated/{family.name}",
    )


def stdio_task(family: StdioFamily, params: dict, rng: random.Random) -> Task:
    import contextlib
    import io

    statement, program = family.rule(params)
    tests = {}
    for line in family.inputs(rng):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(program, f"<family {family.name}>", "exec"), {"input": io.StringIO(line).readline})
        tests[line] = output.getvalue()
    return Task(
        id=f"{family.name}-{_slug(params)}",
        format="stdio",
        prompt=statement,
        tests=tuple(StdioTest(input=i, output=o) for i, o in tests.items()),
        solution=program,
        difficulty=family.difficulty,
        source=f"generated/{family.name}",
    )


def _slug(params: dict) -> str:
    return "_".join(f"{key}{value}".replace(" ", "space").replace("-", "m") for key, value in sorted(params.items()))
