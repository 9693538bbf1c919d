"""The JSONL task format: round trips, the project's file, and clear errors for bad records."""

from __future__ import annotations

import json

import pytest

from training.errors import UserError
from training.tasks import TASKS_FILE, Task, load_tasks, read_tasks, write_tasks
from training.tasks.format import parse_task, training_tasks

FUNCTIONAL = {
    "id": "inc",
    "format": "functional",
    "prompt": "def inc(x):\n",
    "tests": ["assert inc(1) == 2", "assert inc(-1) == 0"],
    "solution": "def inc(x):\n    return x + 1\n",
    "test_levels": [0, 1],
}
STDIO = {
    "id": "echo",
    "format": "stdio",
    "prompt": "Print the line you read.",
    "tests": [{"input": "a\n", "output": "a\n"}],
    "solution": "print(input())\n",
}


def _write(tmp_path, *records) -> object:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_file_round_trips_exactly(tmp_path):
    tasks = read_tasks(_write(tmp_path, FUNCTIONAL, STDIO))
    out = write_tasks(tmp_path / "copy.jsonl", tasks)
    assert read_tasks(out) == tasks
    assert [json.loads(line) for line in out.read_text().splitlines()] == [FUNCTIONAL, STDIO]


def test_the_project_file_loads_in_the_format():
    tasks = read_tasks(TASKS_FILE)
    assert len(tasks) == 17 and {t.format for t in tasks} == {"functional", "stdio"}
    assert load_tasks(format="stdio", difficulty="easy")[0].id == "add_two"


def test_prompts_programs_and_reference_completions():
    functional, stdio = parse_task(FUNCTIONAL), parse_task(STDIO)
    assert functional.model_prompt == "def inc(x):"  # ends on a token boundary: the completion has the newline
    assert functional.reference_completion == "\n    return x + 1\n"
    assert functional.program("\n    return x + 1\n") == functional.solution
    assert stdio.model_prompt == '"""\nPrint the line you read.\n"""'
    assert stdio.reference_completion == "\nprint(input())\n"  # the solution does not start with the docstring
    job = stdio.job(stdio.program("\nprint(input())\n"))
    assert job.format == "stdio" and job.tests[0].output == "a\n"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"tests": []}, "tests"),
        ({"format": "sql"}, "format = 'sql'"),
        ({"tests": [{"input": "1"}]}, "tests[0]: a functional test is a Python statement"),
        ({"test_levels": [0]}, "test_levels has 1 entries for 2 tests"),
        ({"test_levels": [0, -1]}, "test_levels must be >= 0"),
        ({"test_pass_rates": [0.5, 2.0]}, "must lie in [0, 1]"),
        ({"difficulty": "trivial"}, "difficulty = 'trivial'"),
    ],
)
def test_a_bad_record_names_the_line_and_the_field(tmp_path, change, message):
    path = _write(tmp_path, STDIO, FUNCTIONAL | change)
    with pytest.raises(UserError, match=r"tasks\.jsonl:2: .*") as error:
        read_tasks(path)
    assert message in str(error.value)


def test_missing_fields_bad_json_and_repeated_ids_are_errors(tmp_path):
    record = dict(FUNCTIONAL)
    del record["prompt"]
    with pytest.raises(UserError, match="missing field 'prompt'"):
        read_tasks(_write(tmp_path, record))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(UserError, match=r"bad\.jsonl:1: not valid JSON"):
        read_tasks(tmp_path / "bad.jsonl")
    with pytest.raises(UserError, match="repeats line 1"):
        read_tasks(_write(tmp_path, FUNCTIONAL, FUNCTIONAL))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="holds no tasks"):
        read_tasks(tmp_path / "empty.jsonl")
    with pytest.raises(UserError, match="cannot read"):
        read_tasks(tmp_path / "absent.jsonl")


def test_training_refuses_evaluation_only_tasks():
    task = Task.model_validate(FUNCTIONAL | {"eval_only": True})
    with pytest.raises(UserError, match="evaluation-only"):
        training_tasks([task])
    assert training_tasks([parse_task(FUNCTIONAL)])
