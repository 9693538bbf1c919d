"""Commands `mimo train tokenizer` and `mimo train data`: argument handling only (docs/data.md has the details).

Errors a person can fix print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from training.errors import UserError

SourcesArgument = Annotated[
    Optional[list[str]],
    typer.Argument(help="Git repositories or folders (PATH or NAME=PATH), installed:stdlib, installed:NAME.",
                   show_default=False),
]  # fmt: skip
ExecutorKind = Literal["local", "slurm", "ray"]
FromInstalled = Annotated[
    bool, typer.Option(help="Add the Python standard library and every installed distribution (offline corpus).")
]


@contextlib.contextmanager
def _user_errors():
    try:
        yield
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def register(groups: dict[str, typer.Typer]) -> None:
    train = groups["train"]

    @train.command("tokenizer")
    def tokenizer_command(
        sources: SourcesArgument = None,
        out: Annotated[Path, typer.Option(help="Folder to save the tokenizer in (Hugging Face format).")] = ...,
        vocab_size: Annotated[int, typer.Option(help="Vocabulary size, special tokens included.")] = 8192,
        from_installed: FromInstalled = False,
        max_mb: Annotated[Optional[float], typer.Option(help="Stop reading after this many MB of text.")] = None,
    ) -> None:
        """Train a byte-level BPE with mimo-code's special tokens (ids 0..8) and the ChatML template."""
        from training.data.corpus import training_files
        from training.tokenizer import save_hf, train_bpe

        with _user_errors():
            corpus = training_files(sources or [], from_installed)
            budget = None if max_mb is None else int(max_mb * 1e6)
            bpe = train_bpe(corpus.texts(budget), vocab_size, show_progress=_stderr_is_terminal())
            if corpus.bytes_read == 0:
                raise UserError("empty corpus: no readable UTF-8 code among the sources")
            save_hf(bpe, out)
        skipped = ", ".join(f"{reason} {count}" for reason, count in corpus.skipped.most_common()) or "none"
        typer.echo(
            f"trained a {bpe.get_vocab_size():,}-token BPE on {corpus.bytes_read / 1e6:.1f} MB "
            f"({corpus.files_read:,} files; skipped: {skipped}) -> {out}",
            err=True,
        )

    @train.command("data")
    def data_command(
        sources: SourcesArgument = None,
        out: Annotated[Path, typer.Option(help="Folder for shards, manifest.json and heldout/.")] = ...,
        tokenizer: Annotated[Path, typer.Option(help="Tokenizer folder from `mimo train tokenizer`.")] = ...,
        licenses: Annotated[Optional[str], typer.Option(help="Comma-separated SPDX ids to allow.")] = None,
        fim_rate: Annotated[float, typer.Option(help="Fraction of files given the FIM transform.")] = 0.5,
        spm_rate: Annotated[float, typer.Option(help="Of FIM files, the fraction in SPM order.")] = 0.5,
        fim_chunk_chars: Annotated[
            int,
            typer.Option(
                help="FIM each line-aligned piece of at most this many "
                "characters on its own (fit it to the training window); "
                "0: whole files."
            ),
        ] = 1600,
        seed: Annotated[int, typer.Option(help="Seed of FIM and the held-out split.")] = 0,
        holdout_fraction: Annotated[float, typer.Option(help="Fraction of files held out for evaluation.")] = 0.02,
        dedup_threshold: Annotated[float, typer.Option(help="MinHash Jaccard above which files are copies.")] = 0.8,
        max_file_kb: Annotated[int, typer.Option(help="Skip files larger than this.")] = 1000,
        from_installed: FromInstalled = False,
        executor: Annotated[ExecutorKind, typer.Option(help="datatrove executor that runs the stages.")] = "local",
        workers: Annotated[int, typer.Option(help="Tasks running at once (local processes, Ray or Slurm).")] = 1,
        tasks: Annotated[
            Optional[int], typer.Option(help="Parts the sources are split into (default: --workers).")
        ] = None,
        work_dir: Annotated[
            Optional[Path],
            typer.Option(help="Intermediate files and logs (default OUT/pipeline); shared on a cluster."),
        ] = None,
        slurm_partition: Annotated[Optional[str], typer.Option(help="Slurm partition (--executor slurm).")] = None,
        slurm_time: Annotated[str, typer.Option(help="Slurm time limit per task.")] = "24:00:00",
        slurm_cpus_per_task: Annotated[int, typer.Option(help="Slurm CPUs per task.")] = 1,
        slurm_mem_per_cpu_gb: Annotated[int, typer.Option(help="Slurm memory per CPU, GB.")] = 2,
        slurm_option: Annotated[
            Optional[list[str]], typer.Option(help="More #SBATCH directives as KEY=VALUE (account=..., qos=...).")
        ] = None,
        ray_address: Annotated[
            Optional[str], typer.Option(help="Ray cluster to join (default RAY_ADDRESS, else a local one).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    ) -> None:
        """Build training shards: filter, dedup, scrub, FIM, pack by imports, tokenise; write a manifest."""
        from training.data.build import BuildOptions, build
        from training.data.corpus import resolve_specs
        from training.data.fim import FimConfig
        from training.data.licenses import DEFAULT_ALLOWED
        from training.data.options import ExecutorOptions

        with _user_errors():
            runner = ExecutorOptions(
                kind=executor, workers=workers, tasks=tasks, work_dir=work_dir, ray_address=ray_address,
                slurm=_slurm_options(executor, slurm_partition, slurm_time, slurm_cpus_per_task,
                                     slurm_mem_per_cpu_gb, slurm_option or []),
            )  # fmt: skip
            options = BuildOptions(
                out=out,
                tokenizer=tokenizer,
                licenses=frozenset(_split_list(licenses) if licenses else DEFAULT_ALLOWED),
                fim=FimConfig(rate=fim_rate, spm_rate=spm_rate, chunk_chars=fim_chunk_chars),
                seed=seed,
                holdout_fraction=holdout_fraction,
                dedup_threshold=dedup_threshold,
                max_file_bytes=max_file_kb * 1000,
            )
            manifest = build(resolve_specs(sources or [], from_installed), options, runner)
        if manifest is None:
            typer.echo(f"submitted to Slurm; logs in {work_dir or out / 'pipeline'}/logs, shards in {out}", err=True)
            return
        summary = _summary(manifest, out)
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        typer.echo(
            f"{summary['total_tokens']:,} tokens from {summary['files']:,} files in {len(manifest['shards'])} shard(s);"
            f" {summary['heldout_files']} held out -> {out}",
            err=True,
        )

    @train.command("mixture")
    def mixture_command(
        config: Annotated[Path, typer.Argument(help="A mixture file (.toml, .yaml).", show_default=False)],
        total_tokens: Annotated[int, typer.Option(help="The run's length, to show each stage's token range.")] = 10**9,
    ) -> None:
        """Check a mixture file and print its stage schedule as JSON (sources must exist as shard folders)."""
        from training.data.mixture import load_mixture, schedule

        with _user_errors():
            table = schedule(load_mixture(config), total_tokens)
        typer.echo(json.dumps(table, indent=2))


def _slurm_options(kind: str, partition, time: str, cpus: int, memory: int, directives: list[str]):
    from training.data.options import SlurmOptions

    if kind != "slurm":
        return None
    if not partition:
        raise UserError("--executor slurm needs --slurm-partition NAME")
    pairs = [directive.partition("=") for directive in directives]
    if bad := [key for key, sign, _ in pairs if not (key and sign)]:
        raise UserError(f"--slurm-option takes KEY=VALUE (an #SBATCH directive), got {bad[0]!r}")
    return SlurmOptions(partition, time, cpus, memory, {key: value for key, _, value in pairs})


def _split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _summary(manifest: dict, out: Path) -> dict:
    return {
        "out": str(out),
        "total_tokens": manifest["total_tokens"],
        "files": manifest["files"],
        "heldout_files": len(manifest["heldout"]["files"]),
        "sources": {
            name: {key: entry[key] for key in ("license", "included", "files", "tokens")}
            for name, entry in manifest["sources"].items()
        },
        "dropped": manifest["dropped"],
        "scrubbed": manifest["scrubbed"],
    }


def _stderr_is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()
