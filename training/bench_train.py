"""`mimo bench train`: tokens/s of our pretraining step against a plain Hugging Face `Trainer`, in one run; with
`--fsdp`, FSDP2 against DDP on several torchrun processes.

Both train the same freshly initialised nano-sized MiMo (same seed) on the same fixed batch of random tokens
with the same AdamW settings and clipping; each loop runs one untimed warm-up step, then `steps` timed ones.
The two alternate for `rounds` rounds and each reports its best, so a burst of load on a shared machine does not
decide the comparison.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

from training.config import ModelDims, OptimConfig, load_model_sections, preset_path


@dataclass(frozen=True)
class BenchOptions:
    steps: int = 10
    rounds: int = 2  # alternating our loop and the Trainer; the best round of each counts (a shared machine)
    batch_size: int = 8
    seq_len: int = 256
    vocab_size: int = 8192
    seed: int = 0


class _VocabOnly:
    """What build_model needs from a tokenizer, for a benchmark that has none."""

    def __init__(self, size: int):
        self.size, self.eos_token_id, self.pad_token_id = size, 0, 0

    def __len__(self) -> int:
        return self.size


def _fresh_model(dims: ModelDims, options: BenchOptions):
    from training.pretrain import build_model

    return build_model(dims, _VocabOnly(options.vocab_size), options.seed)


def _batch(options: BenchOptions) -> torch.Tensor:
    generator = torch.Generator().manual_seed(options.seed)
    return torch.randint(9, options.vocab_size, (options.batch_size, options.seq_len), generator=generator)


def time_our_loop(dims: ModelDims, optim: OptimConfig, options: BenchOptions) -> float:
    """Seconds for `options.steps` steps of training.pretrain.train_step after one warm-up step."""
    from training.pretrain import build_optimizer, train_step

    model = _fresh_model(dims, options).train()
    optimizer = build_optimizer(model, optim)
    batch = _batch(options)
    train_step(model, optimizer, batch, optim.grad_clip)
    started = time.perf_counter()
    for _ in range(options.steps):
        train_step(model, optimizer, batch, optim.grad_clip)
    return time.perf_counter() - started


def time_hf_trainer(dims: ModelDims, optim: OptimConfig, options: BenchOptions) -> float:
    """Seconds for the same number of steps in `transformers.Trainer`, timed by a callback after step 1."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class StepClock(TrainerCallback):
        marks: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())

    batch = _batch(options)
    rows = [{"input_ids": row, "labels": row} for row in batch] * (options.steps + 1)
    clock = StepClock()
    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(
            output_dir=scratch, use_cpu=True, per_device_train_batch_size=options.batch_size,
            max_steps=options.steps + 1, learning_rate=optim.lr, adam_beta1=optim.beta1, adam_beta2=optim.beta2,
            weight_decay=optim.weight_decay, max_grad_norm=optim.grad_clip, lr_scheduler_type="constant",
            logging_strategy="no", save_strategy="no", report_to=[], dataloader_num_workers=0,
            disable_tqdm=True, seed=options.seed,
        )  # fmt: skip
        trainer = Trainer(model=_fresh_model(dims, options), args=arguments, train_dataset=rows, callbacks=[clock])
        with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its metrics; stdout is for our JSON
            trainer.train()
    return clock.marks[-1] - clock.marks[0]


def bench_train(options: BenchOptions) -> dict:
    dims, optim = load_model_sections(preset_path("nano"))
    tokens = options.steps * options.batch_size * options.seq_len
    ours, theirs = float("inf"), float("inf")
    for _ in range(options.rounds):
        ours = min(ours, time_our_loop(dims, optim, options))
        theirs = min(theirs, time_hf_trainer(dims, optim, options))
    return {
        "model": "mimo-nano dims (random init)",
        "threads": torch.get_num_threads(),
        "batch_size": options.batch_size,
        "seq_len": options.seq_len,
        "timed_steps": options.steps,
        "rounds": options.rounds,
        "ours_tokens_per_s": round(tokens / ours, 1),
        "hf_trainer_tokens_per_s": round(tokens / theirs, 1),
        "speedup": round(theirs / ours, 3),
    }


