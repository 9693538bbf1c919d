"""Multi-process training through torchrun: each process learns its rank from the environment torchrun sets.

Every process draws the same global batch from the (deterministic) sampler and trains on its own slice of the
rows; DDP averages the gradients, so N processes take the same optimiser step as one process on the whole batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from training.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def rows(self, batch_size: int) -> slice:
        """This process's contiguous share of a global batch."""
        if batch_size % self.world_size:
            raise ConfigError(f"batch_size {batch_size} does not divide by the {self.world_size} processes")
        share = batch_size // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average of `values` over processes (for logging the same losses everywhere)."""
        if not self.enabled:
            return values
        values = values.detach().clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed() -> DistContext:
    """Joins the process group torchrun describes (gloo on CPU, NCCL on GPUs); a plain run is one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if world_size == 1:
        return DistContext(device=device)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=world_size, device=device)


def shutdown_distributed(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, context: DistContext, strategy: str, param_dtype: torch.dtype | None):
    """The module the training step calls: the model itself (one process), DDP around it, or the model sharded
    in place by FSDP2 (`fully_shard` on each trunk layer, then on the root, which holds the embeddings, the
    head, the final norm and the MTP layers: the MTP path reads the embeddings and its own final norm outside
    its layer's forward, so those parameters must stay in the root's unit). With `param_dtype` (bf16 on GPUs)
    FSDP2 gathers the weights in that dtype and reduces gradients in float32."""
    if not context.enabled:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32 if param_dtype else None)
        for layer in model.model.layers:
            fully_shard(layer, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
        return model
    from torch.nn.parallel import DistributedDataParallel

    # Every parameter, MTP layers included, takes part in the loss, so no unused-parameter search is needed.
    return DistributedDataParallel(model, device_ids=[context.device] if context.device.type == "cuda" else None)
