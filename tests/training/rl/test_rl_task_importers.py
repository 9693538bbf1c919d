"""Public task styles read into the task format, hostile records refused, and n-gram decontamination."""

from __future__ import annotations

import base64
import json
import pickle
import zlib

import pytest

from training.errors import UserError
from training.tasks.decontaminate import decontaminate
from training.tasks.format import Task, training_tasks
from training.tasks.importers import humaneval_tasks, load_any, record_style

MBPP = {
    "task_id": 2,
    "text": "Write a function to find the shared elements from the given two lists.",
    "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
    "test_list": [
        "assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))",
        "assert set(similar_elements((1, 2, 3, 4), (5, 4, 3, 7))) == set((3, 4))",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}
LCB_STDIN = {
    "question_title": "Add",
    "question_content": "Read a and b and print a + b.",
    "platform": "atcoder",
    "question_id": "abc000_a",
    "difficulty": "easy",
    "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
    "private_test_cases": "",
    "metadata": "{}",
}


def _private(cases: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


def _write(tmp_path, *records) -> object:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_humaneval_is_evaluation_only_and_training_refuses_it():
    tasks = humaneval_tasks()
    assert len(tasks) == 164 and all(t.eval_only for t in tasks)
    assert tasks[0].tests == ("check(has_close_elements)",) and "def check" in tasks[0].setup
    with pytest.raises(UserError, match="evaluation-only"):
        training_tasks(tasks[:3])


def test_styles_are_recognised_and_converted(tmp_path):
    lcb_private = dict(LCB_STDIN, question_id="abc000_b",
                       private_test_cases=_private([{"input": "5 5\n", "output": "10\n", "testtype": "stdin"}]))  # fmt: skip
    own = Task(id="own", format="stdio", prompt="p", tests=[{"input": "", "output": "1\n"}]).to_json()
    tasks = load_any(_write(tmp_path, MBPP, LCB_STDIN, lcb_private, own))
    assert [record_style(r) for r in (MBPP, LCB_STDIN, own)] == ["mbpp", "livecodebench", "task"]
    mbpp, lcb, lcb2, mine = tasks
    assert mbpp.id == "mbpp/2" and mbpp.format == "functional" and len(mbpp.tests) == 2
    assert mbpp.model_prompt.startswith('"""\nWrite a function') and mbpp.solution == MBPP["code"]
    assert lcb.format == "stdio" and lcb.tests[0].output == "3\n" and lcb.difficulty == "easy"
    assert [t.input for t in lcb2.tests] == ["1 2\n", "5 5\n"]  # public then private
    assert mine.id == "own"


def test_livecodebench_functional_tests_call_the_solution_class(tmp_path):
    record = dict(LCB_STDIN, question_id="lc1", starter_code="class Solution:\n    def twoSum(self, nums, target):",
                  public_test_cases=json.dumps([{"input": "[2,7,11,15]\n9", "output": "[0,1]",
                                                 "testtype": "functional"}]),
                  metadata=json.dumps({"func_name": "twoSum"}))  # fmt: skip
    (task,) = load_any(_write(tmp_path, record))
    assert task.format == "functional" and task.entry_point == "twoSum"
    assert task.tests == ("assert Solution().twoSum(*[[2, 7, 11, 15], 9]) == [0, 1]",)
    assert task.model_prompt.endswith("def twoSum(self, nums, target):")


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/mimo-rl-pwned",))


def test_a_pickle_that_is_not_a_plain_string_is_refused(tmp_path):
    hostile = base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()
    with pytest.raises(UserError, match=r"records\.jsonl:1: .*refusing a pickled posix\.system"):
        load_any(_write(tmp_path, dict(LCB_STDIN, private_test_cases=hostile)))
    import os

    assert not os.path.exists("/tmp/mimo-rl-pwned")
    with pytest.raises(UserError, match="not base64/zlib"):
        load_any(_write(tmp_path, dict(LCB_STDIN, private_test_cases="%%%not base64")))
    not_a_string = base64.b64encode(zlib.compress(pickle.dumps([1, 2]))).decode()
    with pytest.raises(UserError, match="unpickle to a JSON string"):
        load_any(_write(tmp_path, dict(LCB_STDIN, private_test_cases=not_a_string)))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"foo": 1}, "unrecognised task record"),
        ([1, 2], "expected a JSON object"),
        (dict(MBPP, test_list="nope"), "malformed mbpp record|test"),
        (dict(LCB_STDIN, public_test_cases="{}"), "JSON list"),
        (dict(MBPP, test_list=["assert ("]), "does not compile|syntax|test"),
    ],
)
def test_malformed_records_name_the_line(tmp_path, record, message):
    with pytest.raises(UserError, match=r"records\.jsonl:1: ") as error:
        load_any(_write(tmp_path, record))
    assert any(part.lower() in str(error.value).lower() for part in message.split("|"))