# FSDP2 against DDP: the same model, batch and steps on `processes` torchrun processes (gloo on CPU, NCCL on GPUs).
# Each configuration is a fresh torchrun; its rank 0 prints one JSON line with the timed seconds and the bytes of
# weights, gradients and AdamW state each process holds.


def time_distributed(strategy: str, options: BenchOptions, processes: int, threads: int) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "training.bench_train", strategy, str(options.steps), str(options.batch_size),
               str(options.seq_len), str(options.vocab_size), str(options.seed), str(threads)]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if completed.returncode != 0:
        raise RuntimeError(f"torchrun {strategy} bench failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_sharding(options: BenchOptions, processes: int = 2, threads: int = 1) -> dict:
    """Tokens/s of FSDP2 and DDP on `processes` processes, the best of `rounds` alternating rounds each."""
    tokens = options.steps * options.batch_size * options.seq_len
    best: dict[str, dict] = {}
    for _ in range(options.rounds):
        for strategy in ("ddp", "fsdp"):
            result = time_distributed(strategy, options, processes, threads)
            if strategy not in best or result["seconds"] < best[strategy]["seconds"]:
                best[strategy] = result
    ddp, fsdp = (tokens / best[s]["seconds"] for s in ("ddp", "fsdp"))
    return {
        "model": "mimo-nano dims (random init)", "processes": processes, "threads_per_process": threads,
        "batch_size": options.batch_size, "seq_len": options.seq_len, "timed_steps": options.steps,
        "rounds": options.rounds, "ddp_tokens_per_s": round(ddp, 1), "fsdp_tokens_per_s": round(fsdp, 1),
        "fsdp_vs_ddp": round(fsdp / ddp, 3), "ddp_state_mb_per_process": best["ddp"]["state_mb"],
        "fsdp_state_mb_per_process": best["fsdp"]["state_mb"],
    }  # fmt: skip


def _local_megabytes(model, optimizer) -> float:
    """Weights, gradients and optimiser state this process holds (a DTensor counts its local shard only)."""

    def local(tensor) -> int:
        tensor = tensor.to_local() if hasattr(tensor, "to_local") else tensor
        return tensor.numel() * tensor.element_size()

    total = sum(local(p) + (local(p.grad) if p.grad is not None else 0) for p in model.parameters())
    total += sum(local(v) for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))
    return round(total / 2**20, 1)


def _worker(strategy: str, options: BenchOptions, threads: int) -> None:
    """One torchrun process: a warm-up step, then `steps` timed steps on this process's rows."""
    from training.distributed import init_distributed, shutdown_distributed, wrap_model
    from training.pretrain import build_optimizer, train_step

    torch.set_num_threads(threads)
    context = init_distributed()
    dims, optim = load_model_sections(preset_path("nano"))
    model = _fresh_model(dims, options).to(context.device).train()
    trained = wrap_model(model, context, strategy, None)
    optimizer = build_optimizer(model, optim)
    rows = _batch(options)[context.rows(options.batch_size)].to(context.device)
    train_step(trained, optimizer, rows, optim.grad_clip)
    context.barrier()
    started = time.perf_counter()
    for _ in range(options.steps):
        train_step(trained, optimizer, rows, optim.grad_clip)
    context.barrier()
    seconds = time.perf_counter() - started
    megabytes = _local_megabytes(model, optimizer)
    if context.is_main:
        print(json.dumps({"seconds": seconds, "state_mb": megabytes}), flush=True)
    shutdown_distributed(context)


if __name__ == "__main__":
    name, steps, batch, seq, vocab, seed, threads = sys.argv[1:8]
    settings = BenchOptions(steps=int(steps), batch_size=int(batch), seq_len=int(seq), vocab_size=int(vocab),
                            seed=int(seed))  # fmt: skip
    _worker(name, settings, int(threads))
