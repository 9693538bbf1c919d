"""Code-completion evaluation on held-out files: next-line FIM completion and MTP draft acceptance.

Next line: at cursor points sampled deterministically inside held-out files, the model sees the text before the
cursor and the text after the cursor's line (a fill-in-the-middle prompt) and greedily writes the rest of the
line. Scored by exact match (ignoring surrounding whitespace) and edit similarity (difflib's ratio).

Loss: teacher-forced over the same windows, the main head's mean cross-entropy per token (nats).

MTP acceptance: teacher-forced over held-out text, the fraction of positions t where the MTP head's greedy
token (from the trunk's state at t and the true token t+1) equals the main model's greedy token at t+1: what
a one-token MTP draft would get accepted at under greedy speculative decoding.
"""

from __future__ import annotations

import difflib
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from training.errors import UserError

TEXT_SUFFIXES = {".py", ".pyi", ".js", ".ts", ".go", ".rs", ".java", ".c", ".h", ".cpp", ".lua", ".sh", ".md", ".txt"}


@dataclass(frozen=True)
class CursorPoint:
    path: str
    prefix: str  # the file's text up to the cursor
    suffix: str  # the file's text after the cursor's line
    target: str  # the rest of the cursor's line: what the model must write


@dataclass(frozen=True)
class EvalOptions:
    points: int = 200
    seed: int = 0
    prefix_tokens: int = 384
    suffix_tokens: int = 128
    max_new_tokens: int = 48
    acceptance_tokens: int = 16_384  # teacher-forced positions for the MTP acceptance rate
    acceptance_window: int = 512

    def __post_init__(self) -> None:
        """Counts a person types on the command line: a nonsense value is an error, never an empty report."""
        flags = {"points": "--points", "acceptance_tokens": "--mtp-tokens"}  # the command-line names
        for name in ("points", "prefix_tokens", "suffix_tokens", "max_new_tokens", "acceptance_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{flags.get(name, name)} must be a positive whole number, got {value!r}")
        if (
            isinstance(self.acceptance_window, bool)
            or not isinstance(self.acceptance_window, int)
            or (self.acceptance_window < 3)
        ):
            raise UserError(f"acceptance window must be at least 3 tokens, got {self.acceptance_window!r}")


@dataclass(frozen=True)
class CompletionReport:
    model: str
    exact_match: float
    edit_similarity: float
    mtp_acceptance: float | None  # None when the model has no MTP layer
    loss: float | None  # the main head's mean cross-entropy per token (nats), teacher-forced on the held-out text
    cursor_points: int
    mtp_positions: int
    loss_tokens: int  # the predicted tokens the loss averages over (the same windows as the acceptance)
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


# ---- metrics: plain functions, tested on hand-made cases ----


def exact_match(prediction: str, target: str) -> bool:
    return prediction.strip() == target.strip()


def edit_similarity(prediction: str, target: str) -> float:
    """1.0 for identical lines, 0.0 for nothing in common (difflib's ratio of matching characters)."""
    a, b = prediction.strip(), target.strip()
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def sample_cursor_points(files: list[tuple[str, str]], count: int, seed: int) -> list[CursorPoint]:
    """`count` cursor points (or all candidates, if fewer), the same for the same files and seed.

    Candidates are lines after a file's first with at least 4 non-blank characters; the cursor lands anywhere
    from the line's indentation to its last character, so the target is never empty.
    """
    candidates = []
    for path, text in sorted(files):
        lines = text.splitlines(keepends=True)
        offset = len(lines[0]) if lines else 0
        for index in range(1, len(lines)):
            if len(lines[index].strip()) >= 4:
                candidates.append((path, text, offset, lines[index]))
            offset += len(lines[index])
    rng = random.Random(seed)
    chosen = rng.sample(candidates, min(count, len(candidates)))
    return [_cursor_in_line(rng, *candidate) for candidate in chosen]


def _cursor_in_line(rng: random.Random, path: str, text: str, line_start: int, line: str) -> CursorPoint:
    body = line.rstrip("\r\n")
    indent = len(body) - len(body.lstrip())
    column = rng.randrange(indent, len(body.rstrip()))
    return CursorPoint(
        path=path,
        prefix=text[: line_start + column],
        suffix=text[line_start + len(line) :],
        target=body[column:],
    )


# ---- held-out files ----


def read_heldout(data: Path) -> list[tuple[str, str]]:
    """(path, text) pairs from a folder of files, or from .jsonl files with "path" and "text" per line."""
    data = Path(data)
    if not data.exists():
        raise UserError(
            f"held-out data {data} does not exist; pass the folder `mimo train data` wrote held-out files to"
        )
    paths = [data] if data.is_file() else sorted(p for p in data.rglob("*") if p.is_file())
    files = []
    for path in paths:
        if path.suffix == ".jsonl":
            files.extend(_jsonl_files(path))
        elif path.suffix in TEXT_SUFFIXES:
            try:
                files.append((str(path.relative_to(data) if data.is_dir() else path.name), path.read_text("utf-8")))
            except UnicodeDecodeError:
                continue
    if not files:
        raise UserError(f"no held-out text files in {data} (looked for {', '.join(sorted(TEXT_SUFFIXES))} and .jsonl)")
    return files


def _jsonl_files(path: Path) -> list[tuple[str, str]]:
    files = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        text = record.get("text", record.get("content"))
        if not isinstance(text, str):
            raise UserError(f'{path}:{number}: a held-out record needs a "text" string')
        files.append((str(record.get("path", f"{path.name}:{number}")), text))
    return files


# ---- the model side ----


def evaluate_completion(model_name: str, data: Path, options: EvalOptions) -> CompletionReport:
    from training.completion_model import CompletionModel

    files = read_heldout(data)
    if not sample_cursor_points(files, 1, options.seed):
        raise UserError(f"the held-out files in {data} have no lines to place a cursor on")
    return evaluate_loaded(CompletionModel.load(model_name), model_name, files, options)


def evaluate_loaded(lm, model_name: str, files: list[tuple[str, str]], options: EvalOptions) -> CompletionReport:
    """The figures for a loaded `CompletionModel` on (path, text) files (a model in memory, e.g. mid-training)."""
    started = time.perf_counter()
    points = sample_cursor_points(files, options.points, options.seed)
    matches, similarity = 0, 0.0
    for point in _progress(points, "next-line completion"):
        prediction = lm.complete_line(point, options)
        matches += exact_match(prediction, point.target)
        similarity += edit_similarity(prediction, point.target)
    stats = lm.heldout_stats([text for _, text in files], options)
    return CompletionReport(
        model=model_name,
        exact_match=matches / max(1, len(points)),
        edit_similarity=similarity / max(1, len(points)),
        mtp_acceptance=stats.acceptance,
        loss=stats.loss,
        cursor_points=len(points),
        mtp_positions=stats.positions,
        loss_tokens=stats.loss_tokens,
        seconds=round(time.perf_counter() - started, 1),
    )


def _progress(items: list, label: str):
    from rich.console import Console
    from rich.progress import track

    return track(items, description=label, console=Console(stderr=True), transient=True)
