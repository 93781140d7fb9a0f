"""Distributed training: one process per device under torchrun or `accelerate launch`; gloo on CPU, nccl on CUDA."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank, how many processes train together, and its device."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


ALONE = Ranks()  # one process on the CPU


def start() -> Ranks:
    """Join the process group the launcher describes (WORLD_SIZE > 1), or train alone."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    if world <= 1:
        return Ranks(device=device)
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), device)


def wrap(model: Any, ranks: Ranks) -> Any:
    """DDP around the model when several processes train; gradients are averaged across them."""
    if ranks.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[ranks.device] if ranks.device.startswith("cuda") else None)


def unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


def share(value: Any, ranks: Ranks) -> Any:
    """Rank 0's value on every rank (a run id, a folder name)."""
    if ranks.world == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def reduce_sum(values: list[float], ranks: Ranks) -> list[float]:
    """Element-wise sum over all ranks."""
    if ranks.world == 1:
        return values
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor]


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        import torch.distributed as dist

        dist.barrier()


def stop(ranks: Ranks) -> None:
    if ranks.world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
