"""`mimo pull ORG/MODEL`: downloads a checkpoint into the Hugging Face cache, the one place where mimo-code
talks to the hub. Everything else resolves names in that cache only (engine.registry), so a server, an editor
or a review never downloads at run time.

huggingface_hub's ``snapshot_download`` does the work (why not our own: it resumes ``.incomplete`` files with
HTTP ranges, retries dropped connections, verifies sizes and writes the cache layout every other tool reads);
this module checks the name first, shows rich progress bars with rates, and turns the hub's errors into one
line that says what to do. ``HF_ENDPOINT`` (a mirror), ``HF_TOKEN`` (gated models) and ``HF_HUB_CACHE`` are
honoured as huggingface_hub documents them.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

# Hugging Face repository names: letters, digits, '-', '_', '.'; neither part starts or ends with '-' or '.'.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"{_PART}/{_PART}")
SUGGESTED = {
    "XiaomiMiMo/MiMo-7B-Base": "completions (prefix mode)",
    "XiaomiMiMo/MiMo-7B-SFT": "review and fix-its (chat)",
    "XiaomiMiMo/MiMo-7B-RL": "review and fix-its (chat, thinks first)",
}


class PullError(Exception):
    """A pull that cannot succeed as asked; ``usage`` marks the user's mistakes (exit 2) from the rest."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


def check_repo_id(name: str) -> str:
    """``name`` if it is a Hugging Face model id (ORG/MODEL), else a PullError saying what it is instead."""
    if name == "nano":
        raise PullError("nano ships with mimo-code; there is nothing to pull", usage=True)
    if name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
        raise PullError(f"{name!r} is a local path; `mimo serve --model {name}` uses it as it is", usage=True)
    if not _REPO_ID.fullmatch(name) or ".." in name:
        raise PullError(
            f"{name!r} is not a Hugging Face model id; write ORG/MODEL, e.g. XiaomiMiMo/MiMo-7B-Base", usage=True
        )
    return name


def pull(repo_id: str, revision: str | None = None, cache_dir: Path | None = None, progress: bool = True) -> Path:
    """Downloads ``repo_id`` (a partial earlier download resumes) and returns its snapshot folder."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    check_repo_id(repo_id)
    endpoint = constants.ENDPOINT
    if constants.HF_HUB_OFFLINE:
        raise PullError(f"HF_HUB_OFFLINE is set, so {repo_id} cannot be downloaded; unset it to pull")
    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, tqdm_class=_rich_tqdm() if progress else None
        )
    except GatedRepoError:
        raise PullError(
            f"{repo_id} is gated: accept its terms on {endpoint} and set HF_TOKEN to an access token", usage=True
        ) from None
    except RepositoryNotFoundError:
        raise PullError(
            f"{endpoint} has no model {repo_id} (or it is private: set HF_TOKEN); check the name", usage=True
        ) from None
    except RevisionNotFoundError:
        raise PullError(f"{repo_id} has no revision {revision!r} on {endpoint}", usage=True) from None
    except LocalEntryNotFoundError:
        raise PullError(
            f"cannot reach {endpoint} to download {repo_id}, and it is not in the cache; "
            "check the network (or HF_ENDPOINT for a mirror) and run `mimo pull` again: it resumes"
        ) from None
    except (HfHubHTTPError, OSError) as error:
        first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise PullError(f"downloading {repo_id} stopped ({first}); run `mimo pull` again: it resumes") from None
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise PullError(f"{repo_id} was downloaded to {path} but has no config.json: it is not a model checkpoint")
    return path


def _rich_tqdm():
    """tqdm's rich front end (progress bars with rates), drawn on stderr so stdout holds only the folder."""
    from rich.console import Console
    from tqdm import TqdmExperimentalWarning
    from tqdm.rich import tqdm_rich

    warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)  # "rich is experimental" on every bar
    console = Console(stderr=True)

    class StderrRichTqdm(tqdm_rich):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs, options={"console": console})

    return StderrRichTqdm


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("pull")(pull_command)


def pull_command(
    model: Annotated[str, typer.Argument(metavar="ORG/MODEL", help="A Hugging Face model id.")],
    revision: Annotated[str | None, typer.Option(help="A branch, tag or commit (default: main).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="The cache to fill (default: HF_HUB_CACHE).")] = None,
) -> None:
    """Download a model into the Hugging Face cache, with progress, resuming an interrupted download.

    MiMo-7B: -Base for completions, -SFT or -RL for review and fix-its (docs/deploy.md). Prints the
    checkpoint's folder; `mimo serve --model ORG/MODEL` then finds it without the network.
    """
    try:
        path = pull(model, revision, cache_dir)
    except PullError as error:
        typer.echo(f"mimo pull: {error}", err=True)
        raise typer.Exit(2 if error.usage else 1) from None
    use = SUGGESTED.get(model)
    print(f"mimo pull: {model} is ready{f' (use it for {use})' if use else ''}", file=sys.stderr)
    typer.echo(str(path))
