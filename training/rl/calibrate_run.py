"""Running a calibration: rollouts from each reference engine, verified in the sandbox, folded into the tasks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.errors import UserError
from training.rl.calibrate import calibrate_task, rollout_rewards
from training.rl.evaluate import EvalSettings, generate_completions
from training.tasks import read_tasks, resolve_task_file, write_tasks


@dataclass(frozen=True)
class CalibrationRequest:
    tasks: str
    out: Path
    models: list[str]  # native engine
    engines: list[str]  # OpenAI-compatible servers
    rollouts: int = 8
    levels: int = 3
    temperature: float = 1.0
    max_tokens: int = 256
    workers: int = 0


def calibrate(request: CalibrationRequest) -> dict:
    """Writes the calibrated tasks to ``request.out``; returns a summary."""
    from engine.registry import open_engine
    from engine.remote import RemoteEngine
    from training.data.progress import progress_bar
    from training.verify import VerifierPool

    tasks = read_tasks(resolve_task_file(request.tasks))
    if any(task.format == "repo" for task in tasks):  # their pytest runs have no per-test difficulty to calibrate yet
        raise UserError(f"{request.tasks}: calibration takes functional and stdio tasks; leave the repo tasks out")
    settings = EvalSettings(samples=request.rollouts, max_tokens=request.max_tokens,
                            temperature=request.temperature, seed=0)  # fmt: skip
    references = [(name, lambda name=name: open_engine(name, "native")) for name in request.models]
    references += [(url, lambda url=url: RemoteEngine(url)) for url in request.engines]
    rewards: dict[str, list] = {task.id: [] for task in tasks}
    with VerifierPool(workers=request.workers) as pool:  # first: no point generating if the sandbox cannot run
        for name, make_engine in references:
            with progress_bar(f"rollouts ({name})", len(tasks), unit="tasks") as advance:
                completions = generate_completions(make_engine(), tasks, settings, on_task=lambda _: advance(1))
            with progress_bar("verifying", len(tasks) * request.rollouts, unit="runs") as advance:
                for task_id, more in rollout_rewards(tasks, completions, pool, lambda _: advance(1)).items():
                    rewards[task_id] += more
    names = [name for name, _ in references]
    calibrated = [calibrate_task(task, rewards[task.id], request.levels).apply(task, names) for task in tasks]
    write_tasks(request.out, calibrated)
    sizes: dict[int, int] = {}
    for task in calibrated:
        for level in task.test_levels:
            sizes[level] = sizes.get(level, 0) + 1
    return {
        "tasks": len(calibrated),
        "references": names,
        "rollouts_per_task": request.rollouts * len(names),
        "tests_per_level": dict(sorted(sizes.items())),
        "never_solved": sum(t.meta["calibration"]["solved_share"] == 0 for t in calibrated),
        "always_solved": sum(t.meta["calibration"]["solved_share"] == 1 for t in calibrated),
        "out": str(request.out),
    }
