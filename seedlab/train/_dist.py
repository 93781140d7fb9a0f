"""Distributed training: one process per device under torchrun or `accelerate launch`; gloo on CPU, nccl on CUDA."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank, how many processes train together, and its device."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"
    owner: bool = False  # this process joined the group here, so `stop` leaves it (a build holds it across phases)

    @property
    def main(self) -> bool:
        return self.rank == 0


ALONE = Ranks()  # one process on the CPU


def start(timeout_s: float | None = None) -> Ranks:
    """Join the process group the launcher describes (WORLD_SIZE > 1), or train alone; one already joined is
    used as it is. `timeout_s` bounds how long a rank waits for the others (default: torch's)."""
    import datetime

    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    if world <= 1:
        return Ranks(device=device)
    import torch.distributed as dist

    owner = not dist.is_initialized()
    if owner:
        if device.startswith("cuda"):
            torch.cuda.set_device(local)
        timeout = datetime.timedelta(seconds=timeout_s) if timeout_s else None
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=timeout)
    return Ranks(dist.get_rank(), dist.get_world_size(), device, owner)


STRATEGIES = ("ddp", "fsdp")


def wrap(model: Any, ranks: Ranks, strategy: str = "ddp") -> Any:
    """When several processes train: DDP (every rank holds the whole model, gradients averaged), or FSDP (each
    decoder layer's weights, gradients and optimiser state sharded across ranks, gathered per layer as it runs;
    torch's fully_shard). Alone, the model as it is."""
    if ranks.world == 1:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        # Every weight is gathered in the dtype it is stored in: bf16 runs keep frozen weights in bf16 (half the
        # traffic) and LoRA weights in fp32, so ranks compute exactly what one process does. Casting LoRA weights
        # to bf16 as well rounded their gradients and drifted from one process by more than 1e-3 in 16 steps.
        policy = MixedPrecisionPolicy()
        for module in model.modules():
            if type(module).__name__.endswith("DecoderLayer"):
                fully_shard(module, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[ranks.device] if ranks.device.startswith("cuda") else None)


def sharded(model: Any) -> bool:
    """Whether `wrap` sharded the model (FSDP): its full weights then exist only when gathered."""
    return hasattr(model, "set_requires_gradient_sync")


@contextlib.contextmanager
def accumulating(model: Any, sync: bool) -> Iterator[None]:
    """A micro-batch whose gradients stay on this rank unless `sync` (the last of a step): DDP's no_sync,
    FSDP's requires-gradient-sync switch; alone, nothing to skip."""
    if sync:
        yield
    elif sharded(model):
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    elif hasattr(model, "no_sync"):
        with model.no_sync():
            yield
    else:
        yield


def gathered(model: Any, optimizer: Any | None = None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The whole model's state dict and the optimiser's, gathered to rank 0 from FSDP shards (every rank must
    call this); (None, None) when the model is not sharded and its own state dicts are whole."""
    if not sharded(model):
        return None, None
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)
    return weights, get_optimizer_state_dict(model, optimizer, options=options) if optimizer is not None else None


def scatter(model: Any, optimizer: Any, weights: dict[str, Any], optimizer_state: dict[str, Any]) -> None:
    """Load whole state dicts (as `gathered` wrote them) into a sharded model and its optimiser, every rank."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, weights, options=options)
    set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)


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
    """Leave the process group if `start` joined it."""
    if ranks.world > 1 and ranks.owner:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