def test_bad_files_are_clear_errors(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"id": 1\n')
    with pytest.raises(UserError, match=r"x\.jsonl:1: not valid JSON"):
        load_any(tmp_path / "x.jsonl")
    with pytest.raises(UserError, match="cannot read"):
        load_any(tmp_path / "missing.jsonl")


def _task(task_id: str, prompt: str, solution: str = "") -> Task:
    return Task(id=task_id, format="functional", prompt=prompt, tests=("assert True",), solution=solution or None)


def test_decontamination_drops_training_tasks_that_copy_an_evaluation_task():
    evaluation = humaneval_tasks(limit=5)
    copied = _task("copied", "def f():\n" + "\n".join("    " + line for line in evaluation[2].prompt.splitlines()))
    reformatted = _task("reformatted", " ".join(evaluation[0].prompt.split()).upper())  # spacing and case changed
    unrelated = _task("unrelated", "def add(a, b):\n    '''Return the sum of a and b.'''")
    result = decontaminate([copied, reformatted, unrelated], evaluation, n=13)
    assert [t.id for t in result.kept] == ["unrelated"]
    assert result.dropped == {"copied": evaluation[2].id, "reformatted": evaluation[0].id}
    # A shorter n finds shorter overlaps: a shared 4-word phrase only counts from n <= 4.
    phrase = _task("phrase", "Return a total of items here.")
    other = _task("other", "Compute a total of items now.")
    assert decontaminate([phrase], [other], n=5).dropped == {}
    assert decontaminate([phrase], [other], n=4).dropped == {"phrase": "other"}


def test_a_pasted_humaneval_prompt_is_caught_through_reformatting():
    """A copy survives a formatter: other quotes, typing.List -> list, rewrapped lines, a prose statement."""
    evaluation = humaneval_tasks(limit=10)
    original = evaluation[9].prompt  # rolling_max(numbers: List[int]) -> List[int]
    pasted = original.replace('"""', "'''").replace("List[", "list[").replace("from typing import List, Tuple\n", "")
    rewrapped = "\n".join(word if i % 5 else word + "\n" for i, word in enumerate(pasted.split(" ")))
    prose = Task(id="prose", format="stdio", prompt="Solve this:\n" + rewrapped, tests=[{"input": "", "output": ""}])
    code = _task("code", "import math\n\n" + pasted)
    result = decontaminate([prose, code], evaluation, n=13)
    assert result.dropped == {"prose": evaluation[9].id, "code": evaluation[9].id}


def test_a_shared_typed_signature_alone_is_not_an_overlap():
    """Punctuation is not counted: `(numbers: List[int]) -> List[int]:` shared with HumanEval/9 is no copy."""
    signature = _task("mine", 'def transform(numbers: List[int]) -> List[int]:\n    """Keep the items above 7."""')
    assert decontaminate([signature], humaneval_tasks(), n=13).dropped == {}


def test_the_generated_families_are_clean_against_humaneval():
    from training.tasks import BUILTIN_SETS, read_tasks

    train = read_tasks(BUILTIN_SETS["families-train"]) + read_tasks(BUILTIN_SETS["families-sft"])
    assert decontaminate(train, humaneval_tasks(), n=13).dropped == {}
