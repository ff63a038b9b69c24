"""One process or many: the little that training needs from ``torch.distributed``.

Launched by ``torchrun`` (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous
variables in the environment), :meth:`Dist.from_env` joins the process group (NCCL on GPUs,
gloo on CPUs) and each process takes ``cuda:LOCAL_RANK`` when it trains on GPUs. Without
those variables everything runs in this process (``world == 1``) and every method is a
no-op, so the training code is the same on one CPU, one GPU and many nodes.

:meth:`Dist.gather` concatenates a batch-dimension tensor over ranks with a gradient (the
backward sums each rank's gradient for its slice), so a loss over the whole global batch,
like the supervised-contrastive one, equals the single-process loss and its gradient.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Dist", "DistributedError"]


class DistributedError(ValueError):
    """A distributed run cannot go on (set-up mismatch or a failure on another rank); a
    ``ValueError``, so the command line reports it as one line."""


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group, world, rank):
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous(), group=group)
        ctx.group, ctx.rank, ctx.n = group, rank, x.shape[0]
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n], None, None, None


@dataclass
class Dist:
    """This process's place in the run: ``rank`` of ``world`` (``local_rank`` on its node)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    _group: Any = field(default=None, repr=False)
    _owned: bool = field(default=False, repr=False)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @staticmethod
    def launched() -> bool:
        """True when this process was started by ``torchrun`` with more than one process."""
        return int(os.environ.get("WORLD_SIZE", "1")) > 1

    @classmethod
    def from_env(cls, device_type: str = "cpu", timeout_s: float = 1800.0) -> "Dist":
        """Join the process group ``torchrun`` set up (or a single-process Dist without it)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if device_type == "cuda" else "gloo"
        owned = False
        if not dist.is_initialized():
            if device_type == "cuda":
                torch.cuda.set_device(local)
            dist.init_process_group(backend, timeout=_dt.timedelta(seconds=timeout_s))
            owned = True
        group = dist.new_group(backend=dist.get_backend())  # collectives inside backward stay apart from DDP's
        return cls(rank=rank, world=world, local_rank=local, backend=dist.get_backend(), _group=group, _owned=owned)

    def device(self, device: torch.device) -> torch.device:
        """``cuda:LOCAL_RANK`` for a multi-process GPU run, else ``device``."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather_objects(self, obj: Any) -> list:
        if not self.active:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (a new tensor on ``t``'s device; NCCL reduces a CUDA copy)."""
        t = t.detach().clone()
        if not self.active:
            return t
        if self.backend == "nccl" and t.device.type != "cuda":
            out = t.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(out)
            return out.to(t.device)
        dist.all_reduce(t)
        return t

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """Rank-ordered concatenation along dim 0 (differentiable for float tensors)."""
        if not self.active:
            return t
        if t.is_floating_point() and t.requires_grad:
            return _GatherWithGrad.apply(t, self._group, self.world, self.rank)
        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t.contiguous(), group=self._group)
        return torch.cat(parts, 0)

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``DistributedDataParallel(module)`` in a multi-process run, else the module itself."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index if device.index is not None else self.local_rank] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def close(self) -> None:
        if self._owned and dist.is_initialized():
            dist.destroy_process_group()
            self._owned = False
